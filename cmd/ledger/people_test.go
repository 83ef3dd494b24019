package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// Issue 9: a customer is found by their phone however it is written — as the API shows it or as a
// person types it (with or without the country code, an international call prefix or the trunk 0,
// spaces, dashes, brackets) — and by their email in any of its equivalent forms.
func TestCustomerSearchByPhoneAsTyped(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "phones")
	create := func(body string) string { return mustCustomer(t, c, live, body)["id"].(string) }
	christchurch := create(`{"email":"kiri@example.nz","first_name":"Kiri","phone":"03 331 6005","country":"NZ"}`)
	auckland := create(`{"email":"aroha@example.nz","first_name":"Aroha","phone":"+64 9 331 6005"}`)
	denver := create(`{"email":"customer@example.com","first_name":"John","phone":"+1-555-555-5555","country":"US","state":"CO"}`)
	london := create(`{"email":"ada@example.org","first_name":"Ada","phone":"+44 20 7946 0958"}`)
	noPhone := create(`{"email":"3316005@example.com","first_name":"Digits"}`)

	for _, tt := range []struct {
		q    string
		want []string // newest first
	}{
		// the NZ number as the API shows it and as people write it
		{"+64 3 331 6005", []string{christchurch}},
		{"+64-3-331-6005", []string{christchurch}},
		{"+6433316005", []string{christchurch}},
		{"6433316005", []string{christchurch}},
		{"(03) 331 6005", []string{christchurch}},
		{"03 331 6005", []string{christchurch}},
		{"03-331 6005", []string{christchurch}},
		{"033316005", []string{christchurch}},
		{"0064 3 331 6005", []string{christchurch}},   // international call prefix 00
		{"+64 (0)3 331 6005", []string{christchurch}}, // the trunk 0 in brackets after the country code
		{"＋６４ ３ ３３１ ６００５", []string{christchurch}},    // full-width, as a phone keyboard may send
		{"(09) 331 6005", []string{auckland}},
		// a fragment of digits matches wherever it appears (the last digits, or an email)
		{"331 6005", []string{noPhone, auckland, christchurch}},
		{"3316005", []string{noPhone, auckland, christchurch}},
		// the US number of the eComCharge example
		{"+1 (555) 555-5555", []string{denver}},
		{"555-555-5555", []string{denver}},
		{"(555) 555-5555", []string{denver}},
		{"1-555-555-5555", []string{denver}},
		{"1 555 555 5555", []string{denver}},
		{"011 1 555 555 5555", []string{denver}}, // the North American international call prefix
		// London, nationally
		{"020 7946 0958", []string{london}},
		{"(020) 7946-0958", []string{london}},
		{"+44 (0)20 7946 0958", []string{london}},
		// what must not match: another number, another area code, another trunk form
		{"03 331 6006", nil},
		{"(04) 331 6005", nil},
		{"+61 3 331 6005", nil},
		// names and emails as before
		{"kiri", []string{christchurch}},
		{"ada@example", []string{london}},
		{"3316005@", []string{noPhone}},
	} {
		t.Run(tt.q, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if got, _ := customerList(t, c, live, "per_page=100&search="+urlQueryEscape(tt.q)); !slices.Equal(got, want) {
				t.Errorf("search=%q: %v, want %v", tt.q, got, want)
			}
		})
	}
}

// Issue 9: one canonical form of an email for uniqueness and search (NFC, lower case, the domain in
// Unicode), while the customer object shows the email as the customer typed it.
func TestCustomerEmailTypedAndCanonical(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "emails")

	zoe := mustCustomer(t, c, live, `{"email":"  Zoë.Smith@Exämple.COM ","first_name":"Zoë"}`)
	zoeID := zoe["id"].(string)
	puny := mustCustomer(t, c, live, `{"email":"Ana@xn--bcher-kva.example","first_name":"Ana"}`)
	anaID := puny["id"].(string)
	plain := mustCustomer(t, c, live, `{"email":"john@example.com","first_name":"John"}`)
	johnID := plain["id"].(string)

	shown := map[string]string{zoeID: "Zoë.Smith@Exämple.COM", anaID: "Ana@xn--bcher-kva.example", johnID: "john@example.com"}
	for id, want := range shown {
		if r := getCustomer(c, live, id); r.status != 200 || field(r.body, "data.email") != want {
			t.Errorf("GET %s: email %v, want %q as typed (%d %s)", id, field(r.body, "data.email"), want, r.status, r.raw)
		}
	}

	// The same address in another form is the same customer.
	for _, email := range []string{
		"zoë.smith@exämple.com",
		"ZOË.SMITH@EXÄMPLE.COM",
		"zoe\u0308.smith@exa\u0308mple.com", // decomposed
		"Zoë.Smith@xn--exmple-cua.com",      // Punycode
		"ana@bücher.example",
		"ANA@XN--BCHER-KVA.EXAMPLE",
	} {
		if r := postCustomer(c, live, fmt.Sprintf(`{"email":%q}`, email)); r.status != http.StatusConflict || r.errorCode() != "email_taken" {
			t.Errorf("create %q: %d %s, want 409 email_taken", email, r.status, r.raw)
		}
	}
	// A checkout with another form buys as the same customer, and the sale shows the form it was sent.
	r := c.post("/v1/checkouts", live, "", `{"product":{"id":"p","name":"P","type":"course","price":{"amount":100,"currency":"USD"}},
		"customer":{"email":"ZOË.smith@xn--exmple-cua.com"}}`)
	if r.status != 201 || field(r.body, "data.customer.id") != zoeID || field(r.body, "data.customer.email") != "ZOË.smith@xn--exmple-cua.com" {
		t.Errorf("checkout as Zoë in capitals and Punycode: %d %s", r.status, r.raw)
	}

	// Search by any form of the address, or by what the API shows.
	for _, tt := range []struct{ q, want string }{
		{"Zoë.Smith@Exämple.COM", zoeID},
		{"zoe\u0308.smith@exa\u0308mple.com", zoeID},
		{"zoë.smith@xn--exmple-cua.com", zoeID},
		{"exämple", zoeID},
		{"Ana@xn--bcher-kva.example", anaID},
		{"ana@bücher.example", anaID},
		{"bücher", anaID},
		{"xn--bcher-kva", anaID},
	} {
		if ids, _ := customerList(t, c, live, "search="+urlQueryEscape(tt.q)); !slices.Equal(ids, []string{tt.want}) {
			t.Errorf("search=%q: %v, want %s", tt.q, ids, tt.want)
		}
	}
	// Sales are found by the canonical email, whichever form is searched.
	for _, q := range []string{"zoë.smith@exämple.com", "ZOË.SMITH@XN--EXMPLE-CUA.COM"} {
		if r := c.do("GET", "/v1/sales?search="+urlQueryEscape(q), "Bearer "+live, nil); r.status != 200 || len(listIDs(t, r)) != 1 {
			t.Errorf("sales search=%q: %d %s", q, r.status, r.raw)
		}
	}

	// A PATCH to another form of the same address changes what is shown, claims nothing.
	p := c.do("PATCH", "/v1/customers/"+johnID, "Bearer "+live, bytes.NewReader([]byte(`{"email":"John@Example.com"}`)))
	if p.status != 200 || field(p.body, "data.email") != "John@Example.com" {
		t.Errorf("PATCH to John@Example.com: %d %s", p.status, p.raw)
	}
	shown[johnID] = "John@Example.com"
	if r := postCustomer(c, live, `{"email":"JOHN@example.com"}`); r.status != http.StatusConflict {
		t.Errorf("create JOHN@example.com after the PATCH: %d %s, want 409", r.status, r.raw)
	}

	// A rebuild from the log shows the same.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	m = startMain(t, dir, nil)
	c = client{t, "http://" + m.HTTPAddr}
	for id, want := range shown {
		if r := getCustomer(c, live, id); r.status != 200 || field(r.body, "data.email") != want {
			t.Errorf("after rebuild, GET %s: email %v, want %q", id, field(r.body, "data.email"), want)
		}
	}
	if ids, _ := customerList(t, c, live, "search="+urlQueryEscape("ZOË.SMITH@XN--EXMPLE-CUA.COM")); !slices.Equal(ids, []string{zoeID}) {
		t.Errorf("after rebuild, search by the Punycode form: %v", ids)
	}
}
