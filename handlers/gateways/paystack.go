package gateways

import (
	"crypto/sha512"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Paystack is Paystack's webhooks (https://paystack.com/docs/payments/webhooks/).
//
// Header: x-paystack-signature, the hex HMAC-SHA512 of the raw body keyed with the secret key
// (sk_live_… / sk_test_…); no timestamp is signed.
//
// Body: {"event", "data": {...}}; Paystack sends no event id, so the delivery id is built from the event
// and the ids its data carries, the same on every retry. Events:
//   - charge.success (kind payment.succeeded), data the Transaction: {"id" (integer), "domain", "reference",
//     "amount" (integer, the currency's minor units: kobo, pesewas, cents), "currency", "fees"?,
//     "channel"?, "metadata"? (see metadata: object, string holding an object, or anything else naming no
//     sale), "customer", "authorization", "log", ...}; data.id or data.reference required. Delivery id
//     "paystack:charge.success:<data.id>:<data.reference>".
//   - refund.processed (refund.succeeded), data the Refund: {"status", "transaction_reference" (the
//     transaction, required), "refund_reference" (the refund, as the processor names it) or "id",
//     "amount" (required: this refund's own amount), "currency", "domain", "customer", ...}. The refund must
//     name itself: without refund_reference or id two partial refunds of one transaction could not be told
//     apart, and a retry could not be told from a second refund. Delivery id
//     "paystack:refund.processed:<transaction_reference>:<refund id>".
//   - charge.dispute.create (dispute.opened) and charge.dispute.resolve (dispute.closed), data the Dispute:
//     {"id" (integer, required), "refund_amount" (the disputed amount; null: the transaction's),
//     "currency" (null: the transaction's), "status", "resolution", "domain", "transaction": {"id",
//     "reference", "amount", "currency", ...}, "transaction_reference"?, "category" (chargeback, fraud: the
//     reason), ...}; the transaction is transaction.reference, or else transaction_reference (required: a
//     dispute names no sale). A resolved dispute's resolution is "declined" (the store declined the
//     claim and won: the money stays) or "merchant-accepted" (the store accepted it: lost, a
//     chargeback); any other resolution is ErrIgnored. Delivery id
//     "paystack:<event>:<data.id>:<transaction reference>".
//
// Any other event (transfer.success, refund.pending, charge.dispute.remind, ...) is ErrIgnored. Livemode
// is data.domain, "live" or "test".
type Paystack struct{}

// Verify checks x-paystack-signature; now plays no part.
func (Paystack) Verify(secret string, h http.Header, body []byte, _ time.Time) error {
	return verifyHexHMAC("X-Paystack-Signature", sha512.New, secret, h, body)
}

// paystackDisputeOutcomes maps a resolved Dispute's resolution to the ledger's outcome (see Paystack).
var paystackDisputeOutcomes = map[string]string{"declined": events.DisputeWon, "merchant-accepted": events.DisputeLost}

// Parse reads the body described on Paystack.
func (Paystack) Parse(_ http.Header, body []byte) (events.WebhookReceived, error) {
	// The event decides first: Paystack's other events carry other data (bank.transfer.rejected writes
	// its amount as a string), and each is answered 2xx, ignored, not refused as malformed.
	event, err := eventName(body, "event")
	if err != nil {
		return events.WebhookReceived{}, err
	}
	var out events.WebhookReceived
	var fields []field
	switch event {
	case "charge.success":
		out, fields, err = paystackCharge(body)
	case "refund.processed":
		out, fields, err = paystackRefund(body)
	case "charge.dispute.create", "charge.dispute.resolve":
		out, fields, err = paystackDispute(event, body)
	default:
		return events.WebhookReceived{}, ErrIgnored
	}
	if err != nil {
		return events.WebhookReceived{}, err
	}
	return out, within(fields...)
}

// paystackLivemode is the mode data.domain names (without case: "Live" is live), nil for anything but
// "live" and "test".
func paystackLivemode(name string) *bool {
	name = strings.ToLower(name)
	if name != "live" && name != "test" {
		return nil
	}
	live := name == "live"
	return &live
}

// paystackCharge reads charge.success.
func paystackCharge(body []byte) (events.WebhookReceived, []field, error) {
	var in struct {
		Event string `json:"event"`
		Data  struct {
			ID        json.Number `json:"id"`
			Domain    string      `json:"domain"` // "live" or "test"
			Reference string      `json:"reference"`
			Amount    *int64      `json:"amount"`
			Currency  string      `json:"currency"`
			Fees      *int64      `json:"fees"`
			Channel   string      `json:"channel"`
			Metadata  metadata    `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || (in.Data.ID == "" && in.Data.Reference == "") {
		return events.WebhookReceived{}, nil, malformed(err)
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: "paystack:" + in.Event + ":" + d.ID.String() + ":" + d.Reference, Kind: "payment.succeeded",
		SaleID: d.Metadata.SaleID, StoreID: d.Metadata.StoreID, TransactionID: d.Reference, Amount: amountOf(d.Amount, d.Currency),
		Fee: amountOf(d.Fees, d.Currency), Livemode: paystackLivemode(d.Domain)}
	if d.Channel != "" {
		out.Method = &events.PaymentMethod{ID: d.Channel}
	}
	return out, []field{{"data.id", d.ID.String(), maxGatewayID}, {"data.reference", d.Reference, maxGatewayID},
		{"data.currency", d.Currency, maxCurrency}, {"data.channel", d.Channel, maxMethodID},
		{"data.metadata.sale_id", d.Metadata.SaleID, domain.MaxIDLen}, {"data.metadata.store_id", d.Metadata.StoreID, domain.MaxIDLen}}, nil
}

// paystackRefund reads refund.processed.
func paystackRefund(body []byte) (events.WebhookReceived, []field, error) {
	var in struct {
		Event string `json:"event"`
		Data  struct {
			ID                   json.Number `json:"id"`
			Domain               string      `json:"domain"`
			TransactionReference string      `json:"transaction_reference"`
			RefundReference      string      `json:"refund_reference"`
			Amount               *int64      `json:"amount"`
			Currency             string      `json:"currency"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return events.WebhookReceived{}, nil, malformed(err)
	}
	d := in.Data
	refundID := d.RefundReference
	if refundID == "" {
		refundID = d.ID.String()
	}
	switch {
	case d.TransactionReference == "":
		return events.WebhookReceived{}, nil, MalformedFieldError{"data.transaction_reference", "is missing; a refund must name the transaction it refunds"}
	case refundID == "":
		return events.WebhookReceived{}, nil, MalformedFieldError{"data.refund_reference", "is missing (and so is data.id); a refund must name itself"}
	case d.Amount == nil:
		return events.WebhookReceived{}, nil, MalformedFieldError{"data.amount", "is missing; a refund must say how much it gives back"}
	}
	out := events.WebhookReceived{DeliveryID: "paystack:" + in.Event + ":" + d.TransactionReference + ":" + refundID, Kind: "refund.succeeded",
		TransactionID: d.TransactionReference, RefundID: refundID, Amount: amountOf(d.Amount, d.Currency), Livemode: paystackLivemode(d.Domain)}
	return out, []field{{"data.transaction_reference", d.TransactionReference, maxGatewayID}, {"data.refund_reference", d.RefundReference, maxGatewayID},
		{"data.id", d.ID.String(), maxGatewayID}, {"data.currency", d.Currency, maxCurrency}}, nil
}

// paystackDispute reads charge.dispute.create and charge.dispute.resolve.
func paystackDispute(event string, body []byte) (events.WebhookReceived, []field, error) {
	var in struct {
		Data struct {
			ID                   json.Number `json:"id"`
			Domain               string      `json:"domain"`
			RefundAmount         *int64      `json:"refund_amount"`
			Currency             *string     `json:"currency"`
			Resolution           *string     `json:"resolution"`
			Category             *string     `json:"category"`
			TransactionReference *string     `json:"transaction_reference"`
			Transaction          *struct {
				Reference string `json:"reference"`
				Currency  string `json:"currency"`
			} `json:"transaction"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return events.WebhookReceived{}, nil, malformed(err)
	}
	d := in.Data
	if d.ID == "" {
		return events.WebhookReceived{}, nil, MalformedFieldError{"data.id", "is missing; a dispute must name itself"}
	}
	var ref, txCurrency string
	if t := d.Transaction; t != nil {
		ref, txCurrency = t.Reference, t.Currency
	}
	if ref == "" {
		ref = firstOf(d.TransactionReference)
	}
	if ref == "" {
		return events.WebhookReceived{}, nil, MalformedFieldError{"data.transaction.reference", "is missing; a dispute must name the transaction it disputes"}
	}
	currency := firstOf(d.Currency, &txCurrency)
	out := events.WebhookReceived{DeliveryID: "paystack:" + event + ":" + d.ID.String() + ":" + ref, Kind: "dispute.opened",
		TransactionID: ref, DisputeID: d.ID.String(), Amount: amountOf(d.RefundAmount, currency), Reason: firstOf(d.Category),
		Livemode: paystackLivemode(d.Domain)}
	if event == "charge.dispute.resolve" {
		out.Kind = "dispute.closed"
		var ok bool
		if out.DisputeStatus, ok = paystackDisputeOutcomes[firstOf(d.Resolution)]; !ok {
			return events.WebhookReceived{}, nil, ErrIgnored
		}
	}
	return out, []field{{"data.id", d.ID.String(), maxGatewayID}, {"data.transaction.reference", ref, maxGatewayID},
		{"data.currency", currency, maxCurrency}, {"data.category", out.Reason, maxReason}}, nil
}
