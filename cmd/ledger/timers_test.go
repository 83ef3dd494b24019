package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestTimersAbandonAndSettle(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	r := c.do("POST", "/v1/admin/stores", "Bearer "+adminToken,
		strings.NewReader(`{"name":"Timed","slug":"timed","service_fee_percent":"5","settlement_delay_days":0,"abandon_after_minutes":30}`))
	if r.status != 201 {
		t.Fatal(r.raw)
	}
	live := field(r.body, "data.keys.live").(string)
	unpaid := field(c.post("/v1/checkouts", live, "", checkoutBody("u@example.com", 1000, "")).body, "data.id").(string)
	paid := field(c.post("/v1/checkouts", live, "", checkoutBody("p@example.com", 1000, "")).body, "data.id").(string)
	now := time.Now()
	if r := c.standardWebhook("pay_1", paymentBody("payment.succeeded", paid, 1000, "USD"), now); r.status != 200 {
		t.Fatal(r.raw)
	}
	waitSale(t, c, live, paid, func(d map[string]any) bool { return d["status"] == "completed" })

	// Before the abandon deadline only the due settlement (delay 0) acts.
	ctx := context.Background()
	if n, err := m.timers.Tick(ctx, now.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("first pass changed %d sales (%v), want 1 (the settlement)", n, err)
	}
	settled := waitSale(t, c, live, paid, func(d map[string]any) bool { return d["status"] == "settled" })
	if field(settled, "settlement.done_at") == nil {
		t.Error("settled sale has no settlement.done_at")
	}
	waitSale(t, c, live, unpaid, func(d map[string]any) bool { return d["status"] == "awaiting_payment" })

	// A read store catching up with the log lists sales as due that the log has moved past: no pass acts
	// on it until it is within LEDGER_READY_MAX_LAG of the log.
	if !m.timers.CaughtUp() {
		t.Fatal("a caught-up projection is not CaughtUp")
	}
	behind := *m.timers // a copy: the ledger's own pass runs concurrently
	behind.CaughtUp = func() bool { return false }
	if n, err := behind.Tick(ctx, now.Add(31*time.Minute)); err != nil || n != 0 {
		t.Fatalf("a pass while the read store catches up changed %d sales (%v)", n, err)
	}
	waitSale(t, c, live, unpaid, func(d map[string]any) bool { return d["status"] == "awaiting_payment" })
	if n, err := m.timers.Tick(ctx, now.Add(31*time.Minute)); err != nil || n != 1 {
		t.Fatalf("pass after the deadline changed %d sales (%v), want 1", n, err)
	}
	waitSale(t, c, live, unpaid, func(d map[string]any) bool { return d["status"] == "abandoned" })
	// Once the read model caught up, nothing is due any more.
	time.Sleep(100 * time.Millisecond)
	if n, err := m.timers.Tick(ctx, now.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("idle pass changed %d sales (%v)", n, err)
	}
	// A payment after abandonment still completes the sale: the customer paid.
	if r := c.standardWebhook("pay_2", paymentBody("payment.succeeded", unpaid, 1000, "USD"), now); r.status != 200 {
		t.Fatal(r.raw)
	}
	waitSale(t, c, live, unpaid, func(d map[string]any) bool { return d["status"] == "completed" })
}
