package handlers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Timers acts on sales whose time has come: it abandons checkouts unpaid past their store's
// abandon_after_minutes and settles completed sales whose settlement is due. Every replica may run it:
// each action is appended with the sale's last sequence as expectation, so two replicas acting on one
// sale produce one event, and the loser finds nothing left to do.
type Timers struct {
	Log    *slog.Logger
	Events EventStore
	Reads  func() ReadStore
	// Every is the interval between passes.
	Every time.Duration
	// Batch caps the sales handled in one pass.
	Batch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CaughtUp, if set, tells whether the read store is close enough to the log for its list of due
	// sales to be worth acting on; a pass does nothing while it is not. A read store folding a long
	// history (a first start, a rebuild's catch-up) lists as due every sale whose abandonment or
	// settlement it has not reached yet, and each must then be read from the log only to find nothing
	// due: over 1,000,000 sales those reads took most of the CPU and stalled the fold
	// (docs/benchmarks.md, "At 1,000,000 sales").
	CaughtUp func() bool
}

// Run makes a pass every Every until ctx is done.
func (t *Timers) Run(ctx context.Context) {
	tick := time.NewTicker(t.Every)
	defer tick.Stop()
	for {
		now := time.Now
		if t.Now != nil {
			now = t.Now
		}
		if _, err := t.Tick(ctx, now()); err != nil && ctx.Err() == nil {
			t.Log.Error("timer pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Tick makes one pass as of now and returns how many sales changed.
func (t *Timers) Tick(ctx context.Context, now time.Time) (int, error) {
	if t.CaughtUp != nil && !t.CaughtUp() {
		return 0, nil
	}
	refs, err := t.Reads().DueSales(ctx, now, t.Batch)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, ref := range refs {
		agg := events.Aggregate{Mode: ref.Mode, StoreID: ref.StoreID, Type: events.AggregateSale, ID: ref.ID}
		// The log, not the read model that listed it: a pass acts rarely, and must not act on stale state.
		sale, err := currentSale(ctx, t.Events, t.Reads(), agg, true)
		if err != nil {
			return changed, err
		}
		var payloads []events.Payload
		switch sale.Status {
		case domain.StatusAwaitingPayment:
			payloads = sale.Abandon(now)
		case domain.StatusCompleted:
			payloads, _ = sale.Settle(now, "schedule")
		}
		if len(payloads) == 0 {
			continue // the read model was behind the log; nothing is due after all
		}
		envs := make([]events.Envelope, len(payloads))
		for i, p := range payloads {
			envs[i] = events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now.UTC(), CorrelationID: "timer", Payload: p}
		}
		if _, err := t.Events.Append(ctx, sale.Version, envs...); errors.Is(err, domain.ErrConflict) {
			continue // something else changed the sale meanwhile; the next pass decides again
		} else if err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}
