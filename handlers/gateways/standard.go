package gateways

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Standard is the Standard Webhooks scheme (https://www.standardwebhooks.com/, spec:
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md) with the
// ledger's own payment body (DESIGN.md, "Gateway webhooks in").
//
// Headers: webhook-id (the delivery id, the same on every retry), webhook-timestamp (Unix seconds) and
// webhook-signature, space-separated "v1,<base64>" entries of which one must be the HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<raw body>" keyed by the base64 part of the whsec_ secret.
//
// Body: {"type", "timestamp"?, "data": {"sale_id", "store_id"?, "transaction_id", "amount"?: {"amount"
// (integer minor units), "currency"}, "fee"?: {...}, "method"?: {"id","name"}, "failure_error"?:
// {"code","message"}}}. type is used as the delivery's kind: payment.initiated, payment.pending,
// payment.succeeded, payment.failed, payment.cancelled or settlement.done; any other type is ErrIgnored.
//
// Refunds and disputes (DESIGN.md, "Refunds and disputes") have data of their own, and their type is
// used as the kind too: refund.succeeded {"sale_id", "store_id"?, "refund_id", "amount", "reason"?} (the
// refund's own amount, not a running total; refund_id and amount are required: without them a refund
// could be neither told from another nor applied), dispute.opened {"sale_id", "store_id"?, "dispute_id",
// "amount"?, "reason"?} (no amount: the sale's) and dispute.closed {"sale_id", "store_id"?, "dispute_id",
// "status": "won"|"lost"} (dispute_id required; any other status is ErrMalformed).
type Standard struct{}

// Verify checks webhook-signature; the timestamp is checked first (ErrStaleTimestamp), and a secret that
// is not whsec_<base64> is an error of its own.
func (Standard) Verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrBadSignature
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
	return ErrBadSignature
}

// Parse reads the body described on Standard; the delivery id is the webhook-id header, the same on
// every retry of one message.
func (Standard) Parse(h http.Header, body []byte) (events.WebhookReceived, error) {
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
			RefundID      string                `json:"refund_id"`
			DisputeID     string                `json:"dispute_id"`
			Status        string                `json:"status"`
			Reason        string                `json:"reason"`
		} `json:"data"`
	}
	typ, err := eventName(body, "type")
	if err != nil {
		return events.WebhookReceived{}, err
	}
	switch typ {
	case "payment.initiated", "payment.pending", "payment.succeeded", "payment.failed", "payment.cancelled", "settlement.done",
		"refund.succeeded", "dispute.opened", "dispute.closed":
	default:
		return events.WebhookReceived{}, ErrIgnored
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return events.WebhookReceived{}, malformed(err)
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: h.Get("webhook-id"), Kind: in.Type, SaleID: d.SaleID, StoreID: d.StoreID, TransactionID: d.TransactionID,
		Amount: d.Amount, Fee: d.Fee, Method: d.Method, FailureError: d.FailureError}
	switch typ {
	case "refund.succeeded":
		if d.RefundID == "" {
			return events.WebhookReceived{}, MalformedFieldError{"data.refund_id", "is missing; a refund must name itself"}
		}
		if d.Amount == nil {
			return events.WebhookReceived{}, MalformedFieldError{"data.amount", "is missing; a refund must say how much it gives back"}
		}
		out.RefundID, out.Reason = d.RefundID, d.Reason
	case "dispute.opened":
		if d.DisputeID == "" {
			return events.WebhookReceived{}, MalformedFieldError{"data.dispute_id", "is missing; a dispute must name itself"}
		}
		out.DisputeID, out.Reason = d.DisputeID, d.Reason
	case "dispute.closed":
		if d.DisputeID == "" {
			return events.WebhookReceived{}, MalformedFieldError{"data.dispute_id", "is missing; a dispute must name itself"}
		}
		if d.Status != events.DisputeWon && d.Status != events.DisputeLost {
			return events.WebhookReceived{}, MalformedFieldError{"data.status", fmt.Sprintf("is %q; a closed dispute is won or lost", d.Status)}
		}
		out.DisputeID, out.DisputeStatus, out.Reason = d.DisputeID, d.Status, d.Reason
	}
	fields := []field{{"webhook-id header", out.DeliveryID, maxGatewayID}, {"data.sale_id", d.SaleID, domain.MaxIDLen},
		{"data.store_id", d.StoreID, domain.MaxIDLen}, {"data.transaction_id", d.TransactionID, maxGatewayID},
		{"data.refund_id", out.RefundID, maxGatewayID}, {"data.dispute_id", out.DisputeID, maxGatewayID}, {"data.reason", out.Reason, maxReason}}
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
