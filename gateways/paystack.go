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
// Body: {"event", "data": {"id" (integer), "reference", "amount" (integer, the currency's minor units:
// kobo, pesewas, cents), "currency", "fees"?, "channel"?, "metadata"? (see metadata: object, string
// holding an object, or anything else naming no sale), "customer", "authorization", "log", ...}}. Event
// charge.success is kind payment.succeeded; any other (refund.processed, transfer.success,
// charge.dispute.create, ...) is ErrIgnored. The delivery id is
// "paystack:charge.success:<data.id>:<data.reference>" (Paystack sends no event id).
type Paystack struct{}

// Verify checks x-paystack-signature; now plays no part.
func (Paystack) Verify(secret string, h http.Header, body []byte, _ time.Time) error {
	return verifyHexHMAC("X-Paystack-Signature", sha512.New, secret, h, body)
}

// Parse reads the body described on Paystack.
func (Paystack) Parse(_ http.Header, body []byte) (events.WebhookReceived, error) {
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
	// The event decides first: Paystack's other events carry other data (refund.processed and
	// bank.transfer.rejected have neither data.id nor data.reference; bank.transfer.rejected writes its
	// amount as a string), and each is answered 2xx, ignored, not refused as malformed.
	event, err := eventName(body, "event")
	if err != nil {
		return events.WebhookReceived{}, err
	}
	if event != "charge.success" {
		return events.WebhookReceived{}, ErrIgnored
	}
	if err := json.Unmarshal(body, &in); err != nil || (in.Data.ID == "" && in.Data.Reference == "") {
		return events.WebhookReceived{}, malformed(err)
	}
	d := in.Data
	out := events.WebhookReceived{DeliveryID: "paystack:" + in.Event + ":" + d.ID.String() + ":" + d.Reference, Kind: "payment.succeeded",
		SaleID: d.Metadata.SaleID, StoreID: d.Metadata.StoreID, TransactionID: d.Reference, Amount: amountOf(d.Amount, d.Currency), Fee: amountOf(d.Fees, d.Currency)}
	if d.Channel != "" {
		out.Method = &events.PaymentMethod{ID: d.Channel}
	}
	if mode := strings.ToLower(d.Domain); mode == "live" || mode == "test" {
		live := mode == "live"
		out.Livemode = &live
	}
	return out, within(field{"data.id", d.ID.String(), maxGatewayID}, field{"data.reference", d.Reference, maxGatewayID},
		field{"data.currency", d.Currency, maxCurrency}, field{"data.channel", d.Channel, maxMethodID},
		field{"data.metadata.sale_id", d.Metadata.SaleID, domain.MaxIDLen}, field{"data.metadata.store_id", d.Metadata.StoreID, domain.MaxIDLen})
}
