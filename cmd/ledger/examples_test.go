package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runExample runs one of the reference's JavaScript examples with node, against this ledger: only the
// base URL and the key differ from the reference. It returns the script's last output line.
func runExample(t *testing.T, name, base, key string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "chariow", name))
	if err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(string(src), "https://api.chariow.com", base)
	script = strings.ReplaceAll(script, "sk_live_your_api_key", key)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("node", path).CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", name, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func TestReferenceJavaScriptExamples(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; the reference's JavaScript examples need it")
	}
	// Replay January 2025, as the examples query it; the clock moves a minute per read.
	var clock atomic.Int64
	clock.Store(time.Date(2025, 1, 10, 9, 0, 0, 0, time.UTC).Unix())
	now := func() time.Time { return time.Unix(clock.Add(60), 0).UTC() }
	m := startMainWithClock(t, t.TempDir(), withGateways, now)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "examples")

	type sale struct {
		price    int64
		discount string
		paid     bool
	}
	plan := []sale{
		{9900, `,"discount":{"code":"SAVE20","type":"percentage","value":20}`, true}, // 7920
		{9900, `,"discount":{"code":"SAVE20","type":"percentage","value":20}`, true}, // 7920
		{5000, `,"discount":{"code":"WELCOME","type":"fixed","value":500}`, true},    // 4500
		{3000, ``, true}, // 3000
		{2500, `,"discount":{"code":"SAVE20","type":"percentage","value":20}`, false},
	}
	for i := 0; i < 17; i++ { // unpaid filler sales, so the list spans several pages of 15
		plan = append(plan, sale{price: 100, paid: false})
	}
	var ids []string
	for i, s := range plan {
		r := c.post("/v1/checkouts", live, "", checkoutBody(fmt.Sprintf("js%d@example.com", i), s.price, s.discount))
		if r.status != 201 {
			t.Fatal(r.raw)
		}
		id := field(r.body, "data.id").(string)
		ids = append(ids, id)
		if s.paid {
			amount := int64(field(r.body, "data.amount.amount").(float64))
			c.standardWebhook("js_pay_"+id, paymentBody("payment.succeeded", id, amount, "USD"), now())
			waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
		}
	}

	var listed []string
	if err := json.Unmarshal([]byte(runExample(t, "pagination.mjs", c.base, live)), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(ids) {
		t.Fatalf("the pagination loop collected %d sales, want %d", len(listed), len(ids))
	}
	seen := map[string]bool{}
	for _, id := range listed {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("the pagination loop missed %s", id)
		}
	}

	if got := runExample(t, "revenue.mjs", c.base, live); got != "Total revenue: 233.4" {
		t.Errorf("revenue example printed %q, want %q (7920+7920+4500+3000 cents)", got, "Total revenue: 233.4")
	}

	var stats map[string]struct{ Uses, Revenue, DiscountGiven int64 }
	if err := json.Unmarshal([]byte(runExample(t, "discounts.mjs", c.base, live)), &stats); err != nil {
		t.Fatal(err)
	}
	if s := stats["SAVE20"]; s.Uses != 2 || s.Revenue != 15840 || s.DiscountGiven != 3960 {
		t.Errorf("SAVE20 stats %+v, want 2 uses, 15840 revenue, 3960 given", s)
	}
	if s := stats["WELCOME"]; s.Uses != 1 || s.Revenue != 4500 || s.DiscountGiven != 500 {
		t.Errorf("WELCOME stats %+v", s)
	}
	if len(stats) != 2 {
		t.Errorf("stats for %d codes, want 2 (unpaid sales are not completed): %v", len(stats), stats)
	}
}
