package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	isocurrency "github.com/bojanz/currency"
	"github.com/cockroachdb/apd/v3"
	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Sentinel errors returned (wrapped, with detail) by the money functions.
// Test for them with errors.Is.
var (
	// ErrUnknownCurrency: the currency code is malformed (not three ASCII
	// letters) or not known to golang.org/x/text/currency.
	ErrUnknownCurrency = errors.New("unknown currency")
	// ErrCurrencyMismatch: an operation combined two amounts in different
	// currencies.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrInvalidPercent: a percentage is malformed, not finite, negative,
	// greater than 100, or has too many significant digits to be applied
	// exactly (see Percent).
	ErrInvalidPercent = errors.New("invalid percent")
	// ErrOverflow: a result does not fit in an int64 number of minor units.
	ErrOverflow = errors.New("amount overflows int64 minor units")
	// ErrInvalidAmount: a JSON amount is missing or is not an integer literal.
	ErrInvalidAmount = errors.New("invalid amount")
)

// DecimalPrecision is the number of significant decimal digits used by every
// apd operation in this package. An int64 has at most 19 digits, so sums of
// two amounts (20 digits) are always exact, and a product of an amount with a
// percentage of up to 45 significant digits is always exact — more than any
// percentage the API accepts (MaxDecimalLen = 32 characters), so a store fee
// or a discount that was accepted can always be applied.
const DecimalPrecision = 64

// decCtx is the single apd context used for all money arithmetic: explicit
// precision, round-half-even, full exponent range, default traps. apd
// contexts are safe for concurrent use as long as they are not modified.
var decCtx = apd.Context{
	Precision:   DecimalPrecision,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Traps:       apd.DefaultTraps,
	Rounding:    apd.RoundHalfEven,
}

// checkCond turns the result of an apd operation into an error. Any trapped
// condition (err != nil) is an error. Of the untrapped conditions, Inexact and
// Rounded are accepted only when rounding is the intended effect of the
// operation (allowRounding); every other raised flag (Clamped, and any
// overflow/invalid-operation style flag) is an error too.
func checkCond(op string, cond apd.Condition, err error, allowRounding bool) error {
	if err != nil {
		return fmt.Errorf("domain: decimal %s: %w (conditions: %s)", op, err, cond)
	}
	if allowRounding {
		cond &^= apd.Inexact | apd.Rounded
	}
	if cond != 0 {
		return fmt.Errorf("domain: decimal %s: unexpected conditions: %s", op, cond)
	}
	return nil
}

// Money is an amount of a single currency, held as an integer number of
// minor units in the currency's own exponent (see CurrencyExponent): 7920 USD
// is $79.20, 1050 XOF is CFA 1,050, 1234 KWD is KWD 1.234.
//
// Currency is an upper-case three-letter code. NewMoney and UnmarshalJSON
// normalise lower-case input to upper case; the methods accept either case
// and always return upper-case codes. The zero Money has no currency and is
// not valid.
//
// JSON form (MarshalJSON/UnmarshalJSON):
//
//	{"amount":7920,"currency":"USD","formatted":"$79.20"}
//
// "formatted" is derived on output (see Formatted) and ignored on input.
type Money struct {
	Amount   int64
	Currency string
}

// MaxAmount is the largest amount, in minor units, that the ledger accepts for a price or a payment:
// 10^15. It is larger than any real price (at 10^8 minor units to the US dollar, the rial's rate in
// 2026, it is ten million dollars) and leaves room for 9,223 such amounts in an int64; totals of many
// amounts are summed exactly (Total), never in an int64. An amount above it is rejected with an error
// wrapping ErrAmountTooLarge.
const MaxAmount int64 = 1_000_000_000_000_000

// ErrAmountTooLarge: an amount exceeds MaxAmount minor units.
var ErrAmountTooLarge = errors.New("amount exceeds the largest amount the ledger accepts")

// currencyDef is what the ledger knows of one currency code.
type currencyDef struct {
	code   string // upper case
	digits int    // minor-unit exponent
	symbol string // English display symbol
	// active: in ISO 4217's list of current codes, so new checkouts and payments may use it. A code
	// that is not active is one ISO has withdrawn (MRO, VEF, HRK) or a fund or metal without a minor
	// unit (XAU, XXX); sales recorded in it before are still read, formatted and summed.
	active bool
}

// currencies caches upper-case code -> currencyDef.
var currencies sync.Map

// normCurrency upper-cases an ASCII three-letter code and looks it up: first in ISO 4217's current
// list (github.com/bojanz/currency, generated from ISO's list_one.xml and CLDR; exponent = ISO's
// CcyMnrUnts), then, for codes ISO has withdrawn or gives no minor unit, in golang.org/x/text/currency,
// the source the ledger used before, so that sales recorded in such a code keep the meaning they had
// (see docs/decisions.md, "Currencies from ISO 4217's current list"). A malformed or wholly unknown code
// is an error wrapping ErrUnknownCurrency.
func normCurrency(code string) (currencyDef, error) {
	if len(code) != 3 {
		return currencyDef{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := code[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return currencyDef{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
		}
		b[i] = c
	}
	upper := string(b[:])
	if d, ok := currencies.Load(upper); ok {
		return d.(currencyDef), nil
	}
	def := currencyDef{code: upper}
	if digits, ok := isocurrency.GetDigits(upper); ok {
		def.digits, def.active = int(digits), true
		def.symbol, _ = isocurrency.GetSymbol(upper, english)
	} else if unit, err := currency.ParseISO(upper); err == nil {
		def.digits, _ = currency.Standard.Rounding(unit)
		def.symbol = message.NewPrinter(language.English).Sprint(currency.Symbol(unit))
	} else {
		return currencyDef{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	if def.symbol == "" {
		def.symbol = upper
	}
	currencies.Store(upper, def)
	return def, nil
}

var english = isocurrency.NewLocale("en")

// activeCurrency is normCurrency for new input: the code must be in ISO 4217's current list.
func activeCurrency(code string) (currencyDef, error) {
	def, err := normCurrency(code)
	if err != nil {
		return currencyDef{}, err
	}
	if !def.active {
		return currencyDef{}, fmt.Errorf("%w: %q is not an active ISO 4217 code", ErrUnknownCurrency, def.code)
	}
	return def, nil
}

// CurrencyExponent returns the number of minor-unit decimal digits of an active ISO 4217 currency
// (case-insensitive): USD 2, EUR 2, JPY 0, XOF 0, ISK 0, KWD 3, BHD 3, IQD 3, IDR 2, CLF 4.
//
// Source: ISO 4217's list of current codes and their minor units (CcyMnrUnts), as shipped by
// github.com/bojanz/currency (regenerated with each CLDR release; there is no hand-written table in
// this package). Gateways with other conventions convert in their adapters (Stripe's ISK and UGX).
//
// A malformed code, an unknown one, one ISO has withdrawn (MRO, VEF, SLL, ZWL, HRK) or one without a
// minor unit (XAU, XXX) yields an error wrapping ErrUnknownCurrency.
func CurrencyExponent(code string) (int, error) {
	def, err := activeCurrency(code)
	if err != nil {
		return 0, err
	}
	return def.digits, nil
}

// CheckAmount reports whether a new price or payment amount is within 0..MaxAmount minor units; the
// error wraps ErrInvalidAmount (negative) or ErrAmountTooLarge.
func CheckAmount(minor int64) error {
	switch {
	case minor < 0:
		return fmt.Errorf("%w: %d is negative", ErrInvalidAmount, minor)
	case minor > MaxAmount:
		return fmt.Errorf("%w: %d minor units is more than %d", ErrAmountTooLarge, minor, MaxAmount)
	}
	return nil
}

// NewMoney returns amount minor units of currency, for new input (a price, a
// payment). The code must be an active ISO 4217 code (see CurrencyExponent);
// lower case is normalised to upper case ("usd" -> "USD"). Otherwise the
// error wraps ErrUnknownCurrency. The amount is not bounded here; see
// CheckAmount.
func NewMoney(amount int64, currency string) (Money, error) {
	def, err := activeCurrency(currency)
	if err != nil {
		return Money{}, err
	}
	return Money{Amount: amount, Currency: def.code}, nil
}

// StoredMoney returns amount minor units of currency as recorded earlier:
// like NewMoney, but a code ISO has withdrawn since (MRO, VEF, HRK) is still
// accepted, with the exponent the ledger used when it was recorded. Only a
// code the ledger never knew is an error (wrapping ErrUnknownCurrency).
func StoredMoney(amount int64, currency string) (Money, error) {
	def, err := normCurrency(currency)
	if err != nil {
		return Money{}, err
	}
	return Money{Amount: amount, Currency: def.code}, nil
}

// Validate reports whether m has an active ISO 4217 currency (error wraps
// ErrUnknownCurrency otherwise). Every int64 amount is valid.
func (m Money) Validate() error {
	_, err := activeCurrency(m.Currency)
	return err
}

// Add returns m + o. Both must be in the same currency (ErrCurrencyMismatch
// otherwise); a result outside int64 minor units yields ErrOverflow.
func (m Money) Add(o Money) (Money, error) {
	return m.addSub("add", o, false)
}

// Sub returns m - o. Both must be in the same currency (ErrCurrencyMismatch
// otherwise); a result outside int64 minor units yields ErrOverflow.
func (m Money) Sub(o Money) (Money, error) {
	return m.addSub("subtract", o, true)
}

func (m Money) addSub(op string, o Money, sub bool) (Money, error) {
	def, err := normCurrency(m.Currency)
	if err != nil {
		return Money{}, err
	}
	odef, err := normCurrency(o.Currency)
	if err != nil {
		return Money{}, err
	}
	code, ocode := def.code, odef.code
	if code != ocode {
		return Money{}, fmt.Errorf("%w: cannot %s %s and %s", ErrCurrencyMismatch, op, code, ocode)
	}
	var res apd.Decimal
	a, b := apd.New(m.Amount, 0), apd.New(o.Amount, 0)
	var cond apd.Condition
	if sub {
		cond, err = decCtx.Sub(&res, a, b)
	} else {
		cond, err = decCtx.Add(&res, a, b)
	}
	if err := checkCond(op, cond, err, false); err != nil {
		return Money{}, err
	}
	v, err := res.Int64()
	if err != nil {
		return Money{}, fmt.Errorf("%w: %d %s %d %s", ErrOverflow, m.Amount, opSymbol(sub), o.Amount, code)
	}
	return Money{Amount: v, Currency: code}, nil
}

func opSymbol(sub bool) string {
	if sub {
		return "-"
	}
	return "+"
}

var (
	decZero       = apd.New(0, 0)
	decHundred    = apd.New(100, 0)
	decOnePercent = apd.New(1, -2)
)

// checkPercent validates 0 <= p <= 100 for a finite p.
func checkPercent(p *apd.Decimal) error {
	if p == nil {
		return fmt.Errorf("%w: nil", ErrInvalidPercent)
	}
	if p.Form != apd.Finite {
		return fmt.Errorf("%w: %s is not finite", ErrInvalidPercent, p)
	}
	if p.Cmp(decZero) < 0 {
		return fmt.Errorf("%w: %s is negative", ErrInvalidPercent, p)
	}
	if p.Cmp(decHundred) > 0 {
		return fmt.Errorf("%w: %s is greater than 100", ErrInvalidPercent, p)
	}
	return nil
}

// Percent returns p percent of m (p = 20 means 20 %), in m's currency,
// rounded half-even to the currency's minor unit, i.e. to a whole number of
// minor units: 2.5 % of 100 minor units is 2.5 -> 2, 3.5 % -> 4, and 5 % of
// 7950 is 397.5 -> 398. Negative amounts round symmetrically (-2.5 -> -2).
//
// The product m.Amount*p/100 is computed exactly with apd before the single
// rounding step; if it cannot be represented exactly in DecimalPrecision
// digits (only possible when p has more than 15 significant digits) an error
// wrapping ErrInvalidPercent is returned rather than rounding twice. p must
// be finite and 0 <= p <= 100 (ErrInvalidPercent otherwise); p is not
// modified. The currency must be known (ErrUnknownCurrency).
func (m Money) Percent(p *apd.Decimal) (Money, error) {
	def, err := normCurrency(m.Currency)
	if err != nil {
		return Money{}, err
	}
	code := def.code
	if err := checkPercent(p); err != nil {
		return Money{}, err
	}
	var rate apd.Decimal
	rate.Reduce(p) // strip trailing zeros so "2.50000" is as exact as "2.5"

	var prod apd.Decimal
	cond, err := decCtx.Mul(&prod, apd.New(m.Amount, 0), &rate)
	if err := checkCond("multiply", cond, err, false); err != nil {
		return Money{}, fmt.Errorf("%w: %s %% of %d is not exact at %d digits: %w",
			ErrInvalidPercent, p, m.Amount, DecimalPrecision, err)
	}
	cond, err = decCtx.Mul(&prod, &prod, decOnePercent)
	if err := checkCond("scale", cond, err, false); err != nil {
		return Money{}, fmt.Errorf("%w: %s %% of %d: %w", ErrInvalidPercent, p, m.Amount, err)
	}
	// The one intended rounding: half-even to an integer number of minor units.
	var res apd.Decimal
	cond, err = decCtx.Quantize(&res, &prod, 0)
	if err := checkCond("round", cond, err, true); err != nil {
		return Money{}, err
	}
	v, err := res.Int64()
	if err != nil { // unreachable: |result| <= |m.Amount|
		return Money{}, fmt.Errorf("%w: %s %% of %d: %v", ErrOverflow, p, m.Amount, err)
	}
	return Money{Amount: v, Currency: code}, nil
}

// ParsePercent parses a percentage written in plain decimal notation,
// e.g. "5", "2.5", "20.125", "0.75" (no sign, exponent, "%" or spaces), and
// checks 0 <= value <= 100. The result is exact (no rounding) and suitable
// for Percent. Every error wraps ErrInvalidPercent.
func ParsePercent(s string) (*apd.Decimal, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(intPart) || (hasDot && !allDigits(frac)) {
		return nil, fmt.Errorf("%w: %q is not a plain decimal number", ErrInvalidPercent, s)
	}
	d, cond, err := apd.NewFromString(s)
	if err := checkCond("parse", cond, err, false); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidPercent, s, err)
	}
	if err := checkPercent(d); err != nil {
		return nil, err
	}
	return d, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Formatted returns m for display, e.g. "$79.20", "$0.05", "-$1.00",
// "$1,234,567.89", "€12.34", "¥1,000", "F CFA 1,000", "KWD 1.234".
//
// Rule: an optional "-", then the currency's English (CLDR "en") symbol,
// then the number. The symbol is directly followed by the number unless its
// last character is a letter (symbols such as "F CFA", "KWD", "CHF"), in
// which case a single space separates them. The number always shows exactly
// the currency's exponent in fraction digits after a ".", and its integer
// part is grouped in threes with ",". The digits are produced from the
// integer minor units with integer arithmetic; no floating point is involved.
// A withdrawn code (a sale recorded before ISO withdrew it) is formatted with
// the exponent and symbol it had.
//
// If the currency is unknown, Formatted returns the raw minor units and
// code flagged as invalid, e.g. "7920 minor units of invalid currency \"ZZZ\"".
func (m Money) Formatted() string {
	def, err := normCurrency(m.Currency)
	if err != nil {
		return fmt.Sprintf("%d minor units of invalid currency %q", m.Amount, m.Currency)
	}
	// Magnitude as uint64 (correct for math.MinInt64 too).
	mag := uint64(m.Amount)
	if m.Amount < 0 {
		mag = -mag
	}
	return formatMinor(def, m.Amount < 0, strconv.FormatUint(mag, 10))
}

// formatMinor formats a magnitude given as decimal digits of minor units (see Formatted).
func formatMinor(def currencyDef, negative bool, digits string) string {
	exp := def.digits
	if len(digits) <= exp { // left-pad so there is at least one integer digit
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	intPart, fracPart := digits[:len(digits)-exp], digits[len(digits)-exp:]

	var b strings.Builder
	if negative {
		b.WriteByte('-')
	}
	sym := strings.ReplaceAll(def.symbol, "\u202f", " ") // CLDR's narrow no-break space: "F\u202fCFA"
	b.WriteString(sym)
	if r, _ := utf8.DecodeLastRuneInString(sym); unicode.IsLetter(r) {
		b.WriteByte(' ')
	}
	for i := 0; i < len(intPart); i++ {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(intPart[i])
	}
	if exp > 0 {
		b.WriteByte('.')
		b.WriteString(fracPart)
	}
	return b.String()
}

type moneyJSON struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Formatted string `json:"formatted"`
}

// MarshalJSON encodes m as {"amount":7920,"currency":"USD","formatted":"$79.20"}
// with the currency normalised to upper case and "formatted" computed by
// Formatted. It fails (error wrapping ErrUnknownCurrency) for a Money whose
// currency is unknown, including the zero Money, since such a value could
// not be decoded again.
func (m Money) MarshalJSON() ([]byte, error) {
	def, err := normCurrency(m.Currency)
	if err != nil {
		return nil, fmt.Errorf("domain: marshal money: %w", err)
	}
	return json.Marshal(moneyJSON{Amount: m.Amount, Currency: def.code, Formatted: m.Formatted()})
}

// UnmarshalJSON decodes {"amount":7920,"currency":"USD"}; a "formatted"
// member (and any other unknown member) is ignored.
//
//   - "amount" is required and must be a JSON integer literal within int64:
//     79.2, 7920.0, 1e2, "7920" (a string) and null are rejected with an
//     error wrapping ErrInvalidAmount (plus ErrOverflow when out of range).
//     The literal is parsed with apd, never as float64.
//   - "currency" is required and must be a JSON string naming a known
//     currency; lower case is normalised to upper case ("usd" -> "USD").
//     Otherwise the error wraps ErrUnknownCurrency.
//   - A JSON null in place of the whole object is rejected too, so a
//     successfully decoded Money is always valid.
//
// On error m is left unchanged.
func (m *Money) UnmarshalJSON(data []byte) error {
	var raw struct {
		Amount   json.RawMessage `json:"amount"`
		Currency json.RawMessage `json:"currency"`
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return fmt.Errorf("domain: decode money: %w: got null", ErrInvalidAmount)
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("domain: decode money: %w", err)
	}

	amount, err := parseAmount(raw.Amount)
	if err != nil {
		return fmt.Errorf("domain: decode money: %w", err)
	}

	if len(raw.Currency) == 0 || string(raw.Currency) == "null" {
		return fmt.Errorf("domain: decode money: %w: currency is missing", ErrUnknownCurrency)
	}
	var cur string
	if err := json.Unmarshal(raw.Currency, &cur); err != nil {
		return fmt.Errorf("domain: decode money: %w: currency must be a string, got %s", ErrUnknownCurrency, raw.Currency)
	}
	def, err := normCurrency(cur)
	if err != nil {
		return fmt.Errorf("domain: decode money: %w", err)
	}

	*m = Money{Amount: amount, Currency: def.code}
	return nil
}

// parseAmount accepts only a JSON integer literal (optional "-", digits)
// that fits in int64.
func parseAmount(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if s == "" || s == "null" {
		return 0, fmt.Errorf("%w: amount is missing", ErrInvalidAmount)
	}
	if !allDigits(strings.TrimPrefix(s, "-")) {
		return 0, fmt.Errorf("%w: amount must be an integer number of minor units, got %s", ErrInvalidAmount, s)
	}
	d, cond, err := apd.NewFromString(s)
	if err := checkCond("parse", cond, err, false); err != nil {
		return 0, fmt.Errorf("%w: amount %s: %w", ErrInvalidAmount, s, err)
	}
	v, err := d.Int64()
	if err != nil {
		return 0, fmt.Errorf("%w: %w: amount %s", ErrInvalidAmount, ErrOverflow, s)
	}
	return v, nil
}

// Total is an exact sum of amounts of one currency in minor units: a customer's spending, a store's
// revenue. Unlike Money it is not bounded by int64 (a sum of 10,000 sales at MaxAmount exceeds it), so
// it is held as an apd integer and shown exactly.
//
// JSON form (MarshalJSON), the same shape as Money:
//
//	{"amount":123456789012345678901,"currency":"USD","formatted":"$1,234,567,890,123,456,789.01"}
//
// amount is a JSON integer literal of any size: exact in JSON, but beyond 2^53 a JavaScript number
// loses digits, so such clients read it with a big-number parser or use formatted.
type Total struct {
	Currency string
	amount   apd.Decimal // an integer; zero value is 0
}

// ParseTotal reads a total's minor units from a decimal integer literal (as AmountText writes it),
// e.g. "123456789012345678901". The error wraps ErrInvalidAmount.
func ParseTotal(currency, minor string) (Total, error) {
	t := Total{Currency: currency}
	if !allDigits(strings.TrimPrefix(minor, "-")) {
		return Total{}, fmt.Errorf("%w: total %q is not an integer", ErrInvalidAmount, minor)
	}
	if _, _, err := t.amount.SetString(minor); err != nil {
		return Total{}, fmt.Errorf("%w: total %q: %w", ErrInvalidAmount, minor, err)
	}
	return t, nil
}

// Add adds minor units to t exactly. The error wraps apd's (only for a sum beyond DecimalPrecision =
// 34 digits, which no ledger reaches).
func (t *Total) Add(minor int64) error {
	cond, err := decCtx.Add(&t.amount, &t.amount, apd.New(minor, 0))
	return checkCond("add", cond, err, false)
}

// AmountText is the total's minor units as a decimal integer literal, e.g. "12300".
func (t Total) AmountText() string {
	return t.amount.Text('f')
}

// Formatted is the total for display, by the rule of Money.Formatted.
func (t Total) Formatted() string {
	def, err := normCurrency(t.Currency)
	txt := t.AmountText()
	if err != nil {
		return fmt.Sprintf("%s minor units of invalid currency %q", txt, t.Currency)
	}
	neg := strings.HasPrefix(txt, "-")
	return formatMinor(def, neg, strings.TrimPrefix(txt, "-"))
}

// MarshalJSON encodes t as {"amount":<integer literal>,"currency":"USD","formatted":"$123.00"}; an
// unknown currency is an error wrapping ErrUnknownCurrency.
func (t Total) MarshalJSON() ([]byte, error) {
	def, err := normCurrency(t.Currency)
	if err != nil {
		return nil, fmt.Errorf("domain: marshal total: %w", err)
	}
	return json.Marshal(struct {
		Amount    json.Number `json:"amount"`
		Currency  string      `json:"currency"`
		Formatted string      `json:"formatted"`
	}{json.Number(t.AmountText()), def.code, t.Formatted()})
}
