package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

// End-to-end tests of outgoing webhooks: real embedded NATS, real SQLite, real HTTP receivers.

// hook is one request a receiver got.
type hook struct {
	header http.Header
	body   []byte
	// at is when the receiver had read the request's body.
	at  time.Time
	msg struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		CreatedAt string          `json:"created_at"`
		Livemode  bool            `json:"livemode"`
		Data      json.RawMessage `json:"data"`
	}
}

// receiver is a store's webhook endpoint: an httptest server that records every request and answers
// with what answer says (200 when nil).
type receiver struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	got []hook
	// answer decides the status of the n-th request (from 0) it gets; it may block (a hanging endpoint).
	answer func(n int, h hook, r *http.Request) int
	more   chan struct{}
}

func newReceiver(t testing.TB, answer func(n int, h hook, r *http.Request) int) *receiver {
	rc := &receiver{t: t, answer: answer, more: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hook{header: r.Header.Clone(), body: body, at: time.Now()}
		if err := json.Unmarshal(body, &h.msg); err != nil {
			t.Errorf("receiver: body is not JSON: %v: %s", err, body)
		}
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, h)
		rc.mu.Unlock()
		select {
		case rc.more <- struct{}{}:
		default:
		}
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, h, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) hooks() []hook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hook(nil), rc.got...)
}

// waitFor waits until what the receiver got satisfies ok; the bound is generous (the work is a few
// appends and requests), so only a delivery that never comes fails it.
func (rc *receiver) waitFor(what string, ok func([]hook) bool) []hook {
	rc.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		if got := rc.hooks(); ok(got) {
			return got
		}
		select {
		case <-rc.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			got := rc.hooks()
			types := make([]string, len(got))
			for i, h := range got {
				types[i] = h.msg.Type + " " + h.msg.ID
			}
			rc.t.Fatalf("receiver %s: waited for %s; got %d requests: %v", rc.srv.URL, what, len(got), types)
		}
	}
}

// ofType returns the hooks of type typ whose data has id.
func ofType(hs []hook, typ, id string) []hook {
	var out []hook
	for _, h := range hs {
		if h.msg.Type != typ {
			continue
		}
		var d struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(h.msg.Data, &d)
		if id == "" || d.ID == id {
			out = append(out, h)
		}
	}
	return out
}

func has(typ, id string, n int) func([]hook) bool {
	return func(hs []hook) bool { return len(ofType(hs, typ, id)) >= n }
}

func withWebhooks(schedule string) func(*Config) {
	return func(c *Config) {
		withGateways(c)
		c.WebhookAllowPrivate = true
		s, err := webhooksout.ParseSchedule(schedule)
		if err != nil {
			panic(err)
		}
		c.WebhookRetrySchedule = s
		c.webhookPollEvery = 100 * time.Millisecond
	}
}

func verify(t *testing.T, secret string, h hook) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(h.body, h.header); err != nil {
		t.Fatalf("%s %s does not verify with %s…: %v (signature %q)", h.msg.Type, h.msg.ID, secret[:10], err, h.header.Get("webhook-signature"))
	}
}

// TestWebhooksOut: a paid, then refunded sale is told to the endpoints subscribed to it — and to no
// other store's, nor the other mode's — each event once, signed with Standard Webhooks (verified by the
// official library, both signatures during a rotation), its data what GET returns for the object at that
// event, webhook-id the event id. The delivery log lists what was sent.
func TestWebhooksOut(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "hooks-out")
	_, otherLive, _ := createStore(t, c, "hooks-other")

	all := newReceiver(t, nil)
	completedOnly := newReceiver(t, nil)
	testMode := newReceiver(t, nil)
	otherStore := newReceiver(t, nil)
	epAll, secretAll := mustEndpoint(t, c, live, `{"url":"`+all.srv.URL+`/hooks","events":["*"]}`)
	_, secretCompleted := mustEndpoint(t, c, live, `{"url":"`+completedOnly.srv.URL+`","events":["sale.completed"]}`)
	mustEndpoint(t, c, test, `{"url":"`+testMode.srv.URL+`","events":["*"]}`)
	mustEndpoint(t, c, otherLive, `{"url":"`+otherStore.srv.URL+`","events":["*"]}`)

	id := paidSale(t, c, live, "hooks@example.com", 10000)
	got := all.waitFor("sale.created and sale.completed", func(hs []hook) bool {
		return len(ofType(hs, "sale.created", id)) == 1 && len(ofType(hs, "sale.completed", id)) == 1
	})
	completed := ofType(got, "sale.completed", id)[0]
	verify(t, secretAll, completed)
	if completed.header.Get("webhook-id") != completed.msg.ID || !strings.HasPrefix(completed.msg.ID, "evt_") || !completed.msg.Livemode ||
		!strings.HasPrefix(completed.header.Get("User-Agent"), "ledger-webhooks/") || completed.header.Get("Content-Type") != "application/json" {
		t.Fatalf("sale.completed: headers %v, body %s", completed.header, completed.body)
	}
	// Nothing has changed the sale since its completion: the data is GET's, byte for byte.
	if want := getData(t, c, live, "/v1/sales/"+id); !bytes.Equal(completed.msg.Data, want) {
		t.Fatalf("sale.completed data:\n got %s\nwant %s", completed.msg.Data, want)
	}
	only := completedOnly.waitFor("sale.completed", has("sale.completed", id, 1))
	verify(t, secretCompleted, only[0])
	if only[0].msg.ID != completed.msg.ID {
		t.Fatalf("the same event has two ids: %s and %s", only[0].msg.ID, completed.msg.ID)
	}

	// A rotation: both secrets sign until the old one's 24 hours end.
	r := c.post("/v1/webhook_endpoints/"+epAll["id"].(string)+"/rotate_secret", live, "", "")
	if r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	newSecret := field(r.body, "data.secret").(string)
	if r := c.post("/v1/sales/"+id+"/refunds", live, "", `{"amount":2500}`); r.status != 201 {
		t.Fatalf("refund: %d %s", r.status, r.raw)
	}
	refunded := ofType(all.waitFor("sale.refunded", has("sale.refunded", id, 1)), "sale.refunded", id)[0]
	verify(t, newSecret, refunded)
	verify(t, secretAll, refunded)
	if sigs := strings.Fields(refunded.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("signatures during the overlap: %q", sigs)
	}
	var sale map[string]any
	if err := json.Unmarshal(refunded.msg.Data, &sale); err != nil || field(sale, "amount_refunded.amount") != 2500.0 {
		t.Fatalf("sale.refunded data: %s", refunded.msg.Data)
	}

	// Every delivery once: a short wait after the last one shows no duplicate.
	time.Sleep(300 * time.Millisecond)
	seen := map[string]bool{}
	for _, h := range all.hooks() {
		if seen[h.msg.ID] {
			t.Fatalf("%s %s delivered twice", h.msg.Type, h.msg.ID)
		}
		seen[h.msg.ID] = true
	}
	for _, rc := range []*receiver{testMode, otherStore} {
		if n := len(rc.hooks()); n != 0 {
			t.Fatalf("an endpoint of another store or mode got %d requests", n)
		}
	}
	if n := len(completedOnly.hooks()); n != 1 {
		t.Fatalf("the sale.completed endpoint got %d requests", n)
	}

	// The delivery log: newest first, each succeeded at its first attempt.
	r = c.do("GET", "/v1/webhook_endpoints/"+epAll["id"].(string)+"/deliveries", "Bearer "+live, nil)
	if r.status != 200 {
		t.Fatalf("deliveries: %d %s", r.status, r.raw)
	}
	ds := r.body["data"].([]any)
	if len(ds) != len(all.hooks()) {
		t.Fatalf("%d deliveries listed, %d received: %s", len(ds), len(all.hooks()), r.raw)
	}
	first := ds[0].(map[string]any)
	if first["event_type"] != "sale.refunded" || first["event_id"] != refunded.msg.ID || first["status"] != "succeeded" ||
		first["object"] != "webhook_delivery" || first["next_attempt_at"] != nil || len(first["attempts"].([]any)) != 1 ||
		field(first["attempts"].([]any)[0].(map[string]any), "status_code") != 200.0 {
		t.Fatalf("newest delivery: %v", first)
	}
	if r := c.do("GET", "/v1/webhook_endpoints/"+epAll["id"].(string)+"/deliveries", "Bearer "+otherLive, nil); r.status != 404 {
		t.Fatalf("another store's endpoint's deliveries: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/v1/webhook_endpoints/"+epAll["id"].(string)+"/deliveries", "Bearer "+test, nil); r.status != 404 {
		t.Fatalf("the other mode's endpoint's deliveries: %d %s", r.status, r.raw)
	}

	// A manual retry of a succeeded delivery sends it again, with the same webhook-id.
	r = c.post("/v1/webhook_deliveries/"+first["id"].(string)+"/retry", live, "", "")
	if r.status != 202 || field(r.body, "data.status") != "pending" {
		t.Fatalf("retry: %d %s", r.status, r.raw)
	}
	again := all.waitFor("the retried sale.refunded", has("sale.refunded", id, 2))
	twice := ofType(again, "sale.refunded", id)
	if twice[1].msg.ID != twice[0].msg.ID || !bytes.Equal(twice[1].body, twice[0].body) {
		t.Fatalf("the retry is not the same message:\n%s\n%s", twice[0].body, twice[1].body)
	}
	if r := c.post("/v1/webhook_deliveries/"+first["id"].(string)+"/retry", otherLive, "", ""); r.status != 404 {
		t.Fatalf("another store's retry: %d %s", r.status, r.raw)
	}
}

// deliveries is an endpoint's delivery log (its first page of 100).
func deliveries(t *testing.T, c client, key, endpointID string) []map[string]any {
	t.Helper()
	r := c.do("GET", "/v1/webhook_endpoints/"+endpointID+"/deliveries?per_page=100", "Bearer "+key, nil)
	if r.status != 200 {
		t.Fatalf("deliveries of %s: %d %s", endpointID, r.status, r.raw)
	}
	var out []map[string]any
	for _, d := range r.body["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// waitDelivery waits until the delivery of event type typ in the endpoint's log satisfies ok.
func waitDelivery(t *testing.T, c client, key, endpointID, typ string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last map[string]any
		for _, d := range deliveries(t, c, key, endpointID) {
			if d["event_type"] == typ {
				if last = d; ok(d) {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s delivery to %s never reached the expected state; last: %v", typ, endpointID, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func attemptsOf(d map[string]any) []map[string]any {
	var out []map[string]any
	for _, a := range d["attempts"].([]any) {
		out = append(out, a.(map[string]any))
	}
	return out
}

// TestWebhooksOutRetries: a failing endpoint is retried on the schedule (LEDGER_WEBHOOK_RETRY_SCHEDULE),
// with the same webhook-id and body on every attempt, until it answers 2xx; a 3xx is a failure and is not
// followed; one that never does is failed after the schedule's last retry, and a manual retry of it is
// one more attempt. Each attempt is in the delivery log with its status code and error.
func TestWebhooksOutRetries(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("100ms,100ms,100ms"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-retry")

	redirectedTo := newReceiver(t, nil)
	flaky := newReceiver(t, func(n int, h hook, r *http.Request) int {
		switch n {
		case 0:
			return http.StatusInternalServerError
		case 1:
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	dead := newReceiver(t, func(n int, h hook, r *http.Request) int { return http.StatusBadGateway })
	moved := httptest.NewServer(http.RedirectHandler(redirectedTo.srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(moved.Close)
	epFlaky, _ := mustEndpoint(t, c, live, `{"url":"`+flaky.srv.URL+`","events":["customer.created"]}`)
	epDead, _ := mustEndpoint(t, c, live, `{"url":"`+dead.srv.URL+`","events":["customer.created"]}`)
	epMoved, _ := mustEndpoint(t, c, live, `{"url":"`+moved.URL+`","events":["customer.created"]}`)

	cus := mustCustomer(t, c, live, `{"email":"retry@example.com","first_name":"Ada"}`)
	got := flaky.waitFor("three attempts", func(hs []hook) bool { return len(hs) >= 3 })
	for _, h := range got[1:] {
		if !bytes.Equal(h.body, got[0].body) || h.header.Get("webhook-id") != got[0].header.Get("webhook-id") {
			t.Fatalf("a retry differs from the first attempt:\n%s %v\n%s %v", got[0].body, got[0].header, h.body, h.header)
		}
	}
	d := waitDelivery(t, c, live, epFlaky["id"].(string), "customer.created", func(d map[string]any) bool { return d["status"] == "succeeded" })
	as := attemptsOf(d)
	if len(as) != 3 || as[0]["status_code"] != 500.0 || as[1]["status_code"] != 503.0 || as[2]["status_code"] != 204.0 ||
		as[0]["error"] == nil || as[2]["error"] != nil || d["next_attempt_at"] != nil {
		t.Fatalf("flaky endpoint's delivery: %v", d)
	}

	d = waitDelivery(t, c, live, epDead["id"].(string), "customer.created", func(d map[string]any) bool { return d["status"] == "failed" })
	if as := attemptsOf(d); len(as) != 4 || d["next_attempt_at"] != nil {
		t.Fatalf("dead endpoint's delivery after the schedule: %v", d)
	}
	d = waitDelivery(t, c, live, epMoved["id"].(string), "customer.created", func(d map[string]any) bool { return d["status"] == "failed" })
	if as := attemptsOf(d); len(as) != 4 || as[0]["status_code"] != 307.0 {
		t.Fatalf("redirecting endpoint's delivery: %v", d)
	}
	if n := len(redirectedTo.hooks()); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}

	// A manual retry of the failed delivery: pending, one attempt, failed again without retries.
	r := c.post("/v1/webhook_deliveries/"+d["id"].(string)+"/retry", live, "", `{}`)
	if r.status != 202 || field(r.body, "data.status") != "pending" || field(r.body, "data.next_attempt_at") == nil {
		t.Fatalf("manual retry: %d %s", r.status, r.raw)
	}
	d = waitDelivery(t, c, live, epMoved["id"].(string), "customer.created", func(d map[string]any) bool {
		return d["status"] == "failed" && len(attemptsOf(d)) == 5
	})
	time.Sleep(500 * time.Millisecond) // the schedule's 100 ms retries would have come by now
	if d = waitDelivery(t, c, live, epMoved["id"].(string), "customer.created", func(map[string]any) bool { return true }); len(attemptsOf(d)) != 5 {
		t.Fatalf("a manual retry's failure was retried: %v", d)
	}
	_ = cus
	for _, bad := range []struct{ path, body string }{
		{"/v1/webhook_deliveries/whd_0123456789abcdef0123456789abcdef/retry", ""},
		{"/v1/webhook_deliveries/whd_nope/retry", ""},
		{"/v1/webhook_deliveries/" + d["id"].(string) + "/retry", `{"now":true}`},
	} {
		r := c.post(bad.path, live, "", bad.body)
		if (bad.body == "" && r.status != 404) || (bad.body != "" && r.status != 400) {
			t.Fatalf("POST %s %s: %d %s", bad.path, bad.body, r.status, r.raw)
		}
	}
}

// TestWebhooksOutEndpointGone: the pending retries of an endpoint that is disabled or deleted are
// cancelled when they come due (failed, no further attempt); a retry of a disabled endpoint's delivery
// is 409 until it is enabled again.
func TestWebhooksOutEndpointGone(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("300ms,300ms,300ms,300ms"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-gone")
	failing := newReceiver(t, func(int, hook, *http.Request) int { return 500 })
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+failing.srv.URL+`","events":["customer.created"]}`)
	epID := ep["id"].(string)
	mustCustomer(t, c, live, `{"email":"gone@example.com"}`)
	failing.waitFor("the first attempt", func(hs []hook) bool { return len(hs) >= 1 })
	if r := c.endpoint("PATCH", live, "/"+epID, `{"disabled":true}`); r.status != 200 {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	d := waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool { return d["status"] == "failed" })
	n := len(attemptsOf(d))
	if n >= 5 {
		t.Fatalf("every attempt was made: %v", d)
	}
	r := c.post("/v1/webhook_deliveries/"+d["id"].(string)+"/retry", live, "", "")
	if r.status != 409 || field(r.body, "error.code") != "webhook_endpoint_disabled" {
		t.Fatalf("retry for a disabled endpoint: %d %s", r.status, r.raw)
	}
	if r := c.endpoint("PATCH", live, "/"+epID, `{"disabled":false}`); r.status != 200 {
		t.Fatalf("enable: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/webhook_deliveries/"+d["id"].(string)+"/retry", live, "", ""); r.status != 202 {
		t.Fatalf("retry once enabled: %d %s", r.status, r.raw)
	}
	waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool {
		return d["status"] == "failed" && len(attemptsOf(d)) == n+1
	})
	if r := c.endpoint("DELETE", live, "/"+epID, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/webhook_deliveries/"+d["id"].(string)+"/retry", live, "", ""); r.status != 404 {
		t.Fatalf("retry for a deleted endpoint: %d %s", r.status, r.raw)
	}
}

// TestWebhooksOutSlowEndpointDelaysNoOther: an endpoint that never answers holds its own attempts
// only. A healthy endpoint of the same store gets every event while the hanging one's first attempts
// are all still open (the attempt timeout is far off), and the hanging one is sent no more than its
// per-endpoint limit at once.
func TestWebhooksOutSlowEndpointDelaysNoOther(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		withWebhooks("1m")(c)
		c.webhookTimeout = 10 * time.Minute
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-slow")
	release := make(chan struct{})
	hanging := newReceiver(t, func(_ int, _ hook, r *http.Request) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return 200
	})
	t.Cleanup(func() { close(release) }) // before the receiver's Close, which waits for its requests
	healthy := newReceiver(t, nil)
	epHanging, _ := mustEndpoint(t, c, live, `{"url":"`+hanging.srv.URL+`","events":["customer.created"]}`)
	mustEndpoint(t, c, live, `{"url":"`+healthy.srv.URL+`","events":["customer.created"]}`)
	const n = 30
	for i := range n {
		mustCustomer(t, c, live, fmt.Sprintf(`{"email":"slow%d@example.com"}`, i))
	}
	healthy.waitFor("every customer.created", func(hs []hook) bool { return len(hs) >= n })
	held := len(hanging.hooks())
	if held < 1 || held > 4 {
		t.Fatalf("the hanging endpoint holds %d requests, want 1 to 4 (its per-endpoint limit)", held)
	}
	for _, d := range deliveries(t, c, live, epHanging["id"].(string)) {
		if d["status"] != "pending" || len(attemptsOf(d)) != 0 {
			t.Fatalf("a hanging endpoint's attempt ended before the healthy endpoint got everything: %v", d)
		}
	}
	if got := len(healthy.hooks()); got != n {
		t.Fatalf("healthy endpoint got %d requests, want %d", got, n)
	}
}

// TestWebhooksOutErasure: a delivery pending when its customer is erased never sends their personal
// data: the body is rendered at each attempt, and an erased customer renders as deleted, at every
// sequence.
func TestWebhooksOutErasure(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-erase")
	var down sync.Mutex // held while the endpoint is failing
	failing := true
	rc := newReceiver(t, func(int, hook, *http.Request) int {
		down.Lock()
		defer down.Unlock()
		if failing {
			return 503
		}
		return 200
	})
	mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created","customer.deleted"]}`)
	cus := mustCustomer(t, c, live, `{"email":"erase.me@example.com","first_name":"Erin","phone":"+14155550123"}`)
	id := cus["id"].(string)
	first := rc.waitFor("the first attempt", has("customer.created", id, 1))
	if !bytes.Contains(first[0].body, []byte("erase.me@example.com")) {
		t.Fatalf("the first attempt does not carry the customer: %s", first[0].body)
	}
	if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	down.Lock()
	failing = false
	n := len(rc.got)
	down.Unlock()
	got := rc.waitFor("customer.deleted and a retry of customer.created after the erasure", func(hs []hook) bool {
		return len(ofType(hs, "customer.deleted", id)) == 1 && len(ofType(hs[n:], "customer.created", id)) >= 1
	})
	for _, h := range got[n:] {
		for _, personal := range []string{"erase.me", "Erin", "4155550123"} {
			if bytes.Contains(h.body, []byte(personal)) {
				t.Fatalf("%s sent after the erasure carries %q: %s", h.msg.Type, personal, h.body)
			}
		}
		if string(h.msg.Data) != `{"deleted":true,"id":"`+id+`","object":"customer"}` {
			t.Fatalf("%s after the erasure: %s", h.msg.Type, h.msg.Data)
		}
	}
}

// TestWebhooksOutDisablesAFailingEndpoint: an endpoint every attempt to which failed for 5 days is
// disabled, and its pending deliveries are cancelled.
func TestWebhooksOutDisablesAFailingEndpoint(t *testing.T) {
	clock := &testClock{}
	m := startMainWithClock(t, t.TempDir(), withWebhooks("1s,1s,1s,1s,1s,1s,1s,1s,1s,1s"), clock.Now)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-disable")
	rc := newReceiver(t, func(int, hook, *http.Request) int { return 500 })
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["*"]}`)
	epID := ep["id"].(string)
	mustCustomer(t, c, live, `{"email":"disable@example.com"}`)
	rc.waitFor("the first attempt", func(hs []hook) bool { return len(hs) >= 1 })
	if r := c.endpoint("GET", live, "/"+epID, ""); field(r.body, "data.disabled") != false {
		t.Fatalf("disabled after one failure: %s", r.raw)
	}
	clock.offset.Add(int64(5*24*time.Hour + time.Hour))
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.endpoint("GET", live, "/"+epID, "")
		if field(r.body, "data.disabled") == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still enabled after 5 days of failures: %s", r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool { return d["status"] == "failed" })
}

// TestWebhooksOutTwoReplicas: two ledgers on one NATS cluster deliver each event once per endpoint,
// and each retry once: the shared durable consumer gives each event to one replica, and a retry is made
// by the replica whose claim won.
func TestWebhooksOutTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster and two ledgers")
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	servers := startJetStreamCluster(t, 3, logs)
	var urlList []string
	for _, s := range servers {
		urlList = append(urlList, s.ClientURL())
	}
	urls := strings.Join(urlList, ",")
	clock := &testClock{}
	tweak := func(c *Config) {
		withWebhooks("300ms,300ms")(c)
		c.RateLimit, c.RateLimitIP = 0, 0
	}
	replicas := []*replica{{name: "a", dir: t.TempDir(), tweak: tweak}, {name: "b", dir: t.TempDir(), tweak: tweak}}
	for _, r := range replicas {
		if err := r.start(urls, clock, logs); err != nil {
			t.Fatal(err)
		}
		m := r.m
		t.Cleanup(func() { m.Close() })
	}
	ca, cb := client{t, replicas[0].url()}, client{t, replicas[1].url()}
	_, live, _ := createStore(t, ca, "hooks-replicas")
	seen := map[string]int{}
	var mu sync.Mutex
	rc := newReceiver(t, func(_ int, h hook, _ *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		seen[h.msg.ID]++
		if seen[h.msg.ID] == 1 {
			return 500 // every event's first attempt fails: its retry is claimed
		}
		return 200
	})
	ep, _ := mustEndpoint(t, ca, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	const n = 20
	for i := range n {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		waitEndpointVisible(t, c, live, ep["id"].(string))
		mustCustomer(t, c, live, fmt.Sprintf(`{"email":"replica%d@example.com"}`, i))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ds := deliveries(t, ca, live, ep["id"].(string))
		done := len(ds) == n
		for _, d := range ds {
			done = done && d["status"] == "succeeded"
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not done: %v", ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate from the other replica would arrive meanwhile
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("%d events received, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 2 {
			t.Fatalf("event %s sent %d times, want 2 (a failed attempt and its retry)", id, k)
		}
	}
	for _, d := range deliveries(t, ca, live, ep["id"].(string)) {
		if len(attemptsOf(d)) != 2 {
			t.Fatalf("delivery with %d attempts: %v", len(attemptsOf(d)), d)
		}
	}
}

// waitEndpointVisible waits until a replica's read store has the endpoint.
func waitEndpointVisible(t *testing.T, c client, key, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.endpoint("GET", key, "/"+id, "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s never visible on %s", id, c.base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
