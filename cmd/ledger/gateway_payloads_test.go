package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
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
	ev := fmt.Sprintf(`{"id":"evt_isk_1","object":"event","type":"payment_intent.succeeded","livemode":false,
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
