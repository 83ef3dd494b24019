package gateways

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Stripe is Stripe's webhook events (https://docs.stripe.com/webhooks, the Event object:
// https://docs.stripe.com/api/events/object).
//
// Header: Stripe-Signature "t=<unix>,v1=<hex>[,v1=...]"; one v1 must be the hex HMAC-SHA256 of
// "<t>.<raw body>" keyed with the endpoint's signing secret (whsec_…, used as given).
//
// Body: an Event {"id", "object": "event", "type", "livemode", "data": {"object": ...}, ...}. The delivery
// id is the event id (the same on every retry of one event), Livemode the event's livemode.
//
// Payments: data.object is the PaymentIntent. Types payment_intent.processing (kind payment.pending),
// payment_intent.succeeded (payment.succeeded), payment_intent.payment_failed (payment.failed) and
// payment_intent.canceled (payment.cancelled). From the PaymentIntent: id (the transaction), amount in
// Stripe's units converted to ISO minor units (see stripeAmount), currency (upper-cased),
// metadata.sale_id and metadata.store_id, payment_method_types[0] as the method, last_payment_error
// {code, message}.
//
// Refunds: charge.refunded (kind refund.succeeded), data.object the Charge. Its amount_refunded is the
// charge's total refunded so far, not this refund's: the delivery is Cumulative, with no RefundID (one
// charge.refunded event may cover several refunds, and two events may arrive in any order; the ledger
// records the part of the total it has not recorded yet). The transaction is the charge's
// payment_intent — the id the ledger recorded with the payment — or the charge id when it has none;
// metadata.sale_id names the sale when the checkout put it on the charge too.
//
// Disputes: charge.dispute.created (dispute.opened) and charge.dispute.closed (dispute.closed),
// data.object the Dispute: id (du_…, required), payment_intent or else charge as the transaction (a
// dispute names no sale), amount and currency, reason. A closed dispute's status is won or lost;
// warning_closed (an inquiry that closed without becoming a chargeback) and prevented are won — the store
// keeps the money, so the settlement the open dispute held resumes; any other status is ErrIgnored.
//
// Any other type (charge.succeeded, charge.dispute.updated, payout.*, ...) is ErrIgnored.
type Stripe struct{}

// Verify checks Stripe-Signature; the timestamp t is checked first (ErrStaleTimestamp).
func (Stripe) Verify(secret string, h http.Header, body []byte, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(h.Get("Stripe-Signature"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrBadSignature
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// stripeObject is the part of an Event's data.object the ledger reads: a PaymentIntent, a Charge or a
// Dispute.
type stripeObject struct {
	ID                 string   `json:"id"`
	Amount             *int64   `json:"amount"`
	AmountRefunded     *int64   `json:"amount_refunded"` // Charge
	Currency           string   `json:"currency"`
	Metadata           metadata `json:"metadata"`
	PaymentMethodTypes []string `json:"payment_method_types"` // PaymentIntent
	LastPaymentError   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_payment_error"` // PaymentIntent
	PaymentIntent *string `json:"payment_intent"` // Charge, Dispute
	Charge        *string `json:"charge"`         // Dispute
	Reason        string  `json:"reason"`         // Dispute
	Status        string  `json:"status"`
}

// stripeKinds maps the Event types the ledger acts on to their kind.
var stripeKinds = map[string]string{"payment_intent.processing": "payment.pending", "payment_intent.succeeded": "payment.succeeded",
	"payment_intent.payment_failed": "payment.failed", "payment_intent.canceled": "payment.cancelled",
	"charge.refunded": "refund.succeeded", "charge.dispute.created": "dispute.opened", "charge.dispute.closed": "dispute.closed"}

// stripeDisputeOutcomes maps a closed Dispute's status to the ledger's outcome (see Stripe).
var stripeDisputeOutcomes = map[string]string{"won": events.DisputeWon, "warning_closed": events.DisputeWon, "prevented": events.DisputeWon,
	"lost": events.DisputeLost}

// Parse reads the Event described on Stripe.
func (Stripe) Parse(_ http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Livemode *bool  `json:"livemode"`
		Data     struct {
			Object stripeObject `json:"object"`
		} `json:"data"`
	}
	typ, err := eventName(body, "type")
	if err != nil {
		return events.WebhookReceived{}, err
	}
	kind, ok := stripeKinds[typ]
	if !ok {
		return events.WebhookReceived{}, ErrIgnored
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ID == "" {
		return events.WebhookReceived{}, malformed(err)
	}
	o := in.Data.Object
	out := events.WebhookReceived{DeliveryID: in.ID, Kind: kind, SaleID: o.Metadata.SaleID, StoreID: o.Metadata.StoreID, Livemode: in.Livemode}
	fields := []field{{"id", in.ID, maxGatewayID}, {"data.object.id", o.ID, maxGatewayID}, {"data.object.currency", o.Currency, maxCurrency},
		{"data.object.metadata.sale_id", o.Metadata.SaleID, domain.MaxIDLen}, {"data.object.metadata.store_id", o.Metadata.StoreID, domain.MaxIDLen}}
	switch typ {
	case "charge.refunded":
		if o.AmountRefunded == nil {
			return events.WebhookReceived{}, MalformedFieldError{"data.object.amount_refunded", "is missing; a refunded charge says how much of it was refunded"}
		}
		if out.Amount, err = stripeAmount("data.object.amount_refunded", o.AmountRefunded, o.Currency); err != nil {
			return events.WebhookReceived{}, err
		}
		out.Cumulative = true
		out.TransactionID = firstOf(o.PaymentIntent, &o.ID)
		fields = append(fields, field{"data.object.payment_intent", firstOf(o.PaymentIntent), maxGatewayID})
	case "charge.dispute.created", "charge.dispute.closed":
		if o.ID == "" {
			return events.WebhookReceived{}, MalformedFieldError{"data.object.id", "is missing; a dispute must name itself"}
		}
		if kind == "dispute.closed" {
			if out.DisputeStatus, ok = stripeDisputeOutcomes[o.Status]; !ok {
				return events.WebhookReceived{}, ErrIgnored
			}
		}
		if out.Amount, err = stripeAmount("data.object.amount", o.Amount, o.Currency); err != nil {
			return events.WebhookReceived{}, err
		}
		out.DisputeID, out.Reason = o.ID, o.Reason
		out.TransactionID = firstOf(o.PaymentIntent, o.Charge)
		fields = append(fields, field{"data.object.payment_intent", firstOf(o.PaymentIntent), maxGatewayID},
			field{"data.object.charge", firstOf(o.Charge), maxGatewayID}, field{"data.object.reason", o.Reason, maxReason})
	default:
		if out.Amount, err = stripeAmount("data.object.amount", o.Amount, o.Currency); err != nil {
			return events.WebhookReceived{}, err
		}
		out.TransactionID = o.ID
		if len(o.PaymentMethodTypes) > 0 {
			out.Method = &events.PaymentMethod{ID: o.PaymentMethodTypes[0]}
			fields = append(fields, field{"data.object.payment_method_types[0]", out.Method.ID, maxMethodID})
		}
		if e := o.LastPaymentError; e != nil {
			out.FailureError = &events.FailureError{Code: e.Code, Message: e.Message}
			fields = append(fields, field{"data.object.last_payment_error.code", e.Code, maxFailureCode},
				field{"data.object.last_payment_error.message", e.Message, maxFailureMessage})
		}
	}
	return out, within(fields...)
}

// firstOf is the first of ids that is given and not empty (Stripe writes an absent reference as null),
// or "".
func firstOf(ids ...*string) string {
	for _, id := range ids {
		if id != nil && *id != "" {
			return *id
		}
	}
	return ""
}

// Stripe's amounts are integers in Stripe's own units per currency, which are not always ISO 4217's
// minor units (https://docs.stripe.com/currencies, "Zero-decimal currencies", "Three-decimal
// currencies", "Special cases"). The ledger keeps ISO minor units (domain.CurrencyExponent), so a Stripe
// amount is scaled from Stripe's exponent to the ledger's:
//   - zero-decimal currencies (stripeZeroDecimal): Stripe's unit is the currency's major unit;
//   - three-decimal currencies (stripeThreeDecimal): thousandths, as ISO;
//   - every other currency: hundredths ("two-decimal") — including ISK and UGX, which ISO gives no
//     minor unit but Stripe takes and sends ×100 for backwards compatibility (ISK 5,000 is 500000), and
//     HUF and TWD, which Stripe pays out in whole units but represents with two decimals, as ISO does.
var (
	stripeZeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true,
		"KRW": true, "MGA": true, "PYG": true, "RWF": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true}
	stripeThreeDecimal = map[string]bool{"BHD": true, "JOD": true, "KWD": true, "OMR": true, "TND": true}
)

// stripeExponent is the number of decimals in Stripe's integer amounts for currency (upper case).
func stripeExponent(currency string) int {
	switch {
	case stripeZeroDecimal[currency]:
		return 0
	case stripeThreeDecimal[currency]:
		return 3
	}
	return 2
}

// stripeAmount converts a Stripe amount (the field name, as the Event has it) to the ledger's minor units
// of currency. A currency the ledger does not know is passed on unscaled (the sale's currency check then
// refuses it); an amount that does not divide into the ledger's units (ISK 5,000.50 written 500050;
// Stripe itself requires multiples of 100) is a MalformedFieldError naming the field.
func stripeAmount(name string, n *int64, currency string) (*events.Amount, error) {
	if n == nil {
		return nil, nil
	}
	cur := strings.ToUpper(currency)
	iso, err := domain.CurrencyExponent(cur)
	if err != nil {
		return &events.Amount{Amount: *n, Currency: cur}, nil
	}
	v := *n
	for e := stripeExponent(cur); e > iso; e-- {
		if v%10 != 0 {
			return nil, MalformedFieldError{name, fmt.Sprintf("%d is not a whole number of %s minor units (Stripe writes %s in units of 10^-%d)", *n, cur, cur, stripeExponent(cur))}
		}
		v /= 10
	}
	for e := stripeExponent(cur); e < iso; e++ {
		if v > math.MaxInt64/10 || v < math.MinInt64/10 {
			return nil, MalformedFieldError{name, "is larger than any price"} // never wrap around
		}
		v *= 10
	}
	return &events.Amount{Amount: v, Currency: cur}, nil
}
