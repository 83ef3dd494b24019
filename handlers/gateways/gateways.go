// Package gateways holds the payment gateways' webhook adapters: for each gateway, the check of its
// signature on the raw body and the translation of its body into the ledger's normalised delivery
// (events.WebhookReceived). Both are pure — no clock but the one passed in, no I/O — so the HTTP handler
// (handlers/webhooks.go), tests and tools share them. Recording the delivery and applying it to its sale
// happen elsewhere.
//
// Each gateway's documented deliveries, rewritten with made-up values, are in testdata/<gateway>/ and
// every one of them is signed, verified and parsed by the tests here (see corpus_test.go).
package gateways

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Adapter is one gateway's side of POST /v1/webhooks/{gateway}.
//
// Verify checks the gateway's signature on the raw body with the configured secret; it must run before
// anything of the body is trusted, and compares in constant time. It returns nil, ErrBadSignature (a
// signature header missing, undecodable or not matching), ErrStaleTimestamp (a signed timestamp more
// than SignatureTolerance from now, for the gateways that sign one), or another error for a secret the
// gateway cannot use.
//
// Parse normalises a verified body into a delivery, without Gateway and BodySHA256 (the caller's).
// Amounts come out in ISO 4217 minor units. The gateway's event name is read first: an event the ledger
// does not act on is ErrIgnored whatever the rest of its body holds. Otherwise it returns ErrMalformed for
// a body that is not a delivery of this gateway, and a FieldTooLongError for a value over its limit.
type Adapter interface {
	Verify(secret string, h http.Header, body []byte, now time.Time) error
	Parse(h http.Header, body []byte) (events.WebhookReceived, error)
}

// adapters maps each gateway's name, as in the URL and LEDGER_GATEWAY_SECRETS, to its adapter.
var adapters = map[string]Adapter{
	"standard": Standard{},
	"moneroo":  Moneroo{},
	"stripe":   Stripe{},
	"paystack": Paystack{},
}

// Lookup returns the adapter of the gateway named name ("standard", "moneroo", "stripe", "paystack";
// case-sensitive), and false for any other name. Its Parse also applies the rules every gateway's values
// share (see checked).
func Lookup(name string) (Adapter, bool) {
	a, ok := adapters[name]
	if !ok {
		return nil, false
	}
	return checked{a}, true
}

// checked is an adapter whose parsed deliveries obey the ledger's own rules for what enters it, whatever
// the gateway sent:
//   - an amount or a fee is 0 to domain.MaxAmount minor units; anything else (a negative fee, ±2^63) is
//     ErrMalformed — no gateway sends it, and the ledger would show it;
//   - gateway free text (failure code and message, payment method, a refund's or dispute's reason) has
//     each control character, bidirectional override or isolate and line separator replaced by U+FFFD,
//     as domain.CheckText refuses in API input: refusing the delivery would lose the payment, refund or
//     dispute report for a cosmetic fault.
type checked struct{ Adapter }

// Parse parses with the gateway's adapter, then applies the shared rules.
func (c checked) Parse(h http.Header, body []byte) (events.WebhookReceived, error) {
	d, err := c.Adapter.Parse(h, body)
	if err != nil {
		return d, err
	}
	for _, a := range []struct {
		name   string
		amount *events.Amount
	}{{"amount", d.Amount}, {"fee", d.Fee}} {
		if a.amount != nil && domain.CheckAmount(a.amount.Amount) != nil {
			return events.WebhookReceived{}, MalformedFieldError{a.name, fmt.Sprintf("%d is outside 0 to %d minor units", a.amount.Amount, domain.MaxAmount)}
		}
	}
	if m := d.Method; m != nil {
		d.Method = &events.PaymentMethod{ID: cleanText(m.ID), Name: cleanText(m.Name)}
	}
	if f := d.FailureError; f != nil {
		d.FailureError = &events.FailureError{Code: cleanText(f.Code), Message: cleanText(f.Message)}
	}
	d.Reason = cleanText(d.Reason)
	return d, nil
}

// cleanText replaces with U+FFFD every rune domain.CheckText refuses in a one-line field.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		var v domain.ValidationError
		if r < utf8.RuneSelf && r >= 0x20 && r != 0x7f {
			return r
		}
		if domain.CheckText(&v, "", string(r), false) {
			return utf8.RuneError
		}
		return r
	}, s)
}

// SignatureTolerance is how far a signed timestamp may be from now (Standard Webhooks and Stripe).
const SignatureTolerance = 5 * time.Minute

// Errors of Verify and Parse. The HTTP handler answers ErrBadSignature and ErrStaleTimestamp 401,
// ErrMalformed 400 and ErrIgnored 200.
var (
	ErrBadSignature   = errors.New("the webhook signature is missing or does not match")
	ErrStaleTimestamp = errors.New("the webhook timestamp is outside the 5-minute tolerance")
	ErrMalformed      = errors.New("the webhook body is not a delivery this gateway sends")
	ErrIgnored        = errors.New("the gateway event is not one the ledger acts on")
)

// eventName reads the top-level member key (the gateway's event name) of a JSON object body, "" when it
// is absent. The name is read before the rest, so that an event the ledger does not act on is ignored
// whatever its data holds: gateways send many kinds of events with data of their own shapes, and
// answering one of them 400 would only make the gateway retry it. A body that is not a JSON object, or
// whose key is not a string, is ErrMalformed.
func eventName(body []byte, key string) (string, error) {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(body, &head); err != nil || head == nil {
		return "", ErrMalformed
	}
	raw, ok := head[key]
	if !ok {
		return "", nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", ErrMalformed
	}
	return name, nil
}

// verifyHexHMAC checks that header holds the hex HMAC of the raw body keyed with secret (Moneroo:
// SHA-256; Paystack: SHA-512). Surrounding blanks are trimmed and hex digits of either case accepted.
func verifyHexHMAC(header string, h func() hash.Hash, secret string, hd http.Header, body []byte) error {
	got, err := hex.DecodeString(strings.TrimSpace(hd.Get(header)))
	if err != nil || len(got) == 0 {
		return ErrBadSignature
	}
	mac := hmac.New(h, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// checkTimestamp checks a signed Unix-seconds timestamp against now and SignatureTolerance.
func checkTimestamp(ts string, now time.Time) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); math.Abs(float64(d)) > float64(SignatureTolerance) {
		return ErrStaleTimestamp
	}
	return nil
}

// metadata is the ledger's part of a gateway's free-form metadata: the sale and store a checkout put
// there. Paystack documents metadata as an object, sends it stringified when it was given as a string to
// the transaction API, and its own charge.success sample carries "metadata": 0; an empty string, a
// number, null or no metadata at all are deliveries that name no sale (recorded, then set aside by the
// payment processor), not malformed ones. An object whose sale_id or store_id is not a string is
// malformed.
type metadata struct {
	SaleID  string `json:"sale_id"`
	StoreID string `json:"store_id"`
}

// MalformedFieldError is a delivery refused for one field (errors.Is(err, ErrMalformed) holds): Field is
// its name as the delivery has it ("data.object.amount", "metadata.sale_id"), Reason what is wrong with
// it. Its message is meant for the gateway's delivery log.
type MalformedFieldError struct{ Field, Reason string }

func (e MalformedFieldError) Error() string {
	return "The webhook body's " + e.Field + " " + e.Reason + "."
}

// Is makes a MalformedFieldError an ErrMalformed.
func (e MalformedFieldError) Is(target error) bool { return target == ErrMalformed }

// malformed is err if it names a field (a MalformedFieldError from a member's UnmarshalJSON), else
// ErrMalformed.
func malformed(err error) error {
	var f MalformedFieldError
	if errors.As(err, &f) {
		return f
	}
	return ErrMalformed
}

// UnmarshalJSON accepts an object, a JSON string holding an object, and anything else as empty.
func (m *metadata) UnmarshalJSON(b []byte) error {
	type plain metadata
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var inner string
		if err := json.Unmarshal(b, &inner); err != nil {
			return err
		}
		b = bytes.TrimSpace([]byte(inner))
		if len(b) == 0 || b[0] != '{' {
			*m = metadata{}
			return nil // a string that holds no object: no metadata of the ledger's
		}
	}
	if len(b) == 0 || b[0] != '{' {
		*m = metadata{}
		return nil // a number, null, true, an array
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	if key, dup := duplicateTopLevelKey(b); dup {
		// A stringified metadata is parsed here, not by the handler's check of the body: the same rule.
		return MalformedFieldError{"metadata", "gives the key " + key + " twice"}
	}
	for _, k := range []string{"sale_id", "store_id"} {
		if v := bytes.TrimSpace(fields[k]); len(v) > 0 && v[0] != '"' && string(v) != "null" {
			return MalformedFieldError{"metadata." + k, "must be a string"}
		}
	}
	return json.Unmarshal(b, (*plain)(m))
}

// Limits on what a delivery identifies and describes itself by, in bytes. No gateway sends more (their
// ids are tens of characters), and these values go into the log and the sale; a delivery over one is
// refused with 400 naming the field, before anything is recorded (see docs/decisions.md: a gateway
// retries a refused delivery on its own bounded schedule, then gives up).
const (
	maxGatewayID      = 255                 // delivery and transaction ids, references
	maxCurrency       = 3                   // ISO 4217
	maxMethodID       = 100                 // payment method ids and channels
	maxMethodName     = 200                 // payment method names
	maxFailureCode    = 100                 // failure codes
	maxFailureMessage = 1000                // failure messages
	maxReason         = domain.MaxReasonLen // a refund's or a dispute's reason, as the API's own reasons
)

// field is one value of a delivery with the name the gateway gives it and its limit.
type field struct {
	name  string
	value string
	limit int
}

// FieldTooLongError is a delivery with a value over its limit: Field is its name as the gateway names
// it (data.object.metadata.sale_id), Limit its maximum length in bytes. Its message is meant for the
// gateway's delivery log.
type FieldTooLongError struct {
	Field string
	Limit int
}

func (e FieldTooLongError) Error() string {
	return fmt.Sprintf("The webhook's %s is longer than %d characters; no delivery of this gateway carries one so long, and the ledger does not record it.",
		e.Field, e.Limit)
}

// within checks the fields of a delivery, named as the gateway names them.
func within(fields ...field) error {
	for _, f := range fields {
		if len(f.value) > f.limit {
			return FieldTooLongError{Field: f.name, Limit: f.limit}
		}
	}
	return nil
}

// amountOf is n minor units of currency (upper-cased), or nil without n.
func amountOf(n *int64, currency string) *events.Amount {
	if n == nil {
		return nil
	}
	return &events.Amount{Amount: *n, Currency: strings.ToUpper(currency)}
}

// duplicateTopLevelKey finds a key the JSON object b gives twice, compared without case as
// encoding/json matches keys to fields.
func duplicateTopLevelKey(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := tok.(string)
		folded := strings.ToUpper(strings.ToLower(key))
		if seen[folded] {
			return key, true
		}
		seen[folded] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}
