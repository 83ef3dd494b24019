package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRebuildCommandOffline(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "first")
	createStore(t, c, "second")
	oldPath := m.live.Path()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// No ledger runs: rebuild starts the embedded server on the data dir itself.
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "100%") || !strings.Contains(stderr.String(), "up to sequence 4") {
		t.Fatalf("rebuild output:\n%s", stderr.String())
	}
	cur, err := projections.ReadCurrent(filepath.Join(dir, readDir))
	if err != nil || cur == oldPath {
		t.Fatalf("CURRENT = %s (%v); want a new store, not %s", cur, err, oldPath)
	}

	// As of sequence 2: the first store only, written to --out, CURRENT untouched.
	out := filepath.Join(t.TempDir(), "asof.db")
	stderr.Reset()
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off", "--until", "2", "--out", out}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild --until: %v\n%s", err, stderr.String())
	}
	st, err := sqlite.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := st.Dump(context.Background())
	st.Close()
	if err != nil || len(dump["stores"]) != 1 || !strings.Contains(dump["stores"][0], "first") {
		t.Fatalf("as-of store: %v %v", dump["stores"], err)
	}
	if again, _ := projections.ReadCurrent(filepath.Join(dir, readDir)); again != cur {
		t.Fatalf("--until switched CURRENT to %s", again)
	}
	for _, bad := range [][]string{{"--until", "yesterday"}, {"--out", out}} {
		args := append([]string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, bad...)
		if err := run(context.Background(), args, env(nil), &stderr, &stderr); err == nil {
			t.Errorf("rebuild %v: no error", bad)
		}
	}

	// The next start serves the rebuilt store, and the keys still work.
	m = startMain(t, dir, nil)
	if m.live.Path() != cur {
		t.Fatalf("serving %s, want the rebuilt %s", m.live.Path(), cur)
	}
	c = client{t, "http://" + m.HTTPAddr}
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("after rebuild: %d %s", r.status, r.raw)
	}
}

func TestRebuildCommandAgainstRunningLedger(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "busy")
	oldPath := m.live.Path()

	listen := strings.TrimPrefix(m.NATSURL, "nats://")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", listen}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild against a running ledger: %v\n%s", err, stderr.String())
	}
	deadline := time.Now().Add(15 * time.Second)
	for m.live.Path() == oldPath {
		if time.Now().After(deadline) {
			t.Fatal("the running ledger did not switch to the rebuilt store")
		}
		// The API keeps answering while the switch happens.
		if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
			t.Fatalf("during rebuild: %d %s", r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("after the switch: %d %s", r.status, r.raw)
	}
}

// slowProxy forwards TCP connections to target and holds the server's first bytes (its INFO) back for
// delay: a NATS login slower than a second, as on a busy machine (and well under the server's own 2 s
// login timeout).
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			go func() {
				defer client.Close()
				defer server.Close()
				go io.Copy(server, client)
				time.Sleep(delay)
				io.Copy(client, server)
			}()
		}
	}()
	return ln.Addr().String()
}

// A login slower than a second (a busy machine) is not mistaken for a ledger without a listener.
func TestRebuildThroughSlowNATSLogin(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	createStore(t, client{t, "http://" + m.HTTPAddr}, "slow")
	slow := slowProxy(t, strings.TrimPrefix(m.NATSURL, "nats://"), 1250*time.Millisecond)
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", slow}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild through a slow login: %v\n%s", err, stderr.String())
	}
}

// When the running ledger's listener refuses the rebuild, the error says why.
func TestRebuildReportsTheConnectError(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	// Another NKey than the one the ledger accepts.
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	if err := os.WriteFile(filepath.Join(dir, operatorSeedFile), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", strings.TrimPrefix(m.NATSURL, "nats://")}, env(nil), &stderr, &stderr)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("rebuild with the wrong key: err = %v; want the NATS authorization error", err)
	}
}

// seedStores appends n store_created events straight to the log, in atomic batches.
func seedStores(t *testing.T, m *Main, n int) {
	t.Helper()
	for from := 0; from < n; from += 250 {
		var ws []jetstream.Write
		for i := from; i < min(from+250, n); i++ {
			id := fmt.Sprintf("str_seed%06d", i)
			ws = append(ws, jetstream.Write{Expect: jetstream.NoExpectation, Event: events.Envelope{
				ID:        "evt_" + id,
				Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
				Time:      time.Now(),
				Payload: events.StoreCreated{StoreID: id, Name: "Seeded shop with a name long enough to weigh", Slug: fmt.Sprintf("seed-%d", i),
					ServiceFeePercent: "5", Keys: []events.APIKey{{Mode: "live", Hash: "h" + id, Prefix: "sk_live_", Last4: "abcd"}}},
			}})
		}
		if _, err := m.events.AppendWrites(context.Background(), ws...); err != nil {
			t.Fatal(err)
		}
	}
}

// throttledProxy forwards TCP connections to target, the server's side at about rate bytes per second,
// and counts what it forwarded: a rebuild through it is surely still running a while. Setting cut drops
// every connection, with what was in flight, as a crash or a broken network does.
func throttledProxy(t *testing.T, target string, rate int) (addr string, forwarded *atomic.Int64, cut *atomic.Bool) {
	addr, forwarded, cut, _ = freezableProxy(t, target, rate)
	return addr, forwarded, cut
}

// freezableProxy is throttledProxy that also freezes: once frozen is set it forwards nothing more from
// the server, and keeps the connections open, as a server that hangs does.
func freezableProxy(t *testing.T, target string, rate int) (addr string, forwarded *atomic.Int64, cut, frozen *atomic.Bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	forwarded, cut, frozen = new(atomic.Int64), new(atomic.Bool), new(atomic.Bool)
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil || cut.Load() {
				client.Close()
				continue
			}
			go func() {
				defer client.Close()
				defer server.Close()
				go io.Copy(server, client)
				buf := make([]byte, rate/20)
				for {
					n, err := server.Read(buf)
					if cut.Load() {
						return
					}
					if frozen.Load() {
						n = 0
					}
					if n > 0 {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
						forwarded.Add(int64(n))
						time.Sleep(50 * time.Millisecond)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), forwarded, cut, frozen
}

// A rebuild through a running ledger that dies under it fails within its stall timeout, naming the lost
// connection, and leaves no .building file behind.
func TestRebuildFailsWhenTheLedgerDies(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	seedStores(t, m, 1500)
	proxy, forwarded, cut := throttledProxy(t, strings.TrimPrefix(m.NATSURL, "nats://"), 100<<10)

	done, stderr := rebuildUnderWay(t, dir, proxy, "2s", forwarded, "the ledger died")
	cut.Store(true)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the rebuild succeeded although its ledger died:\n%s", stderr.String())
		}
		if !strings.Contains(err.Error(), "NATS connection") && !strings.Contains(err.Error(), "nats: ") {
			t.Fatalf("rebuild error %q does not name the lost connection", err)
		}
		t.Logf("rebuild: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("the rebuild still runs a minute after its ledger died:\n%s", stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, readDir, "*.building*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// rebuildUnderWay starts `ledger rebuild` of dir through proxy with the stall timeout given, and returns
// once a good part of the events went through the proxy (1,500 events take seconds through it): its
// outcome, and its output. before names the event the test is about to cause, for the failure message
// if the rebuild ended first.
func rebuildUnderWay(t *testing.T, dir, proxy, stall string, forwarded *atomic.Int64, before string) (<-chan error, *syncBuffer) {
	t.Helper()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", proxy, "--stall-timeout", stall}, env(nil), stderr, stderr)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for forwarded.Load() < 32<<10 {
		select {
		case err := <-done:
			t.Fatalf("the rebuild ended before %s: %v\n%s", before, err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebuild did not get going:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return done, stderr
}

// seedCustomers appends n customer_registered events of store to the log: personal data, sealed with a
// key of its own per customer, that a rebuild must look up to open.
func seedCustomers(t *testing.T, m *Main, store string, n int) {
	t.Helper()
	for from := 0; from < n; from += 250 {
		var ws []jetstream.Write
		for i := from; i < min(from+250, n); i++ {
			id := fmt.Sprintf("cus_seed%06d", i)
			ws = append(ws, jetstream.Write{Expect: jetstream.NoExpectation, Event: events.Envelope{
				ID:        "evt_" + id,
				Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: store, Type: events.AggregateCustomer, ID: id},
				Time:      time.Now(),
				Payload: events.CustomerRegistered{CustomerID: id, Source: "api",
					CustomerData: events.CustomerData{Email: fmt.Sprintf("seed%d@example.com", i), FirstName: "Seeded", LastName: "Customer"}},
			}})
		}
		if _, err := m.events.AppendWrites(context.Background(), ws...); err != nil {
			t.Fatal(err)
		}
	}
}

// A rebuild that loses its ledger while it looks up customers' keys names the lost connection, not the
// lookup that timed out, and says that nothing was switched.
func TestRebuildNamesTheLostConnection(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	seedStores(t, m, 1)
	seedCustomers(t, m, "str_seed000000", 1500)
	before, err := projections.ReadCurrent(filepath.Join(dir, readDir))
	if err != nil {
		t.Fatal(err)
	}
	proxy, forwarded, cut := throttledProxy(t, strings.TrimPrefix(m.NATSURL, "nats://"), 100<<10)

	done, stderr := rebuildUnderWay(t, dir, proxy, "20s", forwarded, "the ledger went away")
	cut.Store(true)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the rebuild succeeded although its ledger went away:\n%s", stderr.String())
		}
		t.Logf("rebuild: %v", err)
		for _, want := range []string{"NATS connection", "nothing was switched", before} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("rebuild error does not say %q", want)
			}
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the rebuild still runs long after its ledger went away:\n%s", stderr.String())
	}
	if after, _ := projections.ReadCurrent(filepath.Join(dir, readDir)); after != before {
		t.Fatalf("CURRENT moved from %s to %s", before, after)
	}
}

// Rebuild as the analytics user, which may not read the keys bucket, says that it needs the operator
// and how to connect as one.
func TestRebuildAsAnalyticsNeedsTheOperator(t *testing.T) {
	dir := t.TempDir()
	const pw = "analytics-password-0123456789"
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1"; c.AnalyticsPassword = pw })
	createStore(t, client{t, "http://" + m.HTTPAddr}, "analysed")
	url := "nats://" + analyticsUser + ":" + pw + "@" + strings.TrimPrefix(m.NATSURL, "nats://")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"rebuild", "--data-dir", dir}, env(map[string]string{"LEDGER_NATS_URL": url}), &stderr, &stderr)
	if err == nil {
		t.Fatalf("rebuild as analytics succeeded:\n%s", stderr.String())
	}
	for _, want := range []string{"operator", "keys bucket", "LEDGER_NATS_LISTEN", operatorSeedFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the password: %v", err)
	}
}

// A rebuild whose source hangs (the connection stays up, nothing arrives) fails by its stall timeout,
// counted from its last progress, and switches nothing.
func TestRebuildStallTimeout(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	seedStores(t, m, 1500)
	proxy, forwarded, _, frozen := freezableProxy(t, strings.TrimPrefix(m.NATSURL, "nats://"), 100<<10)

	done, stderr := rebuildUnderWay(t, dir, proxy, "1s", forwarded, "its source hung")
	frozen.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, projections.ErrStalled) || !strings.Contains(err.Error(), "nothing was switched") {
			t.Fatalf("rebuild from a hung source: %v", err)
		}
		t.Logf("rebuild: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("the rebuild still runs a minute after its source hung:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "events/hr") || strings.Contains(stderr.String(), "events/min") {
		t.Errorf("the bar showed a rate per hour or minute:\n%s", stderr.String())
	}
}
