package handlers

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
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

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// SignatureTolerance is how far a signed timestamp may be from now (Standard Webhooks and Stripe).
const SignatureTolerance = 5 * time.Minute

// Verification errors. All are answered 401, except errMalformedDelivery (400).
var (
	errBadSignature      = errors.New("the webhook signature is missing or does not match")
	errStaleTimestamp    = errors.New("the webhook timestamp is outside the 5-minute tolerance")
	errMalformedDelivery = errors.New("the webhook body is not a delivery this gateway sends")
	errIgnoredKind       = errors.New("the gateway event is not one the ledger acts on")
)

// gateway verifies one gateway's signature on the raw body and normalises its body into a delivery.
// verify must run before anything of the body is trusted; it compares in constant time.
type gateway struct {
	verify func(secret string, h http.Header, body []byte, now time.Time) error
	parse  func(h http.Header, body []byte) (events.WebhookReceived, error)
}

var gateways = map[string]gateway{
	"standard": {verifyStandard, parseStandard},
	"moneroo":  {verifyHexHMAC("X-Moneroo-Signature", sha256.New), parseMoneroo},
	"stripe":   {verifyStripe, parseStripe},
	"paystack": {verifyHexHMAC("X-Paystack-Signature", sha512.New), parsePaystack},
}

// verifyStandard implements Standard Webhooks: webhook-signature holds space-separated "v1,<base64>"
// signatures of "id.timestamp.body" with HMAC-SHA256 keyed by the base64 part of the whsec_ secret.
func verifyStandard(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errBadSignature
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("standard webhook secret is not whsec_<base64>: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errBadSignature
}

// verifyStripe implements Stripe-Signature: "t=<unix>,v1=<hex>[,v1=...]", HMAC-SHA256 of "t.body".
func verifyStripe(secret string, h http.Header, body []byte, now time.Time) error {
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
		return errBadSignature
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
	return errBadSignature
}

// verifyHexHMAC checks a header holding the hex HMAC of the raw body (Moneroo: SHA-256; Paystack: SHA-512).
func verifyHexHMAC(header string, h func() hash.Hash) func(string, http.Header, []byte, time.Time) error {
	return func(secret string, hd http.Header, body []byte, _ time.Time) error {
		got, err := hex.DecodeString(strings.TrimSpace(hd.Get(header)))
		if err != nil || len(got) == 0 {
			return errBadSignature
		}
		mac := hmac.New(h, []byte(secret))
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return errBadSignature
		}
		return nil
	}
}

func checkTimestamp(ts string, now time.Time) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); math.Abs(float64(d)) > float64(SignatureTolerance) {
		return errStaleTimestamp
	}
	return nil
}

func parseStandard(h http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		Type string `json:"type"`
		Data struct {
			SaleID        string                `json:"sale_id"`
			StoreID       string                `json:"store_id"`
			TransactionID string                `json:"transaction_id"`
			Amount        *events.Amount        `json:"amount"`
			Fee           *events.Amount        `json:"fee"`
			Method        *events.PaymentMethod `json:"method"`
			FailureError  *events.FailureError  `json:"failure_error"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return events.WebhookReceived{}, errMalformedDelivery
	}
	switch in.Type {
	case "payment.initiated", "payment.pending", "payment.succeeded", "payment.failed", "payment.cancelled", "settlement.done":
	default:
		return events.WebhookReceived{}, errIgnoredKind
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: h.Get("webhook-id"), Kind: in.Type, SaleID: d.SaleID, StoreID: d.StoreID, TransactionID: d.TransactionID,
		Amount: d.Amount, Fee: d.Fee, Method: d.Method, FailureError: d.FailureError}
	fields := []field{{"webhook-id header", out.DeliveryID, maxGatewayID}, {"data.sale_id", d.SaleID, domain.MaxIDLen},
		{"data.store_id", d.StoreID, domain.MaxIDLen}, {"data.transaction_id", d.TransactionID, maxGatewayID}}
	if d.Amount != nil {
		fields = append(fields, field{"data.amount.currency", d.Amount.Currency, maxCurrency})
	}
	if d.Fee != nil {
		fields = append(fields, field{"data.fee.currency", d.Fee.Currency, maxCurrency})
	}
	if m := d.Method; m != nil {
		fields = append(fields, field{"data.method.id", m.ID, maxMethodID}, field{"data.method.name", m.Name, maxMethodName})
	}
	if f := d.FailureError; f != nil {
		fields = append(fields, field{"data.failure_error.code", f.Code, maxFailureCode}, field{"data.failure_error.message", f.Message, maxFailureMessage})
	}
	return out, within(fields...)
}

func parseMoneroo(_ http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		Event string `json:"event"`
		Data  struct {
			ID       string                `json:"id"`
			Amount   *int64                `json:"amount"`
			Currency string                `json:"currency"`
			Fee      *int64                `json:"fee"`
			Method   *events.PaymentMethod `json:"method"`
			Failure  *events.FailureError  `json:"failure_error"`
			Metadata deliveryMetadata      `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Data.ID == "" {
		return events.WebhookReceived{}, errMalformedDelivery
	}
	kinds := map[string]string{"payment.initiated": "payment.initiated", "payment.success": "payment.succeeded",
		"payment.failed": "payment.failed", "payment.cancelled": "payment.cancelled"}
	kind, ok := kinds[in.Event]
	if !ok {
		return events.WebhookReceived{}, errIgnoredKind
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: "moneroo:" + in.Event + ":" + d.ID, Kind: kind, SaleID: d.Metadata.SaleID, StoreID: d.Metadata.StoreID,
		TransactionID: d.ID, Amount: amountOf(d.Amount, d.Currency), Fee: amountOf(d.Fee, d.Currency), Method: d.Method, FailureError: d.Failure}
	fields := []field{{"data.id", d.ID, maxGatewayID}, {"data.currency", d.Currency, maxCurrency},
		{"data.metadata.sale_id", d.Metadata.SaleID, domain.MaxIDLen}, {"data.metadata.store_id", d.Metadata.StoreID, domain.MaxIDLen}}
	if m := d.Method; m != nil {
		fields = append(fields, field{"data.method.id", m.ID, maxMethodID}, field{"data.method.name", m.Name, maxMethodName})
	}
	if f := d.Failure; f != nil {
		fields = append(fields, field{"data.failure_error.code", f.Code, maxFailureCode}, field{"data.failure_error.message", f.Message, maxFailureMessage})
	}
	return out, within(fields...)
}

func parseStripe(_ http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object struct {
				ID                 string           `json:"id"`
				Amount             *int64           `json:"amount"`
				Currency           string           `json:"currency"`
				Metadata           deliveryMetadata `json:"metadata"`
				PaymentMethodTypes []string         `json:"payment_method_types"`
				LastPaymentError   *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"last_payment_error"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ID == "" {
		return events.WebhookReceived{}, errMalformedDelivery
	}
	kinds := map[string]string{"payment_intent.processing": "payment.pending", "payment_intent.succeeded": "payment.succeeded",
		"payment_intent.payment_failed": "payment.failed", "payment_intent.canceled": "payment.cancelled"}
	kind, ok := kinds[in.Type]
	if !ok {
		return events.WebhookReceived{}, errIgnoredKind
	}
	o := in.Data.Object
	amount, err := stripeAmount(o.Amount, o.Currency)
	if err != nil {
		return events.WebhookReceived{}, err
	}
	out := events.WebhookReceived{DeliveryID: in.ID, Kind: kind, SaleID: o.Metadata.SaleID, StoreID: o.Metadata.StoreID, TransactionID: o.ID,
		Amount: amount}
	if len(o.PaymentMethodTypes) > 0 {
		out.Method = &events.PaymentMethod{ID: o.PaymentMethodTypes[0]}
	}
	if e := o.LastPaymentError; e != nil {
		out.FailureError = &events.FailureError{Code: e.Code, Message: e.Message}
	}
	fields := []field{{"id", in.ID, maxGatewayID}, {"data.object.id", o.ID, maxGatewayID}, {"data.object.currency", o.Currency, maxCurrency},
		{"data.object.metadata.sale_id", o.Metadata.SaleID, domain.MaxIDLen}, {"data.object.metadata.store_id", o.Metadata.StoreID, domain.MaxIDLen}}
	if out.Method != nil {
		fields = append(fields, field{"data.object.payment_method_types[0]", out.Method.ID, maxMethodID})
	}
	if e := out.FailureError; e != nil {
		fields = append(fields, field{"data.object.last_payment_error.code", e.Code, maxFailureCode},
			field{"data.object.last_payment_error.message", e.Message, maxFailureMessage})
	}
	return out, within(fields...)
}

// deliveryMetadata is the ledger's part of a gateway's free-form metadata: the sale and store a checkout
// put there. Paystack documents metadata as an object, sends it stringified when it was given as a
// string to the transaction API, and its own charge.success sample carries "metadata": 0; an empty
// string, a number, null or no metadata at all are deliveries that name no sale (recorded, then set
// aside by the payment processor), not malformed ones. An object whose sale_id or store_id is not a
// string is malformed.
type deliveryMetadata struct {
	SaleID  string `json:"sale_id"`
	StoreID string `json:"store_id"`
}

// UnmarshalJSON accepts an object, a JSON string holding an object, and anything else as empty.
func (m *deliveryMetadata) UnmarshalJSON(b []byte) error {
	type plain deliveryMetadata
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var inner string
		if err := json.Unmarshal(b, &inner); err != nil {
			return err
		}
		b = bytes.TrimSpace([]byte(inner))
		if len(b) == 0 || b[0] != '{' {
			*m = deliveryMetadata{}
			return nil // a string that holds no object: no metadata of the ledger's
		}
	}
	if len(b) == 0 || b[0] != '{' {
		*m = deliveryMetadata{}
		return nil // a number, null, true, an array
	}
	return json.Unmarshal(b, (*plain)(m))
}

func parsePaystack(_ http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		Event string `json:"event"`
		Data  struct {
			ID        json.Number      `json:"id"`
			Reference string           `json:"reference"`
			Amount    *int64           `json:"amount"`
			Currency  string           `json:"currency"`
			Fees      *int64           `json:"fees"`
			Channel   string           `json:"channel"`
			Metadata  deliveryMetadata `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || (in.Data.ID == "" && in.Data.Reference == "") {
		return events.WebhookReceived{}, errMalformedDelivery
	}
	if in.Event != "charge.success" {
		return events.WebhookReceived{}, errIgnoredKind
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: "paystack:" + in.Event + ":" + d.ID.String() + ":" + d.Reference, Kind: "payment.succeeded",
		SaleID: d.Metadata.SaleID, StoreID: d.Metadata.StoreID, TransactionID: d.Reference, Amount: amountOf(d.Amount, d.Currency), Fee: amountOf(d.Fees, d.Currency)}
	if d.Channel != "" {
		out.Method = &events.PaymentMethod{ID: d.Channel}
	}
	return out, within(field{"data.id", d.ID.String(), maxGatewayID}, field{"data.reference", d.Reference, maxGatewayID},
		field{"data.currency", d.Currency, maxCurrency}, field{"data.channel", d.Channel, maxMethodID},
		field{"data.metadata.sale_id", d.Metadata.SaleID, domain.MaxIDLen}, field{"data.metadata.store_id", d.Metadata.StoreID, domain.MaxIDLen})
}

// Limits on what a delivery identifies and describes itself by, in bytes. No gateway sends more (their
// ids are tens of characters), and these values go into the log and the sale; a delivery over one is
// refused with 400 naming the field, before anything is recorded (see docs/decisions.md: a gateway
// retries a refused delivery on its own bounded schedule, then gives up).
const (
	maxGatewayID      = 255  // delivery and transaction ids, references
	maxCurrency       = 3    // ISO 4217
	maxMethodID       = 100  // payment method ids and channels
	maxMethodName     = 200  // payment method names
	maxFailureCode    = 100  // failure codes
	maxFailureMessage = 1000 // failure messages
)

// field is one value of a delivery with the name the gateway gives it and its limit.
type field struct {
	name  string
	value string
	limit int
}

// errFieldTooLong is a delivery with a value over its limit.
type errFieldTooLong struct{ field field }

func (e errFieldTooLong) Error() string {
	return fmt.Sprintf("The webhook's %s is longer than %d characters; no delivery of this gateway carries one so long, and the ledger does not record it.",
		e.field.name, e.field.limit)
}

// within checks the fields of a delivery, named as the gateway names them.
func within(fields ...field) error {
	for _, f := range fields {
		if len(f.value) > f.limit {
			return errFieldTooLong{f}
		}
	}
	return nil
}

func amountOf(n *int64, currency string) *events.Amount {
	if n == nil {
		return nil
	}
	return &events.Amount{Amount: *n, Currency: strings.ToUpper(currency)}
}
