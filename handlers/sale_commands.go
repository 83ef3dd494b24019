package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// eventJSON is one event of an audit trail.
type eventJSON struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Version       int             `json:"version"`
	Sequence      uint64          `json:"sequence"`
	Time          string          `json:"time"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// saleEvents is GET /v1/sales/{id}/events: the sale's own history, oldest first, read from its subject
// in the log.
func (a *API) saleEvents(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	evs, _, err := a.cfg.Events.Load(r.Context(), events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: r.PathValue("sale_id")})
	if err == nil && len(evs) == 0 {
		err = domain.ErrNotFound
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		if p, ok := e.Payload.(events.SaleStarted); ok && p.PersonalErased {
			e.Payload = domain.ErasePersonal(p) // the customer's id, which the sale keeps in the clear
		}
		body, err := json.Marshal(e.Payload)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		out[i] = eventJSON{ID: e.ID, Type: e.Type(), Version: e.Payload.EventVersion(), Sequence: e.Sequence,
			Time: e.Time.UTC().Format(time.RFC3339Nano), CorrelationID: e.CorrelationID, CausationID: e.CausationID, Data: body}
	}
	writeJSON(w, http.StatusOK, data{out})
}

type ratingRequest struct {
	Value   *int   `json:"value"`
	Comment string `json:"comment"`
}

// rateSale is POST /v1/sales/{id}/rating: the buyer's rating of a completed sale; a new rating replaces
// the previous one.
func (a *API) rateSale(w http.ResponseWriter, r *http.Request) {
	var req ratingRequest
	if _, err := decodeBody(r, &req); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if req.Value == nil {
		var v domain.ValidationError
		v.Add("value", "The value field is required.")
		writeError(w, r, a.log, &v)
		return
	}
	ctx := r.Context()
	_, seq, err := a.changeSale(ctx, r.PathValue("sale_id"), func(s domain.Sale) ([]events.Payload, error) {
		return s.Rate(domain.NewID("rat_"), *req.Value, req.Comment)
	})
	if errors.Is(err, domain.ErrNotCompleted) {
		err = &requestError{http.StatusConflict, "sale_not_completed", "Only a completed sale can be rated."}
	}
	var sale domain.Sale
	if err == nil {
		// The answer is the sale as the log has it now: the decision's copy may be this replica's cached
		// one, which holds no personal data (salecache).
		sc := scopeFrom(ctx)
		sale, err = currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: r.PathValue("sale_id")}, true)
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusCreated, data{saleObject(sale, scopeFrom(ctx).Mode)})
}

// changeSale loads a sale of the caller's scope from the log, decides, and appends with the sale's last
// sequence as expectation. Calls for one sale on this replica take turns, and a concurrent change made
// elsewhere (another replica, the payment processor) is met by reloading the sale from the log and
// deciding again, until the request's context ends: a conflict never reaches the caller while there is
// time left, since deciding again on the new state is always right.
func (a *API) changeSale(ctx context.Context, id string, decide func(domain.Sale) ([]events.Payload, error)) (domain.Sale, uint64, error) {
	return a.changeSaleWrites(ctx, id, decide, func() bool { return false }, nil)
}

// changeSaleWrites is changeSale for a decision whose batch holds more than the sale's own events:
// extra (nil: none) returns the other writes (other aggregates, an idempotency record) for the sale as
// it was decided on and its new events. The sale's first event carries the sale's version as
// expectation; a conflict decides again on the sale as the log has it, until the context ends, unless
// abort (asked after each conflict) says another request settled the matter, which returns
// domain.ErrConflict.
func (a *API) changeSaleWrites(ctx context.Context, id string, decide func(domain.Sale) ([]events.Payload, error), abort func() bool,
	extra func(domain.Sale, []events.Payload, func(events.Aggregate, events.Payload) events.Envelope) []events.Write) (domain.Sale, uint64, error) {
	sc := scopeFrom(ctx)
	agg := events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: id}
	unlock := a.sales.Lock(sc.Mode + "/" + id)
	defer unlock()
	for attempt := 0; ; attempt++ {
		sale, err := a.saleForDecision(ctx, agg, attempt > 0)
		if err != nil {
			return domain.Sale{}, 0, err
		}
		payloads, err := decide(sale)
		if (err != nil || len(payloads) == 0) && attempt == 0 {
			// Decided on a copy that may lag the log (this replica's cache, or its read store, while
			// another replica changed the sale): a refusal or a no-op is confirmed on the log, which is
			// exact. Only an append carries an expectation the log checks.
			continue
		}
		if err != nil || len(payloads) == 0 {
			return sale, sale.Version, err
		}
		now := a.cfg.Now().UTC()
		env := func(agg events.Aggregate, p events.Payload) events.Envelope {
			return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: requestID(ctx), Payload: p}
		}
		writes := make([]events.Write, 0, len(payloads)+2)
		for i, p := range payloads {
			w := events.Write{Event: env(agg, p), Expect: events.NoExpectation}
			if i == 0 {
				w.Expect = sale.Version
			}
			writes = append(writes, w)
		}
		if extra != nil {
			writes = append(writes, extra(sale, payloads, env)...)
		}
		seq, err := a.cfg.Events.AppendWrites(ctx, writes...)
		if err != nil {
			a.decided(agg, sale, err)
		}
		if errors.Is(err, domain.ErrConflict) {
			if ctx.Err() != nil {
				return domain.Sale{}, 0, ctx.Err()
			}
			if abort() {
				return domain.Sale{}, 0, err
			}
			if attempt >= 2 {
				// Others keep winning the race: step aside a little, at random, before the next try.
				backoff(ctx, attempt)
			}
			continue
		}
		if err != nil {
			return domain.Sale{}, 0, err
		}
		first := seq - uint64(len(writes)-1)
		for i := range payloads {
			e := writes[i].Event
			e.Sequence = first + uint64(i)
			sale = sale.Evolve(e)
		}
		a.decided(agg, sale, nil)
		return sale, seq, nil
	}
}

// backoff sleeps a random time that grows with attempt (up to about 100 ms), or until ctx ends.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(5*time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
