package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestCurrenciesAsISODefinesThem: checkouts take ISO 4217's current codes and minor units (MRU, VES,
// SLE, ZWG were refused; IQD has 3 decimals and IDR 2, where CLDR says 0), refuse the withdrawn codes
// (MRO, VEF were accepted), and refuse amounts beyond any real price.
func TestCurrenciesAsISODefinesThem(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "iso")
	body := func(amount, currency string) string {
		return fmt.Sprintf(`{"product":{"id":"p","name":"Course","type":"course","price":{"amount":%s,"currency":%q}},
			"customer":{"email":"buyer@example.com"}}`, amount, currency)
	}
	accepted := []struct{ currency, formatted string }{
		{"MRU", "MRU 1,234.56"},
		{"VES", "VES 1,234.56"},
		{"VED", "VED 1,234.56"},
		{"SLE", "SLE 1,234.56"},
		{"ZWG", "ZWG 1,234.56"},
		{"XCG", "Cg.1,234.56"}, // CLDR's English symbol for the Caribbean guilder
		{"IQD", "IQD 123.456"},
		{"IDR", "IDR 1,234.56"},
		{"ISK", "ISK 123,456"},
		{"mru", "MRU 1,234.56"},
	}
	for _, tt := range accepted {
		r := c.post("/v1/checkouts", live, "", body("123456", tt.currency))
		if r.status != 201 {
			t.Errorf("%s: %d %s", tt.currency, r.status, r.raw)
			continue
		}
		if got := field(r.body, "data.amount.formatted"); got != tt.formatted {
			t.Errorf("%s: formatted %v; want %q", tt.currency, got, tt.formatted)
		}
		if got := field(r.body, "data.amount.currency"); got != strings.ToUpper(tt.currency) {
			t.Errorf("%s: currency %v", tt.currency, got)
		}
	}
	refused := []struct{ name, amount, currency, field string }{
		{"withdrawn MRO", "100", "MRO", "product.price.currency"},
		{"withdrawn VEF", "100", "VEF", "product.price.currency"},
		{"withdrawn SLL", "100", "SLL", "product.price.currency"},
		{"withdrawn ZWL", "100", "ZWL", "product.price.currency"},
		{"withdrawn HRK", "100", "HRK", "product.price.currency"},
		{"gold", "100", "XAU", "product.price.currency"},
		{"no currency", "100", "XXX", "product.price.currency"},
		{"over the bound", "1000000000000001", "USD", "product.price.amount"},
		{"over int64", "9223372036854775808", "USD", "product.price.amount"},
	}
	for _, tt := range refused {
		r := c.post("/v1/checkouts", live, "", body(tt.amount, tt.currency))
		fields, _ := field(r.body, "error.fields").(map[string]any)
		if r.status != 422 || fields[tt.field] == nil {
			t.Errorf("%s: %d %s; want 422 naming %s", tt.name, r.status, r.raw, tt.field)
		}
		if tt.field == "product.price.amount" && !strings.Contains(r.raw, "at most 1000000000000000") {
			t.Errorf("%s: %s; want the bound in the message", tt.name, r.raw)
		}
	}
	if r := c.post("/v1/checkouts", live, "", body("1000000000000000", "USD")); r.status != 201 {
		t.Errorf("the largest amount: %d %s", r.status, r.raw)
	}
}
