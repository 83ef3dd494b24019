package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

// End-to-end tests of the webhook endpoints API: real embedded NATS, real SQLite, real HTTP.

func (c client) endpoint(method, key, path, body string) response {
	c.t.Helper()
	var r *strings.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	if r == nil {
		return c.do(method, "/v1/webhook_endpoints"+path, "Bearer "+key, nil)
	}
	return c.do(method, "/v1/webhook_endpoints"+path, "Bearer "+key, r)
}

func mustEndpoint(t *testing.T, c client, key, body string) (obj map[string]any, secret string) {
	t.Helper()
	r := c.post("/v1/webhook_endpoints", key, "", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook endpoint %s: %d %s", body, r.status, r.raw)
	}
	d := r.body["data"].(map[string]any)
	s, _ := d["secret"].(string)
	return d, s
}

func fieldNames(r response) []string {
	e, _ := r.body["error"].(map[string]any)
	f, _ := e["fields"].(map[string]any)
	var out []string
	for k := range f {
		out = append(out, k)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestWebhookEndpoints(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	m := startMainLogged(t, dir, logs, func(c *Config) { c.RateLimit, c.RateLimitIP = 0, 0 })
	c := client{t, "http://" + m.HTTPAddr}
	storeA, live, test := createStore(t, c, "hooks-a")
	_, liveB, _ := createStore(t, c, "hooks-b")

	// Create: the secret once, whsec_ and the base64 of 24 to 32 bytes.
	ep, secret := mustEndpoint(t, c, live, `{"url":"https://example.com/hooks","events":["sale.completed","customer.created"],"description":"CRM sync"}`)
	id := ep["id"].(string)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(raw) < 24 || len(raw) > 32 {
		t.Fatalf("secret %q: %v", secret, err)
	}
	if !strings.HasPrefix(id, "we_") || ep["object"] != "webhook_endpoint" || ep["url"] != "https://example.com/hooks" ||
		ep["description"] != "CRM sync" || ep["disabled"] != false || ep["livemode"] != true || ep["secret_last4"] != secret[len(secret)-4:] ||
		!reflect.DeepEqual(ep["events"], []any{"sale.completed", "customer.created"}) || ep["previous_secret_expires_at"] != nil {
		t.Fatalf("created endpoint: %v", ep)
	}

	// Get and list show it, never the secret.
	got := c.endpoint("GET", live, "/"+id, "")
	if got.status != 200 || strings.Contains(got.raw, secret) || strings.Contains(got.raw, `"secret"`) {
		t.Fatalf("GET: %d %s", got.status, got.raw)
	}
	wantObj := map[string]any{}
	for k, v := range ep {
		if k != "secret" {
			wantObj[k] = v
		}
	}
	if !reflect.DeepEqual(got.body["data"], wantObj) {
		t.Errorf("GET answers %v, create answered %v", got.body["data"], wantObj)
	}
	ep2, _ := mustEndpoint(t, c, live, `{"url":"https://203.0.113.7:8080/x","events":["*"]}`)
	// Live deliveries carry personal data: https only. Test mode may use http.
	if r := c.post("/v1/webhook_endpoints", live, "", `{"url":"http://203.0.113.7:8080/plain","events":["*"]}`); r.status != 422 ||
		!strings.Contains(r.raw, "https") {
		t.Fatalf("a live http endpoint: %d %s", r.status, r.raw)
	}
	if r := c.endpoint("PATCH", live, "/"+ep2["id"].(string), `{"url":"HTTP://203.0.113.7/plain"}`); r.status != 422 {
		t.Fatalf("a live endpoint changed to http: %d %s", r.status, r.raw)
	}
	_, _, testC := createStore(t, c, "hooks-plain")
	mustEndpoint(t, c, testC, `{"url":"http://203.0.113.7:8080/plain","events":["*"]}`)
	list := c.endpoint("GET", live, "?per_page=1", "")
	if list.status != 200 || strings.Contains(list.raw, secret) {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	page := list.body["data"].([]any)
	pg := list.body["pagination"].(map[string]any)
	if len(page) != 1 || page[0].(map[string]any)["id"] != ep2["id"] || pg["has_more"] != true {
		t.Fatalf("first page (newest first): %s", list.raw)
	}
	next := c.endpoint("GET", live, "?per_page=1&cursor="+pg["next_cursor"].(string), "")
	if p := next.body["data"].([]any); next.status != 200 || len(p) != 1 || p[0].(map[string]any)["id"] != id || next.body["pagination"].(map[string]any)["has_more"] != false {
		t.Fatalf("second page: %s", next.raw)
	}
	if r := c.endpoint("GET", live, "?limit=5", ""); r.status != 400 {
		t.Errorf("unknown query parameter: %d %s", r.status, r.raw)
	}

	// Scoped to the key's store and mode.
	for name, key := range map[string]string{"other store": liveB, "other mode": test} {
		for _, call := range []struct{ method, path, body string }{
			{"GET", "/" + id, ""}, {"PATCH", "/" + id, `{"disabled":true}`}, {"DELETE", "/" + id, ""}, {"POST", "/" + id + "/rotate_secret", ""},
		} {
			if r := c.endpoint(call.method, key, call.path, call.body); r.status != 404 {
				t.Errorf("%s: %s %s = %d %s", name, call.method, call.path, r.status, r.raw)
			}
		}
		if r := c.endpoint("GET", key, "", ""); r.status != 200 || len(r.body["data"].([]any)) != 0 {
			t.Errorf("%s lists %s", name, r.raw)
		}
	}
	if r := c.endpoint("GET", live, "/we_*", ""); r.status != 404 {
		t.Errorf("a malformed id: %d", r.status)
	}

	// Validation: 422 naming the fields.
	for _, tt := range []struct {
		body   string
		fields []string
	}{
		{`{}`, []string{"events", "url"}},
		{`{"url":"ftp://example.com/x","events":["*"]}`, []string{"url"}},
		{`{"url":"https://user:pw@example.com/x","events":["*"]}`, []string{"url"}},
		{`{"url":"http://127.0.0.1:9000/x","events":["*"]}`, []string{"url"}},
		{`{"url":"http://169.254.169.254/latest","events":["*"]}`, []string{"url"}},
		{`{"url":"https://example.com/` + strings.Repeat("a", 2048) + `","events":["*"]}`, []string{"url"}},
		{`{"url":"https://example.com","events":["sale.completed","sale.exploded"]}`, []string{"events"}},
		{`{"url":"https://example.com","events":[]}`, []string{"events"}},
		{`{"url":"https://example.com","events":["*"],"description":"` + strings.Repeat("d", 501) + `"}`, []string{"description"}},
		{`{"url":"https://example.com","events":"*"}`, []string{"events"}},
	} {
		r := c.post("/v1/webhook_endpoints", live, "", tt.body)
		if r.status != 422 || !reflect.DeepEqual(fieldNames(r), tt.fields) {
			t.Errorf("create %.80s: %d %v, want 422 naming %v: %s", tt.body, r.status, fieldNames(r), tt.fields, r.raw)
		}
	}
	if r := c.post("/v1/webhook_endpoints", live, "", `{"url":"https://example.com","events":["*"],"secret":"whsec_mine"}`); r.status != 400 {
		t.Errorf("an unknown field: %d %s", r.status, r.raw)
	}

	// Patch: only what is given changes; an unknown event type is 422.
	r := c.endpoint("PATCH", live, "/"+id, `{"events":["*"],"disabled":true,"description":""}`)
	if d, _ := r.body["data"].(map[string]any); r.status != 200 || d["disabled"] != true || d["description"] != nil || d["url"] != "https://example.com/hooks" ||
		!reflect.DeepEqual(d["events"], []any{"*"}) || strings.Contains(r.raw, secret) {
		t.Fatalf("PATCH: %d %s", r.status, r.raw)
	}
	if r := c.endpoint("PATCH", live, "/"+id, `{"events":["nope"]}`); r.status != 422 || !reflect.DeepEqual(fieldNames(r), []string{"events"}) {
		t.Errorf("PATCH with an unknown event type: %d %s", r.status, r.raw)
	}
	if r := c.endpoint("GET", live, "/"+id, ""); r.body["data"].(map[string]any)["disabled"] != true {
		t.Errorf("GET after PATCH: %s", r.raw)
	}

	// Rotate: a new secret, shown once; the old one signs for 24 more hours.
	before := time.Now()
	r = c.endpoint("POST", live, "/"+id+"/rotate_secret", "")
	rotated, _ := r.body["data"].(map[string]any)
	newSecret, _ := rotated["secret"].(string)
	if r.status != 200 || !strings.HasPrefix(newSecret, "whsec_") || newSecret == secret || rotated["secret_last4"] != newSecret[len(newSecret)-4:] {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	exp, err := time.Parse(time.RFC3339, rotated["previous_secret_expires_at"].(string))
	if err != nil || exp.Before(before.Add(24*time.Hour-time.Second)) || exp.After(time.Now().Add(24*time.Hour+time.Second)) {
		t.Errorf("previous_secret_expires_at %v: %v", rotated["previous_secret_expires_at"], err)
	}
	if r := c.endpoint("POST", live, "/"+id+"/rotate_secret", `{"x":1}`); r.status != 400 {
		t.Errorf("rotate with parameters: %d %s", r.status, r.raw)
	}

	// Idempotent create: one endpoint; the replay cannot show the secret again.
	body := `{"url":"https://example.com/idem","events":["sale.refunded"]}`
	first := c.post("/v1/webhook_endpoints", live, "idem-we-1", body)
	replay := c.post("/v1/webhook_endpoints", live, "idem-we-1", body)
	fd, _ := first.body["data"].(map[string]any)
	rd, _ := replay.body["data"].(map[string]any)
	if first.status != 201 || replay.status != 201 || fd["id"] != rd["id"] || replay.header.Get("Idempotent-Replayed") != "true" ||
		fd["secret"] == nil || rd["secret"] != nil || !strings.Contains(replay.raw, `"secret":null`) {
		t.Fatalf("idempotent create:\n%d %s\n%d %s", first.status, first.raw, replay.status, replay.raw)
	}
	if r := c.post("/v1/webhook_endpoints", live, "idem-we-1", `{"url":"https://example.com/other","events":["*"]}`); r.status != 409 {
		t.Errorf("the key with another body: %d %s", r.status, r.raw)
	}
	if r := c.endpoint("GET", live, "", ""); len(r.body["data"].([]any)) != 3 {
		t.Errorf("after an idempotent create, the list holds %s", r.raw)
	}

	// The secrets are nowhere in the clear: not in the event log, not in the ledger's own log.
	for _, s := range []string{secret, newSecret, fd["secret"].(string)} {
		if hits, total := scanLedger(t, m, s); len(hits) > 0 || total == 0 {
			t.Errorf("secret %s…: in %v of %d messages", s[:10], hits, total)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("secret %s… is in the ledger's log", s[:10])
		}
	}

	// The read store rebuilt from the log is the live one.
	last, err := m.events.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.live.WaitFor(context.Background(), last); err != nil {
		t.Fatal(err)
	}

	// Delete: 404 from then on, for every call.
	if r := c.endpoint("DELETE", live, "/"+id, ""); r.status != 200 || r.body["data"].(map[string]any)["deleted"] != true {
		t.Fatalf("DELETE: %d %s", r.status, r.raw)
	}
	for _, call := range []struct{ method, path, body string }{
		{"GET", "/" + id, ""}, {"PATCH", "/" + id, `{"disabled":false}`}, {"DELETE", "/" + id, ""}, {"POST", "/" + id + "/rotate_secret", ""},
	} {
		if r := c.endpoint(call.method, live, call.path, call.body); r.status != 404 {
			t.Errorf("deleted: %s %s = %d %s", call.method, call.path, r.status, r.raw)
		}
	}
	if r := c.endpoint("GET", live, "", ""); len(r.body["data"].([]any)) != 2 || strings.Contains(r.raw, id) {
		t.Errorf("after the delete, the list holds %s", r.raw)
	}
	// Its key is destroyed: the log still holds its events, but no longer its secrets.
	evs, _, err := m.events.Load(context.Background(), events.Aggregate{Mode: events.ModeLive, StoreID: storeA, Type: events.AggregateWebhookEndpoint, ID: id})
	if err != nil || len(evs) != 4 {
		t.Fatalf("the deleted endpoint's events: %d, %v", len(evs), err)
	}
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.WebhookEndpointCreated:
			if p.Secret != "" || !p.PersonalErased {
				t.Errorf("after the delete, the created event still opens: %+v", p)
			}
		case events.WebhookEndpointSecretRotated:
			if p.Secret != "" || !p.PersonalErased {
				t.Errorf("after the delete, the rotation still opens: %+v", p)
			}
		}
	}

	if want := rebuildEqualsLive(t, m, dir); len(want["webhook_endpoints"]) != 3 { // two of the first store, the test-mode http one
		t.Fatalf("the live read store holds endpoints %v", want["webhook_endpoints"])
	}
}

// LEDGER_WEBHOOK_ALLOW_PRIVATE lets an endpoint name a loopback address (development, tests).
func TestWebhookEndpointsAllowPrivate(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { c.WebhookAllowPrivate = true })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "hooks-private")
	mustEndpoint(t, c, live, `{"url":"http://127.0.0.1:9000/hook","events":["*"]}`)
	if r := c.post("/v1/webhook_endpoints", live, "", `{"url":"file:///etc/passwd","events":["*"]}`); r.status != 422 {
		t.Errorf("a file URL with private addresses allowed: %d %s", r.status, r.raw)
	}
	// The cloud metadata service hands out the host's credentials: never an endpoint, flag or not.
	if r := c.post("/v1/webhook_endpoints", live, "", `{"url":"http://169.254.169.254/latest/meta-data","events":["*"]}`); r.status != 422 {
		t.Errorf("the metadata address with private addresses allowed: %d %s", r.status, r.raw)
	}
}

// A store has at most 16 endpoints per mode, however many creates race for the last places; the other
// mode has its own 16; a deleted endpoint frees its place.
func TestWebhookEndpointsCap(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "hooks-cap")
	for i := range 10 {
		mustEndpoint(t, c, live, fmt.Sprintf(`{"url":"https://example.com/h%d","events":["*"]}`, i))
	}
	rs := parallelDo(t, 12, func(i int) (*http.Request, error) {
		req, err := http.NewRequest("POST", c.base+"/v1/webhook_endpoints", strings.NewReader(fmt.Sprintf(`{"url":"https://example.com/r%d","events":["*"]}`, i)))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+live)
		}
		return req, err
	})
	created, refused := 0, 0
	var last response
	for _, r := range rs {
		switch {
		case r.status == 201:
			created++
		case r.status == 409 && field(r.body, "error.code") == "too_many_webhook_endpoints":
			refused, last = refused+1, r
		default:
			t.Fatalf("racing create: %d %s", r.status, r.raw)
		}
	}
	if created != 6 || refused != 6 {
		t.Fatalf("%d created and %d refused, want 6 and 6", created, refused)
	}
	if !strings.Contains(last.raw, "16") {
		t.Fatalf("the refusal does not state the cap: %s", last.raw)
	}
	ep, _ := mustEndpoint(t, c, test, `{"url":"https://example.com/test","events":["*"]}`)
	_ = ep
	list := c.do("GET", "/v1/webhook_endpoints?per_page=100", "Bearer "+live, nil)
	first := list.body["data"].([]any)[0].(map[string]any)["id"].(string)
	if r := c.endpoint("DELETE", live, "/"+first, ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	mustEndpoint(t, c, live, `{"url":"https://example.com/again","events":["*"]}`)
	if r := c.post("/v1/webhook_endpoints", live, "", `{"url":"https://example.com/one-more","events":["*"]}`); r.status != 409 {
		t.Fatalf("a 17th endpoint: %d %s", r.status, r.raw)
	}
}
