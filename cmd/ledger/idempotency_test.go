package main

import (
	"net/http"
	"strings"
	"testing"
)

// End-to-end tests of Idempotency-Key on every POST that creates something: real embedded NATS, real
// SQLite, real HTTP.

// idemEndpoint is one creating POST: its path, its auth, a body that creates, another that creates
// something else, one that fails validation, and where the created resource's id is in the answer.
type idemEndpoint struct {
	name      string
	path      string
	auth      string
	body      string
	otherBody string
	badBody   string
	idPath    string
}

func idemEndpoints(live, customerID string) []idemEndpoint {
	return []idemEndpoint{
		{
			name: "customers", path: "/v1/customers", auth: "Bearer " + live,
			body:      `{"email":"idem@example.com","first_name":"Ada"}`,
			otherBody: `{"email":"idem2@example.com","first_name":"Grace"}`,
			badBody:   `{"email":"not an email"}`,
			idPath:    "data.id",
		},
		{
			name: "addresses", path: "/v1/customers/" + customerID + "/addresses", auth: "Bearer " + live,
			body:      `{"line1":"1 Main St","city":"Paris","country":"FR"}`,
			otherBody: `{"line1":"2 Main St","city":"Paris","country":"FR"}`,
			badBody:   `{"line1":"1 Main St","city":"Paris","country":"XX"}`,
			idPath:    "data.id",
		},
		{
			name: "stores", path: "/v1/admin/stores", auth: "Bearer " + adminToken,
			body:      `{"name":"Idem Shop","slug":"idem-shop"}`,
			otherBody: `{"name":"Idem Shop","slug":"idem-shop-2"}`,
			badBody:   `{"name":"Idem Shop","slug":"Not A Slug!"}`,
			idPath:    "data.store.id",
		},
		{
			name: "checkouts", path: "/v1/checkouts", auth: "Bearer " + live,
			body:      checkoutBody("buyer@example.com", 1000, ""),
			otherBody: checkoutBody("buyer@example.com", 2000, ""),
			badBody:   checkoutBody("buyer@example.com", -1, ""),
			idPath:    "data.id",
		},
	}
}

func (c client) postAuth(path, auth, idem, body string) response {
	c.t.Helper()
	return c.send("POST", path, map[string]string{"Authorization": auth, "Idempotency-Key": idem}, strings.NewReader(body))
}

func TestIdempotencyOnEveryCreate(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "idem-every")
	owner := mustCustomer(t, c, live, `{"email":"owner@example.com"}`)["id"].(string)

	for _, ep := range idemEndpoints(live, owner) {
		t.Run(ep.name, func(t *testing.T) {
			// A validation error records nothing: the corrected retry with the same key creates.
			if r := c.postAuth(ep.path, ep.auth, ep.name+"-1", ep.badBody); r.status != http.StatusUnprocessableEntity {
				t.Fatalf("invalid body: %d %s", r.status, r.raw)
			}
			first := c.postAuth(ep.path, ep.auth, ep.name+"-1", ep.body)
			if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("corrected retry: %d %q %s", first.status, first.header.Get("Idempotent-Replayed"), first.raw)
			}
			id := field(first.body, ep.idPath)
			again := c.postAuth(ep.path, ep.auth, ep.name+"-1", ep.body)
			if again.status != http.StatusCreated || field(again.body, ep.idPath) != id {
				t.Fatalf("replay: %d %v, want 201 %v (%s)", again.status, field(again.body, ep.idPath), id, again.raw)
			}
			if again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Ledger-Position") == "" {
				t.Errorf("replay headers: Idempotent-Replayed %q, Ledger-Position %q", again.header.Get("Idempotent-Replayed"), again.header.Get("Ledger-Position"))
			}
			if r := c.postAuth(ep.path, ep.auth, ep.name+"-1", ep.otherBody); r.status != http.StatusConflict || r.errorCode() != "idempotency_key_reused" {
				t.Errorf("same key, other body: %d %s", r.status, r.raw)
			}
			if r := c.postAuth(ep.path, ep.auth, strings.Repeat("k", 256), ep.otherBody); r.status != http.StatusBadRequest {
				t.Errorf("256-character key: %d %s", r.status, r.raw)
			}
			// Another key is another request: it runs (and the body's own rules apply).
			if r := c.postAuth(ep.path, ep.auth, ep.name+"-2", ep.otherBody); r.status != http.StatusCreated || field(r.body, ep.idPath) == id {
				t.Errorf("new key, other body: %d %s", r.status, r.raw)
			}
		})
	}

	// The store replay answers the same store but cannot show its keys again: only their hashes are
	// kept, in the log or anywhere else.
	first := c.postAuth("/v1/admin/stores", "Bearer "+adminToken, "stores-key", `{"name":"Idem Shop","slug":"idem-keys"}`)
	keys, _ := field(first.body, "data.keys").(map[string]any)
	if first.status != http.StatusCreated || keys == nil || !strings.HasPrefix(keys["live"].(string), "sk_live_") {
		t.Fatalf("store create: %s", first.raw)
	}
	again := c.postAuth("/v1/admin/stores", "Bearer "+adminToken, "stores-key", `{"name":"Idem Shop","slug":"idem-keys"}`)
	if again.status != http.StatusCreated || field(again.body, "data.store.id") != field(first.body, "data.store.id") ||
		field(again.body, "data.keys") != nil || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("store replay: %d %s", again.status, again.raw)
	}
	if r := c.do("GET", "/v1/store", "Bearer "+keys["live"].(string), nil); r.status != http.StatusOK || field(r.body, "data.slug") != "idem-keys" {
		t.Errorf("live key after the replay: %d %s", r.status, r.raw)
	}
	for _, k := range []string{keys["live"].(string), keys["test"].(string), keys["live"].(string)[len("sk_live_"):]} {
		if hits, _ := scanLedger(t, m, k); len(hits) > 0 {
			t.Errorf("a store key is in the log: %v", hits)
		}
	}
}

func TestIdempotencyKeyNamesOneEndpointAndScope(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "idem-scope")
	_, otherLive, _ := createStore(t, c, "idem-scope-other")
	ada := mustCustomer(t, c, live, `{"email":"ada@example.com"}`)["id"].(string)
	bob := mustCustomer(t, c, live, `{"email":"bob@example.com"}`)["id"].(string)

	customer := `{"email":"scope@example.com"}`
	address := `{"line1":"1 Main St","city":"Paris","country":"FR"}`
	if r := c.post("/v1/customers", live, "shared", customer); r.status != http.StatusCreated {
		t.Fatalf("first use: %d %s", r.status, r.raw)
	}
	tests := []struct {
		name, path, key, body string
		status                int
		code                  string
	}{
		{"checkout with a customer's key", "/v1/checkouts", live, checkoutBody("scope@example.com", 100, ""), 409, "idempotency_key_reused"},
		{"address with a customer's key", "/v1/customers/" + ada + "/addresses", live, address, 409, "idempotency_key_reused"},
		{"same key, test mode", "/v1/customers", test, customer, 201, ""},
		{"same key, other store", "/v1/customers", otherLive, customer, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post(tt.path, tt.key, "shared", tt.body)
			if r.status != tt.status || r.errorCode() != tt.code || r.header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("%d %q %s, want %d %q", r.status, r.header.Get("Idempotent-Replayed"), r.raw, tt.status, tt.code)
			}
		})
	}
	// An address key is bound to its customer: the same key and body for another customer is another
	// request, refused.
	if r := c.post("/v1/customers/"+ada+"/addresses", live, "addr", address); r.status != http.StatusCreated {
		t.Fatalf("address: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/customers/"+bob+"/addresses", live, "addr", address); r.status != http.StatusConflict || r.errorCode() != "idempotency_key_reused" {
		t.Errorf("address key on another customer: %d %s", r.status, r.raw)
	}
	// The admin API's keys are a namespace of their own.
	if r := c.postAuth("/v1/admin/stores", "Bearer "+adminToken, "shared", `{"name":"S","slug":"idem-scope-3"}`); r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("admin key named like a store's: %d %s", r.status, r.raw)
	}
}

func TestIdempotencyReplayIsTheResourceAsItIsNow(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "idem-now")
	body := `{"email":"now@example.com","first_name":"Ada"}`
	id := field(c.post("/v1/customers", live, "now", body).body, "data.id").(string)
	if r := c.send("PATCH", "/v1/customers/"+id, map[string]string{"Authorization": "Bearer " + live}, strings.NewReader(`{"first_name":"Grace"}`)); r.status != 200 {
		t.Fatalf("patch: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/customers", live, "now", body); r.status != 201 || field(r.body, "data.first_name") != "Grace" {
		t.Errorf("replay after a change: %d %s, want 201 with first_name Grace", r.status, r.raw)
	}

	addr := `{"line1":"1 Main St","city":"Paris","country":"FR"}`
	aid := field(c.post("/v1/customers/"+id+"/addresses", live, "addr-now", addr).body, "data.id").(string)
	if r := c.do("DELETE", "/v1/customers/"+id+"/addresses/"+aid, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("remove address: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/customers/"+id+"/addresses", live, "addr-now", addr); r.status != 404 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of a removed address: %d %s, want 404 replayed", r.status, r.raw)
	}

	if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/customers", live, "now", body); r.status != 404 {
		t.Errorf("replay of an erased customer: %d %s, want 404", r.status, r.raw)
	}
}

func TestIdempotencyUnderRace(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "idem-race")
	owner := mustCustomer(t, c, live, `{"email":"owner@example.com"}`)["id"].(string)
	const racers = 10
	for _, ep := range idemEndpoints(live, owner) {
		t.Run(ep.name, func(t *testing.T) {
			rs := parallelDo(t, racers, func(int) (*http.Request, error) {
				rq, err := http.NewRequest("POST", c.base+ep.path, strings.NewReader(ep.body))
				if err == nil {
					rq.Header.Set("Authorization", ep.auth)
					rq.Header.Set("Idempotency-Key", "race-"+ep.name)
				}
				return rq, err
			})
			ids, replays := map[any]bool{}, 0
			for i, r := range rs {
				if r.status != http.StatusCreated {
					t.Fatalf("racer %d: %d %s", i, r.status, r.raw)
				}
				ids[field(r.body, ep.idPath)] = true
				if r.header.Get("Idempotent-Replayed") == "true" {
					replays++
				}
			}
			if len(ids) != 1 || replays != racers-1 {
				t.Fatalf("%d resources and %d replays for one key, want 1 and %d", len(ids), replays, racers-1)
			}
		})
	}
	// Exactly one address was added, whatever the answers said.
	if r := c.do("GET", "/v1/customers/"+owner+"/addresses", "Bearer "+live, nil); len(listIDs(t, r)) != 1 {
		t.Errorf("addresses after the race: %s", r.raw)
	}
}
