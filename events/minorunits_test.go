package events

import (
	"errors"
	"math"
	"strconv"
	"testing"

	isocurrency "github.com/bojanz/currency"
	"golang.org/x/text/currency"
)

// TestLegacyShiftTableIsComplete derives the frozen table from its two sources: for every code ISO 4217
// lists today that golang.org/x/text/currency (the version 1 source) also knows, the shift is ISO's
// digits minus x/text's. If an upgrade of either library changes this, the table stays as it is (it
// says what version 1 meant); this test then names the difference for the person upgrading.
func TestLegacyShiftTableIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, code := range isocurrency.GetCurrencyCodes() {
		iso, _ := isocurrency.GetDigits(code)
		unit, err := currency.ParseISO(code)
		if err != nil {
			continue // unknown to version 1: no v1 event can carry it
		}
		legacy, _ := currency.Standard.Rounding(unit)
		want := int(iso) - legacy
		if want < 0 {
			t.Errorf("%s: ISO has fewer digits (%d) than version 1 (%d); the upcast would lose precision", code, iso, legacy)
			continue
		}
		if got := legacyMinorUnitShift[code]; got != want {
			t.Errorf("%s: shift %d; ISO %d digits, version 1 %d", code, got, iso, legacy)
		}
		seen[code] = true
	}
	for code := range legacyMinorUnitShift {
		if !seen[code] {
			t.Errorf("%s is in the table but not in both sources", code)
		}
	}
}

func TestVersion1AmountsAreUpcast(t *testing.T) {
	started := func(cur string, price, discount int64) []byte {
		return []byte(`{"sale_id":"sal_1","store":{"id":"sto_1","name":"s","slug":"s"},"product":{"id":"p","name":"p","type":"t","price":{"amount":` +
			itoa(price) + `,"currency":"` + cur + `"}},"customer_id":"cus_1","customer":{"id":"cus_1","email":"a@b.co"},` +
			`"discount":{"code":"X","type":"fixed","value":"` + itoa(discount) + `"},"channel":"api",` +
			`"original_amount":{"amount":` + itoa(price) + `,"currency":"` + cur + `"},"discount_amount":{"amount":` + itoa(discount) + `,"currency":"` + cur + `"},` +
			`"amount":{"amount":` + itoa(price-discount) + `,"currency":"` + cur + `"},"service_fee_percent":"5","settlement_delay_days":7,"abandon_at":"2026-01-01T00:00:00Z"}`)
	}
	tests := []struct {
		cur     string
		version int
		factor  int64
	}{
		{"IDR", 1, 100},
		{"IQD", 1, 1000},
		{"USD", 1, 1},
		{"JPY", 1, 1},
		{"MRO", 1, 1}, // withdrawn: read with the exponent it had
		{"IDR", 2, 1}, // version 2 is already ISO minor units
		{"IQD", 2, 1},
	}
	for _, tt := range tests {
		p, err := Decode(TypeSaleStarted, tt.version, started(tt.cur, 50000, 1000))
		if err != nil {
			t.Fatalf("%s v%d: %v", tt.cur, tt.version, err)
		}
		s := p.(SaleStarted)
		if s.Product.Price.Amount != 50000*tt.factor || s.OriginalAmount.Amount != 50000*tt.factor ||
			s.DiscountAmount.Amount != 1000*tt.factor || s.Amount.Amount != 49000*tt.factor || s.Discount.Value != itoa(1000*tt.factor) {
			t.Errorf("%s v%d: price %d original %d discount %d/%s amount %d; want ×%d", tt.cur, tt.version, s.Product.Price.Amount,
				s.OriginalAmount.Amount, s.DiscountAmount.Amount, s.Discount.Value, s.Amount.Amount, tt.factor)
		}

		body := []byte(`{"status":"success","gateway":"paystack","amount":{"amount":49000,"currency":"` + tt.cur + `"},"fee":{"amount":700,"currency":"` + tt.cur + `"}}`)
		p, err = Decode(TypePaymentSucceeded, tt.version, body)
		if err != nil {
			t.Fatalf("payment %s v%d: %v", tt.cur, tt.version, err)
		}
		if pr := p.(PaymentRecorded); pr.Amount.Amount != 49000*tt.factor || pr.Fee.Amount != 700*tt.factor {
			t.Errorf("payment %s v%d: %d fee %d; want ×%d", tt.cur, tt.version, pr.Amount.Amount, pr.Fee.Amount, tt.factor)
		}

		body = []byte(`{"service_fee":{"amount":2450,"currency":"` + tt.cur + `"},"settlement_amount":{"amount":46550,"currency":"` + tt.cur + `"},"settlement_due_at":"2026-01-08T00:00:00Z"}`)
		p, err = Decode(TypeSaleCompleted, tt.version, body)
		if err != nil {
			t.Fatalf("completed %s v%d: %v", tt.cur, tt.version, err)
		}
		if c := p.(SaleCompleted); c.ServiceFee.Amount != 2450*tt.factor || c.SettlementTotal.Amount != 46550*tt.factor {
			t.Errorf("completed %s v%d: fee %d settlement %d; want ×%d", tt.cur, tt.version, c.ServiceFee.Amount, c.SettlementTotal.Amount, tt.factor)
		}

		body = []byte(`{"gateway":"paystack","delivery_id":"d","kind":"payment.succeeded","sale_id":"sal_1","amount":{"amount":49000,"currency":"` + tt.cur + `"}}`)
		p, err = Decode(TypeWebhookReceived, tt.version, body)
		if err != nil {
			t.Fatalf("webhook %s v%d: %v", tt.cur, tt.version, err)
		}
		if w := p.(WebhookReceived); w.Amount.Amount != 49000*tt.factor || w.Fee != nil {
			t.Errorf("webhook %s v%d: %d fee %v; want ×%d, no fee", tt.cur, tt.version, w.Amount.Amount, w.Fee, tt.factor)
		}
	}

	// An amount that no longer fits is refused rather than wrapped.
	body := []byte(`{"status":"success","gateway":"paystack","amount":{"amount":` + itoa(math.MaxInt64/10) + `,"currency":"IQD"}}`)
	if _, err := Decode(TypePaymentSucceeded, 1, body); !errors.Is(err, ErrMalformed) {
		t.Errorf("overflowing v1 amount: error %v; want ErrMalformed", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
