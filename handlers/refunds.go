package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

var (
	errNotRefundable = &requestError{http.StatusConflict, "sale_not_refundable",
		"Only a completed or settled sale can be refunded; this one was never paid."}
)

type refundRequest struct {
	Amount   json.RawMessage `json:"amount"`
	Currency string          `json:"currency"`
	Reason   string          `json:"reason"`
}

// createRefund is POST /v1/sales/{id}/refunds: it records a refund made outside a gateway (amount
// omitted: what is left of the sale). The decision is the sale's own (domain.Sale.Refund), appended
// with the sale's last sequence as expectation, with the licence revocations of a full refund and the
// Idempotency-Key's record in the same batch: concurrent refunds are decided one after another and never
// together exceed the amount. → 201 the refund, 409 sale_not_refundable or refund_exceeds_amount, 422
// naming amount, currency or reason.
func (a *API) createRefund(w http.ResponseWriter, r *http.Request) {
	var req refundRequest
	raw, err := decodeOptionalBody(r, &req)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	idem, err := storeIdempotency(r, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	var v domain.ValidationError
	rr := domain.RefundRequest{ID: domain.NewID(domain.PrefixRefund), Currency: strings.TrimSpace(req.Currency), Reason: req.Reason, Source: events.RefundSourceAPI}
	rr.Amount = refundFields(&v, req.Amount, req.Reason)
	if err := v.Err(); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	saleID := r.PathValue("sale_id")
	var (
		refund   refundJSON
		seq      uint64
		replayed bool
	)
	err = a.idempotent(ctx, idem, 3, func(prev *events.IdempotencyKeyRecorded) error {
		if prev != nil {
			replayed = true
			return a.replayRefund(ctx, saleID, prev.ResourceID, &refund, &seq)
		}
		sale, s, err := a.changeSaleWrites(ctx, saleID, func(s domain.Sale) ([]events.Payload, error) {
			return s.Refund(rr)
		}, func() bool {
			_, found, err := idem.previous(ctx, a.cfg.Events)
			return found || err != nil // the same key won meanwhile: replay it
		}, func(s domain.Sale, payloads []events.Payload, env func(events.Aggregate, events.Payload) events.Envelope) []events.Write {
			var extra []events.Write
			for _, id := range s.Revocations(payloads) {
				lagg := events.Aggregate{Mode: scopeFrom(ctx).Mode, StoreID: scopeFrom(ctx).StoreID, Type: events.AggregateLicence, ID: id}
				extra = append(extra, events.Write{Event: env(lagg, events.LicenceRevoked{Reason: "refunded"}), Expect: events.NoExpectation})
			}
			return append(extra, idem.writes(env, rr.ID)...)
		})
		if err != nil {
			return err
		}
		seq = s
		for i, done := range sale.Refunds {
			if done.RefundID == rr.ID {
				refund = refundObject(done, sale.RefundTimes[i])
			}
		}
		return nil
	})
	if err = refundError(err); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if replayed {
		markReplayed(w)
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusCreated, data{refund})
}

// refundFields checks a refund request's amount (omitted or null: nil, what is left) and reason,
// recording what is wrong in v under the field's name.
func refundFields(v *domain.ValidationError, amount json.RawMessage, reason string) *int64 {
	var out *int64
	if len(amount) > 0 && string(amount) != "null" {
		n, ok := integerLiteral(amount)
		switch {
		case !ok && strings.Trim(strings.TrimPrefix(strings.TrimSpace(string(amount)), "-"), "0123456789") == "":
			v.Add("amount", fmt.Sprintf("The refund amount may be at most %d minor units.", domain.MaxAmount)) // an integer beyond int64
		case !ok:
			v.Add("amount", "The refund amount must be an integer number of minor units (e.g. 4000 for $40.00).")
		case n <= 0:
			v.Add("amount", "The refund amount must be a positive integer number of minor units.")
		default:
			out = &n
		}
	}
	if !domain.CheckLength(v, "reason", reason, domain.MaxReasonLen) {
		domain.CheckText(v, "reason", reason, true)
	}
	return out
}

// refundError is the answer to a refund the sale refuses: 409 sale_not_refundable or
// refund_exceeds_amount (saying how much is left); other errors unchanged.
func refundError(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotRefundable):
		return errNotRefundable
	case errors.Is(err, domain.ErrRefundExceedsAmount):
		// "4000 requested, 3000 of 10000 USD left", or "nothing is left to refund (…)"
		detail := strings.TrimPrefix(err.Error(), domain.ErrRefundExceedsAmount.Error()+": ")
		if strings.HasPrefix(detail, "nothing is left") {
			return &requestError{http.StatusConflict, "refund_exceeds_amount", "The sale was already refunded in full: " + detail + "."}
		}
		return &requestError{http.StatusConflict, "refund_exceeds_amount", "The refund would take the sale's refunds beyond its amount: " + detail + "."}
	}
	return err
}

// replayRefund answers an earlier refund request with the same Idempotency-Key: the refund it recorded.
func (a *API) replayRefund(ctx context.Context, saleID, refundID string, out *refundJSON, seq *uint64) error {
	sc := scopeFrom(ctx)
	sale, err := currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: saleID}, true)
	if err != nil {
		return err
	}
	for i, r := range sale.Refunds {
		if r.RefundID == refundID {
			*out, *seq = refundObject(r, sale.RefundTimes[i]), sale.Version
			return nil
		}
	}
	return fmt.Errorf("idempotency record names refund %s, which sale %s does not hold: %w", refundID, saleID, domain.ErrNotFound)
}
