package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of the edges a stranger can reach: methods, connections, sizes, ids, rates.

// TestUnknownMethodsNeverBecomeLabels: methods no route serves are 501, a known path asked with another
// method is 405 with Allow, and however many distinct methods arrive, /metrics labels them all "other".
func TestUnknownMethodsNeverBecomeLabels(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "methods")
	key := "Bearer " + live

	// Warm up the label sets a 501 and a 405 add once, then measure what further ones add.
	c.do("WARMUP", "/v1/sales", key, nil)
	c.do("DELETE", "/v1/sales", key, nil)
	before := len(c.do("GET", "/metrics", "", nil).raw)
	for i := range 200 {
		method := fmt.Sprintf("JUNK%d%s", i, strings.Repeat("X", 2000))
		path := []string{"/v1/sales", "/v1/customers/cus_x", "/nowhere", "/healthz"}[i%4]
		r := c.do(method, path, key, nil)
		if r.status != http.StatusNotImplemented || r.errorCode() != "method_not_implemented" {
			t.Fatalf("%.10s… %s: %d %s, want 501 method_not_implemented", method, path, r.status, r.raw)
		}
	}
	metrics := c.do("GET", "/metrics", "", nil).raw
	if strings.Contains(metrics, "JUNK") {
		t.Fatal("/metrics carries a client's method as a label")
	}
	// 200 junk methods of 2 KB each would add over 6 MB as labels; as "other" they add nothing but counts
	// (and the /metrics request's own series).
	if grew := len(metrics) - before; grew > 8<<10 {
		t.Fatalf("/metrics grew by %d bytes over 200 unknown methods", grew)
	}
	if !strings.Contains(metrics, `ledger_http_request_duration_seconds_count{code="501",method="other",route="/"} 201`) {
		t.Errorf("/metrics does not count the 501s under method=\"other\":\n%s", grep(metrics, "501"))
	}

	for _, tt := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/sales", "GET, HEAD"},
		{"POST", "/v1/sales/", "GET, HEAD"},
		{"PUT", "/v1/customers/cus_x", "DELETE, GET, HEAD, PATCH"},
		{"GET", "/v1/checkouts", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"PATCH", "/v1/customers/cus_x/photo", "PUT"},
	} {
		r := c.do(tt.method, tt.path, key, nil)
		if r.status != http.StatusMethodNotAllowed || r.errorCode() != "method_not_allowed" || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q %s, want 405 with Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"), r.raw, tt.allow)
		}
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nowhere", 404},
		{"DELETE", "/v1/nowhere", 404},
		{"OPTIONS", "/v1/sales", 501},
		{"TRACE", "/v1/sales", 501},
		{"HEAD", "/healthz", 200},
	} {
		if r := c.do(tt.method, tt.path, key, nil); r.status != tt.status {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, r.status, r.raw, tt.status)
		}
	}
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestIdleConnectionsCannotLockOut: with the connection cap at 4, four keep-alive connections left idle
// (the idle timeout is an hour) and four that stall in their headers cannot keep a new client out: idle
// connections are closed at the cap, stalled ones by the read-header timeout, and the new client is
// served. Nothing here depends on the machine's speed: each step waits for the one before, and the
// timeouts that free slots fire whenever they fire.
func TestIdleConnectionsCannotLockOut(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		c.HTTPMaxConns = 4
		c.HTTPIdleTimeout = time.Hour
		c.HTTPReadHeaderTimeout = 300 * time.Millisecond
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "crowded")
	http.DefaultClient.CloseIdleConnections() // the test's own keep-alive connection is not part of the crowd

	var idle []net.Conn
	for range 4 {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if res := rawRequest(t, conn, "GET /healthz HTTP/1.1\r\nHost: ledger\r\n\r\n"); res.StatusCode != 200 {
			t.Fatalf("healthz: %d", res.StatusCode)
		}
		idle = append(idle, conn)
	}
	for range 4 {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: ledger\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", c.base+"/v1/store", nil)
	req.Header.Set("Authorization", "Bearer "+live)
	res, err := fresh.Do(req)
	if err != nil {
		t.Fatalf("a new client is locked out: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("new client: %d", res.StatusCode)
	}
	// Idle connections were closed at the cap by the server, not by the idle timeout (which ones depends
	// on when each was marked idle, a moment after its answer).
	closed := make(chan bool, len(idle))
	for _, conn := range idle {
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // hang guard: a closed one reports at once
			_, err := conn.Read(make([]byte, 1))
			closed <- err == io.EOF
		}()
	}
	for range idle {
		if <-closed {
			return
		}
	}
	t.Fatal("every idle connection was kept open at the cap")
}

// rawRequest writes a raw HTTP/1.1 request on conn and reads the answer.
func rawRequest(t *testing.T, conn net.Conn, req string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // hang guard
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return res
}

// TestSlowBodyIs408: a body that stops arriving before its Content-Length is done is cut off by the read
// timeout and answered 408 request_timeout, not 500.
func TestSlowBodyIs408(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { withGateways(c); c.HTTPReadTimeout = 500 * time.Millisecond })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "slow")
	for _, path := range []string{"POST /v1/customers", "POST /v1/checkouts", "PUT /v1/customers/cus_x/photo", "POST /v1/webhooks/standard"} {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res := rawRequest(t, conn, path+" HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer "+live+
			"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
		var body struct {
			Error struct{ Code, Message string }
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout || body.Error.Code != "request_timeout" {
			t.Errorf("%s with a stalled body: %d %+v, want 408 request_timeout", path, res.StatusCode, body)
		}
	}
}

// TestFieldLimits: every text field of every body has a maximum length; one over it is 422 naming the
// field, one at it passes. Nothing of a refused request is written.
func TestFieldLimits(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "limits")
	x := func(n int) string { return strings.Repeat("x", n) }
	// checkout builds a valid checkout with one member replaced: "product" members go into the product.
	checkout := func(product, rest string) string {
		defaults := ""
		own, _, _ := strings.Cut(product, `,"files"`) // the product's own members, not its files'
		for _, d := range []string{`"id":"prd_1",`, `"name":"Course",`, `"type":"course",`} {
			if key, _, _ := strings.Cut(d, ":"); !strings.Contains(own, key+":") {
				defaults += d
			}
		}
		return `{"product":{` + defaults + `"price":{"amount":100,"currency":"USD"}` + product +
			`},"customer":{"email":"limits@example.com"}` + rest + `}`
	}
	for _, tt := range []struct {
		name, path, body, field string
	}{
		{"product name", "/v1/checkouts", checkout(`,"name":"`+x(201)+`"`, ""), "product.name"},
		{"product id", "/v1/checkouts", checkout(`,"id":"`+x(65)+`"`, ""), "product.id"},
		{"product type", "/v1/checkouts", checkout(`,"type":"`+x(101)+`"`, ""), "product.type"},
		{"instructions", "/v1/checkouts", checkout(`,"instructions":"`+x(5001)+`"`, ""), "product.instructions"},
		{"file url", "/v1/checkouts", checkout(`,"files":[{"name":"a","url":"https://cdn.example.com/`+x(2030)+`"}]`, ""), "product.files.0.url"},
		{"file name", "/v1/checkouts", checkout(`,"files":[{"name":"`+x(201)+`","url":"https://cdn.example.com/a"}]`, ""), "product.files.0.name"},
		{"currency", "/v1/checkouts", strings.Replace(checkout("", ""), `"USD"`, `"`+x(1000)+`"`, 1), "product.price.currency"},
		{"buyer's first name", "/v1/checkouts", strings.Replace(checkout("", ""), `"limits@example.com"`, `"limits@example.com","first_name":"`+x(201)+`"`, 1), "customer.first_name"},
		{"buyer's email", "/v1/checkouts", strings.Replace(checkout("", ""), `"limits@example.com"`, `"`+x(250)+`@example.com"`, 1), "customer.email"},
		{"discount code", "/v1/checkouts", checkout("", `,"discount":{"code":"`+x(101)+`","type":"fixed","value":1}`), "discount.code"},
		{"discount value", "/v1/checkouts", checkout("", `,"discount":{"code":"A","type":"percentage","value":"`+strings.Repeat("1", 33)+`"}`), "discount.value"},
		{"campaign name", "/v1/checkouts", checkout("", `,"campaign":{"name":"`+x(201)+`"}`), "campaign.name"},
		{"shipping city", "/v1/checkouts", checkout("", `,"shipping":{"city":"`+x(101)+`"}`), "shipping.city"},
		{"shipping country name", "/v1/checkouts", checkout("", `,"shipping":{"country":{"code":"US","name":"`+x(101)+`"}}`), "shipping.country.name"},
		{"context locale", "/v1/checkouts", checkout("", `,"context":{"locale":"`+x(36)+`"}`), "context.locale"},
		{"context ip", "/v1/checkouts", checkout("", `,"context":{"ip_address":"`+x(46)+`"}`), "context.ip_address"},
		{"customer phone", "/v1/customers", `{"email":"p@example.com","phone":"+1` + strings.Repeat("2", 100) + `"}`, "phone"},
		{"store name", "/v1/admin/stores", `{"name":"` + x(201) + `","slug":"long"}`, "name"},
		{"store fee", "/v1/admin/stores", `{"name":"x","slug":"fee","service_fee_percent":"` + strings.Repeat("1", 33) + `"}`, "service_fee_percent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := live
			if tt.path == "/v1/admin/stores" {
				key = adminToken
			}
			r := c.post(tt.path, key, "", tt.body)
			fields, _ := field(r.body, "error.fields").(map[string]any)
			if r.status != 422 || fields[tt.field] == nil {
				t.Fatalf("%d %.300s, want 422 naming %s", r.status, r.raw, tt.field)
			}
			if len(r.raw) > 2000 {
				t.Fatalf("the error echoes the input: %d bytes", len(r.raw))
			}
		})
	}
	// At the limits, everything passes.
	r := c.post("/v1/checkouts", live, "", checkout(`,"id":"`+x(64)+`","name":"`+strings.Repeat("é", 200)+`","instructions":"`+x(5000)+
		`","files":[{"name":"`+x(200)+`","url":"https://cdn.example.com/`+x(2048-len("https://cdn.example.com/"))+`","type":"`+x(100)+`"}]`,
		`,"campaign":{"id":"`+x(64)+`","name":"`+x(200)+`"},"context":{"locale":"`+x(35)+`","ip_address":"`+x(45)+`"}`))
	if r.status != 201 {
		t.Fatalf("a checkout at every limit: %d %.500s", r.status, r.raw)
	}
	// 50 files at every limit still make an event the log takes.
	files := make([]string, 50)
	for i := range files {
		files[i] = `{"name":"` + strings.Repeat("<", 200) + `","url":"https://cdn.example.com/` + strings.Repeat("<", 2048-len("https://cdn.example.com/")) + `","type":"` + strings.Repeat("<", 100) + `","id":"` + strings.Repeat("<", 64) + `"}`
	}
	if r := c.post("/v1/checkouts", live, "", checkout(`,"files":[`+strings.Join(files, ",")+`]`, "")); r.status != 201 {
		t.Fatalf("a checkout with 50 files at every limit: %d %.500s", r.status, r.raw)
	}
	if r := c.post("/v1/checkouts", live, "", checkout(`,"files":[`+strings.Repeat(`{"name":"a","url":"nope"},`, 5000)+`{}]`, "")); r.status != 422 || len(r.raw) > 2000 {
		t.Fatalf("5,001 files: %d, %d bytes, want 422 with one message", r.status, len(r.raw))
	}
}

// TestJSONNesting: a body nesting objects or arrays deeper than 32 levels is 400, wherever it goes
// (customer metadata was stored 5,000 deep); 32 levels pass.
func TestJSONNesting(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "nesting")
	nested := func(depth int) string { return strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth) }
	before, _ := m.events.LastSequence(t.Context())
	for _, tt := range []struct{ name, path, body string }{
		{"metadata 5,000 deep", "/v1/customers", `{"email":"deep@example.com","metadata":` + nested(5000) + `}`},
		{"metadata 32 deep (33 with the body)", "/v1/customers", `{"email":"deep@example.com","metadata":` + nested(32) + `}`},
		{"arrays", "/v1/customers", `{"email":"deep@example.com","metadata":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`},
		{"checkout", "/v1/checkouts", `{"product":` + nested(100) + `}`},
	} {
		r := c.post(tt.path, live, "", tt.body)
		if r.status != 400 || !strings.Contains(r.raw, "deeper than 32 levels") {
			t.Errorf("%s: %d %.200s, want 400 naming the depth", tt.name, r.status, r.raw)
		}
	}
	if r := c.standardWebhook("deep", `{"type":"payment.succeeded","data":`+nested(1000)+`}`, time.Now()); r.status != 400 {
		t.Errorf("a signed webhook 1,000 deep: %d %.200s, want 400", r.status, r.raw)
	}
	if after, _ := m.events.LastSequence(t.Context()); after != before {
		t.Fatalf("refused bodies wrote %d events", after-before)
	}
	// Strings are not nesting: brackets and escaped quotes inside them do not count.
	meta := `{"s":"` + strings.Repeat(`[{\"`, 100) + `","n":` + nested(30) + `}`
	r := c.post("/v1/customers", live, "", `{"email":"deep@example.com","metadata":`+meta+`}`)
	if r.status != 201 {
		t.Fatalf("metadata 31 deep with brackets in strings: %d %.300s", r.status, r.raw)
	}
	// A body of invented field names is refused with a bounded message.
	var unknown []string
	for i := range 1000 {
		unknown = append(unknown, fmt.Sprintf(`"%s%d":1`, strings.Repeat("u", 500), i))
	}
	r = c.post("/v1/customers", live, "", `{`+strings.Join(unknown, ",")+`}`)
	if r.status != 400 || !strings.Contains(r.raw, "and 990 more") || len(r.raw) > 2000 {
		t.Fatalf("1,000 unknown fields: %d, %d bytes: %.300s", r.status, len(r.raw), r.raw)
	}
}

// TestBigCheckoutsAreNever500: checkout bodies up to the 1 MiB limit, whatever carries their bulk, are
// answered 201 or 4xx; they used to be 500 from 1,047,438 bytes (the event grew past the log's 1 MiB
// message), and from about 790 KB when the bulk was personal data (sealed, so a third larger).
func TestBigCheckoutsAreNever500(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "bulky")
	base := checkoutBody("bulk@example.com", 100, "")
	// pad makes a body of n bytes from one with a %s where the bulk goes.
	pad := func(n int, shape string) string { return fmt.Sprintf(shape, strings.Repeat("x", n-len(shape)+2)) }
	shapes := []struct {
		name, shape string
		status      int
	}{
		{"a product name", strings.Replace(base, `"Premium Course"`, `"Premium Course%s"`, 1), 422},
		{"a locale (personal data)", strings.TrimSuffix(base, "}") + `,"context":{"locale":"%s"}}`, 422},
		{"instructions", strings.Replace(base, `"type":"course"`, `"type":"course","instructions":"%s"`, 1), 422},
		{"an unknown field", strings.TrimSuffix(base, "}") + `,"note":"%s"}`, 400},
		{"whitespace", base + "%s", 201},
	}
	for _, size := range []int{790_000, 1_047_438, 1_048_000, 1 << 20} {
		for i, sh := range shapes {
			body := pad(size, sh.shape)
			if sh.name == "whitespace" {
				body = base + strings.Repeat(" ", size-len(base))
			}
			if len(body) != size {
				t.Fatalf("%s: built %d bytes, want %d", sh.name, len(body), size)
			}
			if sh.status == 201 {
				body = strings.Replace(body, "bulk@", fmt.Sprintf("bulk%d-%d@", size, i), 1)[:size]
			}
			r := c.post("/v1/checkouts", live, "", body)
			if r.status != sh.status {
				t.Errorf("%d bytes of %s: %d %.200s, want %d", size, sh.name, r.status, r.raw, sh.status)
			}
		}
	}
	if r := c.post("/v1/checkouts", live, "", base+strings.Repeat(" ", 1<<20)); r.status != 413 {
		t.Errorf("over 1 MiB: %d, want 413", r.status)
	}
}

// TestMalformedIdsAndQueries: an id of the wrong shape is 404 before it reaches a NATS subject or a
// query ("*" as a sale id listed every sale's events of the store; as a customer id, DELETE was a 500),
// a NUL in a query parameter is 400 naming it, and a body of null is not an empty object.
func TestMalformedIdsAndQueries(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "shapes")
	key := "Bearer " + live
	for i := range 2 {
		if r := c.post("/v1/checkouts", live, "", checkoutBody(fmt.Sprintf("s%d@example.com", i), 100, "")); r.status != 201 {
			t.Fatalf("checkout: %d %s", r.status, r.raw)
		}
	}
	cus := mustCustomer(t, c, live, `{"email":"shapes@example.com"}`)["id"].(string)
	before, _ := m.events.LastSequence(t.Context())
	for _, id := range []string{"*", ">", "sal_*", "cus_a.b", "cus_a.*", "cus_" + strings.Repeat("a", 61), "cus_", "cus_a-b"} {
		for _, tt := range []struct{ method, path, body string }{
			{"GET", "/v1/sales/" + id, ""},
			{"GET", "/v1/sales/" + id + "/events", ""},
			{"POST", "/v1/sales/" + id + "/rating", `{"value":5}`},
			{"GET", "/v1/customers/" + id, ""},
			{"PATCH", "/v1/customers/" + id, `{"first_name":"X"}`},
			{"DELETE", "/v1/customers/" + id, ""},
			{"POST", "/v1/customers/" + id + "/addresses", `{"line1":"1 Main St","city":"Paris","country":"FR"}`},
			{"GET", "/v1/customers/" + id + "/addresses", ""},
			{"PUT", "/v1/customers/" + id + "/photo", "\x89PNG\r\n\x1a\n"},
			{"DELETE", "/v1/customers/" + cus + "/addresses/" + strings.Replace(id, "cus_", "adr_", 1), ""},
			{"GET", "/v1/licences/" + id, ""},
			{"POST", "/v1/licences/" + id + "/activate", `{"instance":"m1"}`},
		} {
			r := c.do(tt.method, tt.path, key, strings.NewReader(tt.body))
			if r.status != 404 || r.errorCode() != "not_found" {
				t.Errorf("%s %s: %d %.200s, want 404", tt.method, tt.path, r.status, r.raw)
			}
		}
	}
	if after, _ := m.events.LastSequence(t.Context()); after != before {
		t.Fatalf("malformed ids wrote %d events", after-before)
	}
	if r := c.do("GET", "/v1/downloads/*", "", nil); r.status != 403 || r.errorCode() != "invalid_link" {
		t.Errorf("download token *: %d %s", r.status, r.raw)
	}
	if r := c.signedPost("/v1/webhooks/*", `{}`, nil); r.status != 404 || r.errorCode() != "unknown_gateway" {
		t.Errorf("gateway *: %d %s", r.status, r.raw)
	}

	for _, tt := range []struct{ path, param string }{
		{"/v1/customers?search=%00", "search"},
		{"/v1/customers?search=a%01b", "search"},
		{"/v1/sales?search=%00", "search"},
		{"/v1/sales?status=%00", "status"},
		{"/v1/customers?search=%ff", "search"},
		{"/v1/sales?customer_id=*", "customer_id"},
		{"/v1/sales?search=" + strings.Repeat("x", 255), "search"},
	} {
		r := c.do("GET", tt.path, key, nil)
		if r.status != 400 || !strings.Contains(r.raw, "The "+tt.param+" parameter") {
			t.Errorf("GET %s: %d %.200s, want 400 naming %s", tt.path, r.status, r.raw, tt.param)
		}
	}
	if r := c.do("GET", "/v1/customers?search=%zz", key, nil); r.status != 400 {
		t.Errorf("a malformed query string: %d %s", r.status, r.raw)
	}

	for _, tt := range []struct{ path, auth string }{
		{"/v1/customers", live}, {"/v1/checkouts", live}, {"/v1/admin/stores", adminToken},
		{"/v1/customers/" + cus + "/addresses", live}, {"/v1/customers/" + cus, live},
	} {
		method := "POST"
		if strings.HasSuffix(tt.path, cus) {
			method = "PATCH"
		}
		r := c.do(method, tt.path, "Bearer "+tt.auth, strings.NewReader(" null "))
		if r.status != 400 || !strings.Contains(r.raw, "must be a JSON object") {
			t.Errorf("%s %s with null: %d %.200s, want 400", method, tt.path, r.status, r.raw)
		}
	}
	if r := c.standardWebhook("null-body", "null", time.Now()); r.status != 400 {
		t.Errorf("a signed webhook of null: %d %s, want 400", r.status, r.raw)
	}
}

// TestOverlongGatewayFields: a signed delivery whose id is 500 KB is refused with 400 naming the field
// (it was a 500: the event grew past the log's message limit), and nothing is recorded.
func TestOverlongGatewayFields(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	before, _ := m.events.LastSequence(t.Context())
	moneroo := func(body string) response {
		mac := hmac.New(sha256.New, []byte("moneroo-secret"))
		mac.Write([]byte(body))
		return c.signedPost("/v1/webhooks/moneroo", body, map[string]string{"X-Moneroo-Signature": hex.EncodeToString(mac.Sum(nil))})
	}
	for _, tt := range []struct {
		name  string
		send  func() response
		field string
	}{
		{"moneroo id of 500 KB", func() response {
			return moneroo(`{"event":"payment.success","data":{"id":"` + strings.Repeat("p", 500_000) + `","amount":1000,"currency":"USD","metadata":{"sale_id":"sal_x"}}}`)
		}, "data.id"},
		{"moneroo sale id", func() response {
			return moneroo(`{"event":"payment.success","data":{"id":"py_1","amount":1000,"currency":"USD","metadata":{"sale_id":"sal_` + strings.Repeat("x", 100) + `"}}}`)
		}, "data.metadata.sale_id"},
		{"moneroo failure message", func() response {
			return moneroo(`{"event":"payment.failed","data":{"id":"py_2","failure_error":{"code":"x","message":"` + strings.Repeat("m", 2000) + `"},"metadata":{"sale_id":"sal_x"}}}`)
		}, "data.failure_error.message"},
		{"standard webhook-id", func() response {
			return c.standardWebhook(strings.Repeat("w", 300), paymentBody("payment.succeeded", "sal_x", 100, "USD"), time.Now())
		}, "webhook-id header"},
		{"standard currency", func() response {
			return c.standardWebhook("cur", paymentBody("payment.succeeded", "sal_x", 100, strings.Repeat("U", 100)), time.Now())
		}, "data.amount.currency"},
	} {
		r := tt.send()
		if r.status != 400 || !strings.Contains(r.raw, "The webhook's "+tt.field+" is longer than") {
			t.Errorf("%s: %d %.200s, want 400 naming %s", tt.name, r.status, r.raw, tt.field)
		}
	}
	if after, _ := m.events.LastSequence(t.Context()); after != before {
		t.Fatalf("refused deliveries wrote %d events", after-before)
	}
}

// TestRateLimits: with 1 request per second and bursts of 3, a key that sends faster gets 429 with
// Retry-After once its burst is spent; another key is unaffected; after Retry-After it passes again.
// Requests without a valid key are limited by client address; gateway webhooks are not limited. A
// handful of requests goes far faster than one a second on any machine; nothing else is timed.
func TestRateLimits(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.RateLimit, c.RateBurst, c.RateLimitIP = 1, 3, 1
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, liveA, testA := createStore(t, c, "rated")
	// untilLimited sends requests until one is 429 (at most 20) and returns it and how many passed.
	untilLimited := func(send func() response) (response, int) {
		t.Helper()
		for passed := 0; passed < 20; passed++ {
			if r := send(); r.status == http.StatusTooManyRequests {
				return r, passed
			}
		}
		t.Fatal("20 requests in a row were never limited")
		return response{}, 0
	}
	r, passed := untilLimited(func() response { return c.do("GET", "/v1/store", "Bearer "+liveA, nil) })
	if passed < 3 {
		t.Fatalf("limited after %d requests, before the burst of 3 was spent", passed)
	}
	after, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || after < 1 || r.errorCode() != "rate_limited" || !strings.Contains(r.raw, "retry after") {
		t.Fatalf("429: Retry-After %q, %s", r.header.Get("Retry-After"), r.raw)
	}
	// Another key (the same store's test key) has its own bucket.
	for i := range 3 {
		if r := c.do("GET", "/v1/store", "Bearer "+testA, nil); r.status != 200 {
			t.Fatalf("another key's request %d: %d %s", i, r.status, r.raw)
		}
	}
	time.Sleep(time.Duration(after) * time.Second)
	if r := c.do("GET", "/v1/store", "Bearer "+liveA, nil); r.status != 200 {
		t.Fatalf("after Retry-After: %d %s", r.status, r.raw)
	}

	// The admin token is a key too (the store creation above took one of its requests).
	r, _ = untilLimited(func() response {
		return c.do("POST", "/v1/admin/stores", "Bearer "+adminToken, strings.NewReader(`{}`))
	})
	if r.errorCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("admin 429: %s", r.raw)
	}
	// Gateway webhooks are never limited: each bad signature is answered as such.
	for i := range 10 {
		if r := c.signedPost("/v1/webhooks/standard", `{}`, nil); r.status != 401 {
			t.Fatalf("webhook %d: %d %s, want 401", i, r.status, r.raw)
		}
	}
	// Without a valid key, requests count against the client address: the OpenAPI document, then wrong
	// keys.
	r, _ = untilLimited(func() response { return c.do("GET", "/openapi.json", "", nil) })
	if r.errorCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("anonymous 429: %s", r.raw)
	}
	if r := c.do("GET", "/v1/store", "Bearer sk_live_"+strings.Repeat("x", 40), nil); r.status != 429 {
		t.Fatalf("a wrong key from a limited address: %d %s, want 429", r.status, r.raw)
	}
	if !strings.Contains(c.do("GET", "/v1/store", "Bearer "+testA, nil).raw, `"id"`) {
		t.Fatal("a valid key is limited by its address's anonymous traffic")
	}
}

// TestProbesAreNotRateLimited: a load balancer probes from one address, so /healthz and /readyz are
// answered however often they are asked, even from an address whose anonymous traffic is limited.
func TestProbesAreNotRateLimited(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { c.RateLimitIP = 1 }) // bursts of 2
	c := client{t, "http://" + m.HTTPAddr}
	for i := range 20 {
		for _, path := range []string{"/healthz", "/readyz"} {
			if r := c.do("GET", path, "", nil); r.status != http.StatusOK {
				t.Fatalf("probe %d of %s: %d %s, want 200", i, path, r.status, r.raw)
			}
		}
	}
	// The address is limited all the same on what is limited.
	limited := false
	for range 5 {
		if c.do("GET", "/openapi.json", "", nil).status == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited {
		t.Fatal("five anonymous requests at 1/s with a burst of 2 were never limited")
	}
	if r := c.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
		t.Fatalf("probe from a limited address: %d %s", r.status, r.raw)
	}
}

// TestMinPositionWaitsOnlyAfterAuthentication: Ledger-Min-Position is honoured after the key is
// checked and counted: a request without a valid key is 401 at once (it used to wait out the position
// first, then answer 503), and a key over its rate is 429 at once. Neither result depends on timing: a
// wait first would answer 503 projection_lagging, whenever it ended.
func TestMinPositionWaitsOnlyAfterAuthentication(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { c.RateLimit, c.RateBurst = 1, 1 })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "ordered")
	far := "999999999"
	// A well-formed key no store has (sk_live_…) used to wait too; a position the log does not hold cannot
	// be a write its client saw.
	for _, auth := range []string{"", "Bearer ", "Bearer nonsense", "Basic " + basic("x:y"), "Bearer adm_" + strings.Repeat("x", 30),
		"Bearer sk_live_" + strings.Repeat("x", 40), "Bearer sk_test_" + strings.Repeat("y", 40)} {
		r := c.send("GET", "/v1/store", map[string]string{"Authorization": auth, "Ledger-Min-Position": far}, nil)
		if r.status != http.StatusUnauthorized || r.errorCode() != "unauthenticated" {
			t.Errorf("Authorization %q with Ledger-Min-Position: %d %s, want 401 unauthenticated", auth, r.status, r.raw)
		}
	}
	// A key over its rate: 429, before any wait.
	for i := 0; ; i++ {
		r := c.send("GET", "/v1/store", map[string]string{"Authorization": "Bearer " + live, "Ledger-Min-Position": "1"}, nil)
		if r.status == http.StatusTooManyRequests {
			break
		}
		if r.status != http.StatusOK || i == 20 {
			t.Fatalf("request %d of a key at 1/s: %d %s, want 200 until 429", i, r.status, r.raw)
		}
	}
	r := c.send("GET", "/v1/store", map[string]string{"Authorization": "Bearer " + live, "Ledger-Min-Position": far}, nil)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("a limited key with a far Ledger-Min-Position: %d %s, want 429", r.status, r.raw)
	}
}

// TestBodyTextIsWhatWasSent: a body that is not UTF-8 (or escapes half a surrogate pair) is 400, where
// it used to be stored with U+FFFD in place of what was sent; a key given twice in one object is 400
// naming it; a control character or bidirectional override in a one-line text field is 422 naming the
// field, while a multi-line field keeps its line breaks.
func TestBodyTextIsWhatWasSent(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "texts")
	for _, body := range []string{
		"{\"email\":\"a@example.com\",\"first_name\":\"Ad\xffa\"}",
		"{\"email\":\"a@example.com\",\"last_name\":\"\xc3\x28\"}",
		`{"email":"a@example.com","first_name":"Ad\ud800a"}`,
		`{"email":"a@example.com","first_name":"Ad\udc00a"}`,
	} {
		r := postCustomer(c, live, body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "UTF-8") {
			t.Errorf("%q: %d %s, want 400 naming UTF-8", body, r.status, r.raw)
		}
	}
	for _, tt := range []struct{ body, key string }{
		{`{"email":"a@example.com","email":"b@example.com"}`, "email"},
		{`{"email":"a@example.com","first_name":"A","first_name":"B"}`, "first_name"},
		{`{"email":"a@example.com","metadata":{"tier":"gold","tier":"lead"}}`, "metadata.tier"},
	} {
		r := postCustomer(c, live, tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "key "+tt.key+" twice") {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.body, r.status, r.raw, tt.key)
		}
	}
	for _, tt := range []struct{ field, value string }{
		{"first_name", "Ada\u0000"}, {"last_name", "Love\nlace"}, {"city", "Lon\u007fdon"},
		{"first_name", "\u202eadA"}, {"last_name", "x\u2066y\u2069"}, {"address", "1 Main St\u2028Apt 2"},
		{"first_name", "tab\there"}, {"last_name", "esc\u001b[31m"}, {"city", "c\u0085"},
	} {
		r := postCustomer(c, live, `{"email":"ctl@example.com",`+jsonString(tt.field)+`:`+jsonString(tt.value)+`}`)
		if r.status != http.StatusUnprocessableEntity || !slices.Contains(errorFields(r), tt.field) {
			t.Errorf("%s %q: %d %s, want 422 naming %s", tt.field, tt.value, r.status, r.raw, tt.field)
		}
	}
	// Deeper bodies name the field by its path; a multi-line field keeps its line breaks.
	body := checkoutBody("ctl@example.com", 1000, `,"campaign":{"id":"c1","name":"Spring\u0000"}`)
	if r := c.post("/v1/checkouts", live, "", body); r.status != 422 || !slices.Contains(errorFields(r), "campaign.name") {
		t.Errorf("campaign.name with NUL: %d %s, want 422 naming campaign.name", r.status, r.raw)
	}
	body = checkoutBody("ok@example.com", 1000, "")
	body = strings.Replace(body, `"product":{`, `"product":{"instructions":"Line one\nLine two\twith a tab",`, 1)
	if r := c.post("/v1/checkouts", live, "", body); r.status != 201 {
		t.Errorf("instructions with line breaks: %d %s, want 201", r.status, r.raw)
	}
	// What is accepted is stored as sent.
	cus := mustCustomer(t, c, live, `{"email":"zoe@example.com","first_name":"Zoë","last_name":"Ōkubo-ﾄﾞ"}`)
	if cus["first_name"] != "Zoë" || cus["last_name"] != "Ōkubo-ﾄﾞ" {
		t.Errorf("names stored as %q %q", cus["first_name"], cus["last_name"])
	}
}

// TestSilentConnectionsCannotHoldTheCap: connections that connect and send nothing fill the cap, yet a
// client arriving after them is served long before the read-header timeout (a minute here) would free a
// slot: at the cap they are closed once silent for the grace (a second). The bound is half the
// read-header timeout, the time the old behaviour could never meet, whatever the machine's speed.
func TestSilentConnectionsCannotHoldTheCap(t *testing.T) {
	const readHeader = time.Minute
	m := startMain(t, t.TempDir(), func(c *Config) {
		c.HTTPMaxConns = 4
		c.HTTPIdleTimeout = time.Hour
		c.HTTPReadHeaderTimeout = readHeader
	})
	var silent []net.Conn
	for range 4 {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		silent = append(silent, conn)
	}
	fresh := &http.Client{Timeout: readHeader / 2, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := fresh.Get("http://" + m.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatalf("a client is locked out by %d silent connections: %v", len(silent), err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	closed := make(chan bool, len(silent))
	for _, conn := range silent {
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(readHeader / 2)) // hang guard: a closed one reports at once
			_, err := conn.Read(make([]byte, 1))
			closed <- err == io.EOF
		}()
	}
	for range silent {
		if <-closed {
			return
		}
	}
	t.Fatal("no silent connection was closed")
}

// TestSlowWebhookBodiesCannotHoldTheCap: webhook requests whose bodies stop arriving fill the cap (the
// endpoint takes anyone's body, unlimited); they are answered 408 once the body has taken the
// read-header timeout (half a second), not the read timeout (a minute), and a client after them is
// served within half the read timeout.
func TestSlowWebhookBodiesCannotHoldTheCap(t *testing.T) {
	const readTimeout = time.Minute
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.HTTPMaxConns = 2
		c.HTTPReadHeaderTimeout = 500 * time.Millisecond
		c.HTTPReadTimeout = readTimeout
	})
	answers := make(chan int, 2)
	for range 2 {
		conn, err := net.Dial("tcp", m.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /v1/webhooks/standard HTTP/1.1\r\nHost: ledger\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":"); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(readTimeout / 2))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answers <- 0
				return
			}
			res.Body.Close()
			answers <- res.StatusCode
		}()
	}
	fresh := &http.Client{Timeout: readTimeout / 2, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := fresh.Get("http://" + m.HTTPAddr + "/healthz")
	if err != nil {
		t.Fatalf("a client is locked out by slow webhook bodies: %v", err)
	}
	res.Body.Close()
	for range 2 {
		if s := <-answers; s != http.StatusRequestTimeout {
			t.Errorf("a stalled webhook body was answered %d, want 408", s)
		}
	}
}
