package handlers

import (
	"context"
	"errors"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/salecache"
)

// currentSale loads a sale for a decision. The first attempt takes the read model's copy — the folded
// state and the sale's last subject sequence — which is one indexed read. If that copy was behind the
// log, the append's expected sequence fails with a conflict, and the retry (fromLog) folds the sale from
// its own subject in the log, which is exact. Reading the log first would scan: JetStream has no index
// from a wildcard subject to its first message.
func currentSale(ctx context.Context, log EventStore, reads ReadStore, agg events.Aggregate, fromLog bool) (domain.Sale, error) {
	if !fromLog {
		s, err := reads.Sale(ctx, agg.StoreID, agg.Mode, agg.ID)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, domain.ErrNotFound) {
			return domain.Sale{}, err
		}
	}
	evs, _, err := log.Load(ctx, agg)
	if err != nil {
		return domain.Sale{}, err
	}
	if len(evs) == 0 {
		return domain.Sale{}, domain.ErrNotFound
	}
	return domain.FoldSale(evs), nil
}

// saleForDecision is currentSale for this replica's commands: before the log (fromLog false), the sale
// as this replica's last command on it left it, if it has one (a hint, like the read store's copy: an
// append on a stale one conflicts and the retry reads the log).
func (a *API) saleForDecision(ctx context.Context, agg events.Aggregate, fromLog bool) (domain.Sale, error) {
	if !fromLog {
		if e, ok := a.recent.Get(agg.ID); ok && e.StoreID == agg.StoreID && e.Mode == agg.Mode {
			return e.Sale, nil
		}
	}
	return currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), agg, fromLog)
}

// decided keeps sale, as the command that appended its new events left it, for the next command; after
// a failed append it forgets the sale.
func (a *API) decided(agg events.Aggregate, sale domain.Sale, err error) {
	if err != nil {
		a.recent.Forget(agg.ID)
		return
	}
	a.recent.Put(salecache.Entry{Sale: sale, StoreID: agg.StoreID, Mode: agg.Mode})
}
