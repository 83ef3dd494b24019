package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
