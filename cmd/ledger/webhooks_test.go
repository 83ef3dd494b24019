package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

const standardKey = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="

func withGateways(c *Config) {
	c.GatewaySecrets = map[string]string{"standard": "whsec_" + standardKey, "moneroo": "moneroo-secret"}
}

// standardWebhook posts a Standard Webhooks delivery signed with the test secret.
func (c client) standardWebhook(id, body string, at time.Time) response {
	c.t.Helper()
	key, _ := base64.StdEncoding.DecodeString(standardKey)
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + body))
	sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return c.signedPost("/v1/webhooks/standard", body, map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig})
}

func (c client) signedPost(path, body string, headers map[string]string) response {
	c.t.Helper()
	return c.send("POST", path, headers, strings.NewReader(body))
}

func paymentBody(kind, saleID string, amount int64, currency string) string {
	return fmt.Sprintf(`{"type":%q,"data":{"sale_id":%q,"transaction_id":"txn_1","amount":{"amount":%d,"currency":%q},"method":{"id":"card","name":"Credit/Debit Card"}}}`,
		kind, saleID, amount, currency)
}

// waitSale polls GET /v1/sales/{id} until cond holds.
func waitSale(t *testing.T, c client, key, id string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.do("GET", "/v1/sales/"+id, "Bearer "+key, nil)
		if r.status == 200 {
			if d := r.body["data"].(map[string]any); cond(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sale %s never reached the expected state; last: %d %s", id, r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPaymentLifecycleThroughWebhooks(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "paid")
	r := c.post("/v1/checkouts", live, "", checkoutBody("buyer@example.com", 9900, `,"discount":{"code":"SAVE20","type":"percentage","value":20}`))
	saleID := field(r.body, "data.id").(string)
	now := time.Now()

	if r := c.standardWebhook("msg_1", paymentBody("payment.pending", saleID, 7920, "USD"), now); r.status != 200 {
		t.Fatalf("pending: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, saleID, func(d map[string]any) bool { return field(d, "payment.status") == "pending" })

	if r := c.standardWebhook("msg_2", paymentBody("payment.succeeded", saleID, 7920, "USD"), now); r.status != 200 {
		t.Fatalf("succeeded: %d %s", r.status, r.raw)
	}
	// Late and repeated deliveries: a pending after success, and the success again.
	if r := c.standardWebhook("msg_3", paymentBody("payment.pending", saleID, 7920, "USD"), now); r.status != 200 {
		t.Fatalf("late pending: %d %s", r.status, r.raw)
	}
	if r := c.standardWebhook("msg_2", paymentBody("payment.succeeded", saleID, 7920, "USD"), now); r.status != 200 || !strings.Contains(r.raw, "duplicate") {
		t.Fatalf("repeated delivery: %d %s", r.status, r.raw)
	}
	sale := waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	for path, want := range map[string]any{
		"payment.status": "success", "payment.gateway": "standard", "payment.transaction_id": "txn_1", "payment.method.id": "card",
		"settlement.service_fee.amount": 396.0, "settlement.amount.amount": 7524.0, "settlement.amount.formatted": "$75.24",
	} {
		if got := field(sale, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if sale["completed_at"] == nil {
		t.Error("completed_at not set")
	}
	// Give the late pending time to be processed, then check nothing moved backwards.
	time.Sleep(200 * time.Millisecond)
	if d := waitSale(t, c, live, saleID, func(map[string]any) bool { return true }); d["status"] != "completed" || field(d, "payment.status") != "success" {
		t.Fatalf("a late delivery moved the sale backwards: %v / %v", d["status"], field(d, "payment.status"))
	}

	// The payment events carry the delivery's correlation id and the webhook as their cause.
	evs, _, err := m.events.Load(context.Background(), events.Aggregate{Mode: "live", StoreID: field(sale, "store.id").(string), Type: "sale", ID: saleID})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type())
		if e.Type() == events.TypePaymentSucceeded && (e.CorrelationID != "msg_2" || e.CausationID == "") {
			t.Errorf("payment_succeeded correlation %q causation %q", e.CorrelationID, e.CausationID)
		}
	}
	if got := strings.Join(types, ","); got != "sale_started,payment_pending,payment_succeeded,sale_completed" {
		t.Fatalf("sale history %s", got)
	}
}

func TestWebhookRejections(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "rejects")
	saleID := field(c.post("/v1/checkouts", live, "", checkoutBody("b@example.com", 1000, "")).body, "data.id").(string)
	now := time.Now()

	good := paymentBody("payment.succeeded", saleID, 1000, "USD")
	for _, tt := range []struct {
		name   string
		resp   func() response
		status int
	}{
		{"stale timestamp", func() response { return c.standardWebhook("m1", good, now.Add(-6*time.Minute)) }, 401},
		{"bad signature", func() response {
			return c.signedPost("/v1/webhooks/standard", good, map[string]string{"webhook-id": "m1", "webhook-timestamp": strconv.FormatInt(now.Unix(), 10), "webhook-signature": "v1,AAAA"})
		}, 401},
		{"no signature", func() response { return c.signedPost("/v1/webhooks/moneroo", `{}`, nil) }, 401},
		{"unknown gateway", func() response { return c.signedPost("/v1/webhooks/paypal", good, nil) }, 404},
		{"gateway without a secret", func() response { return c.signedPost("/v1/webhooks/stripe", good, nil) }, 404},
		{"unparseable body", func() response { return c.standardWebhook("m2", `{not json`, now) }, 400},
		{"over 1 MiB", func() response { return c.standardWebhook("m3", `{"type":"`+strings.Repeat("x", 1<<20)+`"}`, now) }, 413},
	} {
		if r := tt.resp(); r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.raw, tt.status)
		}
	}

	// Well signed, but in another currency than the sale: recorded, rejected to the poison queue, never applied.
	if r := c.standardWebhook("m4", paymentBody("payment.succeeded", saleID, 1000, "EUR"), now); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	mac := hmac.New(sha256.New, []byte("moneroo-secret"))
	body := `{"event":"payment.success","data":{"id":"py_1","amount":1000,"currency":"USD","metadata":{"sale_id":"` + saleID + `","store_id":"str_someoneelse"}}}`
	mac.Write([]byte(body))
	if r := c.signedPost("/v1/webhooks/moneroo", body, map[string]string{"X-Moneroo-Signature": hex.EncodeToString(mac.Sum(nil))}); r.status != 200 {
		t.Fatalf("moneroo: %d %s", r.status, r.raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _, err := m.events.LoadFilter(context.Background(), "ledger.platform.*.webhook.*.webhook_rejected")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries rejected, want 2", len(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := waitSale(t, c, live, saleID, func(map[string]any) bool { return true }); d["status"] != "awaiting_payment" || field(d, "payment.status") != nil {
		t.Fatalf("a rejected delivery changed the sale: %v %v", d["status"], field(d, "payment.status"))
	}
}

// A delivery can arrive before its sale is visible (another replica took the checkout, the projection
// lags): it is kept and applied once the sale appears.
func TestDeliveryBeforeItsSaleIsAppliedLater(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "early")
	const saleID = "sal_arrivesafteritspayment00"
	if r := c.standardWebhook("early_1", paymentBody("payment.succeeded", saleID, 1000, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	time.Sleep(300 * time.Millisecond) // the processor has tried and is waiting to retry
	now := time.Now().UTC()
	_, err := m.events.Append(context.Background(), 0, events.Envelope{
		ID:        "evt_early_sale",
		Aggregate: events.Aggregate{Mode: "live", StoreID: storeID, Type: events.AggregateSale, ID: saleID},
		Time:      now,
		Payload: events.SaleStarted{SaleID: saleID, Store: events.StoreRef{ID: storeID, Name: "Shop early", Slug: "early"},
			Product:    events.Product{ID: "prd_1", Name: "P", Type: "course", Price: events.Amount{Amount: 1000, Currency: "USD"}},
			CustomerID: "cus_1", Customer: events.CustomerRef{ID: "cus_1", Email: "e@example.com"}, Channel: "api",
			OriginalAmount: events.Amount{Amount: 1000, Currency: "USD"}, DiscountAmount: events.Amount{Currency: "USD"},
			Amount: events.Amount{Amount: 1000, Currency: "USD"}, ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: now.Add(time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
}

func TestPaymentAmountWithoutCurrencyIsTheSalesCurrency(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "nocurrency")
	id := field(c.post("/v1/checkouts", live, "", checkoutBody("n@example.com", 1000, "")).body, "data.id").(string)
	body := `{"type":"payment.succeeded","data":{"sale_id":"` + id + `","amount":{"amount":1000},"fee":{"amount":30,"currency":"usd"}}}`
	if r := c.standardWebhook("nocur_1", body, time.Now()); r.status != 200 {
		t.Fatal(r.raw)
	}
	d := waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
	if field(d, "payment.amount.currency") != "USD" || field(d, "payment.fee.formatted") != "$0.30" {
		t.Fatalf("payment %v", d["payment"])
	}
	if r := c.do("GET", "/v1/sales", "Bearer "+live, nil); r.status != 200 || len(r.body["data"].([]any)) != 1 {
		t.Fatalf("list after the payment: %d %s", r.status, r.raw)
	}
}
