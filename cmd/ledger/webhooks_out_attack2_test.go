package main

// Second attack review of outgoing webhooks: the fixes of the first review and the performance
// changes (render reuse, outcomes recorded asynchronously, scheduling with an unowned lease, 16 rows per
// endpoint per look). Each test's comment describes the fault as found; the test holds the fix.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAttack2CachedSecretAfterHalfDelete: the first review's fix (TestHostileUnsignedAfterHalfDelete)
// cancels deliveries to an endpoint whose key is gone — but only when the dispatcher folds the endpoint
// from the log after the erasure. Dispatcher.endpoint keeps the folded endpoint (with its secret) in
// d.endpoints and reuses it as long as the read store's version is not newer. A half-done DELETE
// (key destroyed, webhook_endpoint_deleted not recorded) changes no version, so a replica that delivered
// to the endpoint once before keeps signing with the destroyed secret and keeps sending customers'
// data to the URL the store asked to delete, until the process restarts.
// Expected: as with a cold cache, no delivery to an endpoint whose key is gone.
func TestAttack2CachedSecretAfterHalfDelete(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1s"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk2-halfdel")
	rc := newReceiver(t, nil)
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	id := ep["id"].(string)

	// One delivery before: the dispatcher has folded the endpoint, secret included, and keeps it.
	first := mustCustomer(t, c, live, `{"email":"warm@example.com","first_name":"Warm"}`)
	rc.waitFor("the first delivery", has("customer.created", first["id"].(string), 1))

	// What DELETE does first, without the second step (the process died, NATS failed in between).
	keys, err := m.events.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Erase(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	second := mustCustomer(t, c, live, `{"email":"after.delete@example.com","first_name":"Gone"}`)
	sid := second["id"].(string)
	waitDelivery(t, c, live, id, "customer.created", func(d map[string]any) bool {
		return d["event_id"] != nil && d["status"] == "failed" && len(attemptsOf(d)) == 0
	})
	if hs := ofType(rc.hooks(), "customer.created", sid); len(hs) > 0 {
		t.Fatalf("delivered to an endpoint whose key was destroyed (cached secret): webhook-signature %q, body %s",
			hs[0].header.Get("webhook-signature"), hs[0].body)
	}
}

// TestAttack2RetryBacklogDrains16PerLook: a look for due attempts takes at most 16 of one endpoint's
// (pollPerEndpoint); the review found the rest waited for the next look, a PollEvery later (16 per
// second per replica: a 10,000-delivery backlog after an outage took over 10 minutes). Now an endpoint
// whose look was full is looked at again as soon as its queue drains. Here the poll interval is an hour,
// so only that drives the drain: 48 retries due at once all go, after one manual retry wakes the poller.
func TestAttack2RetryBacklogDrains16PerLook(t *testing.T) {
	clock := &testClock{}
	m := startMainWithClock(t, t.TempDir(), func(c *Config) {
		withWebhooks("1h")(c)
		c.webhookPollEvery = time.Hour
	}, clock.Now)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk2-backlog")
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(n int, h hook, r *http.Request) int {
		if failing.Load() {
			return 500
		}
		return 200
	})
	ep, _ := mustEndpoint(t, c, live, `{"url":"`+rc.srv.URL+`","events":["customer.created"]}`)
	const n = 48
	for i := 0; i < n; i++ {
		mustCustomer(t, c, live, fmt.Sprintf(`{"email":"backlog%d@example.com"}`, i))
	}
	rc.waitFor("every first attempt", func(hs []hook) bool { return len(hs) >= n })
	// Every first attempt is recorded (pending, next attempt in an hour).
	var any string
	for recorded := 0; recorded < n; {
		recorded = 0
		for _, d := range deliveries(t, c, live, ep["id"].(string)) {
			if len(attemptsOf(d)) == 1 && d["status"] == "pending" {
				recorded, any = recorded+1, d["id"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	failing.Store(false)
	clock.offset.Add(int64(2 * time.Hour)) // every retry is due now
	if r := c.post("/v1/webhook_deliveries/"+any+"/retry", live, "", ""); r.status != 202 {
		t.Fatalf("retry: %d %s", r.status, r.raw)
	}
	rc.waitFor("every retry", func(hs []hook) bool { return len(hs) >= 2*n })
}

// TestAttack2EndpointURLProbe: odd endpoint URLs are each a 4xx (or a 201 for a harmless one), never a
// 5xx, and no metadata address is accepted (production setting: private addresses refused).
func TestAttack2EndpointURLProbe(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { withWebhooks("1s")(c); c.WebhookAllowPrivate = false })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "atk2-urls")
	for _, u := range []string{
		"https://[fe80::1%25eth0]/h", "https://[::ffff:169.254.169.254]/h", "https://[::169.254.169.254]/h",
		"https://example.com:0/h", "https://example.com:99999/h", "https://example.com:-1/h",
		"https://169.254.169.254.nip.io/h", "https://0251.0376.0251.0376/h", "https://[64:ff9b::a9fe:a9fe]/h",
		"https://[2002:a9fe:a9fe::1]/h", "https://exa\u00admple.com/h", "https://%65xample.com/h",
		"HTTPS://example.com/h", "https://example.com./h", "https://metadata.google.internal/h",
		"https://[fd20:ce::254]/h", "https://168.63.129.16/h", "https://localhost./h", "https://a.localhost/h",
		"http://example.com/h",
	} {
		for _, key := range []string{live, test} {
			r := c.post("/v1/webhook_endpoints", key, "", `{"url":"`+u+`","events":["*"]}`)
			t.Logf("%s %q -> %d %.160s", map[bool]string{true: "live", false: "test"}[key == live], u, r.status, r.raw)
			if r.status >= 500 {
				t.Errorf("%q: %d %s", u, r.status, r.raw)
			}
			if r.status == 201 && (u == "https://example.com:0/h" || u == "https://example.com:99999/h") {
				t.Errorf("%q (no valid port: every attempt fails) accepted: %d", u, r.status)
			}
			if r.status == 201 {
				id := field(r.body, "data.id").(string)
				c.do("DELETE", "/v1/webhook_endpoints/"+id, "Bearer "+key, nil)
			}
		}
	}
}

// TestAttack2RenderReuseAfterErasure (held up): endpoint A's attempt renders a customer.created with the
// customer's data and leaves it in the render cache; endpoint B's attempt of the same event waits behind
// 4 hanging requests; the customer is erased; B's attempt starts within the cache's 5 s. Expected and
// observed: Erased says the customer is erased, B's body is rendered again, without their data.
func TestAttack2RenderReuseAfterErasure(t *testing.T) {
	m := startMain(t, t.TempDir(), withWebhooks("1h"))
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "atk2-render")
	a := newReceiver(t, nil)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	b := newReceiver(t, func(n int, h hook, r *http.Request) int {
		if n < 4 {
			<-release
		}
		return 200
	})
	mustEndpoint(t, c, live, `{"url":"`+b.srv.URL+`","events":["customer.created"]}`)
	for i := 0; i < 4; i++ {
		mustCustomer(t, c, live, fmt.Sprintf(`{"email":"filler%d@example.com"}`, i))
	}
	b.waitFor("4 hanging requests", func(hs []hook) bool { return len(hs) >= 4 })
	mustEndpoint(t, c, live, `{"url":"`+a.srv.URL+`","events":["customer.created"]}`)
	cus := mustCustomer(t, c, live, `{"email":"cached.pii@example.com","first_name":"Cachy"}`)
	id := cus["id"].(string)
	got := a.waitFor("A's delivery", has("customer.created", id, 1))
	if !strings.Contains(string(got[0].body), "cached.pii@example.com") {
		t.Fatalf("A's body: %s", got[0].body)
	}
	if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	once.Do(func() { close(release) })
	hs := b.waitFor("B's delivery", has("customer.created", id, 1))
	for _, h := range ofType(hs, "customer.created", id) {
		if strings.Contains(string(h.body), "cached.pii") || strings.Contains(string(h.body), "Cachy") {
			t.Fatalf("B's attempt after the erasure carries the erased customer's data: %s", h.body)
		}
		t.Logf("B got: %s", h.msg.Data)
	}
}
