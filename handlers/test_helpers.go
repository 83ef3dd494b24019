package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// TestGateway is the gateway the test-mode helpers' deliveries are recorded as coming from. No adapter
// has this name and LEDGER_GATEWAY_SECRETS cannot enable it, so POST /v1/webhooks/test is 404
// unknown_gateway: only a test key, through the helpers, delivers as this gateway.
const TestGateway = "test"

// Test helper actions, as the last segment of their paths.
const (
	testPay    = "pay"
	testFail   = "fail"
	testRefund = "refund"
)

var (
	errSaleAlreadyPaid = &requestError{http.StatusConflict, "sale_already_paid",
		"The sale is already paid; a payment for it would change nothing."}
	errSaleNotAwaiting = &requestError{http.StatusConflict, "sale_not_awaiting_payment",
		"Only a sale awaiting payment can fail; this one is no longer waiting for a payment."}
)

// testFailRequest is the body of .../fail; every field is optional.
type testFailRequest struct {
	FailureError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failure_error"`
}

// testRefundRequest is the body of .../refund; every field is optional.
type testRefundRequest struct {
	Amount json.RawMessage `json:"amount"`
	Reason string          `json:"reason"`
}

// Limits of a test failure's text, the same as a gateway's (gateways.checked).
const (
	maxFailureCode    = 100
	maxFailureMessage = 1000
)

// testHelper is POST /v1/test_helpers/sales/{id}/pay, .../fail and .../refund: with a test key, it acts
// as if a gateway had sent the matching delivery. The delivery is recorded exactly as
// POST /v1/webhooks/{gateway} records one (a webhook_received of gateway "test" on its own subject,
// appended with expectation 0, with the Idempotency-Key's record in the same batch), and the payment
// processor applies it behind the log like any other; the answer waits, at most PositionWait, until the
// processor has appended what the delivery caused, then shows the sale as GET /v1/sales/{id} would
// (200, Ledger-Position covering those events). 202 with the sale as it stands: recorded, not yet
// applied. 409 when the processor set the delivery aside (webhook_rejected), with its reason.
//
// Before recording, the helper checks the sale as the processor will find it, so that an obvious
// mistake (paying a paid sale, failing one that is not awaiting payment, refunding an unpaid sale or
// beyond its amount) is a 409 that records nothing, rather than a delivery in the poison queue.
// A live key is 404, as if the route did not exist.
func (a *API) testHelper(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		sc := scopeFrom(ctx)
		if sc.Mode != events.ModeTest {
			writeError(w, r, a.log, errNotFoundRoute)
			return
		}
		raw, d, err := testDelivery(r, action)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		idem, err := storeIdempotency(r, raw)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		agg := events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: r.PathValue("sale_id")}
		d.SaleID, d.StoreID = agg.ID, agg.StoreID
		var (
			env      events.Envelope
			replayed bool
		)
		err = a.idempotent(ctx, idem, 3, func(prev *events.IdempotencyKeyRecorded) error {
			if prev != nil {
				replayed = true
				env = deliveryEnvelope(events.WebhookReceived{Gateway: TestGateway, DeliveryID: prev.ResourceID}, a.cfg.Now())
				return nil
			}
			sale, err := currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), agg, true)
			if err != nil {
				return err
			}
			if err := testPrecheck(action, sale, &d); err != nil {
				return err
			}
			env = deliveryEnvelope(d, a.cfg.Now())
			writes := []events.Write{{Event: env, Expect: 0}}
			writes = append(writes, idem.writes(func(agg events.Aggregate, p events.Payload) events.Envelope {
				return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: env.Time, CorrelationID: d.DeliveryID, Payload: p}
			}, d.DeliveryID)...)
			_, err = a.cfg.Events.AppendWrites(ctx, writes...)
			return err
		})
		if err != nil {
			writeError(w, r, a.log, refundError(err))
			return
		}
		pos, applied, err := a.awaitDelivery(ctx, env, agg)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		sale, err := currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), agg, true)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		a.awaitProjection(ctx, pos)
		obj, err := a.saleData(ctx, sale, sc.Mode, a.cfg.Projection.Reads().LicencesOfSale)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if replayed {
			markReplayed(w)
		}
		status := http.StatusOK
		if !applied {
			status = http.StatusAccepted
		}
		positioned(w, pos, status, data{obj})
	}
}

// testDelivery reads a helper's body (empty, or a JSON object of the action's fields) into the
// delivery a gateway would have sent, except for what depends on the sale (its id, store and amount).
func testDelivery(r *http.Request, action string) ([]byte, events.WebhookReceived, error) {
	live := false
	d := events.WebhookReceived{Gateway: TestGateway, DeliveryID: "msg_test_" + domain.RandomString(22), Livemode: &live}
	var v domain.ValidationError
	var raw []byte
	var err error
	switch action {
	case testPay:
		raw, err = decodeOptionalBody(r, &struct{}{})
		d.Kind, d.TransactionID = "payment.succeeded", "txn_test_"+domain.RandomString(22)
	case testFail:
		var req testFailRequest
		raw, err = decodeOptionalBody(r, &req)
		d.Kind, d.TransactionID = "payment.failed", "txn_test_"+domain.RandomString(22)
		fe := events.FailureError{Code: "card_declined", Message: "Your card was declined."}
		if req.FailureError != nil {
			if c := strings.TrimSpace(req.FailureError.Code); c != "" {
				fe.Code = c
			}
			if m := strings.TrimSpace(req.FailureError.Message); m != "" {
				fe.Message = m
			}
			if !domain.CheckLength(&v, "failure_error.code", fe.Code, maxFailureCode) {
				domain.CheckText(&v, "failure_error.code", fe.Code, false)
			}
			if !domain.CheckLength(&v, "failure_error.message", fe.Message, maxFailureMessage) {
				domain.CheckText(&v, "failure_error.message", fe.Message, false)
			}
		}
		d.FailureError = &fe
	case testRefund:
		var req testRefundRequest
		raw, err = decodeOptionalBody(r, &req)
		if err == nil {
			if n := refundFields(&v, req.Amount, req.Reason); n != nil {
				d.Amount = &events.Amount{Amount: *n}
			}
		}
		d.Kind, d.RefundID, d.Reason = "refund.succeeded", "re_test_"+domain.RandomString(22), req.Reason
	default:
		panic("unknown test helper action " + action)
	}
	if err != nil {
		return nil, d, err
	}
	if err := v.Err(); err != nil {
		return nil, d, err
	}
	// What a gateway's delivery proves with the digest of its body, the helper's proves with the
	// request's.
	sum := sha256.Sum256(raw)
	d.BodySHA256 = hex.EncodeToString(sum[:])
	return raw, d, nil
}

// decodeOptionalBody is decodeBody for a body that may also be empty (no fields given).
func decodeOptionalBody(r *http.Request, v any) ([]byte, error) {
	raw, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return raw, err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return decodeBody(r, v)
}

// testPrecheck refuses, before anything is recorded, a test delivery the payment processor would apply
// as nothing or set aside; it completes d with what depends on the sale. The refund is checked with the
// very decision the processor takes (domain.Sale.Refund), on the sale as the log has it.
func testPrecheck(action string, s domain.Sale, d *events.WebhookReceived) error {
	cur := s.Started.Amount.Currency
	switch action {
	case testPay:
		if s.Status == domain.StatusCompleted || s.Status == domain.StatusSettled || s.Status == domain.StatusRefunded {
			return errSaleAlreadyPaid
		}
		d.Amount = &events.Amount{Amount: s.Started.Amount.Amount, Currency: cur}
	case testFail:
		if s.Status != domain.StatusAwaitingPayment {
			return errSaleNotAwaiting
		}
		d.Amount = &events.Amount{Amount: s.Started.Amount.Amount, Currency: cur}
	case testRefund:
		req := domain.RefundRequest{ID: domain.NewID(domain.PrefixRefund), Source: d.Gateway, GatewayRefundID: d.RefundID, Reason: d.Reason}
		if d.Amount != nil {
			d.Amount.Currency = cur
			req.Amount = &d.Amount.Amount
		}
		if _, err := s.Refund(req); err != nil {
			return err
		}
	}
	return nil
}

// awaitDelivery waits, at most PositionWait, for the payment processor to act on the recorded delivery
// env: applied (the sale has an event caused by it; pos is then a stream position at or after every
// event of that batch, its licences' included) or set aside (webhook_rejected on the delivery's subject:
// 409 delivery_rejected with the processor's reason). Neither in time: applied false, pos the log's
// last position.
func (a *API) awaitDelivery(ctx context.Context, env events.Envelope, sale events.Aggregate) (pos uint64, applied bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, a.cfg.PositionWait)
	defer cancel()
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		last, found, err := a.cfg.Events.Last(wctx, env.Aggregate.Filter())
		if err == nil && found {
			if rej, ok := last.Payload.(events.WebhookRejected); ok {
				return 0, false, &requestError{http.StatusConflict, "delivery_rejected",
					fmt.Sprintf("The payment processor set the test delivery aside: %s.", strings.TrimSuffix(rej.Reason, "."))}
			}
		}
		var evs []events.Envelope
		if err == nil {
			evs, _, err = a.cfg.Events.Load(wctx, sale)
		}
		for _, e := range evs {
			if e.CausationID == env.ID {
				pos, err := a.cfg.Events.LastSequence(ctx)
				return pos, err == nil, err
			}
		}
		if err != nil && wctx.Err() == nil {
			return 0, false, err
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return 0, false, ctx.Err()
			}
			pos, err := a.cfg.Events.LastSequence(ctx)
			return pos, false, err
		case <-time.After(delay):
		}
	}
}
