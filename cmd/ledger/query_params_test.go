package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUnknownQueryParametersAre400 (issue 9): a GET of the store API answers 400 naming a query
// parameter it does not take (?limit=1 used to answer the default page, ?email= on a read everyone),
// suggesting the ledger's own name for a well-known alias; the reference documents' own requests,
// download links with a tracking parameter and probes keep working.
func TestUnknownQueryParametersAre400(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "params")
	cus := mustCustomer(t, c, live, `{"email":"john@example.com","first_name":"John"}`)["id"].(string)
	body := `{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":5000,"currency":"USD"},
		"files":[{"name":"app.zip","url":"https://cdn.example.com/app.zip"}],"licence":{"max_activations":3}},
		"customer":{"email":"john@example.com"}}`
	r := c.post("/v1/checkouts", live, "", body)
	if r.status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	sale := field(r.body, "data.id").(string)
	if r := c.standardWebhook("pay_params", paymentBody("payment.succeeded", sale, 5000, "USD"), time.Now()); r.status != http.StatusOK {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	// The licence is in the same append as the completion, but the read model may fold them in two
	// batches: wait for both.
	done := waitSale(t, c, live, sale, func(d map[string]any) bool {
		lic, _ := field(d, "post_purchase.licences").([]any)
		return d["status"] == "completed" && len(lic) == 1
	})
	licence := field(done, "post_purchase.licences").([]any)[0].(map[string]any)["licence_key"].(string)
	download := field(done, "post_purchase.files").([]any)[0].(map[string]any)["download_url"].(string)

	for _, tt := range []struct {
		path  string
		names []string // the parameters the message must name
		hint  string   // a suggestion it must make
	}{
		{"/v1/sales?limit=1", []string{"limit"}, "did you mean per_page?"},
		{"/v1/sales?page_size=5", []string{"page_size"}, "did you mean per_page?"},
		{"/v1/sales?email=john@example.com", []string{"email"}, "GET /v1/sales accepts"},
		{"/v1/sales?starting_after=" + sale, []string{"starting_after"}, "did you mean cursor?"},
		{"/v1/sales?status=completed&colour=red&size=2", []string{"colour", "size"}, "for size, did you mean per_page?"},
		{"/v1/customers?limit=1", []string{"limit"}, "did you mean per_page?"},
		{"/v1/customers/?q=john", []string{"q"}, "did you mean search?"},
		{"/v1/customers?Search=john", []string{"Search"}, "GET /v1/customers accepts"},
		{"/v1/customers/" + cus + "?expand=addresses", []string{"expand"}, "takes no query parameters"},
		{"/v1/customers/" + cus + "/addresses?limit=1", []string{"limit"}, "takes no query parameters"},
		{"/v1/sales/" + sale + "?expand=customer", []string{"expand"}, "takes no query parameters"},
		{"/v1/sales/" + sale + "/events?per_page=1", []string{"per_page"}, "takes no query parameters"},
		{"/v1/store?verbose=1", []string{"verbose"}, "takes no query parameters"},
		{"/v1/licences/" + licence + "?instance=m1", []string{"instance"}, "takes no query parameters"},
	} {
		r := c.do("GET", tt.path, "Bearer "+live, nil)
		msg, _ := field(r.body, "error.message").(string)
		if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" || !strings.Contains(msg, tt.hint) {
			t.Errorf("GET %s: %d %s; want 400 invalid_request with %q", tt.path, r.status, r.raw, tt.hint)
			continue
		}
		for _, name := range tt.names {
			if !strings.Contains(msg, name) {
				t.Errorf("GET %s: %q does not name %s", tt.path, msg, name)
			}
		}
	}

	// What the reference documents send, and links and probes with parameters of their own.
	for _, path := range []string{
		"/v1/customers/?page=2&page_size=5", "/v1/customers/?search=john", // 4Geeks
		"/v1/customers?search=customer@example.com", "/v1/customers?start_date=2025-01-01&end_date=2025-01-31&per_page=100", // Chariow
		"/v1/sales?status=completed", "/v1/sales?customer_id=" + cus, "/v1/sales?start_date=2025-01-01&end_date=2025-01-31",
		"/v1/sales?status=completed&start_date=2025-01-01", "/v1/sales?search=john@example.com",
		"/v1/customers?email=john@example.com",
	} {
		if r := c.do("GET", path, "Bearer "+live, nil); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/healthz?probe=1", "/readyz?verbose", "/openapi.json?v=2", "/metrics?name[]=x"} {
		if r := c.do("GET", path, "", nil); r.status != http.StatusOK {
			t.Errorf("GET %s: %d %.200s", path, r.status, r.raw)
		}
	}
	u, err := url.Parse(download)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", c.base+u.Path+"?utm_source=newsletter&utm_medium=email", nil)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://cdn.example.com/app.zip" {
		t.Errorf("download link with tracking parameters: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestCustomerEmailFilter (issue 9): GET /v1/customers?email= finds the customer with exactly that
// email, however it is typed (the canonical form: case, Unicode normalisation, IDNA domain), within the
// key's store and mode; an empty or invalid email is 400 naming the parameter.
func TestCustomerEmailFilter(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, test := createStore(t, c, "emails")
	_, otherLive, _ := createStore(t, c, "emails-other")
	ada := mustCustomer(t, c, live, `{"email":"Ada@Example.com","first_name":"Ada"}`)["id"].(string)
	idn := mustCustomer(t, c, live, `{"email":"user@xn--bcher-kva.example"}`)["id"].(string)
	for _, email := range []string{"ada@example.org", "bada@example.com", "ada@example.com.au", "ada.lovelace@example.com"} {
		mustCustomer(t, c, live, `{"email":"`+email+`"}`)
	}
	adaTest := mustCustomer(t, c, test, `{"email":"ada@example.com"}`)["id"].(string)
	adaOther := mustCustomer(t, c, otherLive, `{"email":"ada@example.com"}`)["id"].(string)

	for _, tt := range []struct {
		key, query string
		want       []string
	}{
		{live, "email=ada@example.com", []string{ada}},
		{live, "email=" + url.QueryEscape("  ADA@EXAMPLE.COM "), []string{ada}},
		{live, "email=" + url.QueryEscape("user@bücher.example"), []string{idn}},
		{live, "email=" + url.QueryEscape("USER@XN--BCHER-KVA.EXAMPLE"), []string{idn}},
		{live, "email=nobody@example.com", []string{}},
		{live, "email=ada@example.com&search=ada", []string{ada}},
		{live, "email=ada@example.com&search=grace", []string{}},
		{live, "email=ada@example.com&page=1&page_size=2", []string{ada}},
		{live, "email=ada@example.com&per_page=1", []string{ada}},
		{test, "email=ada@example.com", []string{adaTest}},
		{otherLive, "email=ada@example.com", []string{adaOther}},
	} {
		if got, _ := customerList(t, c, tt.key, tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, query := range []string{"email=", "email=%20", "email=ada", "email=ada@localhost", "email=a@b@example.com",
		"email=" + strings.Repeat("a", 250) + "@example.com"} {
		r := c.do("GET", "/v1/customers?"+query, "Bearer "+live, nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "The email parameter") {
			t.Errorf("%s: %d %s; want 400 naming email", query, r.status, r.raw)
		}
	}
	// An erased customer is found no more.
	if r := c.do("DELETE", "/v1/customers/"+ada, "Bearer "+live, nil); r.status != http.StatusOK {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	if got, _ := customerList(t, c, live, "email=ada@example.com"); len(got) != 0 {
		t.Errorf("the erased customer is still found: %v", got)
	}
}

// TestQueryParametersGivenOnceAndNotEmpty (review of issue 9): a parameter given twice
// (status=completed&status=awaiting_payment) used to filter by its first value, and an empty one
// (status=, per_page=, cursor=, email=) answered the unfiltered list; both are 400 naming the parameter,
// on every route that checks its parameters. A query of many unknown names is answered in a short
// message, not one as long as the query.
func TestQueryParametersGivenOnceAndNotEmpty(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "once")
	cus := mustCustomer(t, c, live, `{"email":"ada@example.com"}`)["id"].(string)
	mustCustomer(t, c, live, `{"email":"grace@example.com"}`)
	for _, email := range []string{"ada@example.com", "grace@example.com"} {
		if r := c.post("/v1/checkouts", live, "", checkoutBody(email, 1000, "")); r.status != http.StatusCreated {
			t.Fatalf("checkout: %d %s", r.status, r.raw)
		}
	}
	customerCursor := getPage(t, c, live, "/v1/customers?per_page=1").next
	saleCursor := getPage(t, c, live, "/v1/sales?per_page=1").next
	if customerCursor == "" || saleCursor == "" {
		t.Fatalf("two of each, one per page, and no next_cursor: %q %q", customerCursor, saleCursor)
	}

	for _, tt := range []struct{ path, name, says string }{
		{"/v1/sales?status=completed&status=awaiting_payment", "status", "given twice"},
		{"/v1/sales?per_page=2&per_page=3", "per_page", "given twice"},
		{"/v1/sales?customer_id=" + cus + "&customer_id=" + cus, "customer_id", "given twice"},
		{"/v1/sales?start_date=2025-01-01&start_date=2025-02-01&start_date=2025-03-01", "start_date", "given 3 times"},
		{"/v1/sales?cursor=" + saleCursor + "&cursor=" + saleCursor, "cursor", "given twice"},
		{"/v1/customers?email=ada@example.com&email=grace@example.com", "email", "given twice"},
		{"/v1/customers?per_page=1&per_page=2", "per_page", "given twice"},
		{"/v1/customers?page=1&page=2", "page", "given twice"},
		{"/v1/customers?search=ada&search=grace", "search", "given twice"},
		{"/v1/customers?cursor=" + customerCursor + "&cursor=" + customerCursor, "cursor", "given twice"},

		{"/v1/sales?status=", "status", "cannot be empty"},
		{"/v1/sales?status", "status", "cannot be empty"},
		{"/v1/sales?customer_id=", "customer_id", "cannot be empty"},
		{"/v1/sales?start_date=", "start_date", "cannot be empty"},
		{"/v1/sales?end_date=&status=completed", "end_date", "cannot be empty"},
		{"/v1/sales?per_page=", "per_page", "cannot be empty"},
		{"/v1/sales?cursor=", "cursor", "cannot be empty"},
		{"/v1/sales?search=", "search", "cannot be empty"},
		{"/v1/customers?email=", "email", "cannot be empty"},
		{"/v1/customers?per_page=", "per_page", "cannot be empty"},
		{"/v1/customers?cursor=", "cursor", "cannot be empty"},
		{"/v1/customers?page=", "page", "cannot be empty"},
		{"/v1/customers?page_size=", "page_size", "cannot be empty"},
		{"/v1/customers?start_date=", "start_date", "cannot be empty"},
		{"/v1/customers?end_date=", "end_date", "cannot be empty"},
		{"/v1/customers/?search=", "search", "cannot be empty"},
	} {
		r := c.do("GET", tt.path, "Bearer "+live, nil)
		msg, _ := field(r.body, "error.message").(string)
		if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" || !strings.Contains(msg, "The "+tt.name+" ") || !strings.Contains(msg, tt.says) {
			t.Errorf("GET %s: %d %s; want 400 invalid_request naming %s, %q", tt.path, r.status, r.raw, tt.name, tt.says)
		}
	}

	// Many unknown names: ten are named, the rest counted.
	var q []string
	for i := range 1500 {
		q = append(q, fmt.Sprintf("unknown_parameter_number_%04d=1", i))
	}
	for _, route := range []string{"/v1/sales", "/v1/customers", "/v1/store"} {
		r := c.do("GET", route+"?"+strings.Join(q, "&"), "Bearer "+live, nil)
		msg, _ := field(r.body, "error.message").(string)
		if r.status != http.StatusBadRequest || len(r.raw) > 1024 || !strings.Contains(msg, "unknown_parameter_number_0009") ||
			strings.Contains(msg, "unknown_parameter_number_0010") || !strings.Contains(msg, "and 1490 more") {
			t.Errorf("GET %s?<1500 unknown names>: %d, %d bytes: %.400s; want 400 naming ten and 1490 more", route, r.status, len(r.raw), r.raw)
		}
	}
}
