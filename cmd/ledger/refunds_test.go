package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// paidSale makes a sale of amount USD minor units, with a file and a licence, paid through the standard
// gateway, and waits until it is completed.
func paidSale(t *testing.T, c client, key, email string, amount int64) string {
	t.Helper()
	id := licensedCheckout(t, c, key, email, amount)
	if r := c.standardWebhook("msg_pay_"+id, paymentBody("payment.succeeded", id, amount, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("pay: %d %s", r.status, r.raw)
	}
	waitSale(t, c, key, id, func(d map[string]any) bool { return d["status"] == "completed" })
	return id
}

// TestRefundsThroughTheAPI: POST /v1/sales/{id}/refunds records refunds made outside a gateway; the
// settlement follows them (fee 5 %, sale 10,000, refund 4,000 → fee 300, settlement 5,700); a full refund
// makes the sale refunded, revokes its licence and its download links (410 access_revoked), and the
// customer's total is net of refunds.
func TestRefundsThroughTheAPI(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "refunds")
	id := paidSale(t, c, live, "refund@example.com", 10000)

	r := c.post("/v1/sales/"+id+"/refunds", live, "", `{"amount":4000,"reason":"requested_by_customer"}`)
	if r.status != 201 || field(r.body, "data.amount.amount") != 4000.0 || field(r.body, "data.source") != "api" ||
		field(r.body, "data.reason") != "requested_by_customer" || !strings.HasPrefix(field(r.body, "data.id").(string), "ref_") {
		t.Fatalf("refund: %d %s", r.status, r.raw)
	}
	sale := c.do("GET", "/v1/sales/"+id, "Bearer "+live, nil).body["data"].(map[string]any)
	for path, want := range map[string]any{
		"status": "completed", "amount_refunded.amount": 4000.0, "settlement.service_fee.amount": 300.0,
		"settlement.amount.amount": 5700.0, "settlement.clawback": nil,
	} {
		if got := field(sale, path); got != want {
			t.Errorf("after 4,000: %s = %v, want %v", path, got, want)
		}
	}
	if refunds, _ := sale["refunds"].([]any); len(refunds) != 1 {
		t.Errorf("refunds: %v", sale["refunds"])
	}
	link := field(sale, "post_purchase.files").([]any)[0].(map[string]any)["download_url"].(string)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if res, err := noFollow.Get(link); err != nil || res.StatusCode != 302 {
		t.Fatalf("download after a partial refund: %v %v", res, err)
	}

	// Errors name what is wrong, and write nothing.
	for _, tt := range []struct {
		body   string
		status int
		code   string
		field  string
	}{
		{`{"amount":0}`, 422, "", "amount"},
		{`{"amount":-1}`, 422, "", "amount"},
		{`{"amount":1.5}`, 422, "", "amount"},
		{`{"amount":100,"currency":"EUR"}`, 422, "", "currency"},
		{`{"amount":6001}`, 409, "refund_exceeds_amount", ""},
		{`{"reason":"` + strings.Repeat("x", 501) + `"}`, 422, "", "reason"},
		{`{"amount":1,"colour":"red"}`, 400, "", ""},
	} {
		r := c.post("/v1/sales/"+id+"/refunds", live, "", tt.body)
		fields, _ := field(r.body, "error.fields").(map[string]any)
		if r.status != tt.status || (tt.code != "" && r.errorCode() != tt.code) || (tt.field != "" && fields[tt.field] == nil) {
			t.Errorf("%.40s: %d %s, want %d %s %s", tt.body, r.status, r.raw, tt.status, tt.code, tt.field)
		}
	}

	// The rest (amount omitted) refunds it in full.
	r = c.post("/v1/sales/"+id+"/refunds", live, "full-1", `{}`)
	if r.status != 201 || field(r.body, "data.amount.amount") != 6000.0 {
		t.Fatalf("full refund: %d %s", r.status, r.raw)
	}
	if again := c.post("/v1/sales/"+id+"/refunds", live, "full-1", `{}`); again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" ||
		field(again.body, "data.id") != field(r.body, "data.id") {
		t.Errorf("replay: %d %s", again.status, again.raw)
	}
	// The revocation is in the refund's append; the read model may fold it in the next batch.
	sale = waitSale(t, c, live, id, func(d map[string]any) bool {
		lic, _ := field(d, "post_purchase.licences").([]any)
		return d["status"] == "refunded" && len(lic) == 1 && lic[0].(map[string]any)["status"] == "revoked"
	})
	if field(sale, "amount_refunded.amount") != 10000.0 || field(sale, "settlement.amount.amount") != 0.0 {
		t.Errorf("refunded: %v %v", field(sale, "amount_refunded"), field(sale, "settlement"))
	}
	if lic := field(sale, "post_purchase.licences").([]any); len(lic) != 1 || lic[0].(map[string]any)["status"] != "revoked" {
		t.Errorf("licences after a full refund: %v", lic)
	}
	res, err := noFollow.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 410 {
		t.Errorf("download after a full refund: %d", res.StatusCode)
	}
	if r := c.post("/v1/sales/"+id+"/refunds", live, "", `{"amount":1}`); r.status != 409 || r.errorCode() != "refund_exceeds_amount" {
		t.Errorf("refund of a refunded sale: %d %s", r.status, r.raw)
	}
	if l := c.do("GET", "/v1/sales?status=refunded", "Bearer "+live, nil); len(l.body["data"].([]any)) != 1 {
		t.Errorf("status=refunded: %s", l.raw)
	}
	cust := c.do("GET", "/v1/customers/"+field(sale, "customer.id").(string), "Bearer "+live, nil)
	if got := field(cust.body, "data.stats.total_spent"); fmt.Sprint(got) != "[map[amount:0 currency:USD formatted:$0.00]]" {
		t.Errorf("total_spent net of refunds: %v", got)
	}

	// An unpaid sale cannot be refunded; another store's sale is not found.
	unpaid := field(c.post("/v1/checkouts", live, "", checkoutBody("unpaid@example.com", 500, "")).body, "data.id").(string)
	if r := c.post("/v1/sales/"+unpaid+"/refunds", live, "", `{}`); r.status != 409 || r.errorCode() != "sale_not_refundable" {
		t.Errorf("refund of an unpaid sale: %d %s", r.status, r.raw)
	}
	_, other, _ := createStore(t, c, "refunds-other")
	if r := c.post("/v1/sales/"+id+"/refunds", other, "", `{}`); r.status != 404 {
		t.Errorf("another store's sale: %d %s", r.status, r.raw)
	}
}

// TestConcurrentRefundsNeverExceedTheAmount: ten concurrent 30 % refunds of one sale → exactly three
// succeed; the others are 409 refund_exceeds_amount, and the sale's refunds add up to 90 %.
func TestConcurrentRefundsNeverExceedTheAmount(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "race")
	id := paidSale(t, c, live, "race@example.com", 10000)
	rs := parallelDo(t, 10, func(int) (*http.Request, error) {
		rq, err := http.NewRequest("POST", c.base+"/v1/sales/"+id+"/refunds", strings.NewReader(`{"amount":3000}`))
		if err == nil {
			rq.Header.Set("Authorization", "Bearer "+live)
		}
		return rq, err
	})
	ok := 0
	for _, r := range rs {
		switch {
		case r.status == 201:
			ok++
		case r.status == 409 && r.errorCode() == "refund_exceeds_amount":
		default:
			t.Errorf("racer: %d %s", r.status, r.raw)
		}
	}
	if ok != 3 {
		t.Errorf("%d refunds of 30 %% succeeded, want 3", ok)
	}
	sale := waitSale(t, c, live, id, func(d map[string]any) bool { return field(d, "amount_refunded.amount") == 9000.0 })
	if n := len(sale["refunds"].([]any)); n != 3 || sale["status"] != "completed" {
		t.Errorf("after the race: %d refunds, status %v", n, sale["status"])
	}
}

// TestRefundMessagesSayWhatIsWrong (new-user review): no body at all refunds the rest, a sale refunded
// in full says so rather than "0 requested", an integer too large names the bound, and a reason's
// message does not claim that line breaks are refused.
func TestRefundMessagesSayWhatIsWrong(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "refund-messages")
	id := paidSale(t, c, live, "messages@example.com", 10000)
	for _, tt := range []struct{ body, want string }{
		{`{"amount":100000000000000000000}`, "at most 1000000000000000"},
		{`{"reason":"a\u0000b"}`, "other than line breaks"},
	} {
		if r := c.post("/v1/sales/"+id+"/refunds", live, "", tt.body); r.status != 422 || !strings.Contains(r.raw, tt.want) {
			t.Errorf("%s: %d %s, want 422 saying %q", tt.body, r.status, r.raw, tt.want)
		}
	}
	r := c.send("POST", "/v1/sales/"+id+"/refunds", map[string]string{"Authorization": "Bearer " + live}, nil)
	if r.status != 201 || field(r.body, "data.amount.amount") != 10000.0 {
		t.Fatalf("no body: %d %s", r.status, r.raw)
	}
	r = c.send("POST", "/v1/sales/"+id+"/refunds", map[string]string{"Authorization": "Bearer " + live}, nil)
	if msg, _ := field(r.body, "error.message").(string); r.status != 409 || !strings.Contains(msg, "already refunded in full") || strings.Contains(msg, "0 requested") {
		t.Errorf("a sale refunded in full: %d %s", r.status, r.raw)
	}
}
