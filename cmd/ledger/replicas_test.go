package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// testClock is the replicas' shared clock: real time plus an offset the test moves forward, so that
// timers (abandon after 60 minutes) act without waiting for them.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// replica is one ledger process of a two-replica deployment: its own data dir, the shared NATS cluster.
type replica struct {
	name string
	dir  string
	// tweak, if set, changes the replica's configuration before it starts.
	tweak func(*Config)
	mu    sync.Mutex
	m     *Main
	base  string // "" while the replica is down
}

func (r *replica) url() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

// start runs the replica's ledger on its data dir.
func (r *replica) start(urls string, clock *testClock, logs io.Writer) error {
	cfg, err := loadConfig("serve", nil, func(k string) string {
		return map[string]string{
			"LEDGER_DATA_DIR":        r.dir,
			"LEDGER_HTTP_ADDR":       "127.0.0.1:0",
			"LEDGER_ADMIN_TOKEN":     adminToken,
			"LEDGER_NATS_URL":        urls,
			"LEDGER_NATS_REPLICAS":   "3",
			"LEDGER_GATEWAY_SECRETS": "standard=whsec_" + standardKey,
		}[k]
	}, nil)
	if err != nil {
		return err
	}
	if r.tweak != nil {
		r.tweak(&cfg)
	}
	m := &Main{Config: cfg, Now: clock.Now,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", r.name)}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		return fmt.Errorf("replica %s: %w", r.name, err)
	}
	r.mu.Lock()
	r.m, r.base = m, "http://"+m.HTTPAddr
	r.mu.Unlock()
	return nil
}

// crash takes the replica down the way a killed process goes: every HTTP connection dropped with the
// requests in flight unanswered, the NATS connection cut with nothing in flight acknowledged (appends,
// consumer acks). Only then are its goroutines stopped and its files and data dir lock released, as the
// kernel would.
func (r *replica) crash() {
	r.mu.Lock()
	m := r.m
	r.m, r.base = nil, ""
	r.mu.Unlock()
	if m == nil {
		return
	}
	m.httpSrv.Close()
	m.nc.Close()
	m.Close()
}

// attempt is one HTTP request's outcome; status 0 means no answer (a dropped connection, a replica down).
type attempt struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	err    error
}

var replicaHTTP = &http.Client{Timeout: 20 * time.Second}

func send(base, method, path string, headers map[string]string, body string) attempt {
	if base == "" {
		return attempt{err: errors.New("replica down")}
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return attempt{err: err}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := replicaHTTP.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	a := attempt{status: res.StatusCode, header: res.Header, raw: string(raw), err: err}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// retried sends a request through the replicas in turn until it is answered other than 5xx or not at
// all — what a load balancer and a client retrying with the same idempotency key or delivery id do —
// and returns that answer. The hang guard is generous: a failover may take seconds.
func retried(replicas []*replica, start int, method, path string, headers map[string]string, body string) attempt {
	deadline := time.Now().Add(60 * time.Second)
	var last attempt
	for i := start; ; i++ {
		last = send(replicas[i%len(replicas)].url(), method, path, headers, body)
		if last.status != 0 && last.status < 500 {
			return last
		}
		if time.Now().After(deadline) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func signedDelivery(id, body string, at time.Time) map[string]string {
	key, _ := base64.StdEncoding.DecodeString(standardKey)
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + body))
	return map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}

// acked is every write a replica answered 2xx, by kind.
type acked struct {
	mu        sync.Mutex
	sales     map[string]string // sale id → store key
	paid      map[string]bool   // sales a payment.succeeded delivery was answered 2xx for
	pending   map[string]bool   // sales a payment.pending delivery was answered 2xx for
	customers map[string]string // created customer id → store key
	erased    map[string]bool
	ops       atomic.Int64 // logical operations done, to schedule the faults by work, not time
	failures  []string
}

func (a *acked) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, fmt.Sprintf(format, args...))
}

func (a *acked) note(m map[string]string, k, v string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m[k] = v
}

func (a *acked) mark(m map[string]bool, k string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m[k] = true
}

// TestTwoReplicas runs two ledger replicas on a three-node JetStream cluster (LEDGER and the buckets with
// three replicas) and drives writes through both at once — store creation, checkouts, signed payment
// webhooks (some sent twice, to both replicas), customer creation and erasure — while one replica
// crashes and comes back on its data dir, and the LEDGER stream's leader node goes away. Timers
// (settlement right at completion, abandonment after the shared clock jumps two hours) run on both
// replicas, and so does the payment processor on the one shared durable consumer. In the end every
// write answered 2xx was applied exactly once — no payment, settlement or abandonment twice — and both
// replicas serve the same sales and customers.
//
// On failure the test prints the ledger's and the servers' logs; CLUSTER_TEST_LOGS=1 prints them always.
func TestTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster and two ledgers")
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("ledger and nats-server logs:\n%s", logs.String())
		}
	})
	cluster := startCrashableCluster(t, 3, logs)
	servers := cluster.servers
	var urlList []string
	for _, s := range servers {
		urlList = append(urlList, s.ClientURL())
	}
	urls := strings.Join(urlList, ",")
	clock := &testClock{}
	a := &replica{name: "a", dir: t.TempDir()}
	b := &replica{name: "b", dir: t.TempDir()}
	replicas := []*replica{a, b}
	for _, r := range replicas {
		if err := r.start(urls, clock, logs); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.mu.Lock()
			m := r.m
			r.mu.Unlock()
			if m != nil {
				m.Close()
			}
		}
	})

	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitForStream(t, js, jetstream.StreamName, 20*time.Second, "3 current replicas", func(si *natsjs.StreamInfo) bool {
		if si.Cluster == nil || si.Cluster.Leader == "" || len(si.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range si.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})

	// Two stores, one created through each replica: settlement due at completion, so the timers settle
	// every paid sale; abandonment after 60 minutes of the shared clock.
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	var keys, storeIDs []string
	for i, r := range replicas {
		res := retried([]*replica{r}, 0, "POST", "/v1/admin/stores", admin,
			fmt.Sprintf(`{"name":"Replica shop %d","slug":"replica-shop-%d","service_fee_percent":"5","settlement_delay_days":0,"abandon_after_minutes":60}`, i, i))
		if res.status != http.StatusCreated {
			t.Fatalf("create store through replica %s: %d %s %v", r.name, res.status, res.raw, res.err)
		}
		keys = append(keys, field(res.body, "data.keys.live").(string))
		storeIDs = append(storeIDs, field(res.body, "data.store.id").(string))
	}
	for _, r := range replicas {
		for i, key := range keys {
			waitForStore(t, client{t, r.url()}, key, storeIDs[i], 20*time.Second)
		}
	}

	got := &acked{sales: map[string]string{}, paid: map[string]bool{}, pending: map[string]bool{},
		customers: map[string]string{}, erased: map[string]bool{}}
	const workers, iterations = 4, 30
	total := int64(workers * iterations)

	// The faults, scheduled by work done: replica a crashes and the stream leader's node goes away a
	// third of the way in, with requests in flight; a comes back on its data dir two thirds of the way
	// in. Workers wait at those two points until the faults are in place, so that a third of the work
	// runs through one replica and two NATS nodes, and a third through both replicas again.
	faults := make(chan string, 4)
	injected, restarted := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(faults)
		defer close(restarted)
		for got.ops.Load() < total/3 {
			time.Sleep(5 * time.Millisecond)
		}
		a.crash()
		faults <- "replica a crashed"
		leader := streamLeader(js)
		for i, s := range servers {
			if s.Name() == leader {
				cluster.crash(i)
			}
		}
		faults <- "crashed the LEDGER leader's node " + leader
		close(injected)
		for got.ops.Load() < 2*total/3 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := a.start(urls, clock, logs); err != nil {
			got.fail("restarting replica a: %v", err)
			return
		}
		faults <- "replica a restarted on its data dir"
	}()

	began := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range iterations {
				switch k {
				case iterations/3 + 1:
					<-injected
				case 2*iterations/3 + 1:
					<-restarted
				}
				work(replicas, got, keys[(w+k)%2], w, k, clock)
				got.ops.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("load done in %s", time.Since(began).Round(time.Millisecond))
	for f := range faults {
		t.Log(f)
	}
	if len(got.failures) > 0 {
		t.Fatalf("%d operations failed; the first: %s", len(got.failures), strings.Join(got.failures[:min(5, len(got.failures))], "\n"))
	}
	t.Logf("acknowledged: %d sales, %d paid, %d pending, %d customers created, %d erased",
		len(got.sales), len(got.paid), len(got.pending), len(got.customers), len(got.erased))

	// Two hours later on the shared clock, every unpaid sale is due for abandonment.
	clock.offset.Store(int64(2 * time.Hour))

	// Both replicas converge: every acknowledged sale settled (paid) or abandoned (not), and both serve
	// the same sales and customers.
	jumped := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for {
		last = converged(replicas, keys, got)
		if last == "" {
			break
		}
		if time.Now().After(deadline) {
			logHistory(t, js, replicas, keys, last)
			t.Fatalf("the replicas did not converge within 60s: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("converged %s after the clock jump", time.Since(jumped).Round(time.Millisecond))

	// The shared consumer drains: every delivery is acknowledged by one replica or the other (one the
	// crashed replica held comes back after the consumer's AckWait).
	ledgerStore, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	paymentsName, err := ledgerStore.PaymentsConsumer(pctx, 3)
	pcancel()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var ci *natsjs.ConsumerInfo
		cons, err := js.Consumer(ctx, jetstream.StreamName, paymentsName)
		if err == nil {
			ci, err = cons.Info(ctx)
		}
		cancel()
		if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer payments did not drain within 60s: %+v %v", ci, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Exactly once, from the log: one payment_succeeded, sale_completed and sale_settled per paid sale,
	// one sale_abandoned per unpaid one.
	for id, key := range got.sales {
		res := retried(replicas, 0, "GET", "/v1/sales/"+id+"/events", map[string]string{"Authorization": "Bearer " + key}, "")
		var evs struct {
			Data []struct{ Type string } `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.raw), &evs); err != nil || res.status != http.StatusOK {
			t.Fatalf("events of %s: %d %s", id, res.status, res.raw)
		}
		n := map[string]int{}
		for _, e := range evs.Data {
			n[e.Type]++
		}
		want := map[string]int{events.TypeSaleStarted: 1}
		if got.paid[id] {
			want[events.TypePaymentSucceeded], want["sale_completed"], want["sale_settled"] = 1, 1, 1
		} else {
			want["sale_abandoned"] = 1
		}
		for typ, w := range want {
			if n[typ] != w {
				t.Errorf("sale %s (paid %v): %d %s events, want %d; history %v", id, got.paid[id], n[typ], typ, w, n)
			}
		}
		// A payment.pending processed after the success (the two deliveries were taken by different
		// replicas, or one was redelivered) changes nothing; it never applies twice.
		if n["payment_pending"] > 1 || n["payment_pending"] == 1 && !got.pending[id] {
			t.Errorf("sale %s: %d payment_pending events (pending delivery acknowledged: %v)", id, n["payment_pending"], got.pending[id])
		}
	}
	for id, key := range got.customers {
		for _, r := range replicas {
			res := send(r.url(), "GET", "/v1/customers/"+id, map[string]string{"Authorization": "Bearer " + key}, "")
			if want := map[bool]int{true: 404, false: 200}[got.erased[id]]; res.status != want {
				t.Errorf("replica %s: customer %s (erased %v): %d, want %d", r.name, id, got.erased[id], res.status, want)
			}
		}
	}
}

// logHistory shows, for the sale or customer a convergence failure names, its events in the log and what
// each replica serves of it.
func logHistory(t *testing.T, js natsjs.JetStream, replicas []*replica, keys []string, failure string) {
	t.Helper()
	for _, kind := range []string{"sale", "customer"} {
		prefix := map[string]string{"sale": "sal_", "customer": "cus_"}[kind]
		i := strings.Index(failure, prefix)
		if i < 0 || len(failure) < i+26 {
			continue
		}
		id := failure[i : i+26]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.OrderedConsumer(ctx, jetstream.StreamName, natsjs.OrderedConsumerConfig{FilterSubjects: []string{"ledger.*.*." + kind + "." + id + ".*"}})
		if err != nil {
			t.Logf("history of %s: %v", id, err)
			return
		}
		batch, err := cons.Fetch(100, natsjs.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Logf("history of %s: %v", id, err)
			return
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			t.Logf("log: %d %s", md.Sequence.Stream, m.Subject())
		}
		for _, r := range replicas {
			for _, key := range keys {
				res := send(r.url(), "GET", "/v1/"+kind+"s/"+id, map[string]string{"Authorization": "Bearer " + key}, "")
				t.Logf("replica %s serves %s: %d %.300s", r.name, id, res.status, res.raw)
			}
		}
	}
}

// streamLeader names the LEDGER stream's leader, or "" if the cluster does not say.
func streamLeader(js natsjs.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, jetstream.StreamName)
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// work is worker w's iteration k: a checkout (retried with its Idempotency-Key through either replica);
// for two sales in three a payment.succeeded delivery (retried with its delivery id; every third one
// preceded by a payment.pending, every second one sent again to the other replica); for every fourth a
// customer created, and every eighth erased again.
func work(replicas []*replica, got *acked, key string, w, k int, clock *testClock) {
	auth := map[string]string{"Authorization": "Bearer " + key}
	withKey := func(idem string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + key, "Idempotency-Key": idem}
	}
	start := w + k
	res := retried(replicas, start, "POST", "/v1/checkouts", withKey(fmt.Sprintf("co-%d-%d", w, k)), checkoutBody(fmt.Sprintf("buyer-%d-%d@example.com", w, k), 2500, ""))
	if res.status != http.StatusCreated {
		got.fail("checkout %d-%d: %d %s %v", w, k, res.status, res.raw, res.err)
		return
	}
	saleID := field(res.body, "data.id").(string)
	got.note(got.sales, saleID, key)
	deliver := func(id, kind string, at int) bool {
		body := paymentBody(kind, saleID, 2500, "USD")
		res := retried(replicas, at, "POST", "/v1/webhooks/standard", signedDelivery(id, body, clock.Now()), body)
		if res.status != http.StatusOK {
			got.fail("delivery %s for %s: %d %s %v", id, saleID, res.status, res.raw, res.err)
			return false
		}
		return true
	}
	if k%3 != 2 {
		if k%3 == 0 && deliver(fmt.Sprintf("pend-%d-%d", w, k), "payment.pending", start) {
			got.mark(got.pending, saleID)
		}
		id := fmt.Sprintf("pay-%d-%d", w, k)
		if deliver(id, "payment.succeeded", start+1) {
			got.mark(got.paid, saleID)
		}
		if k%2 == 0 {
			deliver(id, "payment.succeeded", start) // the gateway retries the same delivery elsewhere
		}
	}
	if k%4 == 1 {
		// Not retried: creation has no idempotency key, and a retry of a create that was stored but not
		// answered is refused as email_taken. Only a 201 counts.
		res := send(replicas[start%2].url(), "POST", "/v1/customers", auth,
			fmt.Sprintf(`{"email":"customer-%d-%d@example.com","first_name":"Ada","country":"FR"}`, w, k))
		if res.status != http.StatusCreated {
			return
		}
		id := field(res.body, "data.id").(string)
		got.note(got.customers, id, key)
		if k%8 == 1 {
			// On the other replica first: it must have read the creation before it can erase.
			res := retried(replicas, start+1, "DELETE", "/v1/customers/"+id,
				map[string]string{"Authorization": "Bearer " + key, "Ledger-Min-Position": res.header.Get("Ledger-Position")}, "")
			switch res.status {
			case http.StatusOK:
				got.mark(got.erased, id)
			case http.StatusNotFound: // an earlier attempt erased it but was not answered
				got.mark(got.erased, id)
			default:
				got.fail("erase %s: %d %s %v", id, res.status, res.raw, res.err)
			}
		}
	}
}

// converged is "" once both replicas serve every acknowledged sale settled or abandoned, none twice, no
// erased customer, and the same sales and customers; otherwise what is still different.
func converged(replicas []*replica, keys []string, got *acked) string {
	var views [][]any
	for _, r := range replicas {
		var view []any
		for _, key := range keys {
			sales, err := listAll(r.url(), "/v1/sales", key)
			if err != "" {
				return r.name + ": " + err
			}
			seen := map[string]int{}
			for _, s := range sales {
				id := s["id"].(string)
				seen[id]++
				if _, ok := got.sales[id]; ok {
					want := "abandoned"
					if got.paid[id] {
						want = "settled"
					}
					if s["status"] != want {
						return fmt.Sprintf("replica %s: sale %s is %v, want %s", r.name, id, s["status"], want)
					}
				}
			}
			for id, k := range got.sales {
				if k == key && seen[id] != 1 {
					return fmt.Sprintf("replica %s: acknowledged sale %s listed %d times", r.name, id, seen[id])
				}
			}
			customers, err := listAll(r.url(), "/v1/customers", key)
			if err != "" {
				return r.name + ": " + err
			}
			seen = map[string]int{}
			for _, c := range customers {
				seen[c["id"].(string)]++
			}
			for id, k := range got.customers {
				if want := map[bool]int{true: 0, false: 1}[got.erased[id]]; k == key && seen[id] != want {
					return fmt.Sprintf("replica %s: customer %s (erased %v) listed %d times", r.name, id, got.erased[id], seen[id])
				}
			}
			view = append(view, sales, customers)
		}
		views = append(views, view)
	}
	if !reflect.DeepEqual(views[0], views[1]) {
		a, _ := json.Marshal(views[0])
		b, _ := json.Marshal(views[1])
		return "the replicas serve different objects:\n" + firstDifference(string(a), string(b))
	}
	return ""
}

// listAll reads every page of a list endpoint.
func listAll(base, path, key string) ([]map[string]any, string) {
	var out []map[string]any
	cursor := ""
	for {
		q := "?per_page=100"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		res := send(base, "GET", path+q, map[string]string{"Authorization": "Bearer " + key}, "")
		if res.status != http.StatusOK {
			return nil, fmt.Sprintf("GET %s: %d %s %v", path, res.status, res.raw, res.err)
		}
		for _, it := range res.body["data"].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := field(res.body, "pagination.next_cursor").(string)
		if more, _ := field(res.body, "pagination.has_more").(bool); !more || next == "" {
			return out, ""
		}
		cursor = next
	}
}

// firstDifference shows where two renderings part.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("a: …%s…\nb: …%s…", a[from:min(len(a), i+200)], b[from:min(len(b), i+200)])
}

// cutProxy forwards TCP connections to target until it is cut: then it drops every connection at once
// (RST, as a dead host's kernel would) and accepts none.
type cutProxy struct {
	ln     net.Listener
	target func() string // "" while not yet known
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCutProxy(t *testing.T, target func() string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(p.Cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			addr := target()
			if addr == "" {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				in.Close()
				out.Close()
				return
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// crashableCluster is a JetStream cluster whose nodes can crash or be cut off from one another.
type crashableCluster struct {
	servers []*server.Server
	// proxies[i][j] carries node i's route to node j.
	proxies [][]*cutProxy
}

// isolate cuts node i's routes at once, in both directions: the others hear nothing more from it, and it
// from them; its clients still reach it.
func (c *crashableCluster) isolate(i int) {
	for j := range c.servers {
		if j != i {
			c.proxies[i][j].Cut()
			c.proxies[j][i].Cut()
		}
	}
}

// crash takes node i away as a crash does: cut off first, so the others get no goodbye — no leadership
// handed over — and must notice its silence and elect new leaders; then shut down.
func (c *crashableCluster) crash(i int) {
	c.isolate(i)
	c.servers[i].Shutdown()
	c.servers[i].WaitForShutdown()
}

// startCrashableCluster is startJetStreamCluster with every route between two nodes through a proxy of
// its own, which crash and isolate cut. Nodes advertise no reachable cluster address, so no route
// bypasses the proxies.
func startCrashableCluster(t *testing.T, n int, logs io.Writer) *crashableCluster {
	t.Helper()
	// Each node listens for routes on a port of its choosing; the proxies learn it once it is started
	// (until then they refuse, and the dialling node tries again a second later).
	servers := make([]*server.Server, n)
	var ready atomic.Bool
	routeAddr := func(j int) func() string {
		return func() string {
			if !ready.Load() || servers[j].ClusterAddr() == nil {
				return ""
			}
			return servers[j].ClusterAddr().String()
		}
	}
	// proxies[i][j] carries node i's route to node j.
	proxies := make([][]*cutProxy, n)
	for i := range proxies {
		proxies[i] = make([]*cutProxy, n)
		for j := range proxies[i] {
			if i != j {
				proxies[i][j] = newCutProxy(t, routeAddr(j))
			}
		}
	}
	var lastRouteEvent atomic.Int64
	for i := range servers {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, "nats://"+proxies[i][j].addr())
			}
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster: server.ClusterOpts{Name: "ledger", Host: "127.0.0.1", Port: server.RANDOM_PORT,
				// Gossiped to the other nodes for routes of their own: unreachable, so that every route
				// is one of the proxied ones configured here.
				Advertise: "127.0.0.1:1"},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:  true,
			NoSigs: true,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.SetLoggerV2(&serverLog{w: logs, name: opts.ServerName, lastRouteEvent: &lastRouteEvent}, false, false, false)
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready for connections", s.Name())
		}
	}
	ready.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for settled := false; !settled; {
		quiet := time.Since(time.Unix(0, lastRouteEvent.Load())) > 1200*time.Millisecond
		for _, s := range servers {
			settled = settled || quiet && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n
		}
		if !settled && time.Now().After(deadline) {
			t.Fatalf("within 30s the cluster did not settle with a JetStream meta leader seeing %d peers", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &crashableCluster{servers: servers, proxies: proxies}
}

// A replica's read model can lag behind the log (it catches up after a failover, a slow disk holds its
// writes): the payment processor then finds the sale in the log and applies the delivery at once,
// instead of redelivering it until the read model has the sale.
func TestPaymentsApplyWhileTheReadModelLags(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "lagging")

	// Another writer holds the read store's write lock: the projection can apply nothing.
	db, err := sql.Open("sqlite", m.live.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	r := c.post("/v1/checkouts", live, "", checkoutBody("lag@example.com", 1200, ""))
	if r.status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	saleID := field(r.body, "data.id").(string)
	if got := c.do("GET", "/v1/sales/"+saleID, "Bearer "+live, nil); got.status != http.StatusNotFound {
		t.Fatalf("the read model has the sale already (%d): the test does not hold the projection back", got.status)
	}
	if r := c.standardWebhook("lag_1", paymentBody("payment.succeeded", saleID, 1200, "USD"), time.Now()); r.status != http.StatusOK {
		t.Fatalf("delivery: %d %s", r.status, r.raw)
	}
	// The sale's history is read from the log, not the read model.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.do("GET", "/v1/sales/"+saleID+"/events", "Bearer "+live, nil)
		if r.status == http.StatusOK && strings.Contains(r.raw, `"sale_completed"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payment was not applied within 30s while the read model lagged: %d %s", r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := lock.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	waitSaleWithin(t, c, live, saleID, 30*time.Second, func(d map[string]any) bool { return d["status"] == "completed" })
}

// A replica that starts while a NATS node has just died must not fail for a request lost in the leader
// election: the buckets and the shared secrets it reads at start-up are asked again, each try bounded,
// within the start-up budget, and the secret read is the one every replica shares.
func TestSharedSecretDuringAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster")
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("nats-server logs:\n%s", logs.String())
		}
	})
	cluster := startCrashableCluster(t, 3, logs)
	servers := cluster.servers
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.EnsureStream(ctx, jetstream.StreamConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	before, err := st.SharedSecret(ctx, "download_signing_key", 3)
	if err != nil {
		t.Fatal(err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info := waitForStream(t, js, "KV_ledger_secrets", 10*time.Second, "a leader", func(si *natsjs.StreamInfo) bool {
		return si.Cluster != nil && si.Cluster.Leader != ""
	})
	for i, s := range servers {
		if s.Name() == info.Cluster.Leader {
			cluster.crash(i)
		}
	}
	// What serve does at start-up, with its budget.
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	after, err := st.SharedSecret(sctx, "download_signing_key", 3)
	if err != nil {
		t.Fatalf("reading the shared secret right after the bucket's leader %s died: %v", info.Cluster.Leader, err)
	}
	if !bytes.Equal(after, before) {
		t.Fatal("the shared secret changed across the failover")
	}
}

// Direct gets of a replicated stream are answered by any replica, the leader or a follower, and a
// follower may not have applied the latest writes (it lags, or is cut off from the leader). The log's
// reads must then not answer "nothing there" for what the leader has: a ledger replica attached to such a
// follower would answer 404 for a customer just created, or decide on an aggregate's absence. They
// answer what the leader has, or that the log is unavailable.
func TestLogReadsOnALaggingFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster")
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("nats-server logs:\n%s", logs.String())
		}
	})
	cluster := startCrashableCluster(t, 3, logs)
	ctx := context.Background()
	connect := func(url string) (*nats.Conn, *jetstream.Store) {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.EnsureStream(ctx, jetstream.StreamConfig{Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		return nc, st
	}
	nc, _ := connect(cluster.servers[0].ClientURL())
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info := waitForStream(t, js, jetstream.StreamName, 20*time.Second, "a leader and 2 current replicas", func(si *natsjs.StreamInfo) bool {
		if si.Cluster == nil || si.Cluster.Leader == "" || len(si.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range si.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})
	var leader, follower int
	for i, s := range cluster.servers {
		if s.Name() == info.Cluster.Leader {
			leader = i
		}
	}
	follower = (leader + 1) % 3
	_, writer := connect(cluster.servers[leader].ClientURL())
	_, reader := connect(cluster.servers[follower].ClientURL())

	storeEvent := func(id string) events.Envelope {
		return events.Envelope{ID: "evt_" + id, Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
			Time: time.Now(), Payload: events.StoreCreated{StoreID: id, Name: "Shop", Slug: "shop-" + id, ServiceFeePercent: "5"}}
	}
	before := storeEvent("str_before")
	seq, err := writer.Append(ctx, 0, before)
	if err != nil {
		t.Fatal(err)
	}
	// Before cutting it off: the follower has applied that event, and serves direct gets (nats-server
	// lets a follower join once it has caught up, checking every 2 s).
	f := cluster.servers[follower]
	waitForStream(t, js, jetstream.StreamName, 30*time.Second, "the follower caught up", func(si *natsjs.StreamInfo) bool {
		for _, r := range si.Cluster.Replicas {
			if r.Name == f.Name() && r.Current && r.Lag == 0 && si.State.LastSeq >= seq {
				return true
			}
		}
		return false
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		subs, err := f.Subsz(&server.SubszOptions{Account: "$G", Subscriptions: true, Test: "$JS.API.DIRECT.GET." + jetstream.StreamName})
		if err == nil && subs.Total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %s does not serve direct gets after 30s (%v)", f.Name(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cluster.isolate(follower)
	for deadline := time.Now().Add(30 * time.Second); ; {
		evs, _, err := reader.Load(ctx, before.Aggregate)
		if err == nil && len(evs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the isolated follower never answered a direct get of what it has: %d events, %v", len(evs), err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	after := storeEvent("str_after")
	if _, err := writer.Append(ctx, 0, after); err != nil {
		t.Fatal(err)
	}
	evs, _, err := reader.Load(ctx, after.Aggregate)
	if err == nil && len(evs) == 0 {
		t.Error("Load on a follower cut off from the leader: no events and no error, although the leader has one")
	} else if err != nil && !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Load on a follower cut off from the leader: %v, want the event or domain.ErrUnavailable", err)
	}
	_, found, err := reader.Last(ctx, after.Aggregate.Filter())
	if err == nil && !found {
		t.Error("Last on a follower cut off from the leader: nothing and no error, although the leader has it")
	} else if err != nil && !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Last on a follower cut off from the leader: %v, want the event or domain.ErrUnavailable", err)
	}
}
