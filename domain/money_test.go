package domain_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/salesledger/ledger/domain"
)

func mustMoney(t *testing.T, amount int64, cur string) domain.Money {
	t.Helper()
	m, err := domain.NewMoney(amount, cur)
	if err != nil {
		t.Fatalf("NewMoney(%d, %q): %v", amount, cur, err)
	}
	return m
}

func mustPercent(t *testing.T, s string) *apd.Decimal {
	t.Helper()
	p, err := domain.ParsePercent(s)
	if err != nil {
		t.Fatalf("ParsePercent(%q): %v", s, err)
	}
	return p
}

func TestCurrencyExponent(t *testing.T) {
	tests := []struct {
		code string
		want int
	}{
		{"USD", 2},
		{"EUR", 2},
		{"GBP", 2},
		{"CHF", 2}, // cash rounding is 0.05, standard rounding (used) is 0.01
		{"XOF", 0},
		{"JPY", 0},
		{"KWD", 3},
		{"BHD", 3},
		{"CLF", 4},
		{"usd", 2}, // case-insensitive
		{"Kwd", 3},
		// ISO 4217's minor units where CLDR's "digits" (which golang.org/x/text
		// reports, and the ledger used before) say 0.
		{"IQD", 3},
		{"IDR", 2},
		{"COP", 2},
		{"RSD", 2},
		{"LBP", 2},
		// Codes ISO 4217 added since x/text's tables were made.
		{"MRU", 2},
		{"VES", 2},
		{"VED", 2},
		{"SLE", 2},
		{"ZWG", 2},
		{"XCG", 2},
		{"UYW", 4},
		// Gateways' own conventions are not ISO's: Stripe sends ISK and UGX
		// ×100 and converts in its adapter.
		{"ISK", 0},
		{"UGX", 0},
		{"HUF", 2},
		{"TWD", 2},
	}
	for _, tt := range tests {
		got, err := domain.CurrencyExponent(tt.code)
		if err != nil || got != tt.want {
			t.Errorf("CurrencyExponent(%q) = %d, %v; want %d, nil", tt.code, got, err, tt.want)
		}
	}
}

// TestWithdrawnCurrenciesAreStillRead: codes ISO 4217 has withdrawn, and
// funds and metals without a minor unit, are refused for new prices
// (CurrencyExponent, NewMoney) but a sale recorded in one before is still
// read, summed and formatted with the exponent the ledger used then.
func TestWithdrawnCurrenciesAreStillRead(t *testing.T) {
	tests := []struct {
		code      string
		formatted string // of 123456 minor units
	}{
		{"MRO", "MRO 123,456"},
		{"VEF", "VEF 1,234.56"},
		{"SLL", "SLL 123,456"},
		{"ZWL", "ZWL 1,234.56"},
		{"HRK", "HRK 1,234.56"},
		{"XAU", "XAU 1,234.56"},
	}
	for _, tt := range tests {
		if _, err := domain.CurrencyExponent(tt.code); !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("CurrencyExponent(%q) error = %v; want ErrUnknownCurrency", tt.code, err)
		}
		if _, err := domain.NewMoney(1, tt.code); !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("NewMoney(1, %q) error = %v; want ErrUnknownCurrency", tt.code, err)
		}
		m, err := domain.StoredMoney(123456, strings.ToLower(tt.code))
		if err != nil {
			t.Errorf("StoredMoney(%q) error = %v", tt.code, err)
			continue
		}
		if got := m.Formatted(); got != tt.formatted {
			t.Errorf("Formatted(123456 %s) = %q; want %q", tt.code, got, tt.formatted)
		}
		if sum, err := m.Add(m); err != nil || sum.Amount != 246912 {
			t.Errorf("%s: Add = %v, %v", tt.code, sum, err)
		}
	}
}

func TestCheckAmount(t *testing.T) {
	tests := []struct {
		minor int64
		want  error
	}{
		{0, nil},
		{1, nil},
		{domain.MaxAmount, nil},
		{domain.MaxAmount + 1, domain.ErrAmountTooLarge},
		{math.MaxInt64, domain.ErrAmountTooLarge},
		{-1, domain.ErrInvalidAmount},
	}
	for _, tt := range tests {
		if err := domain.CheckAmount(tt.minor); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckAmount(%d) = %v; want %v", tt.minor, err, tt.want)
		}
	}
}

// TestTotalIsExact: totals beyond int64 are summed and shown exactly.
func TestTotalIsExact(t *testing.T) {
	tot := domain.Total{Currency: "USD"}
	for i := 0; i < 20000; i++ {
		if err := tot.Add(domain.MaxAmount); err != nil {
			t.Fatal(err)
		}
	}
	if err := tot.Add(1); err != nil {
		t.Fatal(err)
	}
	const want = "20000000000000000001" // 2*10^19 + 1 > MaxInt64
	if got := tot.AmountText(); got != want {
		t.Fatalf("total = %s; want %s", got, want)
	}
	if got, wantF := tot.Formatted(), "$200,000,000,000,000,000.01"; got != wantF {
		t.Errorf("Formatted = %q; want %q", got, wantF)
	}
	b, err := json.Marshal(tot)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `{"amount":20000000000000000001,"currency":"USD","formatted":"$200,000,000,000,000,000.01"}` {
		t.Errorf("JSON = %s", got)
	}
	back, err := domain.ParseTotal("USD", tot.AmountText())
	if err != nil || back.AmountText() != want {
		t.Errorf("ParseTotal round trip = %v, %v", back.AmountText(), err)
	}
	if _, err := domain.ParseTotal("USD", "1e3"); !errors.Is(err, domain.ErrInvalidAmount) {
		t.Errorf("ParseTotal(1e3) error = %v; want ErrInvalidAmount", err)
	}
	var zero domain.Total
	zero.Currency = "JPY"
	if zero.AmountText() != "0" || zero.Formatted() != "¥0" {
		t.Errorf("zero total = %q %q", zero.AmountText(), zero.Formatted())
	}
}

func TestCurrencyExponentUnknown(t *testing.T) {
	for _, code := range []string{"", "US", "USDX", "ZZZ", "12A", "U$D", " USD", "ÜSD", "MRO", "VEF", "XXX"} {
		_, err := domain.CurrencyExponent(code)
		if !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("CurrencyExponent(%q) error = %v; want ErrUnknownCurrency", code, err)
			continue
		}
		if code != "" && !strings.Contains(err.Error(), code) {
			t.Errorf("CurrencyExponent(%q) error %q does not mention the code", code, err)
		}
	}
}

func TestNewMoney(t *testing.T) {
	tests := []struct {
		amount  int64
		cur     string
		want    domain.Money
		wantErr error
	}{
		{7920, "USD", domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{7920, "usd", domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{-5, "xOf", domain.Money{Amount: -5, Currency: "XOF"}, nil},
		{math.MaxInt64, "KWD", domain.Money{Amount: math.MaxInt64, Currency: "KWD"}, nil},
		{1, "ZZZ", domain.Money{}, domain.ErrUnknownCurrency},
		{1, "", domain.Money{}, domain.ErrUnknownCurrency},
		{1, "US", domain.Money{}, domain.ErrUnknownCurrency},
		{1, "USD ", domain.Money{}, domain.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		got, err := domain.NewMoney(tt.amount, tt.cur)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("NewMoney(%d, %q) = %+v, %v; want %+v, %v", tt.amount, tt.cur, got, err, tt.want, tt.wantErr)
		}
	}
	if err := (domain.Money{}).Validate(); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Errorf("zero Money Validate() = %v; want ErrUnknownCurrency", err)
	}
	if err := (domain.Money{Amount: 1, Currency: "EUR"}).Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// TestReferenceExample is the worked example from the design: a 99.00 USD
// order with a 20 % discount and a 5 % service fee.
func TestReferenceExample(t *testing.T) {
	original := mustMoney(t, 9900, "USD")

	discount, err := original.Percent(mustPercent(t, "20"))
	if err != nil || discount != (domain.Money{Amount: 1980, Currency: "USD"}) {
		t.Fatalf("discount = %+v, %v; want 1980 USD", discount, err)
	}
	amount, err := original.Sub(discount)
	if err != nil || amount.Amount != 7920 {
		t.Fatalf("amount = %+v, %v; want 7920", amount, err)
	}

	// 5 % of 7920 is exactly 396.0: no rounding involved.
	var exact apd.Decimal
	ctx := apd.BaseContext.WithPrecision(34)
	cond, err := ctx.Mul(&exact, apd.New(7920, 0), apd.New(5, -2))
	if err != nil || cond.Inexact() || cond.Rounded() || exact.Cmp(apd.New(396, 0)) != 0 || exact.String() != "396.00" {
		t.Fatalf("7920 * 0.05 = %s (%s, %v); want exactly 396.00", &exact, cond, err)
	}
	fee, err := amount.Percent(mustPercent(t, "5"))
	if err != nil || fee.Amount != 396 {
		t.Fatalf("fee = %+v, %v; want 396", fee, err)
	}
	settlement, err := amount.Sub(fee)
	if err != nil || settlement.Amount != 7524 {
		t.Fatalf("settlement = %+v, %v; want 7524", settlement, err)
	}

	for _, c := range []struct {
		m    domain.Money
		want string
	}{
		{original, "$99.00"},
		{discount, "$19.80"},
		{amount, "$79.20"},
		{fee, "$3.96"},
		{settlement, "$75.24"},
	} {
		if got := c.m.Formatted(); got != c.want {
			t.Errorf("Formatted(%+v) = %q; want %q", c.m, got, c.want)
		}
	}

	b, err := json.Marshal(amount)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"amount":7920,"currency":"USD","formatted":"$79.20"}`; string(b) != want {
		t.Errorf("json = %s; want %s", b, want)
	}
}

func TestPercentHalfEven(t *testing.T) {
	tests := []struct {
		amount  int64
		cur     string
		percent string
		want    int64
	}{
		{100, "USD", "2.5", 2},   // 2.5 -> 2 (half-up would give 3)
		{100, "USD", "3.5", 4},   // 3.5 -> 4
		{100, "USD", "4.5", 4},   // 4.5 -> 4
		{7930, "USD", "5", 396},  // 396.5 -> 396 (half-up: 397)
		{7950, "USD", "5", 398},  // 397.5 -> 398
		{7920, "USD", "5", 396},  // exact 396.0
		{1050, "XOF", "5", 52},   // 52.5 -> 52, exponent 0
		{1070, "XOF", "5", 54},   // 53.5 -> 54
		{1234, "KWD", "10", 123}, // 123.4 -> 123 fils (KWD exponent 3)
		{1235, "KWD", "10", 124}, // 123.5 -> 124
		{1225, "KWD", "10", 122}, // 122.5 -> 122
		{-100, "USD", "2.5", -2}, // symmetric for negatives
		{-100, "USD", "3.5", -4},
		{9900, "USD", "0", 0},
		{9900, "USD", "100", 9900},
		{9900, "USD", "100.000", 9900},
		{10000, "USD", "20.125", 2012}, // 2012.5 -> 2012
		{30000, "USD", "20.125", 6038}, // 6037.5 -> 6038
		{1, "USD", "49.99", 0},         // 0.4999 -> 0
		{1, "USD", "50", 0},            // 0.5 -> 0
		{3, "USD", "50", 2},            // 1.5 -> 2
		{1, "USD", "0.0000000001", 0},  // tiny rate
		{math.MaxInt64, "USD", "100", math.MaxInt64},
		{math.MinInt64, "USD", "100", math.MinInt64},
		{math.MaxInt64, "USD", "50", 4611686018427387904},             // ...903.5 -> ...904
		{math.MinInt64, "USD", "50", -4611686018427387904},            // exact
		{math.MaxInt64, "USD", "33.33333333333", 3074457345617951157}, // 3074457345617951156.599 -> ...157,
	}
	for _, tt := range tests {
		m := mustMoney(t, tt.amount, tt.cur)
		got, err := m.Percent(mustPercent(t, tt.percent))
		if err != nil || got != (domain.Money{Amount: tt.want, Currency: tt.cur}) {
			t.Errorf("%s %% of %d %s = %+v, %v; want %d", tt.percent, tt.amount, tt.cur, got, err, tt.want)
		}
	}
}

func TestPercentDoesNotModifyArgument(t *testing.T) {
	p := mustPercent(t, "2.50")
	if _, err := mustMoney(t, 100, "USD").Percent(p); err != nil {
		t.Fatal(err)
	}
	if p.String() != "2.50" {
		t.Errorf("percent modified to %s", p)
	}
}

func TestPercentInvalid(t *testing.T) {
	m := mustMoney(t, 100, "USD")
	bad := []*apd.Decimal{
		nil,
		apd.New(-1, 0),
		apd.New(-1, -9),
		apd.New(10001, -2), // 100.01
		apd.New(101, 0),
		{Form: apd.NaN},
		{Form: apd.Infinite},
		{Form: apd.Infinite, Negative: true},
	}
	for _, p := range bad {
		if got, err := m.Percent(p); !errors.Is(err, domain.ErrInvalidPercent) {
			t.Errorf("Percent(%v) = %+v, %v; want ErrInvalidPercent", p, got, err)
		}
	}
	// Every percentage the API accepts (at most MaxDecimalLen characters) is
	// applied exactly, with the one rounding, to any amount: a store fee of
	// 99.99999999999999999999999999999 once left paid sales uncompleted.
	big := mustMoney(t, math.MaxInt64, "USD")
	for _, s := range []string{"99.99999999999999999999999999999", "33.3333333333333333333333333333", "0.000000000000000000000000000001"} {
		if len(s) > domain.MaxDecimalLen {
			t.Fatalf("%s is longer than the API accepts", s)
		}
		p, err := domain.ParsePercent(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, amt := range []domain.Money{big, mustMoney(t, 12345, "USD"), mustMoney(t, domain.MaxAmount, "USD")} {
			if _, err := amt.Percent(p); err != nil {
				t.Errorf("%s %% of %d: %v", s, amt.Amount, err)
			}
		}
	}
	if got, err := mustMoney(t, 12345, "USD").Percent(mustPercent(t, "99.99999999999999999999999999999")); err != nil || got.Amount != 12345 {
		t.Errorf("99.999…%% of 12345 = %+v, %v; want 12345 (12344.99… rounds half-even up)", got, err)
	}
	// Too many significant digits to multiply exactly at DecimalPrecision:
	// refuse rather than round twice.
	long, _, err := apd.NewFromString("33.33333333333333333333333333333333333333333333333")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := big.Percent(long); !errors.Is(err, domain.ErrInvalidPercent) {
		t.Errorf("Percent(long) = %+v, %v; want ErrInvalidPercent", got, err)
	}
	// Negative zero is zero, not negative.
	if got, err := m.Percent(&apd.Decimal{Negative: true}); err != nil || got.Amount != 0 {
		t.Errorf("Percent(-0) = %+v, %v", got, err)
	}
	if _, err := (domain.Money{Amount: 1, Currency: "ZZZ"}).Percent(apd.New(5, 0)); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Errorf("Percent on unknown currency: %v", err)
	}
}

func TestParsePercent(t *testing.T) {
	good := map[string]string{
		"5":      "5",
		"2.5":    "2.5",
		"20.125": "20.125",
		"0":      "0",
		"0.75":   "0.75",
		"100":    "100",
		"100.00": "100.00",
		"007":    "7",
	}
	for in, want := range good {
		p, err := domain.ParsePercent(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "-5", "+5", "100.01", "101", "1e1", "5%", " 5", "5 ", ".5", "5.", "abc", "NaN", "Inf", "2,5", "1.2.3"} {
		if p, err := domain.ParsePercent(in); !errors.Is(err, domain.ErrInvalidPercent) {
			t.Errorf("ParsePercent(%q) = %v, %v; want ErrInvalidPercent", in, p, err)
		}
	}
}

func TestAddSub(t *testing.T) {
	tests := []struct {
		name    string
		a, b    domain.Money
		add     bool
		want    domain.Money
		wantErr error
	}{
		{"add", domain.Money{Amount: 7524, Currency: "USD"}, domain.Money{Amount: 396, Currency: "USD"}, true, domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{"sub", domain.Money{Amount: 7920, Currency: "USD"}, domain.Money{Amount: 396, Currency: "USD"}, false, domain.Money{Amount: 7524, Currency: "USD"}, nil},
		{"sub negative", domain.Money{Amount: 100, Currency: "USD"}, domain.Money{Amount: 200, Currency: "USD"}, false, domain.Money{Amount: -100, Currency: "USD"}, nil},
		{"lower case normalised", domain.Money{Amount: 1, Currency: "usd"}, domain.Money{Amount: 2, Currency: "USD"}, true, domain.Money{Amount: 3, Currency: "USD"}, nil},
		{"mismatch add", domain.Money{Amount: 1, Currency: "USD"}, domain.Money{Amount: 1, Currency: "EUR"}, true, domain.Money{}, domain.ErrCurrencyMismatch},
		{"mismatch sub", domain.Money{Amount: 1, Currency: "USD"}, domain.Money{Amount: 1, Currency: "EUR"}, false, domain.Money{}, domain.ErrCurrencyMismatch},
		{"unknown", domain.Money{Amount: 1, Currency: "ZZZ"}, domain.Money{Amount: 1, Currency: "ZZZ"}, true, domain.Money{}, domain.ErrUnknownCurrency},
		{"zero value", domain.Money{}, domain.Money{}, true, domain.Money{}, domain.ErrUnknownCurrency},
		{"max", domain.Money{Amount: math.MaxInt64 - 1, Currency: "USD"}, domain.Money{Amount: 1, Currency: "USD"}, true, domain.Money{Amount: math.MaxInt64, Currency: "USD"}, nil},
		{"min", domain.Money{Amount: math.MinInt64 + 1, Currency: "USD"}, domain.Money{Amount: 1, Currency: "USD"}, false, domain.Money{Amount: math.MinInt64, Currency: "USD"}, nil},
		{"overflow add", domain.Money{Amount: math.MaxInt64, Currency: "USD"}, domain.Money{Amount: 1, Currency: "USD"}, true, domain.Money{}, domain.ErrOverflow},
		{"overflow add neg", domain.Money{Amount: math.MinInt64, Currency: "USD"}, domain.Money{Amount: -1, Currency: "USD"}, true, domain.Money{}, domain.ErrOverflow},
		{"overflow add big", domain.Money{Amount: math.MaxInt64, Currency: "JPY"}, domain.Money{Amount: math.MaxInt64, Currency: "JPY"}, true, domain.Money{}, domain.ErrOverflow},
		{"overflow sub", domain.Money{Amount: math.MinInt64, Currency: "USD"}, domain.Money{Amount: 1, Currency: "USD"}, false, domain.Money{}, domain.ErrOverflow},
		{"overflow sub min", domain.Money{Amount: 0, Currency: "USD"}, domain.Money{Amount: math.MinInt64, Currency: "USD"}, false, domain.Money{}, domain.ErrOverflow},
		{"overflow sub mixed", domain.Money{Amount: math.MaxInt64, Currency: "USD"}, domain.Money{Amount: -1, Currency: "USD"}, false, domain.Money{}, domain.ErrOverflow},
	}
	for _, tt := range tests {
		var got domain.Money
		var err error
		if tt.add {
			got, err = tt.a.Add(tt.b)
		} else {
			got, err = tt.a.Sub(tt.b)
		}
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatted(t *testing.T) {
	tests := []struct {
		amount int64
		cur    string
		want   string
	}{
		{7920, "USD", "$79.20"},
		{9900, "USD", "$99.00"},
		{5, "USD", "$0.05"},
		{0, "USD", "$0.00"},
		{-100, "USD", "-$1.00"},
		{-5, "USD", "-$0.05"},
		{123456789, "USD", "$1,234,567.89"},
		{100000, "USD", "$1,000.00"},
		{99999, "USD", "$999.99"},
		{math.MaxInt64, "USD", "$92,233,720,368,547,758.07"},
		{math.MinInt64, "USD", "-$92,233,720,368,547,758.08"},
		{1234, "EUR", "€12.34"},
		{1000, "JPY", "¥1,000"},
		{1000, "XOF", "F CFA 1,000"},
		{-1050, "XOF", "-F CFA 1,050"},
		{0, "XOF", "F CFA 0"},
		{1234, "KWD", "KWD 1.234"},
		{1, "KWD", "KWD 0.001"},
		{1234567, "BHD", "BHD 1,234.567"},
		{1234, "CHF", "CHF 12.34"},
		{1234, "gbp", "£12.34"},
		{12345, "CLF", "CLF 1.2345"},
	}
	for _, tt := range tests {
		m := domain.Money{Amount: tt.amount, Currency: tt.cur}
		if got := m.Formatted(); got != tt.want {
			t.Errorf("Formatted(%d %s) = %q; want %q", tt.amount, tt.cur, got, tt.want)
		}
	}
	if got := (domain.Money{Amount: 7920, Currency: "ZZZ"}).Formatted(); !strings.Contains(got, "invalid currency") {
		t.Errorf("Formatted(unknown) = %q", got)
	}
}

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		m    domain.Money
		want string
	}{
		{domain.Money{Amount: 7920, Currency: "USD"}, `{"amount":7920,"currency":"USD","formatted":"$79.20"}`},
		{domain.Money{Amount: 1050, Currency: "xof"}, `{"amount":1050,"currency":"XOF","formatted":"F CFA 1,050"}`},
		{domain.Money{Amount: -1234, Currency: "KWD"}, `{"amount":-1234,"currency":"KWD","formatted":"-KWD 1.234"}`},
		{domain.Money{Amount: 1234, Currency: "EUR"}, `{"amount":1234,"currency":"EUR","formatted":"€12.34"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.m)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.m, b, err, tt.want)
		}
		// Pointer receivers and embedding use the same encoding.
		b, err = json.Marshal(struct{ P *domain.Money }{&tt.m})
		if err != nil || string(b) != `{"P":`+tt.want+`}` {
			t.Errorf("Marshal(&%+v) = %s, %v", tt.m, b, err)
		}
	}
	for _, m := range []domain.Money{{}, {Amount: 1, Currency: "ZZZ"}} {
		if b, err := json.Marshal(m); !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("Marshal(%+v) = %s, %v; want ErrUnknownCurrency", m, b, err)
		}
	}
}

func TestUnmarshalJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    domain.Money
		wantErr error
	}{
		{`{"amount":7920,"currency":"USD"}`, domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{`{"amount": 7920, "currency": "USD", "formatted": "$79.20"}`, domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{`{"amount":7920,"currency":"USD","formatted":"nonsense £1"}`, domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{`{"amount":7920,"currency":"usd"}`, domain.Money{Amount: 7920, Currency: "USD"}, nil},
		{`{"currency":"KWD","amount":-1234}`, domain.Money{Amount: -1234, Currency: "KWD"}, nil},
		{`{"amount":-0,"currency":"XOF"}`, domain.Money{Amount: 0, Currency: "XOF"}, nil},
		{`{"amount":9223372036854775807,"currency":"USD"}`, domain.Money{Amount: math.MaxInt64, Currency: "USD"}, nil},
		{`{"amount":-9223372036854775808,"currency":"USD"}`, domain.Money{Amount: math.MinInt64, Currency: "USD"}, nil},

		{`{"amount":79.2,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":7920.0,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":1e2,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":1E2,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":"7920","currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":"abc","currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":null,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":true,"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":[1],"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"currency":"USD"}`, domain.Money{}, domain.ErrInvalidAmount},
		{`{"amount":9223372036854775808,"currency":"USD"}`, domain.Money{}, domain.ErrOverflow},
		{`{"amount":-9223372036854775809,"currency":"USD"}`, domain.Money{}, domain.ErrOverflow},
		{`{"amount":100000000000000000000000000000,"currency":"USD"}`, domain.Money{}, domain.ErrOverflow},
		{`null`, domain.Money{}, domain.ErrInvalidAmount},
		{`{}`, domain.Money{}, domain.ErrInvalidAmount},

		{`{"amount":7920,"currency":"ZZZ"}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920,"currency":null}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920,"currency":""}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920,"currency":"US"}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920,"currency":" USD"}`, domain.Money{}, domain.ErrUnknownCurrency},
		{`{"amount":7920,"currency":840}`, domain.Money{}, domain.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		var got domain.Money
		err := json.Unmarshal([]byte(tt.in), &got)
		if tt.wantErr == nil {
			if err != nil || got != tt.want {
				t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Unmarshal(%s) error = %v; want %v", tt.in, err, tt.wantErr)
		}
		if got != (domain.Money{}) {
			t.Errorf("Unmarshal(%s) modified target to %+v on error", tt.in, got)
		}
	}

	// Malformed JSON is an error (not a sentinel).
	for _, in := range []string{`{`, `"abc"`, `79.2`, `[]`} {
		var m domain.Money
		if err := json.Unmarshal([]byte(in), &m); err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %+v", in, m)
		}
	}

	// The target is left unchanged on error.
	m := domain.Money{Amount: 1, Currency: "EUR"}
	if err := m.UnmarshalJSON([]byte(`{"amount":79.2,"currency":"USD"}`)); err == nil || m != (domain.Money{Amount: 1, Currency: "EUR"}) {
		t.Errorf("after failed unmarshal m = %+v, err %v", m, err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, m := range []domain.Money{
		{Amount: 7920, Currency: "USD"},
		{Amount: -396, Currency: "USD"},
		{Amount: 1050, Currency: "XOF"},
		{Amount: 1234, Currency: "KWD"},
		{Amount: 1234, Currency: "BHD"},
		{Amount: 1000, Currency: "JPY"},
		{Amount: math.MaxInt64, Currency: "EUR"},
		{Amount: math.MinInt64, Currency: "EUR"},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", m, err)
		}
		var back domain.Money
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("round trip %+v -> %s -> %+v, %v", m, b, back, err)
		}
	}
	// Inside a larger document.
	type order struct {
		Total domain.Money  `json:"total"`
		Fee   *domain.Money `json:"fee,omitempty"`
	}
	in := order{Total: domain.Money{Amount: 7920, Currency: "USD"}, Fee: &domain.Money{Amount: 396, Currency: "USD"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out order
	if err := json.Unmarshal(b, &out); err != nil || out.Total != in.Total || out.Fee == nil || *out.Fee != *in.Fee {
		t.Errorf("order round trip: %s -> %+v, %v", b, out, err)
	}
}

func FuzzMoneyJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount":7920,"currency":"USD","formatted":"$79.20"}`,
		`{"amount":7920,"currency":"usd"}`,
		`{"amount":-1050,"currency":"XOF"}`,
		`{"amount":1234,"currency":"KWD"}`,
		`{"amount":9223372036854775807,"currency":"JPY"}`,
		`{"amount":-9223372036854775808,"currency":"BHD"}`,
		`{"amount":79.2,"currency":"USD"}`,
		`{"amount":1e2,"currency":"USD"}`,
		`{"amount":"abc","currency":"USD"}`,
		`{"amount":1,"currency":"ZZZ"}`,
		`{"amount":1,"currency":"\u0055SD"}`,
		`{"AMOUNT":1,"Currency":"eur"}`,
		`null`,
		`{}`,
		`[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m domain.Money
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded invalid Money %+v from %q: %v", m, data, err)
		}
		if m.Currency != strings.ToUpper(m.Currency) {
			t.Fatalf("currency not normalised: %+v", m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-marshal %+v (from %q): %v", m, data, err)
		}
		var back domain.Money
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-parse %s (from %q): %v", b, data, err)
		}
		if back != m {
			t.Fatalf("round trip changed value: %+v -> %s -> %+v", m, b, back)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil || doc["formatted"] != m.Formatted() {
			t.Fatalf("formatted field %v != %q (%v)", doc["formatted"], m.Formatted(), err)
		}
	})
}
