package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

// corpusDir holds each gateway's documented deliveries (handlers/gateways/testdata/README.md).
const corpusDir = "../../handlers/gateways/testdata"

// corpusStep posts one corpus file. A delivery that names a sale carries a made-up sal_… id (placeholder)
// where its gateway carries the sale; the test starts a real checkout for it with the delivery's amount
// and currency (the first step naming that placeholder does) and puts the real id in its place.
type corpusStep struct {
	file        string
	placeholder string // "" when the delivery names no sale
	amount      int64  // the checkout's price, in the currency's minor units
	currency    string
	ignored     bool   // answered {"received":true,"ignored":true}: not recorded, not applied
	status      string // the sale's status once the delivery is applied
	payment     string // its payment.status then
	failure     string // its payment.failure_error.code then, when the delivery gives one
	// refundKind: a refund or dispute delivery (refund.succeeded, dispute.opened, dispute.closed). Its
	// sale (placeholder, or paidWith: the placeholder of the sale whose payment's transaction it names)
	// ends in status, with refunded minor units refunded and its dispute in dispute ("" for none).
	refundKind bool
	paidWith   string
	refunded   int64
	dispute    string
}

// Every documented delivery of every gateway goes through verify + parse + record + apply on a running
// ledger: those naming a sale end in the status their kind means; the events the ledger does not act on
// (payouts, transfers, other event types) are answered 2xx and change nothing; those naming no sale are
// recorded and change nothing; refunds and disputes are recorded (their effect: see refundKind).
func TestGatewayCorpus(t *testing.T) {
	secrets := map[string]string{
		"standard": "whsec_" + standardKey,
		"stripe":   "whsec_corpus_stripe_0123456789abcdef",
		"paystack": "sk_test_corpus_paystack_0123456789",
		"moneroo":  "corpus-moneroo-signing-secret",
	}
	m := startMain(t, t.TempDir(), func(c *Config) { c.GatewaySecrets = secrets })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "corpus")

	steps := []corpusStep{
		{file: "standard/payment.initiated.json", placeholder: "sal_Standard0Initiated0001", amount: 2500, currency: "EUR", status: "awaiting_payment", payment: "initiated"},
		{file: "standard/payment.pending.json", placeholder: "sal_Standard0Pending000001", amount: 15000, currency: "XOF", status: "awaiting_payment", payment: "pending"},
		{file: "standard/payment.succeeded.json", placeholder: "sal_Standard0Succeeded0001", amount: 7920, currency: "USD", status: "completed", payment: "success"},
		// A dispute opened and won before the settlement, then the settlement, then a refund of it all.
		{file: "standard/dispute.opened.json", placeholder: "sal_Standard0Succeeded0001", refundKind: true, status: "completed", dispute: "open"},
		{file: "standard/dispute.closed.json", placeholder: "sal_Standard0Succeeded0001", refundKind: true, status: "completed", dispute: "won"},
		{file: "standard/settlement.done.json", placeholder: "sal_Standard0Succeeded0001", status: "settled", payment: "success"},
		{file: "standard/refund.succeeded.json", placeholder: "sal_Standard0Succeeded0001", refundKind: true, status: "refunded", refunded: 7920, dispute: "won"},
		{file: "standard/payment.failed.json", placeholder: "sal_Standard0Failed0000001", amount: 1999, currency: "CAD", status: "failed", payment: "failed", failure: "insufficient_funds"},
		{file: "standard/payment.cancelled.json", placeholder: "sal_Standard0Cancelled0001", amount: 350, currency: "KWD", status: "failed", payment: "cancelled", failure: "cancelled_by_customer"},
		{file: "standard/contact.created.json", ignored: true},

		{file: "stripe/payment_intent.processing.json", placeholder: "sal_Stripe0Processing00001", amount: 4900, currency: "EUR", status: "awaiting_payment", payment: "pending"},
		{file: "stripe/payment_intent.succeeded.json", placeholder: "sal_Stripe0Succeeded000001", amount: 7920, currency: "USD", status: "completed", payment: "success"},
		{file: "stripe/charge.refunded.json", placeholder: "sal_Stripe0Succeeded000001", refundKind: true, status: "refunded", refunded: 7920},
		{file: "stripe/payment_intent.payment_failed.json", placeholder: "sal_Stripe0Failed000000001", amount: 1500, currency: "GBP", status: "failed", payment: "failed", failure: "card_declined"},
		{file: "stripe/payment_intent.canceled.json", placeholder: "sal_Stripe0Canceled0000001", amount: 120000, currency: "JPY", status: "failed", payment: "cancelled"},
		{file: "stripe/charge.dispute.created.json", refundKind: true}, // Stripe's sample: names a charge no sale was paid with
		{file: "stripe/charge.dispute.closed.json", refundKind: true},

		{file: "paystack/charge.success.json"}, // "metadata": 0: recorded, names no sale
		{file: "paystack/charge.success.sale.json", placeholder: "sal_Paystack0Success000001", amount: 250000, currency: "KES", status: "completed", payment: "success"},
		{file: "paystack/charge.success.captured.json", placeholder: "sal_Paystack0Captured00001", amount: 10000, currency: "NGN", status: "completed", payment: "success"},
		{file: "paystack/refund.processed.json", refundKind: true, paidWith: "sal_Paystack0Success000001", status: "refunded", refunded: 250000},
		{file: "paystack/charge.dispute.create.json", refundKind: true, paidWith: "sal_Paystack0Captured00001", status: "completed", dispute: "open"},
		{file: "paystack/charge.dispute.resolve.json", refundKind: true, paidWith: "sal_Paystack0Captured00001", status: "refunded", refunded: 10000, dispute: "lost"}, // merchant-accepted: a chargeback
		{file: "paystack/transfer.success.json", ignored: true},
		{file: "paystack/bank.transfer.rejected.json", ignored: true},

		{file: "moneroo/payment.initiated.json", placeholder: "sal_Moneroo0Initiated00001", amount: 10000, currency: "XAF", status: "awaiting_payment", payment: "initiated"},
		{file: "moneroo/payment.success.json"}, // Moneroo's own example: no metadata, names no sale
		{file: "moneroo/payment.success.sale.json", placeholder: "sal_Moneroo0Success0000001", amount: 5000, currency: "XOF", status: "completed", payment: "success"},
		{file: "moneroo/payment.failed.json", placeholder: "sal_Moneroo0Failed00000001", amount: 3000, currency: "XOF", status: "failed", payment: "failed"},
		{file: "moneroo/payment.cancelled.json", placeholder: "sal_Moneroo0Cancelled00001", amount: 1500, currency: "GHS", status: "failed", payment: "cancelled"},
		{file: "moneroo/payout.success.json", ignored: true},
	}

	// Every file of the corpus is posted.
	files, err := filepath.Glob(filepath.Join(corpusDir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	posted := map[string]bool{}
	for _, s := range steps {
		posted[s.file] = true
	}
	for _, f := range files {
		rel, _ := filepath.Rel(corpusDir, f)
		if !posted[filepath.ToSlash(rel)] {
			t.Errorf("%s is in the corpus but not posted here", rel)
		}
	}
	if len(files) != len(steps) {
		t.Fatalf("%d corpus files, %d steps", len(files), len(steps))
	}

	checkout := func(amount int64, currency, key string) string {
		t.Helper()
		body := strings.Replace(checkoutBody(fmt.Sprintf("corpus-%s-%d@example.com", strings.ToLower(currency), amount), amount, ""),
			`"currency":"USD"`, fmt.Sprintf(`"currency":%q`, currency), 1)
		r := c.post("/v1/checkouts", key, "", body)
		if r.status != 201 {
			t.Fatalf("checkout %d %s: %d %s", amount, currency, r.status, r.raw)
		}
		return field(r.body, "data.id").(string)
	}
	// Sales no delivery names: the deliveries naming no sale must leave them as they are.
	bystanders := []string{checkout(10000, "NGN", live), checkout(100, "USD", live)}
	// A delivery that says its mode (Stripe's livemode, Paystack's data.domain) pays a sale of that mode.
	keyFor := func(raw []byte) string {
		var d struct {
			Livemode *bool `json:"livemode"`
			Data     struct {
				Domain string `json:"domain"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &d); err == nil && ((d.Livemode != nil && !*d.Livemode) || d.Data.Domain == "test") {
			return test
		}
		return live
	}
	keys := map[string]string{} // real sale id → the key of its mode

	sales := map[string]string{} // placeholder → real sale id
	for _, s := range steps {
		raw, err := os.ReadFile(filepath.Join(corpusDir, s.file))
		if err != nil {
			t.Fatal(err)
		}
		var id string
		if s.placeholder != "" {
			// The placeholder is a JSON string, or inside one (metadata stringified: \"sal_…\").
			quoted, escaped := []byte(`"`+s.placeholder+`"`), []byte(`\"`+s.placeholder+`\"`)
			if !bytes.Contains(raw, quoted) && !bytes.Contains(raw, escaped) {
				t.Fatalf("%s does not name %s", s.file, s.placeholder)
			}
			if id = sales[s.placeholder]; id == "" {
				key := keyFor(raw)
				id = checkout(s.amount, s.currency, key)
				sales[s.placeholder], keys[id] = id, key
			}
			raw = bytes.ReplaceAll(raw, quoted, []byte(`"`+id+`"`))
			raw = bytes.ReplaceAll(raw, escaped, []byte(`\"`+id+`\"`))
		}
		body := string(raw)
		var r response
		switch gateway := filepath.Dir(s.file); gateway {
		case "standard":
			r = c.standardWebhook("msg_corpus_"+strings.TrimSuffix(filepath.Base(s.file), ".json"), body, time.Now())
		case "stripe":
			r = c.stripeWebhook(secrets["stripe"], body)
		case "paystack":
			r = c.paystackWebhook(secrets["paystack"], body)
		case "moneroo":
			mac := hmac.New(sha256.New, []byte(secrets["moneroo"]))
			mac.Write(raw)
			r = c.signedPost("/v1/webhooks/moneroo", body, map[string]string{"X-Moneroo-Signature": hex.EncodeToString(mac.Sum(nil))})
		}
		if r.status != 200 || r.body["received"] != true {
			t.Fatalf("%s: %d %s, want 200 received", s.file, r.status, r.raw)
		}
		if got := r.body["ignored"] == true; got != s.ignored {
			t.Fatalf("%s: %s, want ignored %v", s.file, r.raw, s.ignored)
		}
		if s.refundKind {
			if s.paidWith != "" {
				id = sales[s.paidWith]
			}
			if id == "" {
				continue // names a charge no sale here was paid with: set aside in the end, not asserted
			}
			waitSaleWithin(t, c, keys[id], id, 30*time.Second, func(d map[string]any) bool {
				got := ""
				if dd, ok := d["dispute"].(map[string]any); ok {
					got, _ = dd["status"].(string)
				}
				return d["status"] == s.status && field(d, "amount_refunded.amount") == float64(s.refunded) && got == s.dispute
			})
			continue
		}
		if id == "" {
			continue
		}
		sale := waitSaleWithin(t, c, keys[id], id, 30*time.Second, func(d map[string]any) bool {
			return d["status"] == s.status && field(d, "payment.status") == s.payment
		})
		if s.ignored {
			continue
		}
		if got := field(sale, "payment.gateway"); got != filepath.Dir(s.file) {
			t.Errorf("%s: payment.gateway %v", s.file, got)
		}
		if got, want := field(sale, "payment.amount.amount"), float64(s.amount); s.amount != 0 && got != want {
			t.Errorf("%s: payment.amount %v, want %v", s.file, got, want)
		}
		if got := field(sale, "payment.amount.currency"); s.currency != "" && got != s.currency {
			t.Errorf("%s: payment currency %v, want %s", s.file, got, s.currency)
		}
		if s.failure != "" {
			if got := field(sale, "payment.failure_error.code"); got != s.failure {
				t.Errorf("%s: failure_error.code %v, want %s", s.file, got, s.failure)
			}
		}
	}

	// After every delivery was posted and those naming a sale applied: each sale is where its last
	// delivery left it (no ignored or saleless delivery moved it since), and the bystanders are untouched.
	final := map[string]corpusStep{}
	for _, s := range steps {
		ph := s.placeholder
		if s.paidWith != "" {
			ph = s.paidWith
		}
		if ph == "" {
			continue
		}
		if s.refundKind {
			s.payment = final[ph].payment // a refund or dispute leaves the payment as it was
		}
		final[ph] = s
	}
	// Every delivery not ignored is in the log once; those naming no sale were set aside (webhook_rejected)
	// by the payment processor, which has then handled every delivery.
	// Refunds and disputes are recorded too, and left out of the count of those set aside (see refundKind).
	var recorded, saleless, refunds int
	for _, s := range steps {
		if !s.ignored {
			recorded++
			switch {
			case s.refundKind:
				refunds++
			case s.placeholder == "":
				saleless++
			}
		}
	}
	received, _, err := m.events.LoadFilter(context.Background(), "ledger.platform.*.webhook.*.webhook_received")
	if err != nil || len(received) != recorded {
		t.Errorf("webhook_received: %d (%v), want %d", len(received), err, recorded)
	}
	refundDeliveries := map[string]bool{}
	for _, e := range received {
		if d, ok := e.Payload.(events.WebhookReceived); ok && (strings.HasPrefix(d.Kind, "refund.") || strings.HasPrefix(d.Kind, "dispute.")) {
			refundDeliveries[d.DeliveryID] = true
		}
	}
	if len(refundDeliveries) != refunds {
		t.Errorf("%d refund and dispute deliveries recorded, want %d", len(refundDeliveries), refunds)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		evs, _, err := m.events.LoadFilter(context.Background(), "ledger.platform.*.webhook.*.webhook_rejected")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if r, ok := e.Payload.(events.WebhookRejected); ok && !refundDeliveries[r.DeliveryID] {
				n++
			}
		}
		if n == saleless {
			break
		}
		if n > saleless || time.Now().After(deadline) {
			t.Fatalf("%d payment deliveries set aside, want %d (those naming no sale)", n, saleless)
		}
	}
	for ph, s := range final {
		r := c.do("GET", "/v1/sales/"+sales[ph], "Bearer "+keys[sales[ph]], nil)
		d, _ := r.body["data"].(map[string]any)
		if r.status != 200 || d["status"] != s.status || field(d, "payment.status") != s.payment ||
			(field(d, "amount_refunded.amount") != float64(s.refunded)) {
			t.Errorf("%s (%s): %d %s, want %s / payment %s / refunded %d", ph, s.file, r.status, r.raw, s.status, s.payment, s.refunded)
		}
	}
	for _, id := range bystanders {
		r := c.do("GET", "/v1/sales/"+id, "Bearer "+live, nil)
		d, _ := r.body["data"].(map[string]any)
		if r.status != 200 || d["status"] != "awaiting_payment" || field(d, "payment.status") != nil {
			t.Errorf("bystander %s changed: %d %s", id, r.status, r.raw)
		}
	}
}
