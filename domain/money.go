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
// percentage of up to 15 significant digits is always exact.
const DecimalPrecision = 34

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

// normCurrency upper-cases an ASCII three-letter code and checks that
// x/text/currency knows it. It returns the canonical code, the x/text unit
// and the minor-unit exponent.
func normCurrency(code string) (string, currency.Unit, int, error) {
	if len(code) != 3 {
		return "", currency.Unit{}, 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := code[i]
		switch {
		case 'A' <= c && c <= 'Z':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return "", currency.Unit{}, 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
		}
		b[i] = c
	}
	upper := string(b[:])
	unit, err := currency.ParseISO(upper)
	if err != nil {
		return "", currency.Unit{}, 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, code)
	}
	scale, _ := currency.Standard.Rounding(unit)
	return upper, unit, scale, nil
}

// CurrencyExponent returns the number of minor-unit decimal digits of the
// currency with the given three-letter code (case-insensitive): USD 2,
// EUR 2, JPY 0, XOF 0, KWD 3, BHD 3.
//
// Source: the standard (non-cash) rounding scale reported by
// golang.org/x/text/currency (currency.Standard.Rounding), which is CLDR's
// "digits" value. There is no hand-written table in this package. CLDR
// agrees with the ISO 4217 minor unit for most currencies but not all: with
// the x/text version in go.mod it reports e.g. IQD 0 (ISO: 3) and IDR, COP,
// RSD, LBP 0 (ISO: 2), and a default of 2 for codes ISO gives no minor unit
// (XAU, XXX). Cash rounding (e.g. CHF in steps of 0.05) is deliberately not
// used. Stored amounts are interpreted with this exponent, so upgrading
// golang.org/x/text can change it; the tests pin the values relied on.
//
// A malformed or unknown code (including codes newer than the x/text
// tables, such as MRU or VES) yields an error wrapping ErrUnknownCurrency.
func CurrencyExponent(code string) (int, error) {
	_, _, scale, err := normCurrency(code)
	if err != nil {
		return 0, err
	}
	return scale, nil
}

// NewMoney returns amount minor units of currency. The code must be three
// ASCII letters known to CurrencyExponent; lower case is normalised to upper
// case ("usd" -> "USD"). Otherwise the error wraps ErrUnknownCurrency.
func NewMoney(amount int64, currency string) (Money, error) {
	code, _, _, err := normCurrency(currency)
	if err != nil {
		return Money{}, err
	}
	return Money{Amount: amount, Currency: code}, nil
}

// Validate reports whether m has a known currency (error wraps
// ErrUnknownCurrency otherwise). Every int64 amount is valid.
func (m Money) Validate() error {
	_, _, _, err := normCurrency(m.Currency)
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
	code, _, _, err := normCurrency(m.Currency)
	if err != nil {
		return Money{}, err
	}
	ocode, _, _, err := normCurrency(o.Currency)
	if err != nil {
		return Money{}, err
	}
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
	code, _, _, err := normCurrency(m.Currency)
	if err != nil {
		return Money{}, err
	}
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

// symbols caches currency code -> display symbol.
var symbols sync.Map

// symbol returns the English (CLDR "en") symbol x/text/currency has for unit:
// "$" for USD, "€" for EUR, "¥" for JPY, "CFA" for XOF, "KWD" for KWD.
func symbol(code string, unit currency.Unit) string {
	if s, ok := symbols.Load(code); ok {
		return s.(string)
	}
	s := message.NewPrinter(language.English).Sprint(currency.Symbol(unit))
	if s == "" {
		s = code
	}
	symbols.Store(code, s)
	return s
}

// Formatted returns m for display, e.g. "$79.20", "$0.05", "-$1.00",
// "$1,234,567.89", "€12.34", "¥1,000", "CFA 1,000", "KWD 1.234".
//
// Rule: an optional "-", then the English currency symbol from
// golang.org/x/text/currency, then the number. The symbol is directly
// followed by the number unless its last character is a letter (symbols
// such as "CFA", "KWD", "CHF"), in which case a single space separates
// them. The number always shows exactly CurrencyExponent(m.Currency)
// fraction digits after a ".", and its integer part is grouped in threes
// with ",". The digits are produced from the integer minor units with
// integer arithmetic; no floating point is involved.
//
// If the currency is unknown, Formatted returns the raw minor units and
// code flagged as invalid, e.g. "7920 minor units of invalid currency \"ZZZ\"".
func (m Money) Formatted() string {
	code, unit, exp, err := normCurrency(m.Currency)
	if err != nil {
		return fmt.Sprintf("%d minor units of invalid currency %q", m.Amount, m.Currency)
	}
	sym := symbol(code, unit)

	// Magnitude as uint64 (correct for math.MinInt64 too).
	mag := uint64(m.Amount)
	if m.Amount < 0 {
		mag = -mag
	}
	digits := strconv.FormatUint(mag, 10)
	if len(digits) <= exp { // left-pad so there is at least one integer digit
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	intPart, fracPart := digits[:len(digits)-exp], digits[len(digits)-exp:]

	var b strings.Builder
	if m.Amount < 0 {
		b.WriteByte('-')
	}
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
	code, _, _, err := normCurrency(m.Currency)
	if err != nil {
		return nil, fmt.Errorf("domain: marshal money: %w", err)
	}
	return json.Marshal(moneyJSON{Amount: m.Amount, Currency: code, Formatted: m.Formatted()})
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
	code, _, _, err := normCurrency(cur)
	if err != nil {
		return fmt.Errorf("domain: decode money: %w", err)
	}

	*m = Money{Amount: amount, Currency: code}
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
