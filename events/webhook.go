package events

// Webhook deliveries live on ledger.platform.<gateway>.webhook.<delivery hash>.*: a delivery is recorded
// once (expected sequence zero on its subject), before the gateway is answered 2xx.
const (
	AggregateWebhook    = "webhook"
	TypeWebhookReceived = "webhook_received"
	TypeWebhookRejected = "webhook_rejected"
)

// WebhookReceived (v2; v1 is upcast, see legacyMinorUnitShift) is a verified gateway delivery, normalised. Kind is payment.initiated,
// payment.pending, payment.succeeded, payment.failed, payment.cancelled, settlement.done,
// refund.succeeded, dispute.opened or dispute.closed, whatever the gateway's own name for it. A refund or
// dispute may name no sale (Stripe's and Paystack's name the charge): TransactionID, the id the gateway
// gave the payment, then finds it. The body itself is not kept (it carries the buyer's personal data, which
// must be erasable with the customer); BodySHA256 is its digest.
type WebhookReceived struct {
	Gateway       string         `json:"gateway"`
	DeliveryID    string         `json:"delivery_id"`
	Kind          string         `json:"kind"`
	SaleID        string         `json:"sale_id"`
	StoreID       string         `json:"store_id,omitempty"` // when the gateway's metadata names the store
	TransactionID string         `json:"transaction_id,omitempty"`
	Amount        *Amount        `json:"amount,omitempty"`
	Fee           *Amount        `json:"fee,omitempty"`
	Method        *PaymentMethod `json:"method,omitempty"`
	FailureError  *FailureError  `json:"failure_error,omitempty"`
	BodySHA256    string         `json:"body_sha256,omitempty"`
	// RefundID is the gateway's id of a refund (refund.succeeded); DisputeID of a dispute.
	RefundID  string `json:"refund_id,omitempty"`
	DisputeID string `json:"dispute_id,omitempty"`
	// DisputeStatus is a closed dispute's outcome: won or lost.
	DisputeStatus string `json:"dispute_status,omitempty"`
	// Reason is a refund's or a dispute's reason as the gateway gives it.
	Reason string `json:"reason,omitempty"`
	// Cumulative: Amount is the charge's total refunded so far (Stripe's amount_refunded), not this
	// refund's own amount.
	Cumulative bool `json:"cumulative,omitempty"`
	// Livemode is the mode the gateway says the payment was made in (Stripe's livemode, Paystack's
	// data.domain "live" or "test"), nil when the gateway does not say: a test-mode payment never
	// completes a live sale, nor a live payment a test sale.
	Livemode *bool `json:"livemode,omitempty"`
}

func (WebhookReceived) EventType() string { return TypeWebhookReceived }
func (WebhookReceived) EventVersion() int { return 2 }

// WebhookRejected (v1) routes a delivery that can never apply to the poison queue: it stays in the log
// for an operator, and is never applied to any sale.
type WebhookRejected struct {
	DeliveryID string `json:"delivery_id"`
	Reason     string `json:"reason"`
}

func (WebhookRejected) EventType() string { return TypeWebhookRejected }
func (WebhookRejected) EventVersion() int { return 1 }
