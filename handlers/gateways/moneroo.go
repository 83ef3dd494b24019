package gateways

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Moneroo is Moneroo's webhooks (https://docs.moneroo.io/introduction/webhooks).
//
// Header: X-Moneroo-Signature, the hex HMAC-SHA256 of the raw body keyed with the webhook's signing
// secret; no timestamp is signed.
//
// Body: {"event", "data": {"id" (required), "status", "amount" (integer, the currency's minor units),
// "currency", "fee"?, "method"?: {"id","name"}, "failure_error"?: {"code","message"}, "customer"?,
// "metadata"?: {"sale_id", "store_id"?}}}. Events: payment.initiated, payment.success (kind
// payment.succeeded), payment.failed, payment.cancelled; any other (payout.*) is ErrIgnored. The delivery
// id is "moneroo:<event>:<data.id>" (Moneroo sends no event id).
type Moneroo struct{}

// Verify checks X-Moneroo-Signature; now plays no part.
func (Moneroo) Verify(secret string, h http.Header, body []byte, _ time.Time) error {
	return verifyHexHMAC("X-Moneroo-Signature", sha256.New, secret, h, body)
}

// Parse reads the body described on Moneroo.
func (Moneroo) Parse(_ http.Header, body []byte) (events.WebhookReceived, error) {
	var in struct {
		Event string `json:"event"`
		Data  struct {
			ID       string                `json:"id"`
			Amount   *int64                `json:"amount"`
			Currency string                `json:"currency"`
			Fee      *int64                `json:"fee"`
			Method   *events.PaymentMethod `json:"method"`
			Failure  *events.FailureError  `json:"failure_error"`
			Metadata metadata              `json:"metadata"`
		} `json:"data"`
	}
	event, err := eventName(body, "event")
	if err != nil {
		return events.WebhookReceived{}, err
	}
	kinds := map[string]string{"payment.initiated": "payment.initiated", "payment.success": "payment.succeeded",
		"payment.failed": "payment.failed", "payment.cancelled": "payment.cancelled"}
	kind, ok := kinds[event]
	if !ok {
		return events.WebhookReceived{}, ErrIgnored
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Data.ID == "" {
		return events.WebhookReceived{}, malformed(err)
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
