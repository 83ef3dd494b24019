package main

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLicenceActivationsNeverExceedTheMaximumUnderRaces(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "licensed")
	body := `{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":5000,"currency":"USD"},"licence":{"max_activations":3,"expires_in_days":365}},
		"customer":{"email":"dev@example.com"}}`
	saleID := field(c.post("/v1/checkouts", live, "", body).body, "data.id").(string)
	c.standardWebhook("lic_pay", paymentBody("payment.succeeded", saleID, 5000, "USD"), time.Now())
	waitSale(t, c, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })

	var key string
	deadline := time.Now().Add(10 * time.Second)
	for key == "" {
		d := waitSale(t, c, live, saleID, func(map[string]any) bool { return true })
		if ls, _ := field(d, "post_purchase.licences").([]any); len(ls) == 1 {
			key = ls[0].(map[string]any)["licence_key"].(string)
		} else if time.Now().After(deadline) {
			t.Fatalf("completed sale shows no licence: %v", d["post_purchase"])
		}
	}
	if r := c.do("GET", "/v1/licences/"+key, "Bearer "+live, nil); r.status != 200 || field(r.body, "data.status") != "inactive" || field(r.body, "data.max_activations") != 3.0 {
		t.Fatalf("get licence: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/v1/licences/"+key, "Bearer "+test, nil); r.status != 404 {
		t.Fatalf("the other mode's key sees the licence: %d", r.status)
	}

	// 20 machines race for 3 activations.
	const racers = 20
	statuses := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = c.post("/v1/licences/"+key+"/activate", live, "", fmt.Sprintf(`{"instance":"machine-%d"}`, i)).status
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[200] != 3 || count[409] != racers-3 {
		t.Fatalf("activation statuses %v; want exactly 3 × 200 and %d × 409", count, racers-3)
	}
	r := c.do("GET", "/v1/licences/"+key, "Bearer "+live, nil)
	if field(r.body, "data.activations") != 3.0 || field(r.body, "data.status") != "active" {
		t.Fatalf("after the race: %s", r.raw)
	}
	var active string
	for i, s := range statuses {
		if s == 200 {
			active = fmt.Sprintf("machine-%d", i)
			break
		}
	}
	// Re-activating an active instance changes nothing; deactivating frees a seat; revoking ends it.
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":"`+active+`"}`); r.status != 200 || field(r.body, "data.activations") != 3.0 {
		t.Fatalf("re-activation: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/licences/"+key+"/deactivate", live, "", `{"instance":"`+active+`"}`); r.status != 200 || field(r.body, "data.activations") != 2.0 {
		t.Fatalf("deactivate: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":"new-machine"}`); r.status != 200 {
		t.Fatalf("activation into the freed seat: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":""}`); r.status != 422 {
		t.Fatalf("empty instance: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/licences/"+key+"/revoke", live, "", `{"reason":"refund"}`); r.status != 200 || field(r.body, "data.status") != "revoked" {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":"after-revoke"}`); r.status != 409 || r.errorCode() != "licence_unusable" {
		t.Fatalf("activation after revoke: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/v1/licences/NOPE-NOPE", "Bearer "+live, nil); r.status != 404 {
		t.Fatalf("unknown key: %d", r.status)
	}
}
