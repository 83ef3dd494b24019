package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/salesledger/ledger/events"
)

// StatusRefunded is a sale whose refunds reached its amount: access revoked, never settled (or, if it
// already was, the paid-out part clawed back).
const StatusRefunded = "refunded"

// Refund and dispute errors. Test for them with errors.Is.
var (
	// ErrNotRefundable: only a completed or settled sale (paid) can be refunded or disputed.
	ErrNotRefundable = errors.New("only a completed or settled sale can be refunded")
	// ErrRefundExceedsAmount: the refund would take the sale's refunds beyond its amount.
	ErrRefundExceedsAmount = errors.New("the refund would exceed what is left of the sale's amount")
	// ErrDisputeUnknown: a dispute closes that the sale never saw open (its opening may still be on the
	// way).
	ErrDisputeUnknown = errors.New("the sale has no such dispute")
)

// Dispute is a sale's chargeback dispute as folded from dispute_opened and dispute_closed.
type Dispute struct {
	ID       string
	Status   string // open, won or lost
	Amount   events.Amount
	Reason   string
	Gateway  string
	OpenedAt time.Time
	ClosedAt time.Time
}

// Dispute statuses.
const DisputeOpen = "open"

// RefundRequest is one refund to decide: from the API (Source "api") or a gateway delivery.
type RefundRequest struct {
	ID string // ref_… for the new refund
	// Amount in minor units; nil is what is left of the sale's amount.
	Amount *int64
	// Currency, if given, must be the sale's.
	Currency        string
	Reason          string
	Source          string
	GatewayRefundID string
	DeliveryID      string
	// Cumulative: Amount is the charge's total refunded so far at the gateway (Stripe's
	// amount_refunded), and the refund is the part not recorded before.
	Cumulative bool
}

// Remaining is what is left of the sale's amount to refund, in minor units.
func (s Sale) Remaining() int64 {
	return s.Started.Amount.Amount - s.Refunded
}

// paid reports whether the sale's payment was received: completed, settled or refunded.
func (s Sale) paid() bool {
	return s.Status == StatusCompleted || s.Status == StatusSettled || s.Status == StatusRefunded
}

// Refund decides a refund. It returns no events when the refund is already recorded (the same gateway
// refund id, or a cumulative figure not above one seen before), so duplicates and late deliveries are
// harmless. Errors: ErrNotRefundable (not paid), a *ValidationError naming amount or currency (amount
// not above zero, another currency), ErrRefundExceedsAmount (more than what is left).
//
// The caller appends the events with the sale's Version as expectation, so concurrent refunds are
// decided one after another and can never together exceed the amount. When the refund completes the
// sale's refunds, Revocations lists the licences to revoke in the same batch.
func (s Sale) Refund(r RefundRequest) ([]events.Payload, error) {
	if !s.paid() {
		return nil, ErrNotRefundable
	}
	if r.GatewayRefundID != "" {
		for _, done := range s.Refunds {
			if done.Source == r.Source && done.GatewayRefundID == r.GatewayRefundID {
				return nil, nil
			}
		}
	}
	cur := s.Started.Amount.Currency
	var v ValidationError
	if r.Currency != "" && !strings.EqualFold(r.Currency, cur) {
		v.Add("currency", fmt.Sprintf("The refund currency must be the sale's, %s.", cur))
	}
	amount := s.Remaining()
	var cumulative *events.Amount
	switch {
	case r.Amount == nil:
	case r.Cumulative:
		seen := s.Cumulative[r.Source]
		if *r.Amount <= seen {
			return nil, nil // an older or repeated cumulative figure
		}
		amount = *r.Amount - seen
		cumulative = &events.Amount{Amount: *r.Amount, Currency: cur}
	case *r.Amount <= 0:
		v.Add("amount", "The refund amount must be a positive integer number of minor units.")
	default:
		amount = *r.Amount
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.Remaining() <= 0 {
		return nil, fmt.Errorf("%w: nothing is left to refund (%d of %d %s refunded)", ErrRefundExceedsAmount, s.Refunded, s.Started.Amount.Amount, cur)
	}
	if amount <= 0 || amount > s.Remaining() {
		return nil, fmt.Errorf("%w: %d requested, %d of %d %s left", ErrRefundExceedsAmount, amount, s.Remaining(), s.Started.Amount.Amount, cur)
	}
	return []events.Payload{events.RefundRecorded{
		RefundID: r.ID, Amount: events.Amount{Amount: amount, Currency: cur}, Reason: r.Reason, Source: r.Source,
		GatewayRefundID: r.GatewayRefundID, DeliveryID: r.DeliveryID, Cumulative: cumulative,
	}}, nil
}

// Revocations are the licences to revoke when the events about to be appended refund the sale in full:
// the sale's licences, if after evs its refunds reach its amount and before them they did not.
func (s Sale) Revocations(evs []events.Payload) []string {
	if s.Status == StatusRefunded || s.Completed == nil {
		return nil
	}
	after := s
	for _, p := range evs {
		after = after.Evolve(events.Envelope{Payload: p})
	}
	if after.Status != StatusRefunded {
		return nil
	}
	return s.Completed.LicenceIDs
}

// disputeOpen reports whether any of the sale's disputes is open: each holds the settlement.
func (s Sale) disputeOpen() bool {
	for _, d := range s.Disputes {
		if d.Status == DisputeOpen {
			return true
		}
	}
	return s.Dispute != nil && s.Dispute.Status == DisputeOpen
}

// dispute finds one of the sale's disputes by its id.
func (s Sale) dispute(id string) (Dispute, bool) {
	for _, d := range s.Disputes {
		if d.ID == id {
			return d, true
		}
	}
	if s.Dispute != nil && s.Dispute.ID == id {
		return *s.Dispute, true
	}
	return Dispute{}, false
}

// OpenDispute records a dispute the gateway reports (amount nil: the sale's amount). A sale may have
// several (Paystack and Standard Webhooks gateways open one per claim); each is closed by its own id and
// each holds the settlement while open. The same dispute again is nothing; a sale not paid is
// ErrNotRefundable (its payment's delivery may still be on its way); an amount not above zero or above
// the sale's is a *ValidationError naming amount.
func (s Sale) OpenDispute(id string, amount *int64, reason, gateway, deliveryID string) ([]events.Payload, error) {
	if !s.paid() {
		return nil, ErrNotRefundable
	}
	if _, seen := s.dispute(id); seen {
		return nil, nil
	}
	a := s.Started.Amount
	if amount != nil {
		if *amount <= 0 || *amount > s.Started.Amount.Amount {
			var v ValidationError
			v.Add("amount", fmt.Sprintf("A dispute's amount must be from 1 to the sale's %d minor units; got %d.", s.Started.Amount.Amount, *amount))
			return nil, &v
		}
		a.Amount = *amount
	}
	return []events.Payload{events.DisputeOpened{DisputeID: id, Amount: a, Reason: reason, Gateway: gateway, DeliveryID: deliveryID}}, nil
}

// CloseDispute records a dispute's outcome (won or lost). A lost dispute is a refund of the amount lost
// — lostAmount when the gateway says it at the closing (Paystack's refund_amount when the merchant
// accepts part of a claim), else the disputed amount — at most what is left, reason chargeback, in the
// same batch; refundID names it. Closing a dispute already closed is nothing, so a lost dispute on a
// fully refunded sale changes nothing twice. A dispute the sale never saw open is ErrDisputeUnknown.
func (s Sale) CloseDispute(id, status, gateway, deliveryID, refundID string, lostAmount *int64) ([]events.Payload, error) {
	if status != events.DisputeWon && status != events.DisputeLost {
		return nil, fmt.Errorf("unknown dispute outcome %q", status)
	}
	d, ok := s.dispute(id)
	if !ok {
		return nil, ErrDisputeUnknown
	}
	if d.Status != DisputeOpen {
		return nil, nil
	}
	out := []events.Payload{events.DisputeClosed{DisputeID: id, Status: status, Gateway: gateway, DeliveryID: deliveryID}}
	if status == events.DisputeLost {
		lost := d.Amount.Amount
		if lostAmount != nil && *lostAmount >= 0 {
			lost = *lostAmount // the gateway's final figure; what is left caps it below
		}
		if amount := min(lost, s.Remaining()); amount > 0 {
			out = append(out, events.RefundRecorded{RefundID: refundID, Amount: events.Amount{Amount: amount, Currency: s.Started.Amount.Currency},
				Reason: events.RefundReasonChargeback, Source: gateway, DisputeID: id, DeliveryID: deliveryID})
		}
	}
	return out, nil
}

// SettlementFigures are a paid sale's settlement as it stands: the service fee and the settlement on
// what was not refunded, and, once settled, the part paid out that later refunds took back.
type SettlementFigures struct {
	ServiceFee events.Amount
	Amount     events.Amount
	// Clawback is the settled amount minus the settlement the sale's refunds leave now; nil before the
	// settlement or when nothing was refunded after it.
	Clawback *events.Amount
}

// Settlement computes the sale's settlement figures. Before the settlement is done they follow the net
// amount (amount − refunded): fee = service_fee_percent of it, rounded half-even to the minor unit,
// settlement = net − fee (fee 5 %, sale 10,000, refund 4,000: fee 300, settlement 5,700). After it is
// done, Amount and ServiceFee are what was settled, and Clawback the difference between that and what
// the refunds since leave. ok is false for a sale not paid.
func (s Sale) Settlement() (SettlementFigures, bool, error) {
	if s.Completed == nil {
		return SettlementFigures{}, false, nil
	}
	if s.Refunded == 0 || s.Started.ServiceFeePercent == "" {
		return SettlementFigures{ServiceFee: s.Completed.ServiceFee, Amount: s.Completed.SettlementTotal}, true, nil
	}
	at := func(refunded int64) (fee, net Money, err error) {
		amount, err := StoredMoney(s.Started.Amount.Amount-refunded, s.Started.Amount.Currency)
		if err != nil {
			return Money{}, Money{}, err
		}
		pct, err := ParsePercent(s.Started.ServiceFeePercent)
		if err != nil {
			return Money{}, Money{}, err
		}
		if fee, err = amount.Percent(pct); err != nil {
			return Money{}, Money{}, err
		}
		net, err = amount.Sub(fee)
		return fee, net, err
	}
	wire := func(m Money) events.Amount { return events.Amount{Amount: m.Amount, Currency: m.Currency} }
	if s.SettledAt.IsZero() {
		fee, net, err := at(s.Refunded)
		return SettlementFigures{ServiceFee: wire(fee), Amount: wire(net)}, true, err
	}
	paidFee, paid, err := at(s.RefundedAtSettle)
	if err != nil {
		return SettlementFigures{}, true, err
	}
	out := SettlementFigures{ServiceFee: wire(paidFee), Amount: wire(paid)}
	if s.Refunded > s.RefundedAtSettle {
		_, now, err := at(s.Refunded)
		if err != nil {
			return SettlementFigures{}, true, err
		}
		back := wire(paid)
		back.Amount -= now.Amount
		out.Clawback = &back
	}
	return out, true, nil
}

// evolveRefunds folds the refund and dispute events (called by Evolve).
func (s Sale) evolveRefunds(e events.Envelope) (Sale, bool) {
	switch p := e.Payload.(type) {
	case events.RefundRecorded:
		s.Refunds = append(append([]events.RefundRecorded(nil), s.Refunds...), p)
		s.RefundTimes = append(append([]time.Time(nil), s.RefundTimes...), e.Time)
		s.Refunded += p.Amount.Amount
		if p.Cumulative != nil {
			c := make(map[string]int64, len(s.Cumulative)+1)
			for k, v := range s.Cumulative {
				c[k] = v
			}
			c[p.Source] = p.Cumulative.Amount
			s.Cumulative = c
		}
		if s.Refunded >= s.Started.Amount.Amount && s.paid() {
			s.Status = StatusRefunded
		}
	case events.DisputeOpened:
		d := Dispute{ID: p.DisputeID, Status: DisputeOpen, Amount: p.Amount, Reason: p.Reason, Gateway: p.Gateway, OpenedAt: e.Time}
		s.Disputes = append(append([]Dispute(nil), s.Disputes...), d)
		s.Dispute = &d
	case events.DisputeClosed:
		ds := append([]Dispute(nil), s.Disputes...)
		for i := range ds {
			if ds[i].ID == p.DisputeID {
				ds[i].Status, ds[i].ClosedAt = p.Status, e.Time
			}
		}
		s.Disputes = ds
		if s.Dispute != nil && s.Dispute.ID == p.DisputeID {
			d := *s.Dispute
			d.Status, d.ClosedAt = p.Status, e.Time
			s.Dispute = &d
		}
	default:
		return s, false
	}
	return s, true
}
