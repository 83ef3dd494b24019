package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// licensedCheckout starts a sale of amount USD minor units with a file and a licence, and returns its id.
func licensedCheckout(t *testing.T, c client, key, email string, amount int64) string {
	t.Helper()
	body := fmt.Sprintf(`{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":%d,"currency":"USD"},
		"files":[{"name":"app.zip","url":"https://cdn.example.com/app.zip"}],"licence":{"max_activations":3}},
		"customer":{"email":%q}}`, amount, email)
	r := c.post("/v1/checkouts", key, "", body)
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	return field(r.body, "data.id").(string)
}

// TestTestHelpersWalkASaleThroughItsLife: with a test key, pay → download → partial refund → the rest,
// each answered once the payment processor applied it, with the sale as GET shows it; the events are
// the processor's, caused by a recorded delivery of gateway "test" and correlated by its delivery id.
func TestTestHelpersWalkASaleThroughItsLife(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "helpers")
	id := licensedCheckout(t, c, test, "walk@example.com", 10000)

	r := c.post("/v1/test_helpers/sales/"+id+"/pay", test, "", "")
	if r.status != 200 || field(r.body, "data.status") != "completed" || field(r.body, "data.payment.status") != "success" ||
		field(r.body, "data.payment.gateway") != "test" || field(r.body, "data.livemode") != false || r.header.Get("Ledger-Position") == "" {
		t.Fatalf("pay: %d %s", r.status, r.raw)
	}
	// The answer is read-your-writes: the licence issued with the completion is already there.
	lic, _ := field(r.body, "data.post_purchase.licences").([]any)
	if len(lic) != 1 || lic[0].(map[string]any)["status"] != "inactive" {
		t.Fatalf("licences after pay: %v", field(r.body, "data.post_purchase"))
	}
	licKey := lic[0].(map[string]any)["licence_key"].(string)
	link := field(r.body, "data.post_purchase.files").([]any)[0].(map[string]any)["download_url"].(string)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	download := func() int {
		res, err := noFollow.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := download(); s != 302 {
		t.Fatalf("download after pay: %d", s)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/pay", test, "", ""); r.status != 409 || r.errorCode() != "sale_already_paid" {
		t.Errorf("pay again: %d %s", r.status, r.raw)
	}

	r = c.post("/v1/test_helpers/sales/"+id+"/refund", test, "part-1", `{"amount":4000,"reason":"requested_by_customer"}`)
	if r.status != 200 || field(r.body, "data.status") != "completed" || field(r.body, "data.amount_refunded.amount") != 4000.0 {
		t.Fatalf("partial refund: %d %s", r.status, r.raw)
	}
	refunds, _ := field(r.body, "data.refunds").([]any)
	if len(refunds) != 1 || refunds[0].(map[string]any)["source"] != "test" || refunds[0].(map[string]any)["reason"] != "requested_by_customer" {
		t.Errorf("refunds after a partial refund: %v", field(r.body, "data.refunds"))
	}
	if again := c.post("/v1/test_helpers/sales/"+id+"/refund", test, "part-1", `{"amount":4000,"reason":"requested_by_customer"}`); again.status != 200 ||
		again.header.Get("Idempotent-Replayed") != "true" || field(again.body, "data.amount_refunded.amount") != 4000.0 {
		t.Errorf("replayed refund: %d %s", again.status, again.raw)
	}
	if s := download(); s != 302 {
		t.Errorf("download after a partial refund: %d", s)
	}

	// Errors name what is wrong and record nothing.
	for _, tt := range []struct {
		body   string
		status int
		code   string
		field  string
	}{
		{`{"amount":0}`, 422, "", "amount"},
		{`{"amount":"10"}`, 422, "", "amount"},
		{`{"amount":6001}`, 409, "refund_exceeds_amount", ""},
		{`{"reason":"` + strings.Repeat("x", 501) + `"}`, 422, "", "reason"},
		{`{"amount":1,"currency":"USD"}`, 400, "", ""},
		{`[]`, 400, "", ""},
	} {
		r := c.post("/v1/test_helpers/sales/"+id+"/refund", test, "", tt.body)
		fields, _ := field(r.body, "error.fields").(map[string]any)
		if r.status != tt.status || (tt.code != "" && r.errorCode() != tt.code) || (tt.field != "" && fields[tt.field] == nil) {
			t.Errorf("%.40s: %d %s, want %d %s %s", tt.body, r.status, r.raw, tt.status, tt.code, tt.field)
		}
	}

	// No amount: the rest.
	r = c.post("/v1/test_helpers/sales/"+id+"/refund", test, "", "")
	if r.status != 200 || field(r.body, "data.status") != "refunded" || field(r.body, "data.amount_refunded.amount") != 10000.0 {
		t.Fatalf("refund of the rest: %d %s", r.status, r.raw)
	}
	if lic := field(r.body, "data.post_purchase.licences").([]any); len(lic) != 1 || lic[0].(map[string]any)["status"] != "revoked" {
		t.Errorf("licence after a full refund: %v", lic)
	}
	if l := c.do("GET", "/v1/licences/"+licKey, "Bearer "+test, nil); field(l.body, "data.status") != "revoked" {
		t.Errorf("GET licence after a full refund: %d %s", l.status, l.raw)
	}
	if s := download(); s != 410 {
		t.Errorf("download after a full refund: %d, want 410", s)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/refund", test, "", `{"amount":1}`); r.status != 409 || r.errorCode() != "refund_exceeds_amount" {
		t.Errorf("refund of a refunded sale: %d %s", r.status, r.raw)
	}

	// The sale's history: each step's events were appended by the payment processor, caused by the
	// recorded delivery and correlated with its delivery id.
	evs := c.do("GET", "/v1/sales/"+id+"/events", "Bearer "+test, nil)
	var types []string
	correlations := map[string]string{}
	for _, e := range evs.body["data"].([]any) {
		e := e.(map[string]any)
		typ, _ := e["type"].(string)
		types = append(types, typ)
		if typ == "sale_started" || typ == "download_recorded" {
			continue
		}
		corr, _ := e["correlation_id"].(string)
		cause, _ := e["causation_id"].(string)
		if !strings.HasPrefix(corr, "msg_test_") || !strings.HasPrefix(cause, "evt_wh") {
			t.Errorf("%s: correlation %q, causation %q; want a test delivery's", typ, corr, cause)
		}
		if typ == "payment_succeeded" || typ == "refund_recorded" {
			if prev, seen := correlations[corr]; seen {
				t.Errorf("%s shares delivery %s with %s", typ, corr, prev)
			}
			correlations[corr] = typ
		}
	}
	if got := strings.Join(types, ","); got != "sale_started,payment_succeeded,sale_completed,download_recorded,refund_recorded,download_recorded,refund_recorded" {
		t.Errorf("history: %s", got)
	}

	// A live key does not see the helpers at all, not even for its own sale.
	liveSale := licensedCheckout(t, c, live, "live@example.com", 500)
	for _, action := range []string{"pay", "fail", "refund"} {
		if r := c.post("/v1/test_helpers/sales/"+liveSale+"/"+action, live, "", ""); r.status != 404 || r.errorCode() != "not_found" {
			t.Errorf("%s with a live key: %d %s", action, r.status, r.raw)
		}
	}
	if r := c.do("GET", "/v1/sales/"+liveSale, "Bearer "+live, nil); field(r.body, "data.status") != "awaiting_payment" {
		t.Errorf("live sale after the refused helpers: %s", r.raw)
	}
	// Another store's test key, and a test key on a live sale: not found.
	_, _, otherTest := createStore(t, c, "helpers-other")
	if r := c.post("/v1/test_helpers/sales/"+id+"/refund", otherTest, "", ""); r.status != 404 {
		t.Errorf("another store's sale: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/test_helpers/sales/"+liveSale+"/pay", test, "", ""); r.status != 404 {
		t.Errorf("a live sale with the test key: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/pay", "", "", ""); r.status != 401 {
		t.Errorf("no key: %d %s", r.status, r.raw)
	}
	// "test" is no gateway anyone can post to.
	if r := c.signedPost("/v1/webhooks/test", paymentBody("payment.succeeded", liveSale, 500, "USD"), nil); r.status != 404 || r.errorCode() != "unknown_gateway" {
		t.Errorf("POST /v1/webhooks/test: %d %s", r.status, r.raw)
	}
}

// TestTestHelpersFailAndUnpaid: fail sets the payment's failure error and fails the sale (a later pay
// still completes it, as a gateway's would); an unpaid sale cannot be refunded and a failed one cannot
// fail again (409, nothing recorded).
func TestTestHelpersFailAndUnpaid(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, _, test := createStore(t, c, "helpers-fail")
	id := licensedCheckout(t, c, test, "fail@example.com", 2500)

	if r := c.post("/v1/test_helpers/sales/"+id+"/refund", test, "", ""); r.status != 409 || r.errorCode() != "sale_not_refundable" {
		t.Errorf("refund of an unpaid sale: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/fail", test, "", `{"failure_error":{"code":"`+strings.Repeat("x", 101)+`"}}`); r.status != 422 ||
		field(r.body, "error.fields").(map[string]any)["failure_error.code"] == nil {
		t.Errorf("fail with a long code: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/pay", test, "", `{"amount":1}`); r.status != 400 {
		t.Errorf("pay with a body field: %d %s", r.status, r.raw)
	}
	r := c.post("/v1/test_helpers/sales/"+id+"/fail", test, "", "")
	if r.status != 200 || field(r.body, "data.status") != "failed" || field(r.body, "data.payment.status") != "failed" ||
		field(r.body, "data.payment.failure_error.code") != "card_declined" || field(r.body, "data.post_purchase") != nil {
		t.Fatalf("fail: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/test_helpers/sales/"+id+"/fail", test, "", ""); r.status != 409 || r.errorCode() != "sale_not_awaiting_payment" {
		t.Errorf("fail again: %d %s", r.status, r.raw)
	}
	other := licensedCheckout(t, c, test, "fail2@example.com", 2500)
	r = c.post("/v1/test_helpers/sales/"+other+"/fail", test, "", `{"failure_error":{"code":"insufficient_funds","message":"Not enough money."}}`)
	if r.status != 200 || field(r.body, "data.payment.failure_error.code") != "insufficient_funds" || field(r.body, "data.payment.failure_error.message") != "Not enough money." {
		t.Errorf("fail with an error: %d %s", r.status, r.raw)
	}
	// The customer retries and pays: the failed sale completes.
	if r := c.post("/v1/test_helpers/sales/"+id+"/pay", test, "", "{}"); r.status != 200 || field(r.body, "data.status") != "completed" {
		t.Errorf("pay after a failure: %d %s", r.status, r.raw)
	}
}

// TestTestHelperRefundsRace: concurrent refunds of 60 % each through the helpers → one is applied; the
// others are refused before they are recorded (refund_exceeds_amount) or, having passed that check
// together, set aside by the payment processor (delivery_rejected) — never a silent 200, never more
// than the amount.
func TestTestHelperRefundsRace(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, _, test := createStore(t, c, "helpers-race")
	id := licensedCheckout(t, c, test, "race@example.com", 10000)
	if r := c.post("/v1/test_helpers/sales/"+id+"/pay", test, "", ""); r.status != 200 {
		t.Fatalf("pay: %d %s", r.status, r.raw)
	}
	rs := parallelDo(t, 6, func(int) (*http.Request, error) {
		rq, err := http.NewRequest("POST", c.base+"/v1/test_helpers/sales/"+id+"/refund", strings.NewReader(`{"amount":6000}`))
		if err == nil {
			rq.Header.Set("Authorization", "Bearer "+test)
		}
		return rq, err
	})
	ok := 0
	for _, r := range rs {
		switch {
		case r.status == 200:
			ok++
		case r.status == 409 && (r.errorCode() == "refund_exceeds_amount" || r.errorCode() == "delivery_rejected"):
			if !strings.Contains(field(r.body, "error.message").(string), "left") {
				t.Errorf("409 without the reason: %s", r.raw)
			}
		default:
			t.Errorf("racer: %d %s", r.status, r.raw)
		}
	}
	if ok != 1 {
		t.Errorf("%d refunds of 60 %% succeeded, want 1", ok)
	}
	sale := waitSale(t, c, test, id, func(map[string]any) bool { return true })
	if field(sale, "amount_refunded.amount") != 6000.0 {
		t.Errorf("refunded after the race: %v", field(sale, "amount_refunded"))
	}
}
