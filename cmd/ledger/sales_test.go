package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func checkoutBody(email string, price int64, extra string) string {
	return fmt.Sprintf(`{"product":{"id":"prd_def456","name":"Premium Course","type":"course","price":{"amount":%d,"currency":"USD"},
		"files":[{"name":"course.zip","url":"https://cdn.example.com/c.zip"}]},
		"customer":{"email":%q,"first_name":"John","last_name":"Doe"}%s}`, price, email, extra)
}

func (c client) post(path, key, idem, body string) response {
	c.t.Helper()
	return c.send("POST", path, map[string]string{"Authorization": "Bearer " + key, "Idempotency-Key": idem}, strings.NewReader(body))
}

func field(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func TestCheckoutReferenceExampleAndCustomer(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "ref")

	r := c.post("/v1/checkouts", live, "", checkoutBody("John@Example.com", 9900, `,"discount":{"code":"SAVE20","type":"percentage","value":20},"channel":"store"`))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	sale := r.body["data"].(map[string]any)
	for path, want := range map[string]any{
		"status": "awaiting_payment", "original_amount.amount": 9900.0, "discount_amount.amount": 1980.0,
		"amount.amount": 7920.0, "amount.formatted": "$79.20", "channel.value": "store", "customer.email": "John@Example.com", // as sent; compared canonical
		"customer.name": "John Doe", "discount.code": "SAVE20", "discount.type": "percentage", "store.slug": "ref",
		"product.id": "prd_def456",
	} {
		if got := field(sale, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	id := sale["id"].(string)
	got := c.do("GET", "/v1/sales/"+id, "Bearer "+live, nil)
	if got.status != 200 || field(got.body, "data.amount.amount") != 7920.0 {
		t.Fatalf("read after write: %d %s", got.status, got.raw)
	}
	// The same email, differently written, is the same customer.
	r2 := c.post("/v1/checkouts", live, "", checkoutBody(" JOHN@example.com", 500, ""))
	if r2.status != 201 || field(r2.body, "data.customer.id") != field(sale, "customer.id") {
		t.Fatalf("second purchase: customer %v, want %v (%s)", field(r2.body, "data.customer.id"), field(sale, "customer.id"), r2.raw)
	}
}

func TestCheckoutIdempotencyAndConcurrentFirstPurchases(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "idem")

	body := checkoutBody("a@example.com", 1000, "")
	first := c.post("/v1/checkouts", live, "key-1", body)
	again := c.post("/v1/checkouts", live, "key-1", body)
	if first.status != 201 || again.status != 201 || field(first.body, "data.id") != field(again.body, "data.id") {
		t.Fatalf("same key, same body: %d %v / %d %v", first.status, field(first.body, "data.id"), again.status, field(again.body, "data.id"))
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Error("replayed answer lacks Idempotent-Replayed: true")
	}
	if other := c.post("/v1/checkouts", live, "key-1", checkoutBody("a@example.com", 2000, "")); other.status != 409 || other.errorCode() != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s", other.status, other.raw)
	}

	// Many racers: one key → one sale; one new email → one customer.
	const racers = 12
	var wg sync.WaitGroup
	sameKey := make([]response, racers)
	sameEmail := make([]response, racers)
	for i := range racers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			sameKey[i] = c.post("/v1/checkouts", live, "key-race", checkoutBody("k@example.com", 700, ""))
		}()
		go func() {
			defer wg.Done()
			sameEmail[i] = c.post("/v1/checkouts", live, "", checkoutBody("new@example.com", 700, ""))
		}()
	}
	wg.Wait()
	saleIDs, customerIDs := map[any]bool{}, map[any]bool{}
	for i := range racers {
		if sameKey[i].status != 201 || sameEmail[i].status != 201 {
			t.Fatalf("racer %d: %d %s / %d %s", i, sameKey[i].status, sameKey[i].raw, sameEmail[i].status, sameEmail[i].raw)
		}
		saleIDs[field(sameKey[i].body, "data.id")] = true
		customerIDs[field(sameEmail[i].body, "data.customer.id")] = true
	}
	if len(saleIDs) != 1 || len(customerIDs) != 1 {
		t.Fatalf("%d sales for one key, %d customers for one email; want 1 and 1", len(saleIDs), len(customerIDs))
	}
}

func TestCheckoutValidation(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "val")
	tests := []struct {
		name   string
		body   string
		fields []string
	}{
		{"no product", `{"customer":{"email":"a@example.com"}}`, []string{"product"}},
		{"no price", `{"product":{"id":"p","name":"n","type":"t"},"customer":{"email":"a@example.com"}}`, []string{"product.price"}},
		{"negative amount", checkoutBody("a@example.com", -1, ""), []string{"product.price.amount"}},
		{"fractional amount", `{"product":{"id":"p","name":"n","type":"t","price":{"amount":79.2,"currency":"USD"}},"customer":{"email":"a@example.com"}}`, []string{"product.price.amount"}},
		{"unknown currency", `{"product":{"id":"p","name":"n","type":"t","price":{"amount":100,"currency":"ZZZ"}},"customer":{"email":"a@example.com"}}`, []string{"product.price.currency"}},
		{"discount over the price", checkoutBody("a@example.com", 100, `,"discount":{"code":"X","type":"fixed","value":101}`), []string{"discount.value"}},
		{"percentage over 100", checkoutBody("a@example.com", 100, `,"discount":{"code":"X","type":"percentage","value":"100.5"}`), []string{"discount.value"}},
		{"all at once", `{"product":{"price":{"amount":1.5,"currency":"USD"}},"customer":{"email":"nope"},"channel":"tv"}`,
			[]string{"product.id", "product.name", "product.type", "product.price.amount", "customer.email", "channel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post("/v1/checkouts", live, "", tt.body)
			if r.status != 422 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			fields, _ := field(r.body, "error.fields").(map[string]any)
			for _, f := range tt.fields {
				if _, ok := fields[f]; !ok {
					t.Errorf("fields %v lack %q", fields, f)
				}
			}
		})
	}
	// A misspelt field at any depth is named, with its path, rather than silently ignored.
	unknown := []struct{ body, path string }{
		{checkoutBody("a@example.com", 100, `,"colour":"red"`), "colour"},
		{`{"product":{"id":"p","name":"n","type":"t","price":{"amount":100,"currency":"USD","amout":1}},"customer":{"email":"a@example.com"}}`, "product.price.amout"},
		{`{"product":{"id":"p","name":"n","type":"t","price":{"amount":100,"currency":"USD"}},"customer":{"emial":"a@example.com"}}`, "customer.emial"},
		{`{"product":{"id":"p","name":"n","type":"t","price":{"amount":100,"currency":"USD"},"files":[{"id":"f","name":"a.zip","url":"https://x/a"},{"id":"g","nme":"b.zip","url":"https://x/b"}]},"customer":{"email":"a@example.com"}}`, "product.files[1].nme"},
	}
	for _, u := range unknown {
		r := c.post("/v1/checkouts", live, "", u.body)
		if msg, _ := field(r.body, "error.message").(string); r.status != 400 || !strings.Contains(msg, u.path) {
			t.Errorf("unknown %s: %d %s", u.path, r.status, r.raw)
		}
	}
	if r := c.do("GET", "/v1/sales", "Bearer "+live, nil); len(r.body["data"].([]any)) != 0 {
		t.Fatalf("rejected checkouts left sales behind: %s", r.raw)
	}
}

func TestListSales(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "lists")
	_, otherLive, _ := createStore(t, c, "other")
	var ids []string
	for i := range 7 {
		r := c.post("/v1/checkouts", live, "", checkoutBody(fmt.Sprintf("buyer%d@example.com", i%3), int64(100+i), ""))
		if r.status != 201 {
			t.Fatal(r.raw)
		}
		ids = append(ids, field(r.body, "data.id").(string))
	}
	c.post("/v1/checkouts", otherLive, "", checkoutBody("buyer0@example.com", 1, ""))
	c.post("/v1/checkouts", test, "", checkoutBody("buyer0@example.com", 1, ""))

	list := func(query string) ([]string, map[string]any) {
		t.Helper()
		r := c.do("GET", "/v1/sales?"+query, "Bearer "+live, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", query, r.status, r.raw)
		}
		var got []string
		for _, s := range r.body["data"].([]any) {
			got = append(got, s.(map[string]any)["id"].(string))
		}
		return got, r.body["pagination"].(map[string]any)
	}
	all, _ := list("per_page=100")
	if len(all) != 7 || all[0] != ids[6] || all[6] != ids[0] {
		t.Fatalf("list = %v; want the 7 live sales of this store, newest first", all)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	yesterday := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	for _, tt := range []struct {
		query string
		n     int
	}{
		{"status=awaiting_payment", 7}, {"status=completed", 0},
		{"search=buyer1@", 2}, {"search=BUYER2", 2}, {"search=" + ids[3], 1},
		{"start_date=" + today + "&end_date=" + today, 7}, {"end_date=" + yesterday, 0}, {"start_date=" + today, 7},
	} {
		if got, _ := list(tt.query); len(got) != tt.n {
			t.Errorf("%s: %d sales, want %d", tt.query, len(got), tt.n)
		}
	}
	cust, _ := list("search=" + ids[0])
	if len(cust) != 1 {
		t.Fatal(cust)
	}

	// Walking next_cursor visits every sale exactly once, even while new sales arrive.
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		q := "per_page=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		got, pg := list(q)
		for _, id := range got {
			seen[id]++
		}
		c.post("/v1/checkouts", live, "", checkoutBody("late@example.com", 5, ""))
		next, _ := pg["next_cursor"].(string)
		if next == "" {
			break
		}
		if pages > 20 {
			t.Fatal("cursor walk does not end")
		}
		cursor = next
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("sale %s seen %d times", id, seen[id])
		}
	}
	// prev_cursor goes back to the newer page.
	_, pg1 := list("per_page=3")
	p2, pg2 := list("per_page=3&cursor=" + pg1["next_cursor"].(string))
	back, _ := list("per_page=3&cursor=" + pg2["prev_cursor"].(string))
	first, _ := list("per_page=3")
	if strings.Join(back, ",") != strings.Join(first, ",") || len(p2) != 3 {
		t.Errorf("prev_cursor from page 2 gave %v, want page 1 %v", back, first)
	}

	for _, bad := range []struct{ query, param string }{
		{"per_page=0", "per_page"}, {"per_page=101", "per_page"}, {"per_page=ten", "per_page"},
		{"status=paid", "status"}, {"cursor=garbage", "cursor"}, {"start_date=2025-13-01", "start_date"},
		{"end_date=01/31/2025", "end_date"}, {"start_date=2025-02-01&end_date=2025-01-31", "start_date"}, {"search=", "search"},
	} {
		r := c.do("GET", "/v1/sales?"+bad.query, "Bearer "+live, nil)
		if r.status != 400 || !strings.Contains(r.raw, bad.param) {
			t.Errorf("%s: %d %s; want 400 naming %s", bad.query, r.status, r.raw, bad.param)
		}
	}
	// Another store's key and the other mode see none of these sales.
	for _, key := range []string{otherLive, test} {
		if r := c.do("GET", "/v1/sales/"+ids[0], "Bearer "+key, nil); r.status != 404 {
			t.Errorf("foreign key read a sale: %d %s", r.status, r.raw)
		}
	}
}

func TestCheckoutMetadata(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "meta")
	tests := []struct {
		name     string
		metadata string // "" leaves the field out
		status   int
		want     string // the sale's metadata, compact JSON
	}{
		{"absent", "", 201, "null"},
		{"null", "null", 201, "null"},
		{"empty object", "{}", 201, "{}"},
		{"object", `{ "order_id": "ord_1001", "tags": ["a", 1], "nested": {"x": true} }`, 201, `{"order_id":"ord_1001","tags":["a",1],"nested":{"x":true}}`},
		{"10 KB exactly", metadataOf(10240), 201, metadataOf(10240)},
		{"over 10 KB", metadataOf(10241), 422, ""},
		{"string", `"ord_1001"`, 422, ""},
		{"array", `[{"order_id":"ord_1001"}]`, 422, ""},
		{"number", `42`, 422, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.metadata != "" {
				extra = `,"metadata":` + tt.metadata
			}
			r := c.post("/v1/checkouts", live, "", checkoutBody("meta@example.com", 500, extra))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if tt.status != 201 {
				if got := errorFields(r); len(got) != 1 || got[0] != "metadata" {
					t.Fatalf("error fields %v, want [metadata]: %s", got, r.raw)
				}
				return
			}
			id := field(r.body, "data.id").(string)
			for _, got := range []response{r, c.do("GET", "/v1/sales/"+id, "Bearer "+live, nil)} {
				b, _ := json.Marshal(field(got.body, "data.metadata"))
				if !jsonEqual(t, string(b), tt.want) {
					t.Errorf("metadata %s, want %s", b, tt.want)
				}
			}
		})
	}

	// Like the customer's metadata it is personal (it may name the buyer): sealed in the log, erased with
	// the customer.
	r := c.post("/v1/checkouts", live, "", checkoutBody("erase-meta@example.com", 500, `,"metadata":{"note":"zq-secret-note-7"}`))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	if hits, _ := scanLedger(t, m, "zq-secret-note-7"); len(hits) > 0 {
		t.Errorf("sale metadata in the log in the clear: %v", hits)
	}
	saleID, customerID := field(r.body, "data.id").(string), field(r.body, "data.customer.id").(string)
	if d := c.do("DELETE", "/v1/customers/"+customerID, "Bearer "+live, nil); d.status != 200 {
		t.Fatalf("erase: %d %s", d.status, d.raw)
	}
	if g := c.do("GET", "/v1/sales/"+saleID, "Bearer "+live, nil); g.status != 200 || field(g.body, "data.metadata") != nil || !strings.Contains(g.raw, `"metadata":null`) {
		t.Errorf("sale of an erased customer: %d %s, want metadata null", g.status, g.raw)
	}
}

// jsonEqual tells whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
