package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
