package events

// Refund and dispute event types, on the sale's subject (ledger.<mode>.<store>.sale.<sal_…>.<type>).
// The ledger records what gateways (or the store, for refunds made elsewhere) report; it never moves
// money itself.
const (
	TypeRefundRecorded = "refund_recorded"
	TypeDisputeOpened  = "dispute_opened"
	TypeDisputeClosed  = "dispute_closed"
)

// Refund sources other than a gateway's name.
const (
	RefundSourceAPI = "api" // POST /v1/sales/{id}/refunds: a refund made outside any gateway
)

// Refund reasons the ledger itself gives.
const (
	RefundReasonChargeback = "chargeback" // a dispute the store lost
)

// RefundRecorded (v1) is money given back to the buyer: a part of the sale's amount, or the rest of it.
// The sale's refunds never add up to more than its amount (the decision that records one is appended
// with the sale's last sequence as expectation). When they reach the amount the sale is refunded: its
// licences are revoked in the same batch and its download links answer 410.
//
// Amount is what this refund gives back, in the sale's currency. For a gateway that reports the charge's
// cumulative refunded amount (Stripe's charge.refunded amount_refunded), Cumulative is that figure as
// delivered and Amount the part of it not recorded before; an older or repeated cumulative records
// nothing, so no delivery order counts money twice.
type RefundRecorded struct {
	RefundID string `json:"refund_id"` // ref_…
	Amount   Amount `json:"amount"`
	Reason   string `json:"reason,omitempty"`
	// Source is "api" or the gateway that reported it ("standard", "stripe", "paystack", "test").
	Source          string  `json:"source"`
	GatewayRefundID string  `json:"gateway_refund_id,omitempty"`
	DeliveryID      string  `json:"delivery_id,omitempty"`
	Cumulative      *Amount `json:"cumulative,omitempty"`
	// DisputeID names the lost dispute a chargeback refund comes from.
	DisputeID string `json:"dispute_id,omitempty"`
}

func (RefundRecorded) EventType() string { return TypeRefundRecorded }
func (RefundRecorded) EventVersion() int { return 1 }

// DisputeOpened (v1): the buyer disputed the charge with their bank. The settlement is held until the
// dispute closes.
type DisputeOpened struct {
	DisputeID  string `json:"dispute_id"` // the gateway's id (Stripe du_…)
	Amount     Amount `json:"amount"`
	Reason     string `json:"reason,omitempty"`
	Gateway    string `json:"gateway"`
	DeliveryID string `json:"delivery_id,omitempty"`
}

func (DisputeOpened) EventType() string { return TypeDisputeOpened }
func (DisputeOpened) EventVersion() int { return 1 }

// Dispute outcomes.
const (
	DisputeWon  = "won"
	DisputeLost = "lost"
)

// DisputeClosed (v1): the dispute ended. Won: the settlement resumes. Lost: the disputed amount (at most
// what is left of the sale) is a refund with reason chargeback, recorded in the same batch.
type DisputeClosed struct {
	DisputeID  string `json:"dispute_id"`
	Status     string `json:"status"` // won or lost
	Gateway    string `json:"gateway"`
	DeliveryID string `json:"delivery_id,omitempty"`
}

func (DisputeClosed) EventType() string { return TypeDisputeClosed }
func (DisputeClosed) EventVersion() int { return 1 }
