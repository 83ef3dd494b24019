package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/projections/sqlite"
)

const refundStripeSecret = "whsec_stripe_refunds_0123456789"

// stripePaidSale makes a live sale of amount USD minor units paid through Stripe with PaymentIntent pi.
func stripePaidSale(t *testing.T, c client, live, pi string, amount int64) string {
	t.Helper()
	r := c.post("/v1/checkouts", live, "", checkoutBody(pi+"@example.com", amount, ""))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	id := field(r.body, "data.id").(string)
	ev := fmt.Sprintf(`{"id":"evt_pay_%s","object":"event","type":"payment_intent.succeeded","livemode":true,
		"data":{"object":{"id":%q,"object":"payment_intent","amount":%d,"currency":"usd","livemode":true,
		"metadata":{"sale_id":%q},"payment_method_types":["card"],"status":"succeeded"}}}`, pi, pi, amount, id)
	if r := c.stripeWebhook(refundStripeSecret, ev); r.status != 200 {
		t.Fatalf("pay: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
	return id
}

// chargeRefunded is Stripe's charge.refunded for PaymentIntent pi, with the charge's cumulative
// amount_refunded. The charge carries no metadata: the ledger finds the sale by the PaymentIntent.
func chargeRefunded(evt, pi string, amount, cumulative int64) string {
	return fmt.Sprintf(`{"id":%q,"object":"event","type":"charge.refunded","livemode":true,
		"data":{"object":{"id":"ch_%s","object":"charge","amount":%d,"amount_refunded":%d,"currency":"usd","livemode":true,
		"payment_intent":%q,"refunded":%v,"metadata":{}}}}`, evt, pi, amount, cumulative, pi, cumulative == amount)
}

// TestStripeRefundsInAnyOrder: Stripe reports a charge's cumulative refunded amount. Delivered in
// order, twice, or late, a refund is counted once and an older figure never lowers the total.
func TestStripeRefundsInAnyOrder(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["stripe"] = refundStripeSecret
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "stripe-refunds")

	inOrder := stripePaidSale(t, c, live, "pi_inorder", 10000)
	late := stripePaidSale(t, c, live, "pi_late", 10000)
	for _, d := range []struct {
		evt, pi    string
		cumulative int64
	}{
		{"evt_r1", "pi_inorder", 3000}, {"evt_r2", "pi_inorder", 7000}, {"evt_r2", "pi_inorder", 7000}, // a retry of one delivery
		{"evt_r3", "pi_late", 7000}, {"evt_r4", "pi_late", 3000}, // the 3,000 arrives after the 7,000
		{"evt_r5", "pi_late", 7000}, // the same figure in another delivery
	} {
		if r := c.stripeWebhook(refundStripeSecret, chargeRefunded(d.evt, d.pi, 10000, d.cumulative)); r.status != 200 {
			t.Fatalf("%s: %d %s", d.evt, r.status, r.raw)
		}
	}
	// The highest figure each charge reported is 7,000, whatever the order the processor applied them in
	// (it handles deliveries concurrently, so even the ones posted in order may be applied 7,000 first):
	// the sums reach it, and no later delivery can take them past it.
	a := waitSale(t, c, live, inOrder, func(d map[string]any) bool { return field(d, "amount_refunded.amount") == 7000.0 })
	var amounts []string
	for _, r := range a["refunds"].([]any) {
		amounts = append(amounts, fmt.Sprint(field(r.(map[string]any), "amount.amount")))
	}
	if got := strings.Join(amounts, ","); field(a, "amount_refunded.amount") != 7000.0 || (got != "3000,4000" && got != "7000") {
		t.Errorf("in order: refunded %v in %s, want 7000 as 3000,4000 (or 7000 if applied out of order)", field(a, "amount_refunded.amount"), got)
	}
	b := waitSale(t, c, live, late, func(d map[string]any) bool { return field(d, "amount_refunded.amount") == 7000.0 })
	waitHandled(t, m) // two payments and five refund deliveries (evt_r2 twice is one): nothing more to come
	b = c.do("GET", "/v1/sales/"+late, "Bearer "+live, nil).body["data"].(map[string]any)
	a = c.do("GET", "/v1/sales/"+inOrder, "Bearer "+live, nil).body["data"].(map[string]any)
	if field(a, "amount_refunded.amount") != 7000.0 {
		t.Errorf("in order, after every delivery: refunded %v", field(a, "amount_refunded.amount"))
	}
	if refunds := b["refunds"].([]any); len(refunds) > 2 || field(b, "amount_refunded.amount") != 7000.0 || b["status"] != "completed" {
		t.Errorf("late: %v %v", field(b, "amount_refunded"), refunds)
	}
	// The rest, then everything: the sale is refunded once.
	c.stripeWebhook(refundStripeSecret, chargeRefunded("evt_r6", "pi_late", 10000, 10000))
	c.stripeWebhook(refundStripeSecret, chargeRefunded("evt_r7", "pi_late", 10000, 10000))
	b = waitSale(t, c, live, late, func(d map[string]any) bool { return d["status"] == "refunded" })
	var sum float64
	for _, r := range b["refunds"].([]any) {
		sum += field(r.(map[string]any), "amount.amount").(float64)
	}
	if sum != 10000 || field(b, "amount_refunded.amount") != 10000.0 {
		t.Errorf("after the full refund: %v, refunds summing to %v", field(b, "amount_refunded"), sum)
	}
}

// waitHandled waits until the payment processor has acknowledged every webhook delivery recorded so
// far: their effects (or their absence) are then final.
func waitHandled(t *testing.T, m *Main) {
	t.Helper()
	ctx := context.Background()
	last, found, err := m.events.Last(ctx, "ledger.platform.*.webhook.*.webhook_received")
	if err != nil || !found {
		t.Fatalf("no delivery recorded: %v", err)
	}
	name, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var ci *natsjs.ConsumerInfo
		cons, err := m.events.JetStream().Consumer(ctx, jetstream.StreamName, name)
		if err == nil {
			ci, err = cons.Info(ctx)
		}
		if err == nil && ci.AckFloor.Stream >= last.Sequence && ci.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payment processor did not handle the deliveries up to %d: %+v %v", last.Sequence, ci, err)
		}
	}
}

// TestRefundOfAnUnknownTransaction: a refund naming a charge no sale was paid with is recorded (200, so
// the gateway stops retrying), retried for a while, then set aside with the reason; nothing changes.
func TestRefundOfAnUnknownTransaction(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["stripe"] = refundStripeSecret
		c.paymentsRedelivery, c.paymentsGiveUpAfter = []time.Duration{10 * time.Millisecond}, 3
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "unknown-refund")
	paid := stripePaidSale(t, c, live, "pi_known", 5000)
	if r := c.stripeWebhook(refundStripeSecret, chargeRefunded("evt_unknown", "pi_nobody", 5000, 5000)); r.status != 200 {
		t.Fatalf("delivery: %d %s", r.status, r.raw)
	}
	var reason string
	for deadline := time.Now().Add(30 * time.Second); reason == ""; time.Sleep(20 * time.Millisecond) {
		evs, _, err := m.events.LoadFilter(context.Background(), "ledger.platform.*.webhook.*.webhook_rejected")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if r := e.Payload.(events.WebhookRejected); r.DeliveryID == "evt_unknown" {
				reason = r.Reason
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the refund of an unknown transaction was never set aside")
		}
	}
	if !strings.Contains(reason, "pi_nobody") || !strings.Contains(reason, "no sale was paid") {
		t.Errorf("reason %q", reason)
	}
	if d := c.do("GET", "/v1/sales/"+paid, "Bearer "+live, nil).body["data"].(map[string]any); field(d, "amount_refunded.amount") != 0.0 {
		t.Errorf("another sale changed: %v", field(d, "amount_refunded"))
	}
}

// TestDisputeHoldsTheSettlement: an open dispute holds the scheduled settlement; won, it resumes; a
// dispute lost on another sale is a chargeback refund of its amount, and the sale is never settled.
func TestDisputeHoldsTheSettlement(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	r := c.do("POST", "/v1/admin/stores", "Bearer "+adminToken,
		strings.NewReader(`{"name":"Disputes","slug":"disputes","service_fee_percent":"5","settlement_delay_days":0}`))
	if r.status != 201 {
		t.Fatal(r.raw)
	}
	live := field(r.body, "data.keys.live").(string)
	won := paidSale(t, c, live, "won@example.com", 10000)
	lost := paidSale(t, c, live, "lost@example.com", 10000)
	dispute := func(msg, kind, sale, id, extra string) {
		body := fmt.Sprintf(`{"type":%q,"data":{"sale_id":%q,"dispute_id":%q%s}}`, kind, sale, id, extra)
		if r := c.standardWebhook(msg, body, time.Now()); r.status != 200 {
			t.Fatalf("%s: %d %s", kind, r.status, r.raw)
		}
	}
	dispute("d1", "dispute.opened", won, "dp_1", `,"amount":{"amount":10000,"currency":"USD"},"reason":"fraudulent"`)
	dispute("d2", "dispute.opened", lost, "dp_2", `,"amount":{"amount":10000,"currency":"USD"},"reason":"product_not_received"`)
	for _, id := range []string{won, lost} {
		waitSale(t, c, live, id, func(d map[string]any) bool { return field(d, "dispute.status") == "open" })
	}
	// Due (delay 0), but held.
	if n, err := m.timers.Tick(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("a pass during the disputes changed %d sales (%v), want 0", n, err)
	}
	dispute("d3", "dispute.closed", won, "dp_1", `,"status":"won"`)
	dispute("d4", "dispute.closed", lost, "dp_2", `,"status":"lost"`)
	waitSale(t, c, live, won, func(d map[string]any) bool { return field(d, "dispute.status") == "won" })
	l := waitSale(t, c, live, lost, func(d map[string]any) bool { return d["status"] == "refunded" })
	if refunds := l["refunds"].([]any); len(refunds) != 1 || field(refunds[0].(map[string]any), "reason") != "chargeback" ||
		field(refunds[0].(map[string]any), "dispute_id") != "dp_2" || field(l, "dispute.status") != "lost" {
		t.Errorf("lost dispute: %v %v", refunds, l["dispute"])
	}
	if n, err := m.timers.Tick(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("the pass after the disputes changed %d sales (%v), want 1 (the won one)", n, err)
	}
	waitSale(t, c, live, won, func(d map[string]any) bool { return d["status"] == "settled" })
	// The lost dispute again changes nothing.
	dispute("d5", "dispute.closed", lost, "dp_2", `,"status":"lost"`)
	waitHandled(t, m)
	if l := c.do("GET", "/v1/sales/"+lost, "Bearer "+live, nil).body["data"].(map[string]any); len(l["refunds"].([]any)) != 1 || l["status"] != "refunded" {
		t.Errorf("a lost dispute again: %v", l["refunds"])
	}
}

// TestRebuildWithRefundsEqualsLive: a rebuild from the log gives the read store the live projection
// built — sales refunded in part and in full, disputes won and lost, their customers' net totals and
// their revoked licences.
func TestRebuildWithRefundsEqualsLive(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "rebuild-refunds")
	partial := paidSale(t, c, live, "partial@example.com", 10000)
	full := paidSale(t, c, live, "full@example.com", 5000)
	disputed := paidSale(t, c, live, "disputed@example.com", 7000)
	c.post("/v1/sales/"+partial+"/refunds", live, "", `{"amount":2500,"reason":"a partial refund"}`)
	c.post("/v1/sales/"+full+"/refunds", live, "", `{}`)
	c.standardWebhook("rb_d1", fmt.Sprintf(`{"type":"dispute.opened","data":{"sale_id":%q,"dispute_id":"dp_rb","amount":{"amount":7000,"currency":"USD"}}}`, disputed), time.Now())
	c.standardWebhook("rb_d2", fmt.Sprintf(`{"type":"dispute.closed","data":{"sale_id":%q,"dispute_id":"dp_rb","status":"lost"}}`, disputed), time.Now())
	waitSale(t, c, live, disputed, func(d map[string]any) bool { return d["status"] == "refunded" })
	waitHandled(t, m)
	want := rebuildEqualsLive(t, m, dir)
	if len(want["sales"]) != 3 || !strings.Contains(strings.Join(want["sales"], "\n"), "refunded") {
		t.Errorf("the live store lacks the refunded sales: %v", want["sales"])
	}
}

// rebuildEqualsLive stops the ledger m (on data dir dir) once its read store has applied the whole log,
// rebuilds the read store from the log with `ledger rebuild`, and fails the test for every table that
// differs. It returns the live store's tables for further checks.
func rebuildEqualsLive(t *testing.T, m *Main, dir string) map[string][]string {
	t.Helper()
	last, err := m.events.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.live.WaitFor(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	want, err := m.live.Store().Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	got := rebuiltDump(t, dir, last)
	for table := range want {
		if !reflect.DeepEqual(got[table], want[table]) {
			t.Errorf("table %s differs after the rebuild:\n got %v\nwant %v", table, got[table], want[table])
		}
	}
	return want
}

// rebuiltDump rebuilds the read store of the stopped ledger in dir from its log, up to sequence last,
// with `ledger rebuild --out`, and returns its tables (sqlite.Store.Dump).
func rebuiltDump(t *testing.T, dir string, last uint64) map[string][]string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rebuilt.db")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off", "--until", fmt.Sprint(last), "--out", out}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	st, err := sqlite.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dump, err := st.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dump
}
