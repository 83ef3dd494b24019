package handlers

import (
	"context"
	"errors"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
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
