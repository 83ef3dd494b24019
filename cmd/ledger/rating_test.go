package main

import (
	"strings"
	"testing"
	"time"
)

func TestRatingAndSaleHistory(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "rated")
	id := field(c.post("/v1/checkouts", live, "", checkoutBody("r@example.com", 1000, "")).body, "data.id").(string)

	if r := c.post("/v1/sales/"+id+"/rating", live, "", `{"value":5}`); r.status != 409 || r.errorCode() != "sale_not_completed" {
		t.Fatalf("rating an unpaid sale: %d %s", r.status, r.raw)
	}
	c.standardWebhook("rate_pay", paymentBody("payment.succeeded", id, 1000, "USD"), time.Now())
	waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })

	for _, bad := range []string{`{"value":6}`, `{"value":0}`, `{}`, `{"value":"five"}`} {
		if r := c.post("/v1/sales/"+id+"/rating", live, "", bad); r.status != 422 || !strings.Contains(r.raw, "value") {
			t.Errorf("%s: %d %s", bad, r.status, r.raw)
		}
	}
	first := c.post("/v1/sales/"+id+"/rating", live, "", `{"value":5,"comment":"Excellent product!"}`)
	second := c.post("/v1/sales/"+id+"/rating", live, "", `{"value":4}`)
	if first.status != 201 || second.status != 201 {
		t.Fatalf("ratings: %d %s / %d %s", first.status, first.raw, second.status, second.raw)
	}
	if field(second.body, "data.rate.value") != 4.0 || field(second.body, "data.rate.id") != field(first.body, "data.rate.id") {
		t.Fatalf("second rating %v should replace the first %v under the same id", field(second.body, "data.rate"), field(first.body, "data.rate"))
	}
	if r := c.post("/v1/sales/"+id+"/rating", test, "", `{"value":5}`); r.status != 404 {
		t.Fatalf("rating through the other mode's key: %d", r.status)
	}

	r := c.do("GET", "/v1/sales/"+id+"/events", "Bearer "+live, nil)
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	var types []string
	var lastSeq float64
	for _, e := range r.body["data"].([]any) {
		ev := e.(map[string]any)
		types = append(types, ev["type"].(string))
		if seq := ev["sequence"].(float64); seq <= lastSeq {
			t.Errorf("history not oldest first: %v after %v", seq, lastSeq)
		} else {
			lastSeq = seq
		}
	}
	if got := strings.Join(types, ","); got != "sale_started,payment_succeeded,sale_completed,sale_rated,sale_rated" {
		t.Fatalf("history %s", got)
	}
	if r := c.do("GET", "/v1/sales/"+id+"/events", "Bearer "+test, nil); r.status != 404 {
		t.Fatalf("history through the other mode's key: %d", r.status)
	}
}
