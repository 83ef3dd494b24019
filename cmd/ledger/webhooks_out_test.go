package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/salesledger/ledger/domain"
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
	// Pages of two walk the same list, forward and back.
	var walked []string
	path := "/v1/webhook_endpoints/" + epAll["id"].(string) + "/deliveries?per_page=2"
	for cursor := ""; ; {
		p := c.do("GET", path+cursor, "Bearer "+live, nil)
		for _, d := range p.body["data"].([]any) {
			walked = append(walked, d.(map[string]any)["id"].(string))
		}
		if field(p.body, "pagination.has_more") != true {
			prev, _ := field(p.body, "pagination.prev_cursor").(string)
			back := c.do("GET", path+"&cursor="+prev, "Bearer "+live, nil)
			if n := len(back.body["data"].([]any)); prev == "" || n != 2 {
				t.Fatalf("back from the last page: %d %s", back.status, back.raw)
			}
			break
		}
		cursor = "&cursor=" + field(p.body, "pagination.next_cursor").(string)
	}
	for i, d := range ds {
		if i >= len(walked) || walked[i] != d.(map[string]any)["id"] {
			t.Fatalf("paged walk %v differs from the list", walked)
		}
	}
	if len(walked) != len(ds) {
		t.Fatalf("paged walk has %d deliveries, the list %d", len(walked), len(ds))
	}
	if r := c.do("GET", "/v1/webhook_endpoints/"+epAll["id"].(string)+"/deliveries?cursor=nonsense", "Bearer "+live, nil); r.status != 400 {
		t.Fatalf("a forged cursor: %d %s", r.status, r.raw)
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
	dir := t.TempDir()
	m := startMain(t, dir, withWebhooks("100ms,100ms,100ms"))
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

	// Every delivery is finished: the read store rebuilt from the log is the live one.
	if want := rebuildEqualsLive(t, m, dir); len(want["webhook_deliveries"]) != 3 {
		t.Fatalf("the live read store holds deliveries %v", want["webhook_deliveries"])
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
	// Retries keep coming for a minute, so one comes after the erasure however long the DELETE takes on
	// a loaded machine (ten quick ones first, then one a second).
	m := startMain(t, t.TempDir(), withWebhooks(strings.Repeat("200ms,", 10)+strings.Repeat("1s,", 59)+"1s"))
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
	n := rc.count() // under the receiver's lock, which records a request before asking answer
	down.Unlock()
	got := rc.waitFor("customer.deleted and a retry of customer.created after the erasure", func(hs []hook) bool {
		// customer.deleted may have had a failed attempt too, if it went out before the endpoint recovered.
		return len(ofType(hs, "customer.deleted", id)) >= 1 && len(ofType(hs[n:], "customer.created", id)) >= 1
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
	m := startMainWithClock(t, t.TempDir(), withWebhooks("1s,1s"), clock.Now)
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

// TestWebhooksOutCrashMidAttempt: a ledger that dies while an endpoint holds an attempt open (no
// answer yet, nothing recorded) does not forget it: started again on the same data dir, it claims the
// attempt once its lease ends and sends it again, with the same webhook-id and body.
func TestWebhooksOutCrashMidAttempt(t *testing.T) {
	dir := t.TempDir()
	tweak := func(c *Config) {
		withWebhooks("1s")(c)
		c.webhookTimeout = 2 * time.Second // lease 6 s
	}
	m := startMain(t, dir, tweak)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-crash")
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, _ hook, r *http.Request) int {
		if n == 0 {
			select { // the first attempt hangs until the ledger is gone
			case <-release:
			case <-r.Context().Done():
			}
		}
		return 200
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	mustCustomer(t, c, live, `{"email":"crash@example.com"}`)
	first := rc.waitFor("the first attempt", func(hs []hook) bool { return len(hs) >= 1 })[0]

	// Down the way a killed process goes: connections cut, nothing more appended.
	m.httpSrv.Close()
	m.nc.Close()
	m.Close()
	close(release)

	m = startMain(t, dir, tweak)
	c = client{t, "http://" + m.HTTPAddr}
	again := rc.waitFor("the attempt made again", func(hs []hook) bool { return len(hs) >= 2 })[1]
	if again.msg.ID != first.msg.ID || !bytes.Equal(again.body, first.body) {
		t.Fatalf("the attempt made again is another message:\n%s\n%s", first.body, again.body)
	}
	d := waitDelivery(t, c, live, ep["id"].(string), "customer.created", func(d map[string]any) bool { return d["status"] == "succeeded" })
	if as := attemptsOf(d); as[len(as)-1]["status_code"] != 200.0 {
		t.Fatalf("delivery after the crash: %v", d)
	}
}

// TestWebhooksOutKill9MidRetries runs the real binary: kill -9 between the attempts of a retry
// sequence loses neither the attempts made nor the ones to come. Started again, the ledger makes the
// next attempt when the schedule says, with the same webhook-id, and the delivery log holds every
// attempt.
func TestWebhooksOutKill9MidRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := ledgerBinary(t)
	dir := t.TempDir()
	env := []string{"LEDGER_WEBHOOK_ALLOW_PRIVATE=true", "LEDGER_WEBHOOK_RETRY_SCHEDULE=1s,3s,1s", "LEDGER_RATE_LIMIT=0", "LEDGER_RATE_LIMIT_IP=0"}
	cmd, addr, _ := runLedger(t, bin, dir, env...)
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	c := client{t, "http://" + addr}
	_, live, _ := createStore(t, c, "hooks-kill9")
	var mu sync.Mutex
	healthy := false
	rc := newReceiver(t, func(int, hook, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return 200
		}
		return 500
	})
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	epID := ep["id"].(string)
	mustCustomer(t, c, live, `{"email":"kill9@example.com"}`)
	// Two failed attempts recorded; the third is due 3 s after the second.
	before := waitDelivery(t, c, live, epID, "customer.created", func(d map[string]any) bool { return len(attemptsOf(d)) >= 2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	mu.Lock()
	healthy = true
	mu.Unlock()

	cmd, addr, _ = runLedger(t, bin, dir, env...)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	c = client{t, "http://" + addr}
	// After a kill mid-attempt the attempt is taken over when its lease (45 s) ends: allow for it.
	deadline := time.Now().Add(120 * time.Second)
	var d map[string]any
	for {
		d = waitDelivery(t, c, live, epID, "customer.created", func(map[string]any) bool { return true })
		if d["status"] != "pending" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	as := attemptsOf(d)
	if d["status"] != "succeeded" || len(as) < 3 || as[len(as)-1]["status_code"] != 200.0 {
		t.Fatalf("delivery after kill -9: %v", d)
	}
	for i, a := range attemptsOf(before) {
		if as[i]["at"] != a["at"] || as[i]["status_code"] != 500.0 {
			t.Fatalf("attempt %d changed across the kill: %v, was %v", i+1, as[i], a)
		}
	}
	hs := rc.hooks()
	for _, h := range hs {
		if h.msg.ID != hs[0].msg.ID || !bytes.Equal(h.body, hs[0].body) {
			t.Fatalf("attempts of one delivery differ:\n%s\n%s", hs[0].body, h.body)
		}
	}
	if len(hs) != len(as) {
		t.Fatalf("%d requests received, %d attempts recorded", len(hs), len(as))
	}
}

// TestReceiverExample runs docs/examples/receiver, the receiver docs/api.md shows, against the ledger:
// it verifies the ledger's deliveries and refuses a forged one. docs/api.md holds the file as it is.
func TestReceiverExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example")
	}
	src, err := os.ReadFile("../../docs/examples/receiver/main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, src) {
		t.Fatal("docs/api.md does not show docs/examples/receiver/main.go as it is")
	}
	bin := filepath.Join(t.TempDir(), "receiver")
	if out, err := exec.Command("go", "build", "-o", bin, "../../docs/examples/receiver").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-example")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr + "/ledger-webhooks"
	_, secret := mustEndpoint(t, c, live, `{"url":"`+url+`","events":["customer.created"]}`)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "WHSEC="+secret, "ADDR="+addr)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cus := mustCustomer(t, c, live, `{"email":"example@example.com"}`)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "customer.created livemode=true") {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver logged no delivery:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), cus["id"].(string)) {
		t.Fatalf("the receiver logged another customer:\n%s", logs.String())
	}
	// A forged delivery: the right headers, a signature made with another secret.
	body := []byte(`{"id":"evt_forged","type":"sale.completed","created_at":"2026-01-01T00:00:00+00:00","livemode":true,"data":{}}`)
	other, _ := webhooksout.ParseSecret(webhooksout.NewSecret())
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for k, v := range webhooksout.Sign("evt_forged", time.Now(), body, other) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(logs.String(), "evt_forged") {
		t.Fatalf("forged delivery: %d; logs:\n%s", resp.StatusCode, logs.String())
	}
}

// TestWebhooksOutObjects: licence and customer events carry the object as GET shows it at the event
// (compared byte for byte where nothing changed since), and a test-mode payment failure is sale.failed
// (the one outgoing type that depends on the sale's state after the event).
func TestWebhooksOutObjects(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "hooks-objects")
	rc := newReceiver(t, nil)
	trc := newReceiver(t, nil)
	mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["licence.activated","customer.updated","dispute.opened","dispute.closed"]}`)
	mustEndpoint(t, c, test, `{"url":"`+trc.srv.URL+`","events":["sale.failed","sale.completed"]}`)

	id := paidSale(t, c, live, "objects@example.com", 5000)
	sale := getData(t, c, live, "/v1/sales/"+id)
	var s map[string]any
	if err := json.Unmarshal(sale, &s); err != nil {
		t.Fatal(err)
	}
	key := field(s, "post_purchase.licences").([]any)[0].(map[string]any)["licence_key"].(string)
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":"desk"}`); r.status != 200 {
		t.Fatalf("activate: %d %s", r.status, r.raw)
	}
	activated := ofType(rc.waitFor("licence.activated", has("licence.activated", "", 1)), "licence.activated", "")[0]
	if want := getData(t, c, live, "/v1/licences/"+key); !bytes.Equal(activated.msg.Data, want) {
		t.Fatalf("licence.activated data:\n got %s\nwant %s", activated.msg.Data, want)
	}

	// A gateway's dispute: opened, then lost (a chargeback refund), each told with the sale as it left it.
	c.standardWebhook("obj_d1", fmt.Sprintf(`{"type":"dispute.opened","data":{"sale_id":%q,"dispute_id":"dp_obj","amount":{"amount":5000,"currency":"USD"}}}`, id), time.Now())
	c.standardWebhook("obj_d2", fmt.Sprintf(`{"type":"dispute.closed","data":{"sale_id":%q,"dispute_id":"dp_obj","status":"lost"}}`, id), time.Now())
	got := rc.waitFor("dispute.opened and dispute.closed", func(hs []hook) bool {
		return len(ofType(hs, "dispute.opened", id)) == 1 && len(ofType(hs, "dispute.closed", id)) == 1
	})
	var opened, closed map[string]any
	json.Unmarshal(ofType(got, "dispute.opened", id)[0].msg.Data, &opened)
	json.Unmarshal(ofType(got, "dispute.closed", id)[0].msg.Data, &closed)
	if field(opened, "dispute.status") == nil || opened["status"] == domain.StatusRefunded || closed["status"] != domain.StatusRefunded {
		t.Fatalf("dispute data:\nopened %v\nclosed %v", opened, closed)
	}
	if want := getData(t, c, live, "/v1/sales/"+id); !bytes.Equal(ofType(got, "dispute.closed", id)[0].msg.Data, want) {
		t.Fatalf("dispute.closed data is not GET's:\n got %s\nwant %s", ofType(got, "dispute.closed", id)[0].msg.Data, want)
	}

	cus := mustCustomer(t, c, live, `{"email":"objects.api@example.com","first_name":"Obi"}`)
	cid := cus["id"].(string)
	if r := c.do("PATCH", "/v1/customers/"+cid, "Bearer "+live, strings.NewReader(`{"last_name":"Jects"}`)); r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	updated := ofType(rc.waitFor("customer.updated", has("customer.updated", cid, 1)), "customer.updated", cid)[0]
	if want := getData(t, c, live, "/v1/customers/"+cid); !bytes.Equal(updated.msg.Data, want) {
		t.Fatalf("customer.updated data:\n got %s\nwant %s", updated.msg.Data, want)
	}

	r := c.post("/v1/checkouts", test, "", `{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":900,"currency":"USD"}},"customer":{"email":"fails@example.com"}}`)
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	tid := field(r.body, "data.id").(string)
	if r := c.post("/v1/test_helpers/sales/"+tid+"/fail", test, "", `{"failure_error":{"code":"card_declined","message":"Declined."}}`); r.status != 200 {
		t.Fatalf("fail: %d %s", r.status, r.raw)
	}
	failed := ofType(trc.waitFor("sale.failed", has("sale.failed", tid, 1)), "sale.failed", tid)[0]
	var fd map[string]any
	if err := json.Unmarshal(failed.msg.Data, &fd); err != nil || fd["status"] != "failed" || failed.msg.Livemode {
		t.Fatalf("sale.failed: %s", failed.body)
	}
	if want := getData(t, c, test, "/v1/sales/"+tid); !bytes.Equal(failed.msg.Data, want) {
		t.Fatalf("sale.failed data:\n got %s\nwant %s", failed.msg.Data, want)
	}
	if n := len(ofType(trc.hooks(), "sale.completed", "")); n != 0 {
		t.Fatalf("%d sale.completed for a failed test sale", n)
	}
}
