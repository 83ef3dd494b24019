package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDownloadLinks(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { withGateways(c); c.DownloadTTL = 2 * time.Second })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "files")
	saleID := field(c.post("/v1/checkouts", live, "", checkoutBody("d@example.com", 1000, "")).body, "data.id").(string)
	c.standardWebhook("dl_pay", paymentBody("payment.succeeded", saleID, 1000, "USD"), time.Now())
	sale := waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	files := field(sale, "post_purchase.files").([]any)
	link := files[0].(map[string]any)["download_url"].(string)
	if !strings.HasPrefix(link, c.base+"/v1/downloads/") {
		t.Fatalf("download_url %q", link)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		res, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get(link); res.StatusCode != 302 || res.Header.Get("Location") != "https://cdn.example.com/c.zip" {
		t.Fatalf("download: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	get(link)
	d := waitSale(t, c, live, saleID, func(d map[string]any) bool { return field(d, "download.total") == 2.0 })
	if field(d, "download.last_at") == nil {
		t.Error("download.last_at not set")
	}
	// One changed character anywhere makes the link forged.
	token := strings.TrimPrefix(link, c.base+"/v1/downloads/")
	for _, i := range []int{3, len(token) / 2, len(token) - 2} {
		b := []byte(token)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if res := get(c.base + "/v1/downloads/" + string(b)); res.StatusCode != 403 {
			t.Errorf("forged at %d: %d", i, res.StatusCode)
		}
	}
	// One spelling per link: the last character of each part carries unused low bits, and a character
	// that differs only there decodes to the same bytes — it must be forged all the same.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	payloadPart, sigPart, _ := strings.Cut(token, ".")
	for _, part := range []struct{ s, prefix, suffix string }{
		{payloadPart, "", "." + sigPart},
		{sigPart, payloadPart + ".", ""},
	} {
		unused := map[int]int{2: 4, 3: 2}[len(part.s)%4] // bits of the last character that carry nothing
		last := strings.IndexByte(alphabet, part.s[len(part.s)-1])
		for v := 1; v < 1<<unused; v++ {
			spelled := part.s[:len(part.s)-1] + string(alphabet[last^v])
			if res := get(c.base + "/v1/downloads/" + part.prefix + spelled + part.suffix); res.StatusCode != 403 {
				t.Errorf("another spelling of %q (%q): %d, want 403", part.s[len(part.s)-4:], spelled[len(spelled)-4:], res.StatusCode)
			}
		}
	}
	time.Sleep(2100 * time.Millisecond)
	if res := get(link); res.StatusCode != 410 {
		t.Fatalf("expired link: %d", res.StatusCode)
	}
	// The store reads the sale again and gets a fresh link for the buyer; the old one stays dead.
	sale = field(c.do("GET", "/v1/sales/"+saleID, "Bearer "+live, nil).body, "data").(map[string]any)
	file := field(sale, "post_purchase.files").([]any)[0].(map[string]any)
	fresh := file["download_url"].(string)
	exp, err := time.Parse(time.RFC3339, file["expires_at"].(string))
	if fresh == link || err != nil || !exp.After(time.Now()) {
		t.Fatalf("after expiry the sale shows %q expiring %v (%v); want a fresh link", fresh, file["expires_at"], err)
	}
	if res := get(fresh); res.StatusCode != 302 {
		t.Fatalf("fresh link: %d", res.StatusCode)
	}
	if res := get(link); res.StatusCode != 410 {
		t.Fatalf("the expired link works again: %d", res.StatusCode)
	}
}

// TestConcurrentDownloadsAndHead: twenty buyers' requests for one link at once are all redirected (a
// concurrent append on one sale used to surface as 409) and all recorded; HEAD answers as GET does
// (302 to the same place, 403 for a forged link) and appends nothing.
func TestConcurrentDownloadsAndHead(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "rush")
	saleID := field(c.post("/v1/checkouts", live, "", checkoutBody("rush@example.com", 1000, "")).body, "data.id").(string)
	c.standardWebhook("rush_pay", paymentBody("payment.succeeded", saleID, 1000, "USD"), time.Now())
	sale := waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	link := field(sale, "post_purchase.files").([]any)[0].(map[string]any)["download_url"].(string)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, u string) (*http.Response, error) {
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			return nil, err
		}
		res, err := noFollow.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, nil
	}
	downloads := func() int {
		t.Helper()
		r := c.do("GET", "/v1/sales/"+saleID+"/events", "Bearer "+live, nil)
		if r.status != 200 {
			t.Fatalf("events: %d %s", r.status, r.raw)
		}
		n := 0
		for _, e := range r.body["data"].([]any) {
			if e.(map[string]any)["type"] == "download_recorded" {
				n++
			}
		}
		return n
	}

	const n = 20
	var wg sync.WaitGroup
	statuses := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := send("GET", link)
			if err != nil {
				statuses[i] = err.Error()
				return
			}
			statuses[i] = fmt.Sprintf("%d %s", res.StatusCode, res.Header.Get("Location"))
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != "302 https://cdn.example.com/c.zip" {
			t.Errorf("concurrent download %d: %s, want 302 to the file", i, s)
		}
	}
	if got := downloads(); got != n {
		t.Fatalf("%d downloads recorded for %d redirects", got, n)
	}

	get, err := send("GET", link)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		head, err := send("HEAD", link)
		if err != nil {
			t.Fatal(err)
		}
		if head.StatusCode != get.StatusCode || head.Header.Get("Location") != get.Header.Get("Location") ||
			head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Fatalf("HEAD: %d %v, GET: %d %v", head.StatusCode, head.Header, get.StatusCode, get.Header)
		}
	}
	if got := downloads(); got != n+1 {
		t.Fatalf("%d downloads recorded after %d GETs and 3 HEADs; HEAD must record nothing", got, n+1)
	}
	forged := link[:len(link)-2] + "AA"
	if link[len(link)-2:] == "AA" {
		forged = link[:len(link)-2] + "BB"
	}
	if res, err := send("HEAD", forged); err != nil || res.StatusCode != 403 {
		t.Fatalf("HEAD of a forged link: %v %v, want 403", res, err)
	}
}
