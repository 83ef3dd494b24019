package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// End-to-end tests of the customers API: real embedded NATS, real SQLite, real HTTP.

// postCustomer is POST /v1/customers with a store key.
func postCustomer(c client, key, body string) response {
	c.t.Helper()
	return c.post("/v1/customers", key, "", body)
}

// mustCustomer creates a customer and returns its object.
func mustCustomer(t *testing.T, c client, key, body string) map[string]any {
	t.Helper()
	r := postCustomer(c, key, body)
	if r.status != http.StatusCreated {
		t.Fatalf("create customer %s: %d %s", body, r.status, r.raw)
	}
	return r.body["data"].(map[string]any)
}

// getCustomer is GET /v1/customers/{id}.
func getCustomer(c client, key, id string) response {
	c.t.Helper()
	return c.do("GET", "/v1/customers/"+id, "Bearer "+key, nil)
}

// customerList is GET /v1/customers?query, which must answer 200; it returns the ids in order and the
// pagination object.
func customerList(t *testing.T, c client, key, query string) ([]string, map[string]any) {
	t.Helper()
	r := c.do("GET", "/v1/customers?"+query, "Bearer "+key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/customers?%s: %d %s", query, r.status, r.raw)
	}
	return listIDs(t, r), r.body["pagination"].(map[string]any)
}

func listIDs(t *testing.T, r response) []string {
	t.Helper()
	items, ok := r.body["data"].([]any)
	if !ok {
		t.Fatalf("data is not an array: %s", r.raw)
	}
	ids := []string{}
	for _, it := range items {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

// errorFields returns the field names of a validation error, sorted.
func errorFields(r response) []string {
	fields, _ := field(r.body, "error.fields").(map[string]any)
	var names []string
	for k, v := range fields {
		if msgs, ok := v.([]any); ok && len(msgs) > 0 {
			names = append(names, k)
		} else {
			names = append(names, k+"(no messages)")
		}
	}
	sort.Strings(names)
	return names
}

// jsonString is s as a JSON string literal.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// metadataOf returns a compact JSON object of exactly n bytes.
func metadataOf(n int) string {
	return `{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`
}

// parallelDo runs n requests at once (released together) and returns their responses. It never calls
// t.Fatal off the test goroutine.
func parallelDo(t *testing.T, n int, req func(i int) (*http.Request, error)) []response {
	t.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rq, err := req(i)
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			res, err := http.DefaultClient.Do(rq)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			out[i] = response{status: res.StatusCode, header: res.Header, raw: string(raw)}
			_ = json.Unmarshal(raw, &out[i].body)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

func jsonRequest(method, url, key, body string) (*http.Request, error) {
	rq, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	rq.Header.Set("Authorization", "Bearer "+key)
	return rq, nil
}

// tinyPNG and tinyJPEG are real, decodable 3x2 images.
func tinyImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for x := range 3 {
		for y := range 2 {
			img.Set(x, y, color.RGBA{uint8(80 * x), uint8(120 * y), 200, 255})
		}
	}
	return img
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, tinyImage()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, tinyImage(), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// putPhoto is PUT /v1/customers/{id}/photo with a raw body.
func putPhoto(c client, key, id, contentType string, img []byte) response {
	c.t.Helper()
	return c.send("PUT", "/v1/customers/"+id+"/photo", map[string]string{"Authorization": "Bearer " + key, "Content-Type": contentType}, bytes.NewReader(img))
}

// putPhotoMultipart uploads img as the file of form field name.
func putPhotoMultipart(t *testing.T, c client, key, id, name, filename string, img []byte) response {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.WriteField("note", "profile picture"); err != nil {
		t.Fatal(err)
	}
	fw, err := w.CreateFormFile(name, filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(img)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return c.send("PUT", "/v1/customers/"+id+"/photo", map[string]string{"Authorization": "Bearer " + key, "Content-Type": w.FormDataContentType()}, &b)
}

// avatarPath is the path of an absolute avatar_url on this ledger.
func avatarPath(t *testing.T, c client, obj map[string]any) string {
	t.Helper()
	u, ok := obj["avatar_url"].(string)
	if !ok || !strings.HasPrefix(u, c.base+"/v1/avatars/") {
		t.Fatalf("avatar_url = %v; want a link under %s/v1/avatars/", obj["avatar_url"], c.base)
	}
	return strings.TrimPrefix(u, c.base)
}

// scanLedger reads every message of the LEDGER stream and returns those whose subject, headers or body
// contain needle (case-insensitively), and how many messages were read.
func scanLedger(t *testing.T, m *Main, needle string) (hits []string, total int) {
	t.Helper()
	ctx := context.Background()
	js, err := natsjs.New(m.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, jetstream.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := strings.ToLower(needle)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		total++
		var hay strings.Builder
		hay.WriteString(msg.Subject + "\n")
		for k, vs := range msg.Header {
			hay.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		hay.Write(msg.Data)
		// Bytes in a JSON body travel as base64: look inside them too.
		var body any
		if json.Unmarshal(msg.Data, &body) == nil {
			for _, s := range jsonStrings(body) {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) > 0 {
					hay.WriteString("\n")
					hay.Write(b)
				}
			}
		}
		if strings.Contains(strings.ToLower(hay.String()), n) {
			hits = append(hits, fmt.Sprintf("#%d %s", seq, msg.Subject))
		}
	}
	return hits, total
}

// jsonStrings returns every string value in a decoded JSON document.
func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}

// waitCustomer polls GET /v1/customers/{id} until cond holds.
func waitCustomer(t *testing.T, c client, key, id string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := getCustomer(c, key, id)
		if r.status == 200 {
			if d := r.body["data"].(map[string]any); cond(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %s never reached the expected state; last: %d %s", id, r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 1. Create: the object's shape, normalisation, every failing field listed at once, nothing written
// on a rejected request.
func TestCustomerCreateShapeAndValidation(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, test := createStore(t, c, "cust")
	ctx := context.Background()
	before, err := m.events.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const ok = `"email":"ok@example.com"`
	invalid := []struct {
		name, body string
		fields     []string
	}{
		{"email missing", `{"first_name":"Ada"}`, []string{"email"}},
		{"email blank", `{"email":"   "}`, []string{"email"}},
		{"email invalid", `{"email":"not-an-email"}`, []string{"email"}},
		{"email over 254 characters", `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, []string{"email"}},
		{"email of the wrong type", `{"email":5}`, []string{"email"}},
		{"ip invalid", `{` + ok + `,"ip":"999.1.1.1"}`, []string{"ip"}},
		{"ip with a zone", `{` + ok + `,"ip":"fe80::1%eth0"}`, []string{"ip"}},
		{"country alpha-3", `{` + ok + `,"country":"USA"}`, []string{"country"}},
		{"country name", `{` + ok + `,"country":"France"}`, []string{"country"}},
		{"country UK", `{` + ok + `,"country":"UK"}`, []string{"country"}},
		{"country unassigned", `{` + ok + `,"country":"ZZ"}`, []string{"country"}},
		{"country numeric", `{` + ok + `,"country":"84"}`, []string{"country"}},
		{"US zip of four digits", `{` + ok + `,"country":"US","state":"CO","zip":"8020"}`, []string{"zip"}},
		{"US zip of letters", `{` + ok + `,"country":"US","state":"CO","zip":"ABCDE"}`, []string{"zip"}},
		{"US zip+4 malformed", `{` + ok + `,"country":"US","state":"CO","zip":"80202-12"}`, []string{"zip"}},
		{"US without state", `{` + ok + `,"country":"US"}`, []string{"state"}},
		{"CA without state", `{` + ok + `,"country":"CA"}`, []string{"state"}},
		{"US with an unknown state", `{` + ok + `,"country":"US","state":"ZZ"}`, []string{"state"}},
		{"CA with a US state", `{` + ok + `,"country":"CA","state":"CO"}`, []string{"state"}},
		{"phone unparseable", `{` + ok + `,"phone":"call me maybe"}`, []string{"phone"}},
		{"phone too short", `{` + ok + `,"phone":"+1 000"}`, []string{"phone"}},
		{"phone national without a country", `{` + ok + `,"phone":"4155552671"}`, []string{"phone"}},
		{"metadata a string", `{` + ok + `,"metadata":"gold"}`, []string{"metadata"}},
		{"metadata an array", `{` + ok + `,"metadata":[1,2]}`, []string{"metadata"}},
		{"metadata a number", `{` + ok + `,"metadata":42}`, []string{"metadata"}},
		{"metadata of 10,241 bytes", `{` + ok + `,"metadata":` + metadataOf(10241) + `}`, []string{"metadata"}},
		{"first_name over 100 characters", `{` + ok + `,"first_name":"` + strings.Repeat("é", 101) + `"}`, []string{"first_name"}},
		{"all at once", `{"email":"nope","ip":"1.2.3","country":"USA","phone":"12","metadata":[]}`,
			[]string{"country", "email", "ip", "metadata", "phone"}},
		{"all at once, US rules", `{"email":"x@example.com","country":"US","zip":"1","ip":"::g","phone":"+1 000","metadata":"x"}`,
			[]string{"ip", "metadata", "phone", "state", "zip"}},
	}
	for _, tt := range invalid {
		t.Run("422/"+tt.name, func(t *testing.T) {
			r := postCustomer(c, live, tt.body)
			if r.status != 422 || r.errorCode() != "validation_failed" {
				t.Fatalf("got %d %q, want 422 validation_failed: %s", r.status, r.errorCode(), r.raw)
			}
			if got := errorFields(r); !slices.Equal(got, tt.fields) {
				t.Fatalf("fields %v, want exactly %v: %s", got, tt.fields, r.raw)
			}
		})
	}
	malformed := []struct{ name, body, mention string }{
		{"unknown field", `{"email":"u@example.com","colour":"red"}`, "colour"},
		{"misspelt field", `{"emial":"u@example.com"}`, "emial"},
		{"empty body", ``, ""},
		{"not JSON", `{"email":`, ""},
		{"not an object", `["u@example.com"]`, ""},
	}
	for _, tt := range malformed {
		t.Run("400/"+tt.name, func(t *testing.T) {
			r := postCustomer(c, live, tt.body)
			msg, _ := field(r.body, "error.message").(string)
			if r.status != 400 || r.errorCode() != "invalid_request" || !strings.Contains(msg, tt.mention) {
				t.Fatalf("got %d %s, want 400 invalid_request naming %q", r.status, r.raw, tt.mention)
			}
		})
	}
	// None of the rejected requests wrote anything: no event, no customer.
	if after, err := m.events.LastSequence(ctx); err != nil || after != before {
		t.Fatalf("rejected creates moved the log from %d to %d (%v)", before, after, err)
	}
	if ids, _ := customerList(t, c, live, ""); len(ids) != 0 {
		t.Fatalf("rejected creates left customers behind: %v", ids)
	}

	// The full object.
	r := postCustomer(c, live, `{"email":"  Ada.Lovelace@Example.COM ","first_name":" Ada ","last_name":"Lovelace","phone":"+1 415 555 2671",
		"country":"us","address":"1st Street","city":"Denver","zip":"80202","state":"co","ip":"127.0.0.1",
		"metadata":{"tier":"gold","points":3,"nested":{"ok":true}}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r.header.Get("Ledger-Position") == "" {
		t.Error("create: no Ledger-Position header")
	}
	d := r.body["data"].(map[string]any)
	for _, k := range []string{"id", "object", "name", "first_name", "last_name", "email", "avatar_url", "phone", "country", "address",
		"city", "zip", "state", "ip", "metadata", "addresses", "store", "stats", "livemode", "test", "created_at", "updated_at"} {
		if _, ok := d[k]; !ok {
			t.Errorf("customer object lacks %q", k)
		}
	}
	for path, want := range map[string]any{
		"object": "customer", "name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace", "email": "Ada.Lovelace@Example.COM", // as typed
		"avatar_url": nil, "phone.number": "+1 415-555-2671", "phone.e164": "+14155552671",
		"phone.country.name": "United States", "phone.country.code": "US", "phone.country.alpha_3_code": "USA",
		"phone.country.dial_code": "+1", "phone.country.currency": "USD", "phone.country.flag": "🇺🇸",
		"country": "US", "address": "1st Street", "city": "Denver", "zip": "80202", "state": "CO", "ip": "127.0.0.1",
		"metadata.tier": "gold", "metadata.points": 3.0, "metadata.nested.ok": true,
		"store.id": storeID, "store.name": "Shop cust",
		"stats.completed_sales": 0.0, "stats.first_purchase_at": nil, "stats.last_purchase_at": nil,
		"livemode": true, "test": false,
	} {
		if got := field(d, path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	if id, _ := d["id"].(string); !strings.HasPrefix(id, "cus_") {
		t.Errorf("id %q lacks the cus_ prefix", id)
	}
	if a, ok := d["addresses"].([]any); !ok || len(a) != 0 {
		t.Errorf("addresses = %#v, want []", d["addresses"])
	}
	if s, ok := field(d, "stats.total_spent").([]any); !ok || len(s) != 0 {
		t.Errorf("stats.total_spent = %#v, want []", field(d, "stats.total_spent"))
	}
	created, err := time.Parse(time.RFC3339, fmt.Sprint(d["created_at"]))
	if err != nil || time.Since(created) > time.Minute || time.Since(created) < -time.Minute || d["updated_at"] != d["created_at"] {
		t.Errorf("created_at %v, updated_at %v: want now, and equal", d["created_at"], d["updated_at"])
	}
	got := getCustomer(c, live, d["id"].(string))
	if got.status != 200 || !reflect.DeepEqual(got.body["data"], r.body["data"]) {
		t.Errorf("GET after create differs:\n%s\nvs\n%s", got.raw, r.raw)
	}

	valid := []struct {
		name, key, body string
		want            map[string]any
	}{
		{"email only", live, `{"email":"min@example.com"}`, map[string]any{"first_name": nil, "last_name": nil,
			"phone": nil, "country": nil, "zip": nil, "state": nil, "ip": nil, "metadata": nil, "avatar_url": nil}},
		{"metadata of exactly 10,240 bytes", live, `{"email":"meta@example.com","metadata":` + metadataOf(10240) + `}`,
			map[string]any{"email": "meta@example.com"}},
		{"metadata of 10,240 bytes once compacted", live,
			`{"email":"meta2@example.com","metadata": { "k" :  "` + strings.Repeat("x", 10232) + `" } }`, map[string]any{"email": "meta2@example.com"}},
		{"national phone read in the country", live, `{"email":"fr@example.com","country":"fr","phone":"06 12 34 56 78"}`,
			map[string]any{"country": "FR", "phone.e164": "+33612345678", "phone.number": "+33 6 12 34 56 78", "phone.country.code": "FR",
				"phone.country.currency": "EUR"}},
		{"CA province upper-cased", live, `{"email":"ca@example.com","country":"CA","state":"on","zip":"M5H 2N2"}`,
			map[string]any{"state": "ON", "zip": "M5H 2N2"}},
		{"US zip+4", live, `{"email":"zip4@example.com","country":"US","state":"NY","zip":"10001-1234"}`, map[string]any{"zip": "10001-1234"}},
		{"state free text outside US and CA", live, `{"email":"de@example.com","country":"DE","state":"Bayern"}`, map[string]any{"state": "Bayern"}},
		{"IPv4-mapped IPv6 ip", live, `{"email":"ip4@example.com","ip":"::FFFF:10.0.0.1"}`, map[string]any{"ip": "10.0.0.1"}},
		{"IPv6 ip canonical", live, `{"email":"ip6@example.com","ip":"2001:DB8:0:0::1"}`, map[string]any{"ip": "2001:db8::1"}},
		{"test mode", test, `{"email":"ada.lovelace@example.com","last_name":"Lovelace"}`,
			map[string]any{"livemode": false, "test": true, "name": "Lovelace", "store.id": storeID}},
	}
	for _, tt := range valid {
		t.Run("201/"+tt.name, func(t *testing.T) {
			r := postCustomer(c, tt.key, tt.body)
			if r.status != 201 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			d := r.body["data"].(map[string]any)
			for path, want := range tt.want {
				if got := field(d, path); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", path, got, want)
				}
			}
			// Without first or last name there is no name: null or "", never made up.
			if !strings.Contains(tt.body, "_name") && d["name"] != nil && d["name"] != "" {
				t.Errorf("name = %#v without first or last name", d["name"])
			}
		})
	}
	if ids, _ := customerList(t, c, live, "per_page=100"); len(ids) != 10 {
		t.Errorf("live list holds %d customers, want 10", len(ids))
	}
	if ids, _ := customerList(t, c, test, "per_page=100"); len(ids) != 1 {
		t.Errorf("test list holds %d customers, want 1", len(ids))
	}
}

// 2. One email, one customer per store and mode, even under a race of differently written copies.
func TestCustomerEmailUniqueUnderRace(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "race")
	_, otherLive, _ := createStore(t, c, "race-other")
	ctx := context.Background()
	before, err := m.events.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}

	variants := []string{"Race@Example.com", " race@example.com", "RACE@EXAMPLE.COM ", "race@EXAMPLE.com", "  race@example.com  "}
	const racers = 50
	rs := parallelDo(t, racers, func(i int) (*http.Request, error) {
		return jsonRequest("POST", c.base+"/v1/customers", live, `{"email":`+jsonString(variants[i%len(variants)])+`,"first_name":"Racer"}`)
	})
	count := map[int]int{}
	var winner string
	for _, r := range rs {
		count[r.status]++
		switch r.status {
		case 201:
			winner, _ = field(r.body, "data.id").(string)
		case 409:
			if r.errorCode() != "email_taken" {
				t.Errorf("409 with code %q: %s", r.errorCode(), r.raw)
			}
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.raw)
		}
	}
	if count[201] != 1 || count[409] != racers-1 {
		t.Fatalf("statuses %v; want one 201 and %d 409s", count, racers-1)
	}
	ids, _ := customerList(t, c, live, "per_page=100")
	if len(ids) != 1 || ids[0] != winner {
		t.Fatalf("list %v; want only the winner %s", ids, winner)
	}
	// It shows the email as the winner typed it (trimmed).
	shown, _ := field(getCustomer(c, live, winner).body, "data.email").(string)
	if !slices.ContainsFunc(variants, func(v string) bool { return strings.TrimSpace(v) == shown }) {
		t.Fatalf("winner's email %q is none of the variants typed", shown)
	}
	// The losers wrote nothing: only the winner's claim and registration are in the log.
	if after, err := m.events.LastSequence(ctx); err != nil || after != before+2 {
		t.Fatalf("log moved from %d to %d (%v); want exactly the winner's 2 events", before, after, err)
	}

	for _, tt := range []struct {
		name, key string
		status    int
	}{
		{"live, again", live, 409},
		{"the store's test mode", test, 201},
		{"the test mode, again", test, 409},
		{"another store", otherLive, 201},
		{"another store, again", otherLive, 409},
	} {
		r := postCustomer(c, tt.key, `{"email":"RACE@example.com"}`)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.raw, tt.status)
		}
		if r.status == 201 && field(r.body, "data.id") == winner {
			t.Errorf("%s: got the live customer's id", tt.name)
		}
	}
	for key, n := range map[string]int{live: 1, test: 1, otherLive: 1} {
		if ids, _ := customerList(t, c, key, ""); len(ids) != n {
			t.Errorf("a key sees %d customers, want %d", len(ids), n)
		}
	}

	// Moving to one email races too: of PATCHes of different customers and POSTs, one wins.
	var movers []string
	for i := range 4 {
		movers = append(movers, mustCustomer(t, c, live, fmt.Sprintf(`{"email":"mover%d@example.com"}`, i))["id"].(string))
	}
	rs = parallelDo(t, 8, func(i int) (*http.Request, error) {
		if i < len(movers) {
			return jsonRequest("PATCH", c.base+"/v1/customers/"+movers[i], live, `{"email":"Wanted@example.com"}`)
		}
		return jsonRequest("POST", c.base+"/v1/customers", live, `{"email":"wanted@EXAMPLE.com"}`)
	})
	count = map[int]int{}
	holder := ""
	for _, r := range rs {
		count[r.status]++
		if r.status == 200 || r.status == 201 {
			holder, _ = field(r.body, "data.id").(string)
		} else if r.status != 409 || r.errorCode() != "email_taken" {
			t.Errorf("unexpected answer %d %s", r.status, r.raw)
		}
	}
	if count[200]+count[201] != 1 || count[409] != 7 {
		t.Fatalf("statuses %v; want one success and seven 409s", count)
	}
	if ids, _ := customerList(t, c, live, "search=wanted@"); !slices.Equal(ids, []string{holder}) {
		t.Fatalf("customers with the contested email: %v, want only %s", ids, holder)
	}
	for i, id := range movers {
		if id == holder {
			continue
		}
		if g := getCustomer(c, live, id); field(g.body, "data.email") != fmt.Sprintf("mover%d@example.com", i) {
			t.Errorf("a losing PATCH changed %s: %s", id, g.raw)
		}
	}
}

// 3. A checkout with a new email registers its customer; the next checkout with that email, and the
// customer API, find them.
func TestCustomerRegisteredByCheckout(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, test := createStore(t, c, "bycheckout")

	r := c.post("/v1/checkouts", live, "", checkoutBody("Buyer@Example.com", 1000, ""))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	cid, _ := field(r.body, "data.customer.id").(string)
	if !strings.HasPrefix(cid, "cus_") {
		t.Fatalf("checkout customer id %q", cid)
	}
	ids, _ := customerList(t, c, live, "")
	if !slices.Equal(ids, []string{cid}) {
		t.Fatalf("list %v; want the checkout's customer %s", ids, cid)
	}
	got := getCustomer(c, live, cid)
	for path, want := range map[string]any{"data.email": "Buyer@Example.com", "data.name": "John Doe", "data.first_name": "John",
		"data.last_name": "Doe", "data.store.id": storeID, "data.livemode": true, "data.stats.completed_sales": 0.0} {
		if v := field(got.body, path); v != want {
			t.Errorf("%s = %v, want %v", path, v, want)
		}
	}
	if s, _ := customerList(t, c, live, "search=buyer"); !slices.Equal(s, []string{cid}) {
		t.Errorf("search=buyer: %v", s)
	}

	r2 := c.post("/v1/checkouts", live, "", checkoutBody(" BUYER@example.com", 500, ""))
	if r2.status != 201 || field(r2.body, "data.customer.id") != cid {
		t.Fatalf("second checkout: customer %v, want %s (%s)", field(r2.body, "data.customer.id"), cid, r2.raw)
	}
	if r := postCustomer(c, live, `{"email":"buyer@EXAMPLE.com"}`); r.status != 409 || r.errorCode() != "email_taken" {
		t.Fatalf("POST with a checkout's email: %d %s", r.status, r.raw)
	}

	// The other way round: a checkout finds a customer created by the API.
	pre := mustCustomer(t, c, live, `{"email":"pre@example.com","first_name":"Pre"}`)
	r3 := c.post("/v1/checkouts", live, "", checkoutBody("PRE@example.com", 700, ""))
	if r3.status != 201 || field(r3.body, "data.customer.id") != pre["id"] {
		t.Fatalf("checkout with an API customer's email: customer %v, want %v", field(r3.body, "data.customer.id"), pre["id"])
	}
	if ids, _ := customerList(t, c, live, ""); len(ids) != 2 {
		t.Fatalf("live list %v; want 2 customers", ids)
	}
	// The test mode has its own customers.
	r4 := c.post("/v1/checkouts", test, "", checkoutBody("buyer@example.com", 1000, ""))
	if r4.status != 201 || field(r4.body, "data.customer.id") == cid {
		t.Fatalf("test checkout: %d, customer %v", r4.status, field(r4.body, "data.customer.id"))
	}
	if ids, _ := customerList(t, c, test, ""); len(ids) != 1 || ids[0] != field(r4.body, "data.customer.id") {
		t.Fatalf("test list %v", ids)
	}
}

// 4. PATCH changes what it is given, clears with "", moves email claims, and validates against the
// resulting country.
func TestCustomerPatch(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "patch")
	a := mustCustomer(t, c, live, `{"email":"a@example.com","first_name":"Alice","last_name":"Smith","phone":"+33612345678",
		"country":"FR","city":"Paris","zip":"75001","metadata":{"x":1}}`)
	b := mustCustomer(t, c, live, `{"email":"b@example.com"}`)
	aID, bID := a["id"].(string), b["id"].(string)
	var cID string

	patch := func(id, body string) response {
		return c.send("PATCH", "/v1/customers/"+id, map[string]string{"Authorization": "Bearer " + live}, strings.NewReader(body))
	}
	steps := []struct {
		name, id, body string
		status         int
		code           string
		fields         []string
		want           map[string]any
	}{
		{"change one field", aID, `{"first_name":"Alicia"}`, 200, "", nil, map[string]any{"first_name": "Alicia", "last_name": "Smith",
			"name": "Alicia Smith", "city": "Paris", "zip": "75001", "phone.e164": "+33612345678", "email": "a@example.com", "metadata.x": 1.0}},
		{`"" clears`, aID, `{"city":"","zip":"","metadata":null}`, 200, "", nil, map[string]any{"city": nil, "zip": nil, "metadata": nil,
			"country": "FR", "first_name": "Alicia"}},
		{"to the US without a state", aID, `{"country":"US"}`, 422, "validation_failed", []string{"state"}, nil},
		{"to the US with an unknown state", aID, `{"country":"US","state":"ZZ"}`, 422, "validation_failed", []string{"state"}, nil},
		{"to the US with a bad zip", aID, `{"country":"US","state":"ny","zip":"1000"}`, 422, "validation_failed", []string{"zip"}, nil},
		{"nothing changed by the rejections", aID, `{}`, 200, "", nil, map[string]any{"country": "FR", "state": nil, "zip": nil}},
		{"to the US properly", aID, `{"country":"US","state":"ny","zip":"10001"}`, 200, "", nil, map[string]any{"country": "US", "state": "NY", "zip": "10001"}},
		{"email cannot be cleared", aID, `{"email":""}`, 422, "validation_failed", []string{"email"}, nil},
		{"invalid email", aID, `{"email":"nope"}`, 422, "validation_failed", []string{"email"}, nil},
		{"unknown field", aID, `{"colour":"red"}`, 400, "invalid_request", nil, nil},
		{"new email", aID, `{"email":" A.New@Example.com"}`, 200, "", nil, map[string]any{"email": "A.New@Example.com", "first_name": "Alicia"}},
		{"another customer takes the new email", bID, `{"email":"A.NEW@example.com"}`, 409, "email_taken", nil, nil},
		{"unknown id", "cus_doesnotexist000000000", `{"first_name":"X"}`, 404, "not_found", nil, nil},
	}
	for _, s := range steps {
		r := patch(s.id, s.body)
		if r.status != s.status || r.errorCode() != s.code {
			t.Fatalf("%s: got %d %q, want %d %q: %s", s.name, r.status, r.errorCode(), s.status, s.code, r.raw)
		}
		if s.fields != nil {
			if got := errorFields(r); !slices.Equal(got, s.fields) {
				t.Errorf("%s: fields %v, want %v", s.name, got, s.fields)
			}
		}
		for path, want := range s.want {
			if got := field(r.body, "data."+path); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v, want %#v", s.name, path, got, want)
			}
		}
		if s.status == 200 {
			// The read model serves what the PATCH answered.
			if g := getCustomer(c, live, s.id); !reflect.DeepEqual(g.body["data"], r.body["data"]) {
				t.Errorf("%s: GET differs from the PATCH answer:\n%s\nvs\n%s", s.name, g.raw, r.raw)
			}
		}
	}

	// The old email is free again: a new customer takes it.
	r := postCustomer(c, live, `{"email":"a@example.com"}`)
	if r.status != 201 || field(r.body, "data.id") == aID {
		t.Fatalf("POST with the released email: %d %s", r.status, r.raw)
	}
	cID = field(r.body, "data.id").(string)
	for _, tt := range []struct{ name, id, body string }{
		{"POST with the new email", "", `{"email":"a.new@example.com"}`},
		{"B takes the re-registered old email", bID, `{"email":"a@example.com"}`},
		{"A moves back to its old email, now C's", aID, `{"email":"a@example.com"}`},
	} {
		var r response
		if tt.id == "" {
			r = postCustomer(c, live, tt.body)
		} else {
			r = patch(tt.id, tt.body)
		}
		if r.status != 409 || r.errorCode() != "email_taken" {
			t.Errorf("%s: %d %s, want 409 email_taken", tt.name, r.status, r.raw)
		}
	}
	if g := getCustomer(c, live, bID); field(g.body, "data.email") != "b@example.com" {
		t.Errorf("B's email after refused changes: %v", field(g.body, "data.email"))
	}
	// A checkout with A's new email is A's.
	if r := c.post("/v1/checkouts", live, "", checkoutBody("a.new@example.com", 100, "")); field(r.body, "data.customer.id") != aID {
		t.Errorf("checkout with A's new email: customer %v, want %s", field(r.body, "data.customer.id"), aID)
	}
	// The search index follows the changes.
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"alicia", []string{aID}}, {"Alice", []string{}}, {"a.new@", []string{aID}}, {"a@example.com", []string{cID}},
	} {
		if ids, _ := customerList(t, c, live, "search="+tt.q); !slices.Equal(ids, tt.want) {
			t.Errorf("search=%s: %v, want %v", tt.q, ids, tt.want)
		}
	}
}

// 5. At most three addresses, exactly one default, even under a race.
func TestCustomerAddresses(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "addresses")
	id := mustCustomer(t, c, live, `{"email":"home@example.com"}`)["id"].(string)
	base := "/v1/customers/" + id + "/addresses"
	auth := "Bearer " + live
	add := func(body string) response { return c.post(base, live, "", body) }
	defaults := func(r response) []bool {
		t.Helper()
		items, ok := r.body["data"].([]any)
		if !ok {
			t.Fatalf("addresses answer: %d %s", r.status, r.raw)
		}
		var out []bool
		for _, it := range items {
			out = append(out, it.(map[string]any)["default"].(bool))
		}
		return out
	}
	addrIDs := func(r response) []string {
		var out []string
		for _, it := range r.body["data"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}

	// Validation first, on a customer with room.
	for _, tt := range []struct {
		name, body string
		fields     []string
	}{
		{"empty", `{}`, []string{"city", "country", "line1"}},
		{"US rules", `{"line1":"x","city":"y","country":"US","zip":"1"}`, []string{"state", "zip"}},
		{"bad country", `{"line1":"x","city":"y","country":"USA"}`, []string{"country"}},
	} {
		if r := add(tt.body); r.status != 422 || !slices.Equal(errorFields(r), tt.fields) {
			t.Errorf("invalid address %s: %d %s, want 422 with fields %v", tt.name, r.status, r.raw, tt.fields)
		}
	}

	r1 := add(`{"line1":"1 Main St","city":"Denver","country":"us","state":"co","zip":"80202","default":false}`)
	r2 := add(`{"line1":"2 Rue de Rivoli","city":"Paris","country":"FR"}`)
	r3 := add(`{"line1":"3 Queen St","line2":"Unit 4","city":"Toronto","country":"CA","state":"ON","zip":"M5H 2N2","default":true}`)
	for i, r := range []response{r1, r2, r3} {
		if r.status != 201 {
			t.Fatalf("address %d: %d %s", i+1, r.status, r.raw)
		}
		if id, _ := field(r.body, "data.id").(string); !strings.HasPrefix(id, "adr_") {
			t.Fatalf("address %d id %q", i+1, id)
		}
	}
	for path, want := range map[string]any{"data.default": true, "data.country": "US", "data.state": "CO", "data.line2": nil, "data.line1": "1 Main St"} {
		if got := field(r1.body, path); got != want {
			t.Errorf("first address %s = %v, want %v", path, got, want)
		}
	}
	if field(r2.body, "data.default") != false || field(r3.body, "data.default") != true || field(r3.body, "data.line2") != "Unit 4" {
		t.Errorf("second/third address defaults: %s / %s", r2.raw, r3.raw)
	}
	a1, a2, a3 := field(r1.body, "data.id").(string), field(r2.body, "data.id").(string), field(r3.body, "data.id").(string)

	fourth := add(`{"line1":"4 Elm St","city":"Austin","country":"US","state":"TX"}`)
	if fourth.status != 409 || fourth.errorCode() != "too_many_addresses" || field(fourth.body, "error.message") != "Customer already has 3 addresses registered." {
		t.Fatalf("fourth address: %d %s", fourth.status, fourth.raw)
	}
	list := c.do("GET", base, auth, nil)
	if list.status != 200 || !slices.Equal(addrIDs(list), []string{a1, a2, a3}) || !slices.Equal(defaults(list), []bool{false, false, true}) {
		t.Fatalf("list after three adds: %d %s", list.status, list.raw)
	}

	steps := []struct {
		name, method, path string
		status             int
		ids                []string
		defaults           []bool
	}{
		{"set the second as default", "POST", base + "/" + a2 + "/default", 200, []string{a1, a2, a3}, []bool{false, true, false}},
		{"set it again", "POST", base + "/" + a2 + "/default", 200, []string{a1, a2, a3}, []bool{false, true, false}},
		{"set an unknown address as default", "POST", base + "/adr_unknown/default", 404, nil, nil},
		{"delete the default: the oldest remaining takes over", "DELETE", base + "/" + a2, 200, []string{a1, a3}, []bool{true, false}},
		{"delete it again", "DELETE", base + "/" + a2, 404, nil, nil},
		{"delete an unknown address", "DELETE", base + "/adr_unknown", 404, nil, nil},
		{"set the last as default", "POST", base + "/" + a3 + "/default", 200, []string{a1, a3}, []bool{false, true}},
		{"delete the oldest, not the default", "DELETE", base + "/" + a1, 200, []string{a3}, []bool{true}},
	}
	for _, s := range steps {
		r := c.do(s.method, s.path, auth, nil)
		if r.status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.name, r.status, r.raw, s.status)
		}
		if s.status != 200 {
			if r.errorCode() != "not_found" {
				t.Errorf("%s: code %q", s.name, r.errorCode())
			}
			continue
		}
		if !slices.Equal(addrIDs(r), s.ids) || !slices.Equal(defaults(r), s.defaults) {
			t.Errorf("%s: ids %v defaults %v, want %v %v", s.name, addrIDs(r), defaults(r), s.ids, s.defaults)
		}
		l := c.do("GET", base, auth, nil)
		if !slices.Equal(addrIDs(l), s.ids) || !slices.Equal(defaults(l), s.defaults) {
			t.Errorf("%s: GET then shows %s", s.name, l.raw)
		}
	}
	// The customer object carries the addresses too; a new one has room again and is not the default.
	if r := add(`{"line1":"5 Oak Ave","city":"Lyon","country":"FR"}`); r.status != 201 || field(r.body, "data.default") != false {
		t.Fatalf("add after deletes: %d %s", r.status, r.raw)
	}
	g := getCustomer(c, live, id)
	if addrs, _ := field(g.body, "data.addresses").([]any); len(addrs) != 2 || field(addrs[0].(map[string]any), "id") != a3 ||
		field(addrs[0].(map[string]any), "default") != true || field(addrs[1].(map[string]any), "city") != "Lyon" {
		t.Errorf("customer addresses: %s", g.raw)
	}
	for _, p := range []struct{ method, path, body string }{
		{"GET", "/v1/customers/cus_unknown000000/addresses", ""},
		{"POST", "/v1/customers/cus_unknown000000/addresses", `{"line1":"x","city":"y","country":"FR"}`},
		{"DELETE", "/v1/customers/cus_unknown000000/addresses/" + a3, ""},
		{"POST", "/v1/customers/cus_unknown000000/addresses/" + a3 + "/default", ""},
	} {
		if r := c.do(p.method, p.path, auth, strings.NewReader(p.body)); r.status != 404 {
			t.Errorf("%s %s: %d %s", p.method, p.path, r.status, r.raw)
		}
	}
}

func TestCustomerAddressLimitUnderRace(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "addrrace")
	id := mustCustomer(t, c, live, `{"email":"crowded@example.com"}`)["id"].(string)
	const racers = 10
	rs := parallelDo(t, racers, func(i int) (*http.Request, error) {
		return jsonRequest("POST", c.base+"/v1/customers/"+id+"/addresses", live,
			fmt.Sprintf(`{"line1":"%d Race St","city":"Paris","country":"FR"}`, i+1))
	})
	count := map[int]int{}
	var won []string
	for _, r := range rs {
		count[r.status]++
		switch r.status {
		case 201:
			won = append(won, field(r.body, "data.id").(string))
		case 409:
			if r.errorCode() != "too_many_addresses" {
				t.Errorf("409 with code %q: %s", r.errorCode(), r.raw)
			}
		default:
			t.Errorf("unexpected %d %s", r.status, r.raw)
		}
	}
	if count[201] != 3 || count[409] != racers-3 {
		t.Fatalf("statuses %v; want 3 201s and %d 409s", count, racers-3)
	}
	r := c.do("GET", "/v1/customers/"+id+"/addresses", "Bearer "+live, nil)
	items, _ := r.body["data"].([]any)
	var got []string
	defaults := 0
	for _, it := range items {
		got = append(got, it.(map[string]any)["id"].(string))
		if it.(map[string]any)["default"] == true {
			defaults++
		}
	}
	sort.Strings(got)
	sort.Strings(won)
	if !slices.Equal(got, won) || defaults != 1 {
		t.Fatalf("addresses %v (%d default), want the 3 winners %v with one default", got, defaults, won)
	}
}

// 6. A completed sale counts on its customer: completed sales, total spent per currency, first and last
// purchase.
func TestCustomerStatsFromCompletedSales(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "stats")
	cust := mustCustomer(t, c, live, `{"email":"spender@example.com","first_name":"Sam"}`)
	id := cust["id"].(string)
	other := mustCustomer(t, c, live, `{"email":"window.shopper@example.com"}`)["id"].(string)

	checkout := func(email, body string) string {
		t.Helper()
		r := c.post("/v1/checkouts", live, "", body)
		if r.status != 201 || field(r.body, "data.customer.id") != id {
			t.Fatalf("checkout for %s: %d %s", email, r.status, r.raw)
		}
		return field(r.body, "data.id").(string)
	}
	usd := checkout("spender", checkoutBody("Spender@example.com", 9900, `,"discount":{"code":"SAVE20","type":"percentage","value":20}`))
	eur := checkout("spender", strings.Replace(checkoutBody("spender@example.com", 2500, ""), `"currency":"USD"`, `"currency":"EUR"`, 1))
	checkout("spender", checkoutBody("spender@example.com", 500, "")) // never paid
	c.post("/v1/checkouts", live, "", checkoutBody("window.shopper@example.com", 800, ""))

	if d := getCustomer(c, live, id); field(d.body, "data.stats.completed_sales") != 0.0 {
		t.Fatalf("stats before any payment: %s", d.raw)
	}
	now := time.Now()
	if r := c.standardWebhook("stats_1", paymentBody("payment.succeeded", usd, 7920, "USD"), now); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	s1 := waitSale(t, c, live, usd, func(d map[string]any) bool { return d["status"] == "completed" })
	one := waitCustomer(t, c, live, id, func(d map[string]any) bool { return field(d, "stats.completed_sales") == 1.0 })
	for path, want := range map[string]any{"stats.first_purchase_at": s1["completed_at"], "stats.last_purchase_at": s1["completed_at"]} {
		if got := field(one, path); got == nil || got != want {
			t.Errorf("after one sale: %s = %v, want %v", path, got, want)
		}
	}
	wantSpent := []any{map[string]any{"amount": 7920.0, "currency": "USD", "formatted": "$79.20"}}
	if got := field(one, "stats.total_spent"); !reflect.DeepEqual(got, wantSpent) {
		t.Errorf("after one sale: total_spent %#v, want %#v", got, wantSpent)
	}

	time.Sleep(1100 * time.Millisecond) // timestamps have second precision: the second sale completes later
	if r := c.standardWebhook("stats_2", paymentBody("payment.succeeded", eur, 2500, "EUR"), time.Now()); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	s2 := waitSale(t, c, live, eur, func(d map[string]any) bool { return d["status"] == "completed" })
	two := waitCustomer(t, c, live, id, func(d map[string]any) bool { return field(d, "stats.completed_sales") == 2.0 })
	spent, _ := field(two, "stats.total_spent").([]any)
	if len(spent) != 2 || field(spent[0].(map[string]any), "currency") != "EUR" || field(spent[0].(map[string]any), "amount") != 2500.0 ||
		field(spent[1].(map[string]any), "currency") != "USD" || field(spent[1].(map[string]any), "amount") != 7920.0 {
		t.Errorf("after two sales: total_spent %#v, want EUR 2500 then USD 7920", spent)
	}
	if field(two, "stats.first_purchase_at") != s1["completed_at"] || field(two, "stats.last_purchase_at") != s2["completed_at"] ||
		s1["completed_at"] == s2["completed_at"] {
		t.Errorf("first/last purchase %v / %v, want %v / %v", field(two, "stats.first_purchase_at"), field(two, "stats.last_purchase_at"),
			s1["completed_at"], s2["completed_at"])
	}
	// The list shows the same stats; a customer without a completed sale has none.
	r := c.do("GET", "/v1/customers?search=spender", "Bearer "+live, nil)
	if items, _ := r.body["data"].([]any); len(items) != 1 || field(items[0].(map[string]any), "stats.completed_sales") != 2.0 {
		t.Errorf("listed stats: %s", r.raw)
	}
	if d := getCustomer(c, live, other); field(d.body, "data.stats.completed_sales") != 0.0 || len(field(d.body, "data.stats.total_spent").([]any)) != 0 {
		t.Errorf("unpaid customer's stats: %s", d.raw)
	}
}

// 7. Search, lists and pagination.
func TestCustomerSearchAndList(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "search")

	firsts := []string{"John", "Johnny", "Mary", "Ana", "Bob", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jack",
		"Kofi", "Lena", "Marco", "Nadia", "Omar", "Paula", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Zoe"}
	lasts := []string{"Smith", "Appleseed", "Johnson", "Lima", "Stone", "Diaz", "Ivanov", "Petrova", "Haddad", "Hopper", "Tanaka", "Moreau",
		"Black", "Mensah", "Berg", "Rossi", "Karim", "Farouk", "Costa", "Reed", "Alvarez", "Olsen", "Aziz", "Patel", "Becker"}
	domains := []string{"example.com", "shop.io", "mail.net"}
	type person struct{ id, name, email, phone string }
	var people []person // oldest first
	for i := range firsts {
		p := person{name: firsts[i] + " " + lasts[i], email: strings.ToLower(firsts[i]+"."+lasts[i]) + "@" + domains[i%3]}
		switch {
		case i%2 == 0:
			p.phone = fmt.Sprintf("+1415555%04d", 100+i)
		case i%5 == 1:
			p.phone = fmt.Sprintf("+336123456%02d", i)
		}
		body := `{"email":` + jsonString(strings.ToUpper(p.email[:1])+p.email[1:]) + `,"first_name":` + jsonString(firsts[i]) +
			`,"last_name":` + jsonString(lasts[i])
		if p.phone != "" {
			body += `,"phone":` + jsonString(p.phone)
		}
		p.id = mustCustomer(t, c, live, body+"}")["id"].(string)
		people = append(people, p)
	}
	newest := make([]string, len(people))
	for i, p := range people {
		newest[len(people)-1-i] = p.id
	}
	// oracle: the customers whose name, email or phone contains q, case-insensitively, newest first.
	oracle := func(q string) []string {
		q = strings.ToLower(q)
		out := []string{}
		for i := len(people) - 1; i >= 0; i-- {
			p := people[i]
			if strings.Contains(strings.ToLower(p.name), q) || strings.Contains(p.email, q) || strings.Contains(p.phone, q) {
				out = append(out, p.id)
			}
		}
		return out
	}

	searches := []struct {
		q    string
		want int // how many the oracle must find, so that no query is vacuous
	}{
		{"JOHN", 3},              // John Smith, Johnny Appleseed, Mary Johnson
		{"jOhNsOn", 1},           // name and email
		{"john smith", 1},        // across first and last name
		{"@shop.io", 8},          // email fragment
		{"petrova@shop", 1},      // email fragment across the @
		{"4155550", 13},          // phone digits
		{"+1415555", 13},         // with the +
		{"5550112", 1},           // one phone
		{"+336123456", 3},        // French numbers
		{"ar", 8},                // two characters
		{"zo", 1},                // two characters, one match
		{"Z", 4},                 // one character: Diaz, Alvarez, Aziz, Zoe
		{"_", 0},                 // LIKE wildcards are literal
		{"%", 0},                 //
		{"nobody-here", 0},       //
		{`a"b`, 0},               // a quote in a trigram query
		{"example.com", 9},       //
		{"ROSSI@EXAMPLE.COM", 1}, //
		{"  becker  ", 1},        // surrounding blanks are ignored
		{"mensah@mail.net", 0},   // Kofi Mensah is on shop.io (13 % 3 == 1)
	}
	for _, s := range searches {
		t.Run("search "+s.q, func(t *testing.T) {
			want := oracle(strings.TrimSpace(s.q))
			if len(want) != s.want {
				t.Fatalf("oracle finds %d for %q, the test expects %d", len(want), s.q, s.want)
			}
			r := c.do("GET", "/v1/customers?per_page=100&search="+urlQueryEscape(s.q), "Bearer "+live, nil)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if got := listIDs(t, r); !slices.Equal(got, want) {
				t.Fatalf("got %v, want (newest first) %v", got, want)
			}
		})
	}

	// Default page: 15, newest first.
	first, pg := customerList(t, c, live, "")
	if !slices.Equal(first, newest[:15]) || pg["has_more"] != true || pg["next_cursor"] == nil || pg["prev_cursor"] != nil {
		t.Fatalf("default page: %v %v", first, pg)
	}
	// Walking next_cursor visits everyone exactly once, in order; prev_cursor goes back.
	walk := func(query string, per int) []string {
		t.Helper()
		var all []string
		cursor := ""
		for pages := 0; ; pages++ {
			q := fmt.Sprintf("per_page=%d%s", per, query)
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			ids, pg := customerList(t, c, live, q)
			if len(ids) > per {
				t.Fatalf("page of %d with per_page=%d", len(ids), per)
			}
			all = append(all, ids...)
			next, _ := pg["next_cursor"].(string)
			if next == "" {
				if pg["has_more"] != false {
					t.Errorf("last page says has_more %v", pg["has_more"])
				}
				return all
			}
			if pages > 30 {
				t.Fatal("the cursor walk does not end")
			}
			cursor = next
		}
	}
	if got := walk("", 4); !slices.Equal(got, newest) {
		t.Fatalf("per_page=4 walk: %v, want %v", got, newest)
	}
	if got := walk("&search=example", 3); !slices.Equal(got, oracle("example")) {
		t.Fatalf("search walk: %v, want %v", got, oracle("example"))
	}
	p1, pg1 := customerList(t, c, live, "per_page=4")
	p2, pg2 := customerList(t, c, live, "per_page=4&cursor="+pg1["next_cursor"].(string))
	back, _ := customerList(t, c, live, "per_page=4&cursor="+pg2["prev_cursor"].(string))
	if !slices.Equal(p2, newest[4:8]) || !slices.Equal(back, p1) {
		t.Fatalf("page 2 %v (want %v), back %v (want %v)", p2, newest[4:8], back, p1)
	}
	if pg2["prev_cursor"] == nil || pg2["next_cursor"] == nil || pg2["has_more"] != true {
		t.Errorf("page 2 pagination: %v", pg2)
	}

	// page and page_size.
	for _, tt := range []struct {
		query   string
		want    []string
		hasMore bool
		page    float64
		size    float64
	}{
		{"page=1&page_size=10", newest[0:10], true, 1, 10},
		{"page=2&page_size=10", newest[10:20], true, 2, 10},
		{"page=3&page_size=10", newest[20:25], false, 3, 10},
		{"page=4&page_size=10", []string{}, false, 4, 10},
		{"page=2", newest[15:25], false, 2, 15},
		{"page_size=5", newest[0:5], true, 1, 5},
		{"page=5&page_size=5", newest[20:25], false, 5, 5},
		{"search=4155550&page=2&page_size=5", oracle("4155550")[5:10], true, 2, 5},
	} {
		ids, pg := customerList(t, c, live, tt.query)
		if !slices.Equal(ids, tt.want) || pg["has_more"] != tt.hasMore || pg["page"] != tt.page || pg["page_size"] != tt.size {
			t.Errorf("%s: %v %v; want %v has_more=%v page=%v page_size=%v", tt.query, ids, pg, tt.want, tt.hasMore, tt.page, tt.size)
		}
	}

	// Date ranges: every customer was created today (UTC).
	today := time.Now().UTC().Format(time.DateOnly)
	yesterday := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"start_date=" + today + "&end_date=" + today, newest},
		{"start_date=" + yesterday + "&end_date=" + today, newest},
		{"start_date=" + today, newest},
		{"end_date=" + today, newest},
		{"end_date=" + yesterday, []string{}},
		{"start_date=" + tomorrow, []string{}},
		{"start_date=2020-01-01&end_date=" + yesterday, []string{}},
		{"search=john&start_date=" + today + "&end_date=" + today, oracle("john")},
		{"search=john&end_date=" + yesterday, []string{}},
	} {
		if ids, _ := customerList(t, c, live, "per_page=100&"+tt.query); !slices.Equal(ids, tt.want) {
			t.Errorf("%s: %d customers, want %d", tt.query, len(ids), len(tt.want))
		}
	}

	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"s":0,"d":"n"}`))
	badDir := base64.RawURLEncoding.EncodeToString([]byte(`{"s":5,"d":"x"}`))
	valid := pg1["next_cursor"].(string)
	for _, tt := range []struct{ query, message string }{
		{"per_page=0", "per_page"}, {"per_page=101", "per_page"}, {"per_page=ten", "per_page"},
		{"page=0", "page"}, {"page=-1", "page"}, {"page=two", "page"}, {"page_size=0", "page_size"}, {"page_size=101", "page_size"},
		{"page=1&cursor=" + valid, "not both"}, {"page_size=5&cursor=" + valid, "not both"}, {"page=1&per_page=5", "not both"},
		{"cursor=garbage", "cursor"}, {"cursor=" + forged, "cursor"}, {"cursor=" + badDir, "cursor"},
		{"search=", "The search query cannot be empty."}, {"search=%20%20", "The search query cannot be empty."},
		{"search=" + strings.Repeat("x", 101), "search"},
		{"start_date=2025-13-01", "start_date"}, {"end_date=31/01/2025", "end_date"},
		{"start_date=" + today + "&end_date=" + yesterday, "start_date"},
		{"start_date=2025-02-01&end_date=2025-01-31", "start_date"},
	} {
		r := c.do("GET", "/v1/customers?"+tt.query, "Bearer "+live, nil)
		msg, _ := field(r.body, "error.message").(string)
		if r.status != 400 || r.errorCode() != "invalid_request" || !strings.Contains(msg, tt.message) {
			t.Errorf("%s: %d %s; want 400 mentioning %q", tt.query, r.status, r.raw, tt.message)
		}
	}
	if r := c.do("GET", "/v1/customers?search=", "Bearer "+live, nil); field(r.body, "error.message") != "The search query cannot be empty." {
		t.Errorf("empty search message: %s", r.raw)
	}

	// A cursor walk visits everyone once even while new customers arrive (they are newer than the walk).
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := "per_page=6"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		ids, pg := customerList(t, c, live, q)
		for _, id := range ids {
			seen[id]++
		}
		mustCustomer(t, c, live, fmt.Sprintf(`{"email":"late%d@example.com"}`, pages))
		next, _ := pg["next_cursor"].(string)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("the cursor walk does not end")
		}
		cursor = next
	}
	for _, id := range newest {
		if seen[id] != 1 {
			t.Errorf("customer %s seen %d times", id, seen[id])
		}
	}
	if len(seen) != len(newest) {
		t.Errorf("the walk saw %d customers, want the %d that existed when it started", len(seen), len(newest))
	}
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "+", "%2B", "&", "%26", "#", "%23", `"`, "%22", "@", "%40")
	return r.Replace(s)
}

// 8. A key never reaches another store's or the other mode's customers.
func TestCustomerIsolation(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "owner")
	_, otherLive, otherTest := createStore(t, c, "intruder")
	x := mustCustomer(t, c, live, `{"email":"private.person@example.com","first_name":"Privata","last_name":"Persona","phone":"+14155552671"}`)
	xid := x["id"].(string)
	ar := c.post("/v1/customers/"+xid+"/addresses", live, "", `{"line1":"1 Secret Rd","city":"Denver","country":"US","state":"CO"}`)
	aid, _ := field(ar.body, "data.id").(string)
	pr := putPhoto(c, live, xid, "image/png", tinyPNG(t))
	if ar.status != 201 || pr.status != 200 {
		t.Fatalf("setup: address %d %s, photo %d %s", ar.status, ar.raw, pr.status, pr.raw)
	}
	original := getCustomer(c, live, xid).raw
	// Each foreign scope has customers of its own, so an empty list proves nothing.
	for _, key := range []string{test, otherLive, otherTest} {
		mustCustomer(t, c, key, `{"email":"someone.else@example.com","first_name":"Else"}`)
	}

	for _, k := range []struct{ name, key string }{{"same store, test mode", test}, {"other store, live", otherLive}, {"other store, test", otherTest}} {
		t.Run(k.name, func(t *testing.T) {
			auth := "Bearer " + k.key
			for _, req := range []struct {
				method, path, body string
			}{
				{"GET", "/v1/customers/" + xid, ""},
				{"PATCH", "/v1/customers/" + xid, `{"first_name":"Hacked"}`},
				{"PATCH", "/v1/customers/" + xid, `{"email":"hijack@example.com"}`},
				{"DELETE", "/v1/customers/" + xid, ""},
				{"GET", "/v1/customers/" + xid + "/addresses", ""},
				{"POST", "/v1/customers/" + xid + "/addresses", `{"line1":"2 Evil St","city":"Paris","country":"FR"}`},
				{"DELETE", "/v1/customers/" + xid + "/addresses/" + aid, ""},
				{"POST", "/v1/customers/" + xid + "/addresses/" + aid + "/default", ""},
			} {
				if r := c.do(req.method, req.path, auth, strings.NewReader(req.body)); r.status != 404 || r.errorCode() != "not_found" {
					t.Errorf("%s %s: %d %s, want 404", req.method, req.path, r.status, r.raw)
				}
			}
			if r := putPhoto(c, k.key, xid, "image/png", tinyPNG(t)); r.status != 404 {
				t.Errorf("PUT photo: %d %s, want 404", r.status, r.raw)
			}
			for _, q := range []string{"per_page=100", "search=private", "search=Privata", "search=4155552671", "search=pe", "page=1&page_size=100"} {
				ids, _ := customerList(t, c, k.key, q)
				if slices.Contains(ids, xid) {
					t.Errorf("%s lists the foreign customer", q)
				}
			}
			if ids, _ := customerList(t, c, k.key, ""); len(ids) != 1 {
				t.Errorf("the scope lists %d customers, want its own 1", len(ids))
			}
		})
	}
	// Nothing the intruders did reached the customer.
	if now := getCustomer(c, live, xid); now.raw != original {
		t.Fatalf("the customer changed:\n%s\nwas\n%s", now.raw, original)
	}
	if ids, _ := customerList(t, c, live, "search=hijack"); len(ids) != 0 {
		t.Fatal("a foreign PATCH moved the email")
	}
}

// 9. Photos: JPEG or PNG by content, at most 5 MB, raw or multipart; served by a signed public link.
func TestCustomerPhoto(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "photos")
	id := mustCustomer(t, c, live, `{"email":"smile@example.com"}`)["id"].(string)
	pngImg, jpegImg := tinyPNG(t), tinyJPEG(t)
	gif := []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
	pngHeader := []byte("\x89PNG\r\n\x1a\n")
	padded := func(n int) []byte { return append(append([]byte{}, pngHeader...), make([]byte, n-len(pngHeader))...) }

	// Rejections first: the customer has no photo after them.
	for _, tt := range []struct {
		name, ctype string
		body        []byte
		status      int
		code        string
	}{
		{"a GIF", "image/gif", gif, 422, "validation_failed"},
		{"a GIF declared as PNG", "image/png", gif, 422, "validation_failed"},
		{"text", "text/plain", []byte("definitely not an image"), 422, "validation_failed"},
		{"an empty body", "image/png", nil, 400, "invalid_request"},
		{"5 MB + 1 byte", "image/png", padded(5*1024*1024 + 1), 413, "payload_too_large"},
	} {
		r := putPhoto(c, live, id, tt.ctype, tt.body)
		if r.status != tt.status || r.errorCode() != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.raw, tt.status, tt.code)
		}
		if tt.status == 422 && !slices.Equal(errorFields(r), []string{"photo"}) {
			t.Errorf("%s: fields %v, want [photo]", tt.name, errorFields(r))
		}
	}
	if g := getCustomer(c, live, id); field(g.body, "data.avatar_url") != nil {
		t.Fatalf("rejected photos set avatar_url: %s", g.raw)
	}
	if r := putPhoto(c, live, "cus_unknown000000", "image/png", pngImg); r.status != 404 {
		t.Errorf("photo of an unknown customer: %d %s", r.status, r.raw)
	}

	// A PNG declared as something else is still a PNG.
	r := putPhoto(c, live, id, "application/octet-stream", pngImg)
	if r.status != 200 {
		t.Fatalf("PUT png: %d %s", r.status, r.raw)
	}
	d := r.body["data"].(map[string]any)
	if d["id"] != id || d["email"] != "smile@example.com" {
		t.Fatalf("photo answer is not the customer: %s", r.raw)
	}
	pngPath := avatarPath(t, c, d)
	if g := getCustomer(c, live, id); field(g.body, "data.avatar_url") != d["avatar_url"] {
		t.Errorf("GET avatar_url %v, want %v", field(g.body, "data.avatar_url"), d["avatar_url"])
	}
	av := c.do("GET", pngPath, "", nil) // public: no key
	if av.status != 200 || av.header.Get("Content-Type") != "image/png" || av.raw != string(pngImg) {
		t.Fatalf("GET avatar: %d %q, %d bytes (want %d)", av.status, av.header.Get("Content-Type"), len(av.raw), len(pngImg))
	}
	if _, err := png.Decode(strings.NewReader(av.raw)); err != nil {
		t.Errorf("served avatar is not a PNG: %v", err)
	}

	// Tampered links are refused.
	token := strings.TrimPrefix(pngPath, "/v1/avatars/")
	payload, sig, ok := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if !ok || err != nil {
		t.Fatalf("avatar token %q is not <payload>.<signature>", token)
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)-1] == 'A' {
			b[len(b)-1] = 'B'
		} else {
			b[len(b)-1] = 'A'
		}
		return string(b)
	}
	otherPayload := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(id), []byte("cus_someoneelse0000000000"), 1))
	tampered := []string{payload + "." + flip(sig), otherPayload + "." + sig, payload, payload + ".", "not-a-token", "." + sig}
	// Another spelling of the payload (its last character differing only in bits that carry nothing).
	if unused := map[int]int{2: 4, 3: 2}[len(payload)%4]; unused > 0 {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, payload[len(payload)-1])
		tampered = append(tampered, payload[:len(payload)-1]+string(alphabet[last^1])+"."+sig)
	}
	for _, tok := range tampered {
		if r := c.do("GET", "/v1/avatars/"+tok, "", nil); r.status != 403 {
			t.Errorf("tampered token %q: %d %s, want 403", tok, r.status, r.raw)
		}
	}

	// Multipart, field "photo", a JPEG: replaces the PNG, whose link then stops working.
	mp := putPhotoMultipart(t, c, live, id, "photo", "me.jpg", jpegImg)
	if mp.status != 200 {
		t.Fatalf("multipart: %d %s", mp.status, mp.raw)
	}
	jpegPath := avatarPath(t, c, mp.body["data"].(map[string]any))
	if jpegPath == pngPath {
		t.Fatal("a new photo kept the old link")
	}
	if av := c.do("GET", jpegPath, "", nil); av.status != 200 || av.header.Get("Content-Type") != "image/jpeg" || av.raw != string(jpegImg) {
		t.Fatalf("GET multipart avatar: %d %q %d bytes", av.status, av.header.Get("Content-Type"), len(av.raw))
	}
	if av := c.do("GET", pngPath, "", nil); av.status != 404 {
		t.Errorf("replaced photo's link: %d, want 404", av.status)
	}
	// A multipart GIF is refused like a raw one.
	if r := putPhotoMultipart(t, c, live, id, "photo", "me.png", gif); r.status != 422 {
		t.Errorf("multipart GIF: %d %s", r.status, r.raw)
	}
	// Exactly 5 MB is accepted.
	big := padded(5 * 1024 * 1024)
	r = putPhoto(c, live, id, "image/png", big)
	if r.status != 200 {
		t.Fatalf("exactly 5 MB: %d %s", r.status, r.raw)
	}
	if av := c.do("GET", avatarPath(t, c, r.body["data"].(map[string]any)), "", nil); av.status != 200 || len(av.raw) != len(big) {
		t.Errorf("5 MB avatar: %d, %d bytes", av.status, len(av.raw))
	}
}

// 10. Erasure: the customer is gone everywhere, their sales stay anonymised, their email is free, and
// the log itself can no longer tell who they were — also after a rebuild.
func TestCustomerErasure(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "erase")
	ctx := context.Background()
	const email = "zorblax.quimby@example.com"
	personal := []string{"zorblax", "Quennevillé", "742 Evergreen", "4155552671", "Springfieldia", "10.20.30.40"}

	cust := mustCustomer(t, c, live, `{"email":"Zorblax.Quimby@example.com","first_name":"Zed","last_name":"Quennevillé","phone":"+14155552671",
		"ip":"10.20.30.40","metadata":{"note":"Springfieldia"}}`)
	id := cust["id"].(string)
	if r := c.post("/v1/customers/"+id+"/addresses", live, "", `{"line1":"742 Evergreen Terrace","city":"Springfield","country":"US","state":"OR"}`); r.status != 201 {
		t.Fatalf("address: %d %s", r.status, r.raw)
	}
	pr := putPhoto(c, live, id, "image/png", tinyPNG(t))
	if pr.status != 200 {
		t.Fatalf("photo: %d %s", pr.status, pr.raw)
	}
	avatar := avatarPath(t, c, pr.body["data"].(map[string]any))
	sr := c.post("/v1/checkouts", live, "", checkoutBody(email, 4200, `,"context":{"ip_address":"10.20.30.40"}`))
	if sr.status != 201 || field(sr.body, "data.customer.id") != id {
		t.Fatalf("checkout: %d %s", sr.status, sr.raw)
	}
	saleID := field(sr.body, "data.id").(string)
	if r := c.standardWebhook("erase_1", paymentBody("payment.succeeded", saleID, 4200, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	waitCustomer(t, c, live, id, func(d map[string]any) bool { return field(d, "stats.completed_sales") == 1.0 })

	// Personal data is sealed from the start: the log never shows it, though it names the customer.
	checkLog := func(when string, m *Main) {
		t.Helper()
		for _, p := range personal {
			if hits, total := scanLedger(t, m, p); len(hits) > 0 || total == 0 {
				t.Errorf("%s: %q in %d of %d messages: %v", when, p, len(hits), total, hits)
			}
		}
		if hits, _ := scanLedger(t, m, id); len(hits) == 0 {
			t.Errorf("%s: the scan never finds the customer id; it reads nothing", when)
		}
	}
	checkLog("before erasure", m)
	customerAgg := events.Aggregate{Mode: "live", StoreID: storeID, Type: events.AggregateCustomer, ID: id}
	evs, _, err := m.events.Load(ctx, customerAgg)
	if err != nil || len(evs) == 0 {
		t.Fatalf("load customer: %d events, %v", len(evs), err)
	}
	if reg, ok := evs[0].Payload.(events.CustomerRegistered); !ok || reg.Email != email || reg.PersonalErased {
		t.Fatalf("before erasure the log opens to %#v", evs[0].Payload)
	}

	del := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil)
	if del.status != 200 || field(del.body, "data.deleted") != true || field(del.body, "data.id") != id {
		t.Fatalf("DELETE: %d %s", del.status, del.raw)
	}

	checkServed := func(when string, c client) {
		t.Helper()
		if r := getCustomer(c, live, id); r.status != 404 || r.errorCode() != "not_found" {
			t.Errorf("%s: GET erased customer: %d %s", when, r.status, r.raw)
		}
		for _, q := range []string{"per_page=100", "search=zorblax", "search=Quenn", "search=4155552671", "page=1&page_size=100"} {
			if ids, _ := customerList(t, c, live, q); slices.Contains(ids, id) {
				t.Errorf("%s: %s lists the erased customer", when, q)
			}
		}
		if r := c.do("GET", avatar, "", nil); r.status != 404 {
			t.Errorf("%s: avatar of the erased customer: %d", when, r.status)
		}
		s := waitSale(t, c, live, saleID, func(map[string]any) bool { return true })
		if field(s, "customer.id") != id || field(s, "customer.email") != nil || field(s, "customer.name") != nil ||
			s["status"] != "completed" {
			t.Errorf("%s: sale customer %v, status %v; want id %s kept, email and name null", when, s["customer"], s["status"], id)
		}
		if sc, ok := s["customer"].(map[string]any); !ok || !hasKey(sc, "email") {
			t.Errorf("%s: sale customer %v lacks an explicit null email", when, s["customer"])
		}
		if r := c.do("GET", "/v1/sales?search="+email, "Bearer "+live, nil); len(listIDs(t, r)) != 0 {
			t.Errorf("%s: a sales search by the erased email finds %s", when, r.raw)
		}
		if r := c.do("GET", "/v1/sales?customer_id="+id, "Bearer "+live, nil); !slices.Equal(listIDs(t, r), []string{saleID}) {
			t.Errorf("%s: the sale no longer counts as the customer's: %s", when, r.raw)
		}
		if r := c.do("GET", "/v1/sales/"+saleID+"/events", "Bearer "+live, nil); r.status != 200 || strings.Contains(strings.ToLower(r.raw), "zorblax") {
			t.Errorf("%s: the sale's history: %d, still names the customer: %v", when, r.status, strings.Contains(strings.ToLower(r.raw), "zorblax"))
		}
	}
	checkServed("after erasure", c)
	for _, req := range []struct{ method, path, body string }{
		{"DELETE", "/v1/customers/" + id, ""},
		{"PATCH", "/v1/customers/" + id, `{"first_name":"Back"}`},
		{"GET", "/v1/customers/" + id + "/addresses", ""},
		{"POST", "/v1/customers/" + id + "/addresses", `{"line1":"x","city":"y","country":"FR"}`},
	} {
		if r := c.do(req.method, req.path, "Bearer "+live, strings.NewReader(req.body)); r.status != 404 {
			t.Errorf("%s %s after erasure: %d %s", req.method, req.path, r.status, r.raw)
		}
	}
	if r := putPhoto(c, live, id, "image/png", tinyPNG(t)); r.status != 404 {
		t.Errorf("photo after erasure: %d %s", r.status, r.raw)
	}

	// The email is free: a new customer, with a new id.
	again := mustCustomer(t, c, live, `{"email":"ZORBLAX.QUIMBY@example.com","first_name":"New"}`)
	newID := again["id"].(string)
	if newID == id || field(again, "stats.completed_sales") != 0.0 {
		t.Fatalf("re-registration: %v", again)
	}
	if ids, _ := customerList(t, c, live, "search=zorblax"); !slices.Equal(ids, []string{newID}) {
		t.Errorf("search after re-registration: %v, want only %s", ids, newID)
	}

	// The log keeps the erased customer's events, unreadable.
	evs, _, err = m.events.Load(ctx, customerAgg)
	if err != nil {
		t.Fatal(err)
	}
	var sawRegistered, sawAddress, sawErased bool
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.CustomerRegistered:
			sawRegistered = true
			if !p.PersonalErased || p.Email != "" || p.FirstName != "" || p.Phone != "" || p.IP != "" || len(p.Metadata) != 0 {
				t.Errorf("customer_registered after erasure: %#v", p)
			}
		case events.CustomerAddressAdded:
			sawAddress = true
			if !p.PersonalErased || p.Line1 != "" || p.City != "" {
				t.Errorf("customer_address_added after erasure: %#v", p)
			}
		case events.CustomerErased:
			sawErased = true
		}
	}
	if !sawRegistered || !sawAddress || !sawErased {
		t.Errorf("customer history after erasure: registered %v, address %v, erased %v", sawRegistered, sawAddress, sawErased)
	}
	sevs, _, err := m.events.Load(ctx, events.Aggregate{Mode: "live", StoreID: storeID, Type: events.AggregateSale, ID: saleID})
	if err != nil || len(sevs) == 0 {
		t.Fatalf("load sale: %v", err)
	}
	if st, ok := sevs[0].Payload.(events.SaleStarted); !ok || !st.PersonalErased || st.Customer.Email != "" || st.CustomerID != id || st.Context != nil {
		t.Errorf("sale_started after erasure: %#v", sevs[0].Payload)
	}
	checkLog("after erasure", m)

	// A rebuild from the log serves the same.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := run(ctx, []string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	m = startMain(t, dir, withGateways)
	c = client{t, "http://" + m.HTTPAddr}
	checkServed("after rebuild", c)
	if r := getCustomer(c, live, newID); r.status != 200 || field(r.body, "data.email") != "ZORBLAX.QUIMBY@example.com" || field(r.body, "data.first_name") != "New" {
		t.Errorf("re-registered customer after rebuild: %d %s", r.status, r.raw)
	}
	if ids, _ := customerList(t, c, live, "search=zorblax"); !slices.Equal(ids, []string{newID}) {
		t.Errorf("search after rebuild: %v, want only %s", ids, newID)
	}
	checkLog("after rebuild", m)
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// 11. The reference's curl examples work against the ledger with only the host and the key changed.
func TestCustomerReferenceExamples(t *testing.T) {
	// Replay January 2025, as the examples query it.
	var clock atomic.Int64
	setClock := func(t time.Time) { clock.Store(t.UnixNano()) }
	setClock(time.Date(2024, 12, 20, 12, 0, 0, 0, time.UTC))
	m := startMainWithClock(t, t.TempDir(), nil, func() time.Time { return time.Unix(0, clock.Load()).UTC() })
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, test := createStore(t, c, "reference")

	type at struct {
		when time.Time
		body string
	}
	plan := []at{
		{time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), `{"email":"dec@example.com","first_name":"Decem","last_name":"Ber"}`},
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), `{"email":"jan1@example.com","first_name":"Janus","last_name":"First"}`},
		{time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC), `{"email":"john@example.com","first_name":"John","last_name":"Doe","phone":"+14155552671"}`},
		{time.Date(2025, 1, 20, 9, 0, 0, 0, time.UTC), `{"email":"customer@example.com","first_name":"Support","last_name":"Case"}`},
		{time.Date(2025, 1, 31, 23, 59, 59, 999_000_000, time.UTC), `{"email":"jan31@example.com","first_name":"Johnny","last_name":"Late"}`},
		{time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), `{"email":"feb@example.com","first_name":"Febe","last_name":"Johns"}`},
	}
	var ids []string
	for _, p := range plan {
		setClock(p.when)
		ids = append(ids, mustCustomer(t, c, live, p.body)["id"].(string))
	}
	john := ids[2]

	// Copied from reference/customers-chariow.txt; only the host, the key (and the example id) change.
	chariow := []struct {
		curl string
		want []string
	}{
		{"curl -X GET \"https://api.chariow.com/v1/customers\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"curl -X GET \"https://api.chariow.com/v1/customers?search=john\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{ids[5], ids[4], ids[2]}}, // Febe Johns, Johnny Late, John Doe (john@example.com)
		{"curl -X GET \"https://api.chariow.com/v1/customers?start_date=2025-01-01&end_date=2025-01-31\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{ids[4], ids[3], ids[2], ids[1]}},
		{"curl -X GET \"https://api.chariow.com/v1/customers?search=customer@example.com\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{ids[3]}},
		{"curl -X GET \"https://api.chariow.com/v1/customers?start_date=2025-01-01&end_date=2025-01-31&per_page=100\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{ids[4], ids[3], ids[2], ids[1]}},
		{"curl -X GET \"https://api.chariow.com/v1/customers/cus_abc123\" \\\n  -H \"Authorization: Bearer sk_live_your_api_key\"",
			[]string{john}},
	}
	ref, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "reference", "customers-chariow.txt"))
	if err != nil {
		t.Logf("reference not found (%v); using the copies in this test", err)
	}
	for _, ex := range chariow {
		t.Run(strings.SplitN(ex.curl, "\"", 3)[1], func(t *testing.T) {
			if ref != nil && !bytes.Contains(ref, []byte(ex.curl)) {
				t.Fatalf("the example is not in the reference as written:\n%s", ex.curl)
			}
			cmd := strings.NewReplacer("https://api.chariow.com", c.base, "sk_live_your_api_key", live, "cus_abc123", john).Replace(ex.curl)
			r := runCurl(t, cmd)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if strings.Contains(cmd, "/v1/customers/cus_") {
				d, _ := r.body["data"].(map[string]any)
				for path, want := range map[string]any{"id": john, "name": "John Doe", "first_name": "John", "last_name": "Doe",
					"email": "john@example.com", "avatar_url": nil, "phone.number": "+1 415-555-2671", "phone.country.name": "United States",
					"phone.country.code": "US", "phone.country.alpha_3_code": "USA", "phone.country.dial_code": "+1",
					"phone.country.currency": "USD", "phone.country.flag": "🇺🇸", "store.id": storeID, "store.name": "Shop reference",
					"created_at": "2025-01-15T10:30:00+00:00", "updated_at": "2025-01-15T10:30:00+00:00"} {
					if got := field(d, path); got != want {
						t.Errorf("%s = %v, want %v", path, got, want)
					}
				}
				for _, k := range []string{"logo_url", "url"} {
					if st, _ := d["store"].(map[string]any); !hasKey(st, k) {
						t.Errorf("store lacks %q", k)
					}
				}
				return
			}
			if got := listIDs(t, r); !slices.Equal(got, ex.want) {
				t.Errorf("got %v, want %v", got, ex.want)
			}
			pg, _ := r.body["pagination"].(map[string]any)
			for _, k := range []string{"next_cursor", "prev_cursor", "has_more"} {
				if !hasKey(pg, k) {
					t.Errorf("pagination lacks %q: %v", k, pg)
				}
			}
			if pg["has_more"] != false || pg["next_cursor"] != nil || pg["prev_cursor"] != nil {
				t.Errorf("a single page's pagination: %v", pg)
			}
		})
	}

	// 4Geeks style: Basic auth with the test key as user name, page and page_size.
	setClock(time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC))
	var testIDs []string // newest first
	for i := range 12 {
		body := fmt.Sprintf(`{"email":"geek%02d@4geeks.io","first_name":"Geek%02d","last_name":"Test"}`, i, i)
		if i == 7 {
			body = `{"email":"john.geek@4geeks.io","first_name":"John","last_name":"Geek"}`
		}
		testIDs = append([]string{mustCustomer(t, c, test, body)["id"].(string)}, testIDs...)
	}
	fourGeeks := []struct {
		curl string
		want []string
	}{
		// As the reference writes them, trailing slash included.
		{"curl -X GET 'http://127.0.0.1:8000/v1/customers/?page=2&page_size=5' \\\n     -u 'sk_test_51O62xYzAbcDef123:'", testIDs[5:10]},
		{"curl -X GET 'http://127.0.0.1:8000/v1/customers/?search=john' \\\n     -u 'sk_test_51O62xYzAbcDef123:'", []string{testIDs[4]}},
		{"curl -X GET 'http://127.0.0.1:8000/v1/customers/' \\\n     -u 'sk_test_51O62xYzAbcDef123:'", testIDs},
		{"curl -X GET 'http://127.0.0.1:8000/v1/customers?page=2&page_size=5' \\\n     -u 'sk_test_51O62xYzAbcDef123:'", testIDs[5:10]},
	}
	for _, ex := range fourGeeks {
		cmd := strings.NewReplacer("http://127.0.0.1:8000", c.base, "sk_test_51O62xYzAbcDef123", test).Replace(ex.curl)
		r := runCurl(t, cmd)
		if r.status != 200 {
			t.Errorf("%s: %d %s", cmd, r.status, r.raw)
			continue
		}
		if got := listIDs(t, r); !slices.Equal(got, ex.want[:min(len(ex.want), 15)]) {
			t.Errorf("%s: got %v, want %v", cmd, got, ex.want)
		}
		for _, item := range r.body["data"].([]any) {
			if d := item.(map[string]any); d["test"] != true || d["livemode"] != false {
				t.Errorf("a test-key customer is not marked test: %v", d)
			}
		}
	}
	if r := runCurl(t, strings.NewReplacer("http://127.0.0.1:8000", c.base).Replace(
		"curl -X GET 'http://127.0.0.1:8000/v1/customers?page=2&page_size=5' -u 'sk_test_51O62xYzAbcDef123:'")); r.status != 401 {
		t.Errorf("the reference's own key: %d, want 401", r.status)
	}
}

// runCurl runs a `curl -X METHOD URL [-H "K: V"]... [-u 'user:pass']` command line with net/http.
func runCurl(t *testing.T, cmd string) response {
	t.Helper()
	cmd = strings.ReplaceAll(cmd, "\\\n", " ")
	method := regexp.MustCompile(`-X (\w+)`).FindStringSubmatch(cmd)
	url := regexp.MustCompile(`-X \w+ ["']([^"']+)["']`).FindStringSubmatch(cmd)
	if method == nil || url == nil {
		t.Fatalf("cannot read the command %q", cmd)
	}
	req, err := http.NewRequest(method[1], url[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range regexp.MustCompile(`-H "([^":]+): ([^"]*)"`).FindAllStringSubmatch(cmd, -1) {
		req.Header.Set(h[1], h[2])
	}
	if u := regexp.MustCompile(`-u '([^':]*):([^']*)'`).FindStringSubmatch(cmd); u != nil {
		req.SetBasicAuth(u[1], u[2])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// Search is case-insensitive for every script and every fragment length: the one- and two-character
// fragments (not the trigram index) too. "Él", "él" and "ÉL" all find "Élodie".
func TestCustomerShortSearchFoldsNonASCIICase(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "unicode")
	elodie := mustCustomer(t, c, live, `{"email":"elodie@example.com","first_name":"Élodie","last_name":"Ürgen"}`)["id"].(string)
	mustCustomer(t, c, live, `{"email":"other@example.com","first_name":"Bob","last_name":"Stone"}`)
	for _, q := range []string{"Élo", "élo", "ÉLO", "Ürg", "ürg", "Él", "él", "ÉL", "Ür", "ür", "É", "é"} {
		if ids, _ := customerList(t, c, live, "search="+q); !slices.Equal(ids, []string{elodie}) {
			t.Errorf("search=%s (%d characters): %v, want Élodie Ürgen %s", q, len([]rune(q)), ids, elodie)
		}
	}
}

// A gateway's webhook body carries the buyer's personal data (Moneroo and Paystack data.customer, Stripe
// receipt_email). It is filed under no customer, so whatever of it the log keeps cannot be erased with
// them: after an erasure the log must not reveal the email, in clear or base64 (the stream denies
// deletes and purges, so nothing can be removed later).
func TestCustomerErasureForgetsEmailInGatewayWebhooks(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "erasehooks")
	const email = "quixotic.buyer@example.com"
	sr := c.post("/v1/checkouts", live, "", checkoutBody(email, 1500, ""))
	if sr.status != 201 {
		t.Fatalf("checkout: %d %s", sr.status, sr.raw)
	}
	saleID, id := field(sr.body, "data.id").(string), field(sr.body, "data.customer.id").(string)
	// A Moneroo delivery as Moneroo sends it, with the customer in it.
	body := `{"event":"payment.success","data":{"id":"py_quixotic","amount":1500,"currency":"USD","status":"success",` +
		`"customer":{"email":"` + email + `","first_name":"John","last_name":"Doe"},"metadata":{"sale_id":"` + saleID + `","store_id":"` + storeID + `"}}}`
	mac := hmac.New(sha256.New, []byte("moneroo-secret"))
	mac.Write([]byte(body))
	if r := c.signedPost("/v1/webhooks/moneroo", body, map[string]string{"X-Moneroo-Signature": hex.EncodeToString(mac.Sum(nil))}); r.status != 200 {
		t.Fatalf("moneroo: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("DELETE: %d %s", r.status, r.raw)
	}
	if hits, total := scanLedger(t, m, "quixotic.buyer"); len(hits) > 0 {
		t.Errorf("after erasure the log still reveals the email in %d of %d messages: %v", len(hits), total, hits)
	}
}

// A claim whose registration never followed (the process died between the two appends of a create)
// does not block its email: the next create, or the next checkout, adopts the claimed customer id.
func TestCustomerDanglingClaimIsAdopted(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "dangling")
	ctx := context.Background()
	key, err := m.events.SharedSecret(ctx, "email_claim_key", 1)
	if err != nil {
		t.Fatal(err)
	}
	dangle := func(email, customerID string) {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte("live|" + storeID + "|" + email))
		agg := events.Aggregate{Mode: "live", StoreID: storeID, Type: events.AggregateEmail, ID: hex.EncodeToString(mac.Sum(nil)[:16])}
		if _, err := m.events.Append(ctx, 0, events.Envelope{ID: "evt_" + customerID, Aggregate: agg, Time: time.Now(),
			Payload: events.EmailClaimed{CustomerID: customerID}}); err != nil {
			t.Fatal(err)
		}
	}
	dangle("half@example.com", "cus_halfregistered000000001")
	r := c.post("/v1/customers", live, "", `{"email":"half@example.com","first_name":"Half"}`)
	if r.status != 201 || field(r.body, "data.id") != "cus_halfregistered000000001" {
		t.Fatalf("create over a dangling claim: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/customers", live, "", `{"email":"half@example.com"}`); r.status != 409 {
		t.Fatalf("second create: %d %s", r.status, r.raw)
	}

	dangle("buyer@example.com", "cus_halfregistered000000002")
	r = c.post("/v1/checkouts", live, "", checkoutBody("buyer@example.com", 500, ""))
	if r.status != 201 || field(r.body, "data.customer.id") != "cus_halfregistered000000002" {
		t.Fatalf("checkout over a dangling claim: %d %s", r.status, r.raw)
	}
	got := c.do("GET", "/v1/customers/cus_halfregistered000000002", "Bearer "+live, nil)
	if got.status != 200 || field(got.body, "data.email") != "buyer@example.com" {
		t.Fatalf("the adopted customer: %d %s", got.status, got.raw)
	}
}

// A checkout registers its customer under the customer API's rules, keeping what validates: a phone that
// does not parse is left out of the customer (not failing the purchase), a valid one is stored in E.164.
func TestCheckoutRegistersWhatValidates(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "partial")
	for _, tt := range []struct{ email, phone, want string }{
		{"nophone@example.com", "call me maybe", ""},
		{"phone@example.com", "+1 202-555-0143", "+12025550143"},
	} {
		body := fmt.Sprintf(`{"product":{"id":"p","name":"P","type":"course","price":{"amount":100,"currency":"USD"}},
			"customer":{"email":%q,"first_name":"Ada","phone":%q}}`, tt.email, tt.phone)
		r := c.post("/v1/checkouts", live, "", body)
		if r.status != 201 {
			t.Fatalf("checkout with phone %q: %d %s", tt.phone, r.status, r.raw)
		}
		cu := c.do("GET", "/v1/customers/"+field(r.body, "data.customer.id").(string), "Bearer "+live, nil)
		if cu.status != 200 || field(cu.body, "data.first_name") != "Ada" {
			t.Fatalf("customer of %s: %d %s", tt.email, cu.status, cu.raw)
		}
		got, _ := field(cu.body, "data.phone.e164").(string)
		if phone := field(cu.body, "data.phone"); got != tt.want || (tt.want == "" && phone != nil) {
			t.Errorf("customer of %s has phone %v, want %q", tt.email, phone, tt.want)
		}
	}
}
