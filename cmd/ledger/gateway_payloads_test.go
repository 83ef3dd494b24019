package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

// paystackWebhook posts a Paystack delivery signed as Paystack signs (HMAC-SHA512 of the body with the
// secret key, hex, in X-Paystack-Signature).
func (c client) paystackWebhook(secret, body string) response {
	c.t.Helper()
	mac := hmac.New(sha512.New, []byte(secret))
	mac.Write([]byte(body))
	return c.signedPost("/v1/webhooks/paystack", body, map[string]string{"X-Paystack-Signature": hex.EncodeToString(mac.Sum(nil))})
}

// Paystack's metadata as Paystack sends it: its own documented charge.success sample carries
// "metadata": 0 (recorded and answered 2xx, so Paystack stops retrying; it names no sale), and the
// transaction API takes metadata as a string, which comes back stringified: the sale it names completes.
func TestPaystackMetadataAsSent(t *testing.T) {
	const secret = "sk_test_paystack_0123456789abcdef"
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["paystack"] = secret
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "naira")

	if r := c.paystackWebhook(secret, `{"event":"charge.success","data":{"id":302961,"reference":"qTPrJoy9Bx","amount":10000,"currency":"NGN","metadata":0}}`); r.status/100 != 2 {
		t.Fatalf("Paystack's documented sample: %d %s", r.status, r.raw)
	}
	body := strings.Replace(checkoutBody("ada@example.com", 10000, ""), `"currency":"USD"`, `"currency":"NGN"`, 1)
	r := c.post("/v1/checkouts", live, "", body)
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	id := field(r.body, "data.id").(string)
	for i, meta := range []string{`""`, `null`, `"order 1001"`} {
		d := fmt.Sprintf(`{"event":"charge.success","data":{"id":%d,"reference":"ref_none_%d","amount":10000,"currency":"NGN","metadata":%s}}`, 500+i, i, meta)
		if r := c.paystackWebhook(secret, d); r.status/100 != 2 {
			t.Fatalf("metadata %s: %d %s", meta, r.status, r.raw)
		}
	}
	stringified := fmt.Sprintf(`"{\"sale_id\":\"%s\",\"cart_id\":398}"`, id)
	d := fmt.Sprintf(`{"event":"charge.success","data":{"id":302962,"reference":"ref_%s","amount":10000,"currency":"NGN","channel":"card","metadata":%s}}`, id, stringified)
	if r := c.paystackWebhook(secret, d); r.status/100 != 2 {
		t.Fatalf("stringified metadata: %d %s", r.status, r.raw)
	}
	sale := waitSaleWithin(t, c, live, id, 30*time.Second, func(d map[string]any) bool { return d["status"] == "completed" })
	if sale["status"] != "completed" {
		t.Fatalf("sale: %v", sale["status"])
	}
}

// stripeWebhook posts a Stripe event signed as Stripe signs (Stripe-Signature: t=<unix>,v1=<hex
// HMAC-SHA256 of "t.body">).
func (c client) stripeWebhook(secret, body string) response {
	c.t.Helper()
	ts := fmt.Sprint(time.Now().Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + body))
	return c.signedPost("/v1/webhooks/stripe", body, map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))})
}

// An ISK 5,000 sale paid through Stripe, which writes ISK amounts ×100 (500000), completes.
func TestStripeISKSaleCompletes(t *testing.T) {
	const secret = "whsec_stripe_test_0123456789abcdef"
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["stripe"] = secret
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "krona")
	body := strings.Replace(checkoutBody("ari@example.com", 5000, ""), `"currency":"USD"`, `"currency":"ISK"`, 1)
	r := c.post("/v1/checkouts", live, "", body)
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	id := field(r.body, "data.id").(string)
	ev := fmt.Sprintf(`{"id":"evt_isk_1","object":"event","type":"payment_intent.succeeded","livemode":true,
		"data":{"object":{"id":"pi_isk_1","object":"payment_intent","amount":500000,"currency":"isk",
		"metadata":{"sale_id":%q},"payment_method_types":["card"],"status":"succeeded"}}}`, id)
	if r := c.stripeWebhook(secret, ev); r.status/100 != 2 {
		t.Fatalf("stripe: %d %s", r.status, r.raw)
	}
	sale := waitSaleWithin(t, c, live, id, 30*time.Second, func(d map[string]any) bool { return d["status"] == "completed" })
	if sale["status"] != "completed" {
		t.Fatalf("sale: %v", sale["status"])
	}
}

// One address typed in two Unicode forms, or with its domain in Punycode, is one customer; addresses no
// mail system would deliver to are refused.
func TestEmailFormsAreOneCustomer(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "unicode")
	mustCustomer(t, c, live, `{"email":"zoë@bücher.example","first_name":"Zoë"}`)
	for _, email := range []string{"zoe\u0308@bücher.example", "ZOË@xn--bcher-kva.example"} {
		if r := c.post("/v1/customers", live, "", fmt.Sprintf(`{"email":%q}`, email)); r.status != 409 {
			t.Errorf("%q: %d %s, want 409 email_taken", email, r.status, r.raw)
		}
	}
	for _, email := range []string{"user@-example.com", "user@[192.0.2.1]"} {
		if r := c.post("/v1/customers", live, "", fmt.Sprintf(`{"email":%q}`, email)); r.status != 422 {
			t.Errorf("%q: %d %s, want 422", email, r.status, r.raw)
		}
	}
}

// A payment made in a gateway's test mode never completes a live sale, nor a live payment a test sale:
// Stripe says its mode in livemode, Paystack in data.domain (found by an attack review: test-mode
// deliveries completed live sales, granting access with no money). The delivery is recorded and set
// aside with the reason; the matching one completes the sale.
func TestGatewayModeMustMatchSale(t *testing.T) {
	const stripeSecret, paystackSecret = "whsec_stripe_mode_0123456789", "sk_live_paystack_mode_0123"
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["stripe"], c.GatewaySecrets["paystack"] = stripeSecret, paystackSecret
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "modes")
	sale := func(key string, currency string) string {
		body := strings.Replace(checkoutBody("mode@example.com", 5000, ""), `"currency":"USD"`, fmt.Sprintf(`"currency":%q`, currency), 1)
		r := c.post("/v1/checkouts", key, "", body)
		if r.status != 201 {
			t.Fatalf("checkout: %d %s", r.status, r.raw)
		}
		return field(r.body, "data.id").(string)
	}
	stripeEvent := func(n int, id string, livemode bool) string {
		return fmt.Sprintf(`{"id":"evt_mode_%d","object":"event","type":"payment_intent.succeeded","livemode":%v,
			"data":{"object":{"id":"pi_mode_%d","object":"payment_intent","amount":5000,"currency":"usd","livemode":%v,
			"metadata":{"sale_id":%q},"payment_method_types":["card"],"status":"succeeded"}}}`, n, livemode, n, livemode, id)
	}
	paystackEvent := func(n int, id, domain string) string {
		return fmt.Sprintf(`{"event":"charge.success","data":{"id":%d,"domain":%q,"status":"success","reference":"mode%d",
			"amount":5000,"currency":"NGN","metadata":{"sale_id":%q},"channel":"card"}}`, n, domain, n, id)
	}
	liveStripe, testStripe, livePaystack, testPaystack := sale(live, "USD"), sale(test, "USD"), sale(live, "NGN"), sale(test, "NGN")
	for _, r := range []response{
		c.stripeWebhook(stripeSecret, stripeEvent(1, liveStripe, false)),
		c.stripeWebhook(stripeSecret, stripeEvent(2, testStripe, true)),
		c.paystackWebhook(paystackSecret, paystackEvent(3, livePaystack, "test")),
		c.paystackWebhook(paystackSecret, paystackEvent(4, testPaystack, "live")),
	} {
		if r.status != 200 {
			t.Fatalf("delivery: %d %s", r.status, r.raw)
		}
	}
	// All four are set aside, each with its reason; no sale moved.
	var reasons []string
	for deadline := time.Now().Add(30 * time.Second); len(reasons) < 4; time.Sleep(20 * time.Millisecond) {
		evs, _, err := m.events.LoadFilter(context.Background(), "ledger.platform.*.webhook.*.webhook_rejected")
		if err != nil {
			t.Fatal(err)
		}
		reasons = reasons[:0]
		for _, e := range evs {
			reasons = append(reasons, e.Payload.(events.WebhookRejected).Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("set aside: %q, want 4", reasons)
		}
	}
	for _, want := range []string{"a test-mode payment for a live-mode sale", "a live-mode payment for a test-mode sale"} {
		if n := strings.Count(strings.Join(reasons, "\n"), want); n != 2 {
			t.Errorf("%d reasons say %q: %q", n, want, reasons)
		}
	}
	for id, key := range map[string]string{liveStripe: live, testStripe: test, livePaystack: live, testPaystack: test} {
		if r := c.do("GET", "/v1/sales/"+id, "Bearer "+key, nil); field(r.body, "data.status") != "awaiting_payment" {
			t.Errorf("sale %s after a delivery of the other mode: %s", id, r.raw)
		}
	}
	// The matching deliveries complete them.
	c.stripeWebhook(stripeSecret, stripeEvent(5, liveStripe, true))
	c.stripeWebhook(stripeSecret, stripeEvent(6, testStripe, false))
	c.paystackWebhook(paystackSecret, paystackEvent(7, livePaystack, "live"))
	c.paystackWebhook(paystackSecret, paystackEvent(8, testPaystack, "test"))
	for id, key := range map[string]string{liveStripe: live, testStripe: test, livePaystack: live, testPaystack: test} {
		waitSaleWithin(t, c, key, id, 30*time.Second, func(d map[string]any) bool { return d["status"] == "completed" })
	}
}

// A signed delivery that names a key twice (`"type"` twice: which one wins differs between parsers) is
// refused, naming the key, as API bodies are.
func TestGatewayBodyWithDuplicateKey(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	body := `{"type":"payment.failed","type":"payment.succeeded","timestamp":"2026-01-01T00:00:00Z","data":{"sale_id":"sal_1","transaction_id":"t1"}}`
	r := c.standardWebhook("msg_dup_1", body, time.Now())
	if msg, _ := field(r.body, "error.message").(string); r.status != 400 || !strings.Contains(msg, "type") {
		t.Fatalf("duplicate key: %d %s", r.status, r.raw)
	}
}
