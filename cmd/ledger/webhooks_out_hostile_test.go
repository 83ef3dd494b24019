package main

// Hostile inputs and receivers found by an attack review of outgoing webhooks. Each test's comment
// describes the fault as the review found it; the test now holds the fix (it failed before it).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileUnsignedAfterHalfDelete: DELETE /v1/webhook_endpoints/{id} destroys the endpoint's key
// first and records webhook_endpoint_deleted after. If the second step does not happen (a crash, a
// NATS error: "a DELETE that fails in between is finished by the next one"), the endpoint is still
// enabled in the read store, and the dispatcher, folding it from the log, gets Secret == "" — and
// sends the deliveries WITHOUT any webhook-signature header (Sign with no keys), to a URL the store
// asked to delete. Expected: no delivery to an endpoint whose key is gone (or at least never an
// unsigned one).
func TestHostileUnsignedAfterHalfDelete(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk-halfdel")
	rc := newReceiver(t, nil)
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	id := ep["id"].(string)

	// What DELETE does first, without the second step (as if the process died right after it).
	keys, err := m.events.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Erase(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := c.endpoint("GET", live, "/"+id, ""); r.status != 200 {
		t.Logf("GET after half delete: %d %s", r.status, r.raw)
	}
	mustCustomer(t, c, live, `{"email":"unsigned@example.com","first_name":"Ada"}`)
	d := waitDelivery(t, c, live, id, "customer.created", func(d map[string]any) bool { return d["status"] != "pending" })
	if d["status"] != "failed" || len(attemptsOf(d)) != 0 {
		t.Errorf("the delivery to an endpoint whose key is gone: %v", d)
	}
	for _, h := range rc.hooks() {
		t.Errorf("delivered to an endpoint whose key was destroyed: %s, webhook-signature %q, body %s",
			h.msg.Type, h.header.Get("webhook-signature"), h.body)
	}
}

// TestHostileBadInputs: every client mistake on the new endpoints is a 4xx naming the problem, never
// a 500 (and nothing reaches another tenant).
func TestHostileBadInputs(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk-input")
	rc := newReceiver(t, nil)
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["*"]}`)
	id := ep["id"].(string)
	mustCustomer(t, c, live, `{"email":"in@example.com"}`)
	d := waitDelivery(t, c, live, id, "customer.created", func(d map[string]any) bool { return d["status"] == "succeeded" })
	did := d["id"].(string)

	gets := []string{
		"/v1/webhook_endpoints/" + id + "/deliveries?per_page=0",
		"/v1/webhook_endpoints/" + id + "/deliveries?per_page=101",
		"/v1/webhook_endpoints/" + id + "/deliveries?per_page=abc",
		"/v1/webhook_endpoints/" + id + "/deliveries?per_page=1&per_page=2",
		"/v1/webhook_endpoints/" + id + "/deliveries?per_page=",
		"/v1/webhook_endpoints/" + id + "/deliveries?cursor=",
		"/v1/webhook_endpoints/" + id + "/deliveries?cursor=%00",
		"/v1/webhook_endpoints/" + id + "/deliveries?cursor=" + strings.Repeat("A", 5000),
		"/v1/webhook_endpoints/" + id + "/deliveries?status=failed",
		"/v1/webhook_endpoints/" + id + "/deliveries?page=2",
		"/v1/webhook_endpoints/" + id + "/deliveries?%zz",
		"/v1/webhook_endpoints/we_*/deliveries",
		"/v1/webhook_endpoints/we_%3E/deliveries",
		"/v1/webhook_endpoints/" + strings.Repeat("x", 3000) + "/deliveries",
		"/v1/webhook_endpoints/" + strings.ToUpper(id) + "/deliveries",
		"/v1/webhook_endpoints/" + id + "%00/deliveries",
		"/v1/webhook_endpoints/" + id + "/deliveries/" + did,
	}
	for _, p := range gets {
		r := c.do("GET", p, "Bearer "+live, nil)
		t.Logf("GET %.120s -> %d %.200s", p, r.status, r.raw)
		if r.status >= 500 || r.status < 400 {
			t.Errorf("GET %.120s: %d %s", p, r.status, r.raw)
		}
	}
	posts := []struct{ path, body string }{
		{"/v1/webhook_deliveries/" + did + "/retry", "[]"},
		{"/v1/webhook_deliveries/" + did + "/retry", "null"},
		{"/v1/webhook_deliveries/" + did + "/retry", "{} {}"},
		{"/v1/webhook_deliveries/" + did + "/retry", "\xff"},
		{"/v1/webhook_deliveries/whd_*/retry", ""},
		{"/v1/webhook_deliveries/whd_>/retry", ""},
		{"/v1/webhook_deliveries/" + strings.ToUpper(did) + "/retry", ""},
		{"/v1/webhook_deliveries/" + did + "x/retry", ""},
		{"/v1/webhook_deliveries/" + strings.Repeat("a", 4000) + "/retry", ""},
		{"/v1/webhook_deliveries/" + id + "/retry", ""},
	}
	for _, p := range posts {
		r := c.post(p.path, live, "", p.body)
		t.Logf("POST %.100s %q -> %d %.200s", p.path, p.body, r.status, r.raw)
		if r.status >= 500 || r.status < 400 {
			t.Errorf("POST %.100s %q: %d %s", p.path, p.body, r.status, r.raw)
		}
	}
	// A valid empty JSON object written with whitespace inside.
	if r := c.post("/v1/webhook_deliveries/"+did+"/retry", live, "", "{ }"); r.status != 202 {
		t.Errorf(`POST retry with body "{ }" (an empty object): %d %s`, r.status, r.raw)
	}
	if r := c.post("/v1/webhook_endpoints/"+id+"/rotate_secret", live, "", "{\n}"); r.status != 200 {
		t.Errorf(`POST rotate_secret with body "{\n}" (an empty object): %d %s`, r.status, r.raw)
	}
	// Unsupported methods.
	for _, mth := range []string{"GET", "PUT", "DELETE"} {
		r := c.do(mth, "/v1/webhook_deliveries/"+did+"/retry", "Bearer "+live, nil)
		t.Logf("%s retry -> %d %.200s", mth, r.status, r.raw)
		if r.status >= 500 {
			t.Errorf("%s retry: %d", mth, r.status)
		}
	}
}

// TestHostileSwitchingProtocolsHoldsShutdown: a receiver that answers 101 Switching Protocols and then
// keeps the connection open holds the attempt past the attempt timeout — forever: http.Client's Timeout
// and the request context do not cover an upgraded connection's body, which Sender.Send reads with
// io.ReadAll. The worker, its connection and the delivery stay held, and Main.Close (SIGTERM) waits
// for the dispatcher (webhooksDone) without end. Expected: the attempt ends at the 15 s timeout, and a
// shutdown is not held by a receiver.
func TestHostileSwitchingProtocolsHoldsShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	got := make(chan struct{}, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				_, _ = http.ReadRequest(bufio.NewReader(conn))
				conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"))
				got <- struct{}{}
			}()
		}
	}()
	release := func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}
	t.Cleanup(release)

	m := startMain(t, t.TempDir(), func(c *Config) {
		withWebhooks("1s")(c)
		c.webhookTimeout = 2 * time.Second
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk-101")
	ep, _ := mustEndpoint(t, c, live, `{"url":"http://`+ln.Addr().String()+`/","events":["customer.created"]}`)
	mustCustomer(t, c, live, `{"email":"upgrade@example.com"}`)
	<-got
	// The 101 is not an answer: the attempt fails at once, whatever the receiver does with the connection.
	waitDelivery(t, c, live, ep["id"].(string), "customer.created", func(d map[string]any) bool {
		as := attemptsOf(d)
		return len(as) > 0 && strings.Contains(fmt.Sprint(as[0]["error"]), "HTTP 101")
	})
	// Nor does it hold the shutdown: with the attempt over, Close returns (were it held, the test would
	// hang to its timeout).
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHostileDisabledByOneFailureAfterAQuietWeek: failing_since is set by an endpoint's first failure
// and cleared only by a success or re-enabling — not by time, not by the delivery ending, not by a
// PATCH of the URL. An endpoint whose one delivery failed a week ago (say a brief outage, the retries
// ran out) and that has had no traffic since is disabled by the FIRST transient failure of its next
// delivery — though it never failed "for 5 days" of attempts — and that delivery is cancelled.
// Expected (DESIGN: "disabled after 5 days with no success"): a failure after a long quiet period
// starts a new failing period, or disabling needs failures spread over the 5 days.
func TestHostileDisabledByOneFailureAfterAQuietWeek(t *testing.T) {
	clock := &testClock{}
	m := startMainWithClock(t, t.TempDir(), withWebhooks("200ms"), clock.Now)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk-quiet")
	var mu sync.Mutex
	failUntil := 2 // the first delivery's two attempts fail; later, one transient failure
	rc := newReceiver(t, func(n int, _ hook, _ *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if n < failUntil {
			return 503
		}
		return 200
	})
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	epID := ep["id"].(string)
	mustCustomer(t, c, live, `{"email":"quiet1@example.com"}`)
	waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool { return d["status"] == "failed" })

	// A quiet week. The receiver is fixed (even its URL is PATCHed); its next delivery's first
	// attempt hits a transient 503, the retry 200 ms later would succeed.
	clock.offset.Add(int64(7 * 24 * time.Hour))
	if r := c.endpoint("PATCH", live, "/"+epID, `{"url":"`+rc.srv.URL+`/v2"}`); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.raw)
	}
	mu.Lock()
	failUntil = 3
	mu.Unlock()
	mustCustomer(t, c, live, `{"email":"quiet2@example.com"}`)
	rc.waitFor("the transient failure", func(hs []hook) bool { return len(hs) >= 3 })
	waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool { return d["status"] == "succeeded" })
	if r := c.endpoint("GET", live, "/"+epID, ""); field(r.body, "data.disabled") == true {
		t.Errorf("the endpoint was disabled by one transient failure after a quiet week: %s", r.raw)
		for _, d := range deliveries(t, c, live, epID) {
			t.Logf("delivery %s %s attempts %d", d["event_type"], d["status"], len(attemptsOf(d)))
		}
	}
}

// TestHostileEndpointCapRace: 40 racing creates (with deletes racing them) never leave more than 16
// endpoints; and a delivery-log cursor of one endpoint, used on another's log, is refused or harmless.
func TestHostileEndpointCapRace(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "atk-cap")
	var wg sync.WaitGroup
	codes := make(chan int, 80)
	for i := range 40 {
		for _, key := range []string{live, test} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.post("/v1/webhook_endpoints", key, "", fmt.Sprintf(`{"url":"https://example.com/h%d","events":["*"]}`, i))
				codes <- r.status
				if r.status != 201 {
					t.Logf("%d %s", r.status, r.raw)
				}
			}()
		}
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for s := range codes {
		count[s]++
	}
	t.Logf("statuses: %v", count)
	for _, key := range []string{live, test} {
		r := c.do("GET", "/v1/webhook_endpoints?per_page=100", "Bearer "+key, nil)
		if n := len(r.body["data"].([]any)); n != 16 {
			t.Errorf("%d endpoints after racing creates, want 16", n)
		}
	}
	if count[201] != 32 || count[409] != 48 {
		t.Errorf("statuses %v, want 32×201 and 48×409", count)
	}
}
