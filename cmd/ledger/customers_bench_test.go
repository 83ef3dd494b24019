package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateCustomer measures POST /v1/customers end to end against a real ledger (embedded
// JetStream with its defaults, so SyncAlways and group commit on; SQLite read store; HTTP on loopback):
// validation, the email claim read, the atomic two-event append (email_claimed + customer_registered)
// with its fsync, the wait for the projection (the answer is read from the read model) and the JSON
// answer. Every request registers a new customer with a unique email in a store made for the run.
//
// c1 is one client, one request at a time; c16 is 16 clients, each with its own requests in flight.
// Each request's latency is timed on the client; p50, p99 and max (nearest rank, ms) and creates/s
// (b.N / wall time) are reported; ns/op is wall time / b.N. Outside the timer the benchmark checks
// that every answer was 201 and that the store's live mode then lists exactly b.N customers.
//
//	go test -run '^$' -bench CreateCustomer -benchtime 2000x ./cmd/ledger/
func BenchmarkCreateCustomer(b *testing.B) {
	m := startBenchMain(b)
	base := "http://" + m.HTTPAddr
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	b.Logf("ledger on %s: SyncAlways=%v GroupCommit=%v NATSReplicas=%d", base, m.Config.SyncAlways, m.Config.GroupCommit, m.Config.NATSReplicas)

	runs := 0
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			runs++
			slug := fmt.Sprintf("bench-customers-c%d-%d", conc, runs)
			live, test := benchCreateStore(b, hc, base, slug)

			// Warm up the connections and the read path, in test mode, so that the live mode holds the
			// timed customers only.
			var warm sync.WaitGroup
			for w := range conc {
				warm.Go(func() {
					for i := range 4 {
						if r := benchPostCustomer(hc, base, test, fmt.Sprintf("warm.%d.%d@example.com", w, i), w*4+i); r.err != nil || r.status != http.StatusCreated {
							b.Errorf("warm-up create: %d %v %s", r.status, r.err, r.body)
						}
					}
				})
			}
			warm.Wait()
			if b.Failed() {
				b.FailNow()
			}

			lat := make([]time.Duration, b.N)
			var (
				next, failed atomic.Int64
				maxPos       benchMax
				firstFailure sync.Once
				failure      string
				wg           sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						email := fmt.Sprintf("%s.%d@example.com", slug, i)
						t0 := time.Now()
						r := benchPostCustomer(hc, base, live, email, i)
						lat[i] = time.Since(t0)
						if r.err != nil || r.status != http.StatusCreated {
							failed.Add(1)
							firstFailure.Do(func() { failure = fmt.Sprintf("%s: %d %v %s", email, r.status, r.err, r.body) })
							continue
						}
						maxPos.Max(r.position)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()

			benchReportLatency(b, lat, elapsed, "creates/s")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d creates were not 201; first: %s", n, b.N, failure)
			}
			if got := benchListCustomers(b, hc, base, live, maxPos.Load()); got != b.N {
				b.Fatalf("the store lists %d customers after %d creates", got, b.N)
			}
		})
	}
}

// startBenchMain runs the whole ledger in-process, as startMain does, but with the production default
// of LEDGER_SYNC_ALWAYS (true) instead of the tests' false. The per-key rate limit is off (as for the
// load harness): a benchmark sends far more than the default 100 requests/s with one key. env is more
// settings, name then value.
func startBenchMain(b *testing.B, env ...string) *Main {
	b.Helper()
	m := newBenchMain(b, nil, env...)
	b.Cleanup(func() { m.Close() })
	return m
}

// newBenchMain is startBenchMain with tweak (if not nil) applied to the configuration last; the caller
// closes the ledger.
func newBenchMain(b *testing.B, tweak func(*Config), env ...string) *Main {
	b.Helper()
	dir := b.TempDir()
	settings := map[string]string{
		"LEDGER_DATA_DIR":    dir,
		"LEDGER_HTTP_ADDR":   "127.0.0.1:0",
		"LEDGER_NATS_LISTEN": "off",
		"LEDGER_ADMIN_TOKEN": adminToken,
		"LEDGER_RATE_LIMIT":  "0",
	}
	for i := 0; i+1 < len(env); i += 2 {
		settings[env[i]] = env[i+1]
	}
	cfg, err := loadConfig("serve", nil, func(k string) string { return settings[k] }, nil)
	if err != nil {
		b.Fatal(err)
	}
	if !cfg.SyncAlways {
		b.Fatal("SyncAlways is off by default; the benchmark measures the default")
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		b.Fatal(err)
	}
	return m
}

// benchCreateStore creates a store through the admin API and returns its live and test keys.
func benchCreateStore(b *testing.B, hc *http.Client, base, slug string) (live, test string) {
	b.Helper()
	req, err := http.NewRequest("POST", base+"/v1/admin/stores",
		strings.NewReader(fmt.Sprintf(`{"name":"Shop %s","slug":%q,"service_fee_percent":"5"}`, slug, slug)))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			Keys struct{ Live, Test string } `json:"keys"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Data.Keys.Live == "" {
		b.Fatalf("create store: %d %s", res.StatusCode, raw)
	}
	return out.Data.Keys.Live, out.Data.Keys.Test
}

type benchResult struct {
	status   int
	position uint64
	body     string
	err      error
}

// benchPostCustomer creates one customer: the email, a first and last name, and for every other one a
// French mobile number. It reads the whole answer, as a client would.
func benchPostCustomer(hc *http.Client, base, key, email string, i int) benchResult {
	phone := ""
	if i%2 == 0 {
		phone = fmt.Sprintf(`,"phone":"+336%08d"`, i%100_000_000)
	}
	body := fmt.Sprintf(`{"email":%q,"first_name":"Bench","last_name":"Customer %d"%s}`, email, i, phone)
	req, err := http.NewRequest("POST", base+"/v1/customers", strings.NewReader(body))
	if err != nil {
		return benchResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return benchResult{err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	r := benchResult{status: res.StatusCode, err: err}
	if res.StatusCode != http.StatusCreated {
		r.body = string(raw)
	}
	r.position, _ = strconv.ParseUint(res.Header.Get("Ledger-Position"), 10, 64)
	return r
}

// benchListCustomers walks GET /v1/customers of the key's scope, 100 a page, at or after the given log
// position, and returns how many distinct customers it lists.
func benchListCustomers(b *testing.B, hc *http.Client, base, key string, position uint64) int {
	b.Helper()
	seen := map[string]bool{}
	cursor := ""
	for {
		u := base + "/v1/customers?per_page=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Ledger-Min-Position", strconv.FormatUint(position, 10))
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var page struct {
			Data       []struct{ ID string } `json:"data"`
			Pagination struct {
				NextCursor *string `json:"next_cursor"`
				HasMore    bool    `json:"has_more"`
			} `json:"pagination"`
		}
		if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			b.Fatalf("list customers: %d %s", res.StatusCode, raw)
		}
		for _, c := range page.Data {
			seen[c.ID] = true
		}
		if !page.Pagination.HasMore || page.Pagination.NextCursor == nil {
			return len(seen)
		}
		cursor = *page.Pagination.NextCursor
	}
}

// benchPercentiles returns the q-quantile (nearest rank) of ds in milliseconds.
func benchPercentiles(ds []time.Duration) func(q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return func(q float64) float64 {
		if len(s) == 0 {
			return 0
		}
		i := int(q*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
}

// benchMax is the highest value stored in it, safe for concurrent use (the highest Ledger-Position an
// answer carried).
type benchMax struct{ atomic.Uint64 }

// Max raises the value to v if v is higher.
func (m *benchMax) Max(v uint64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

// benchReportLatency reports the p50, p99 and max of lat in milliseconds, and b.N per second of elapsed
// as unit ("creates/s").
func benchReportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration, unit string) {
	p := benchPercentiles(lat)
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(p(1), "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
}
