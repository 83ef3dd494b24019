package main

// Findings of the second attack review. Each test failed on main as of fe4b05c
// and passes with its fix.

import (
	"fmt"
	"testing"
)

// Finding 1. A UK national number from Bristol (0117), Leicester (0116), Nottingham (0115) or Sheffield
// (0114), given without a country, is read as if "011" were North America's international call prefix
// and stored as a number of another country (+7 925 0000, Russia). Before 0ae9931 it was refused with a
// message asking for the international format; now it is silently wrong. Expected: refused (422), as any
// number the IDD reading makes invalid.
func TestUKNationalNumberNotReadAsIDD(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "uk-phones")
	for i, phone := range []string{"0117 925 0000", "0116 252 2522", "0115 951 5151", "0114 496 0000"} {
		r := c.post("/v1/customers", live, "", fmt.Sprintf(`{"email":"uk%d@example.co.uk","first_name":"Bo","phone":%q}`, i, phone))
		if r.status != 422 {
			t.Errorf("phone %q without a country: %d, stored as %v; want 422 (a national UK number, not an international one)",
				phone, r.status, field(r.body, "data.phone"))
		}
	}
}

// Finding 2. Invisible characters that are not Unicode category Cf pass the email rule, so a second
// customer can be registered with an address that displays exactly like an existing customer's:
// U+034F COMBINING GRAPHEME JOINER and U+FE0F VARIATION SELECTOR-16 (Mn, Default_Ignorable), U+3164
// HANGUL FILLER (Lo, Default_Ignorable), U+2800 BRAILLE PATTERN BLANK, U+00A0 NO-BREAK SPACE.
// Expected: refused (422), as the Cf characters are since a0cd13c.
func TestInvisibleCharactersInEmailLocalPart(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "invisible")
	mustCustomer(t, c, live, `{"email":"john@example.com","first_name":"John"}`)
	for _, email := range []string{"jo\u034fhn@example.com", "jo\ufe0fhn@example.com", "john\u3164@example.com", "john\u2800@example.com", "jo\u00a0hn@example.com"} {
		if r := c.post("/v1/customers", live, "", fmt.Sprintf(`{"email":%q,"first_name":"Mallory"}`, email)); r.status == 201 {
			t.Errorf("%+q: 201, a second customer whose email displays as john@example.com; want 422", email)
		}
	}
}

// Finding 3. The duplicate-key refusal for webhook bodies (88ce00d) compares keys exactly, but Go's
// encoding/json, which the adapters parse with, matches struct fields case-insensitively and keeps the
// last: "sale_id" and "Sale_ID" in one object are the same field to the ledger, a different one to a
// case-sensitive parser. And a Paystack metadata given as a string is parsed again without the check.
// Expected: 400 naming the key, as for an exact duplicate.
func TestWebhookDuplicateKeysCaseAndStringified(t *testing.T) {
	const stripeSecret, paystackSecret = "whsec_stripe_dup_0123456789", "sk_live_paystack_dup_0123"
	m := startMain(t, t.TempDir(), func(c *Config) {
		withGateways(c)
		c.GatewaySecrets["stripe"], c.GatewaySecrets["paystack"] = stripeSecret, paystackSecret
	})
	c := client{t, "http://" + m.HTTPAddr}
	stripe := `{"id":"evt_dup_case","object":"event","type":"payment_intent.succeeded","livemode":true,
		"data":{"object":{"id":"pi_dup","object":"payment_intent","amount":5000,"Amount":1,"currency":"usd",
		"metadata":{"sale_id":"sal_AAAAAAAAAAAAAAAAAAAAAA","Sale_ID":"sal_BBBBBBBBBBBBBBBBBBBBBB"},"payment_method_types":["card"]}}}`
	if r := c.stripeWebhook(stripeSecret, stripe); r.status != 400 {
		t.Errorf("Stripe body with amount/Amount and sale_id/Sale_ID: %d %s; want 400 (the ledger reads the second of each)", r.status, r.raw)
	}
	paystack := `{"event":"charge.success","data":{"id":1,"domain":"live","reference":"dup1","amount":5000,"currency":"NGN",
		"metadata":"{\"sale_id\":\"sal_AAAAAAAAAAAAAAAAAAAAAA\",\"sale_id\":\"sal_BBBBBBBBBBBBBBBBBBBBBB\"}"}}`
	if r := c.paystackWebhook(paystackSecret, paystack); r.status != 400 {
		t.Errorf("Paystack stringified metadata naming sale_id twice: %d %s; want 400", r.status, r.raw)
	}
}
