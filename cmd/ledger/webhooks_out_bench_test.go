package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

// fanOutEndpoints and fanOutSales are the shape of BenchmarkWebhooksOutFanOut: 10 endpoints, 1,000
// sale.created events (made by benchEach's 16 concurrent clients).
const (
	fanOutEndpoints = 10
	fanOutSales     = 1000
)

// fanOutPace is the rate of the paced sub-benchmarks, in sale events per second: about half of what
// the unpaced ones measured the dispatcher to deliver to 10 endpoints on a 2-vCPU machine (400–500
// deliveries a second, docs/benchmarks.md), so that no backlog builds.
const fanOutPace = 25

// fanOutHealthyP99 is the p99 (ms) each healthy sub-benchmark measured in this process, by pace (0: as
// fast as the clients go); one_hanging at the same pace reports its own p99 against it.
var fanOutHealthyP99 = map[int]float64{}

// BenchmarkWebhooksOutFanOut measures outgoing webhooks (docs/decisions.md "Webhooks out", issue 11) end to
// end: a real ledger (embedded JetStream with the production defaults, SyncAlways and group commit on;
// SQLite read store; the dispatcher as `ledger serve` runs it), 10 endpoints on 127.0.0.1 (httptest
// servers), each subscribed to sale.created, and 1,000 checkouts (POST /v1/checkouts, a new buyer each)
// from 16 concurrent clients: 1,000 sale.created events, 10,000 deliveries.
//
//   - healthy: the 10 endpoints answer 200 at once.
//   - one_hanging: 9 answer 200 at once; the 10th never answers while the benchmark runs (its handler
//     blocks; the attempt timeout is 10 minutes, so none of its attempts ends). The question is whether
//     the 9 others' p99 moves by more than 2×.
//   - paced_healthy, paced_one_hanging: the same, with the checkouts sent at fanOutPace (25) a second
//     instead of as fast as 16 clients go (checkout i is sent no earlier than i/25 s after the first), a
//     diagnostic: as fast as they go, the clients make events faster than the dispatcher delivers them
//     to 10 endpoints, so the unpaced p99 is mostly the backlog's wait; paced, it is a delivery's own.
//
// Latency of a delivery: from "event appended", the ledger event's own time (Envelope.Time, the ce-time
// header, nanoseconds; the handler sets it just before its append), to "delivery received", when the
// receiver had read the request's body (time.Now in the receiver; same process, same clock). It is
// taken over every delivery to the answering endpoints. deliveries/s is those deliveries divided by the
// time from the first sale's event to the last delivery received. The timed part (ns/op) is the
// checkouts and the wait for every answering endpoint to have every event; the ledger, the store and the
// endpoints are set up before it, and the figures are read from the log after it.
//
// Reported: deliveries/s (paced, at most the pace times the answering endpoints: 250 or 225), p50-ms,
// p99-ms, max-ms (all answering endpoints together), worst-ep-p99-ms (the highest p99 of a single
// answering endpoint), and in the one_hanging ones, if the healthy one of the same pace ran first in
// the same process, p99-ratio (its p99 / healthy's). The log splits the same latencies into three
// stages, from each delivery's own events: event → scheduled (webhook_delivery_scheduled's time: the
// shared consumer, the wait for the read store, the choice of endpoints), scheduled → attempt started
// (the scheduling batch's append, the endpoint's queue), attempt started → received (rendering,
// signing, the request). It also logs the checkout rate, the CPUs the process used and the ledger's
// append and group-commit counters over the timed part.
//
//	go test -run '^$' -bench WebhooksOutFanOut -benchtime 1x -timeout 20m ./cmd/ledger/
func BenchmarkWebhooksOutFanOut(b *testing.B) {
	for _, tc := range []struct {
		name    string
		hanging bool
		pace    int
	}{{"healthy", false, 0}, {"one_hanging", true, 0}, {"paced_healthy", false, fanOutPace}, {"paced_one_hanging", true, fanOutPace}} {
		b.Run(tc.name, func(b *testing.B) {
			var all fanOutResult
			for i := range b.N {
				all.add(fanOutOnce(b, tc.hanging, tc.pace, fmt.Sprintf("%s-%d", strings.ReplaceAll(tc.name, "_", "-"), i)))
			}
			p := benchPercentiles(all.latencies)
			b.ReportMetric(float64(len(all.latencies))/all.span.Seconds(), "deliveries/s")
			b.ReportMetric(p(0.50), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(p(1), "max-ms")
			b.ReportMetric(all.worstEndpointP99, "worst-ep-p99-ms")
			switch {
			case !tc.hanging:
				fanOutHealthyP99[tc.pace] = p(0.99)
			case fanOutHealthyP99[tc.pace] > 0:
				b.ReportMetric(p(0.99)/fanOutHealthyP99[tc.pace], "p99-ratio")
			}
		})
	}
}

// fanOutResult is what one or more runs measured.
type fanOutResult struct {
	// latencies are those of every delivery to an answering endpoint.
	latencies []time.Duration
	// span is the sum over runs of first sale event → last delivery received.
	span time.Duration
	// worstEndpointP99 is the highest p99 (ms) of one answering endpoint.
	worstEndpointP99 float64
}

func (r *fanOutResult) add(o fanOutResult) {
	r.latencies = append(r.latencies, o.latencies...)
	r.span += o.span
	r.worstEndpointP99 = max(r.worstEndpointP99, o.worstEndpointP99)
}

// fanOutOnce runs the scenario once on a ledger of its own, which it closes before it returns. The
// timer runs only while the sales are made and delivered.
func fanOutOnce(b *testing.B, hanging bool, pace int, slug string) fanOutResult {
	b.StopTimer()
	m := newBenchMain(b, func(c *Config) {
		withWebhooks("1m")(c)
		c.webhookTimeout = 10 * time.Minute
	})
	mClosed := false
	closeLedger := func() {
		if !mClosed {
			mClosed = true
			m.Close()
		}
	}
	defer closeLedger()
	base := "http://" + m.HTTPAddr
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	storeID, live := fanOutStore(b, hc, base, "bench-whout-"+slug)

	// The receivers. The hanging one blocks until the ledger cuts its requests (closeLedger) or the run
	// ends (release); receivers close after both, so no request is left open.
	release := make(chan struct{})
	receivers := make([]*receiver, fanOutEndpoints)
	for i := range receivers {
		var answer func(int, hook, *http.Request) int
		if hanging && i == fanOutEndpoints-1 {
			answer = func(_ int, _ hook, r *http.Request) int {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return http.StatusOK
			}
		}
		receivers[i] = newReceiver(b, answer)
	}
	defer func() {
		for _, rc := range receivers {
			rc.srv.Close()
		}
	}()
	defer close(release)
	defer closeLedger() // first of the three: cuts the hanging attempts
	answering := receivers
	if hanging {
		answering = receivers[:fanOutEndpoints-1]
	}
	endpointOf := map[string]*receiver{}
	for _, rc := range receivers {
		status, raw, _, err := benchDo(hc, "POST", base+"/v1/webhook_endpoints", `{"url":"`+rc.srv.URL+`","events":["sale.created"]}`,
			map[string]string{"Authorization": "Bearer " + live, "Content-Type": "application/json"})
		var out struct{ Data struct{ ID string } }
		if err != nil || status != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Data.ID == "" {
			b.Fatalf("create webhook endpoint: %d %v %s", status, err, raw)
		}
		endpointOf[out.Data.ID] = rc
	}

	// The sales: 1,000 checkouts from 16 clients, each a software product with a file and a licence
	// (as benchPaidSales makes them), each buyer new.
	before := benchMetrics(b, hc, base)
	b.StartTimer()
	cpu0 := fanOutCPU()
	start := time.Now()
	benchEach(b, fanOutSales, func(i int) error {
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(pace))))
		}
		body := fmt.Sprintf(`{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":%d,"currency":"USD"},
			"files":[{"name":"app.zip","url":"https://cdn.example.com/app.zip"}],"licence":{"max_activations":3}},
			"customer":{"email":"%s.%d@example.com"}}`, 1000+i%50*100, slug, i)
		status, raw, _, err := benchDo(hc, "POST", base+"/v1/checkouts", body, map[string]string{"Authorization": "Bearer " + live})
		var out struct{ Data struct{ ID string } }
		if err != nil || status != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Data.ID == "" {
			return fmt.Errorf("checkout %d: %d %v %s", i, status, err, raw)
		}
		return nil
	})
	checkouts := time.Since(start)

	// Every answering endpoint gets every event; generous bound, only a delivery that never comes fails it.
	// (Counting, not rc.hooks(): copying 10,000 hooks every few milliseconds would take CPU and memory
	// from the ledger being measured.)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		done := true
		for _, rc := range answering {
			done = done && rc.count() >= fanOutSales
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			var counts []string
			for i, rc := range receivers {
				counts = append(counts, fmt.Sprintf("endpoint %d: %d", i, rc.count()))
			}
			b.Fatalf("after 5 minutes not every answering endpoint got the %d sale.created events: %s", fanOutSales, strings.Join(counts, ", "))
		}
		time.Sleep(5 * time.Millisecond)
	}
	delivered := time.Since(start)
	cpu := fanOutCPU() - cpu0
	b.StopTimer()
	fanOutLogAppends(b, before, benchMetrics(b, hc, base))

	// Each sale.created event's time, from the log.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := strings.Join([]string{events.SubjectPrefix, events.ModeLive, storeID}, ".")
	started, _, err := m.events.LoadFilter(ctx, prefix+"."+events.AggregateSale+".*."+events.TypeSaleStarted)
	if err != nil {
		b.Fatal(err)
	}
	appended := map[string]time.Time{}
	for _, e := range started {
		appended[e.ID] = e.Time
	}
	if len(appended) != fanOutSales {
		b.Fatalf("the log has %d sale_started events, want %d", len(appended), fanOutSales)
	}
	var first time.Time
	for _, t := range appended {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}

	var (
		res        fanOutResult
		last       time.Time
		duplicates int
	)
	received := map[[2]string]time.Time{} // (receiver URL, event id) → first arrival
	for _, rc := range answering {
		seen := map[string]bool{}
		var lat []time.Duration
		for _, h := range rc.hooks() {
			t0, ok := appended[h.msg.ID]
			if !ok || h.msg.Type != "sale.created" {
				b.Fatalf("endpoint %s got %s %s, not one of the sales' sale.created", rc.srv.URL, h.msg.Type, h.msg.ID)
			}
			if seen[h.msg.ID] {
				duplicates++
				continue
			}
			seen[h.msg.ID] = true
			received[[2]string{rc.srv.URL, h.msg.ID}] = h.at
			lat = append(lat, h.at.Sub(t0))
			if h.at.After(last) {
				last = h.at
			}
		}
		res.latencies = append(res.latencies, lat...)
		res.worstEndpointP99 = max(res.worstEndpointP99, benchPercentiles(lat)(0.99))
	}
	res.span = last.Sub(first)
	held := -1
	if hanging {
		held = len(receivers[fanOutEndpoints-1].hooks())
	}
	b.Logf("%d checkouts in %s (%.0f/s); every answering endpoint had every event %s after the first checkout was sent, "+
		"the process using %.2f CPUs on average meanwhile; %d deliveries to %d answering endpoints, %d duplicates; "+
		"the hanging endpoint holds %d requests (-1: none hangs)",
		fanOutSales, checkouts.Round(time.Millisecond), fanOutSales/checkouts.Seconds(), delivered.Round(time.Millisecond),
		cpu.Seconds()/delivered.Seconds(), len(res.latencies), len(answering), duplicates, held)
	fanOutStages(b, ctx, m, prefix, appended, endpointOf, received)
	return res
}

// fanOutStages logs the split of the answering endpoints' latencies into three stages, from each
// delivery's webhook_delivery_scheduled (its time) and first webhook_delivery_attempted (its At, when the
// attempt started). An attempt is recorded after the receiver answered, so it waits a little for the
// last records.
func fanOutStages(b *testing.B, ctx context.Context, m *Main, prefix string, appended map[string]time.Time,
	endpointOf map[string]*receiver, received map[[2]string]time.Time) {
	b.Helper()
	type delivery struct {
		endpoint, event      string
		scheduled, attempted time.Time
	}
	var byID map[string]*delivery
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, _, err := m.events.LoadFilter(ctx, prefix+"."+events.AggregateWebhookDelivery+".*.*")
		if err != nil {
			b.Fatal(err)
		}
		byID = map[string]*delivery{}
		attempted := 0
		for _, e := range evs {
			switch p := e.Payload.(type) {
			case events.WebhookDeliveryScheduled:
				byID[p.DeliveryID] = &delivery{endpoint: p.EndpointID, event: p.EventID, scheduled: e.Time}
			case events.WebhookDeliveryAttempted:
				if d := byID[e.Aggregate.ID]; d != nil && d.attempted.IsZero() {
					d.attempted = p.At
					if rc := endpointOf[d.endpoint]; rc != nil && !received[[2]string{rc.srv.URL, d.event}].IsZero() {
						attempted++
					}
				}
			}
		}
		if attempted >= len(received) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var toScheduled, toAttempt, toReceived []time.Duration
	for _, d := range byID {
		rc := endpointOf[d.endpoint]
		if rc == nil {
			continue
		}
		at, ok := received[[2]string{rc.srv.URL, d.event}]
		if !ok || d.attempted.IsZero() {
			continue // the hanging endpoint's, or a record not there yet
		}
		toScheduled = append(toScheduled, d.scheduled.Sub(appended[d.event]))
		toAttempt = append(toAttempt, d.attempted.Sub(d.scheduled))
		toReceived = append(toReceived, at.Sub(d.attempted))
	}
	f := func(ds []time.Duration) string {
		p := benchPercentiles(ds)
		return fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", p(0.5), p(0.99), p(1))
	}
	b.Logf("stages over %d deliveries: event → scheduled %s; scheduled → attempt started %s; attempt started → received %s",
		len(toScheduled), f(toScheduled), f(toAttempt), f(toReceived))
}

// count is how many requests the receiver got.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// fanOutStore creates a store through the admin API and returns its id and live key.
func fanOutStore(b *testing.B, hc *http.Client, base, slug string) (id, live string) {
	b.Helper()
	status, raw, _, err := benchDo(hc, "POST", base+"/v1/admin/stores",
		fmt.Sprintf(`{"name":"Shop %s","slug":%q,"service_fee_percent":"5"}`, slug, slug), map[string]string{"Authorization": "Bearer " + adminToken})
	var out struct {
		Data struct {
			Store struct{ ID string }   `json:"store"`
			Keys  struct{ Live string } `json:"keys"`
		} `json:"data"`
	}
	if err != nil || status != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Data.Store.ID == "" || out.Data.Keys.Live == "" {
		b.Fatalf("create store: %d %v %s", status, err, raw)
	}
	return out.Data.Store.ID, out.Data.Keys.Live
}

// fanOutLogAppends logs what the ledger's append counters grew by during the timed part: appends by
// outcome, and the groups of group commit by how they were written, with their mean time and size.
func fanOutLogAppends(b *testing.B, before, after map[string]float64) {
	b.Helper()
	d := func(k string) float64 { return after[k] - before[k] }
	groups, parts := 0.0, []string{}
	for _, how := range []string{"batch", "single", "fallback"} {
		n := d(`ledger_append_group_seconds_count{how="` + how + `"}`)
		if n == 0 {
			continue
		}
		groups += n
		parts = append(parts, fmt.Sprintf("%.0f %s (%.1f ms each)", n, how, 1000*d(`ledger_append_group_seconds_sum{how="`+how+`"}`)/n))
	}
	events := d("ledger_append_group_events_sum")
	b.Logf("appends: %.0f ok, %.0f conflicts, %.0f errors; groups: %s; %.1f events per group",
		d(`ledger_appends_total{outcome="ok"}`), d(`ledger_appends_total{outcome="conflict"}`), d(`ledger_appends_total{outcome="error"}`),
		strings.Join(parts, ", "), events/max(groups, 1))
}

// fanOutCPU is the CPU time (user and system) the process used so far: the ledger, its embedded
// nats-server, the receivers and the clients together.
func fanOutCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
