package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// ObjectAt renders the sale, customer or licence agg names as GET shows it (the `data` of
// GET /v1/sales/{id}, GET /v1/customers/{id} and GET /v1/licences/{key}), had the log
// stopped at stream sequence seq: the aggregate's events are loaded from the log, those with
// Sequence <= seq folded by the domain's own fold, and the result rendered by the functions GET uses,
// so at the aggregate's latest sequence the bytes are GET's (json.Marshal and GET's encoder agree).
// It is what an outgoing webhook's `data` carries for an event at seq.
//
//   - What the aggregate's own events decide is as at seq. What GET takes from elsewhere is as the
//     read model has it now, after waiting (bounded, as writes do) for it to apply seq: a customer's
//     stats (they sum sales) and store name; a sale's list of licences (each licence is then itself
//     folded from the log up to seq, and one issued after seq is left out). Anything GET computes from
//     the clock (licence expired, a download link re-minted once the one issued has expired) is
//     computed at the time of the call, as GET would.
//   - The object is as the command that appended its event at seq left it: its own later events of that
//     append (a lost dispute's chargeback refund after dispute_closed) and, for a sale, its licences'
//     (issued with the completion, revoked by the refund that refunds the sale in full) are included.
//   - Personal data is as the log reads now: a customer erased since seq shows erased. A customer
//     erased by now (customer_erased recorded, or their key already destroyed) renders, at every seq,
//     as {"id": ..., "object": "customer", "deleted": true} — what DELETE answers — never their old
//     fields; a sale of theirs shows its customer's email and name null, as GET does.
//   - No event of the aggregate at or before seq (or no such aggregate in agg's store and mode):
//     domain.ErrNotFound. Other aggregate types are an error.
func (a *API) ObjectAt(ctx context.Context, agg events.Aggregate, seq uint64) (json.RawMessage, error) {
	evs, _, err := a.cfg.Events.Load(ctx, agg)
	if err != nil {
		return nil, err
	}
	upTo := eventsUpTo(evs, seq)
	if len(upTo) == 0 {
		return nil, domain.ErrNotFound
	}
	upTo = withItsCommand(evs, upTo)
	var obj any
	switch agg.Type {
	case events.AggregateSale:
		obj, err = a.saleAt(ctx, agg, upTo, seq)
	case events.AggregateCustomer:
		obj, err = a.customerAt(ctx, agg, evs, upTo, seq)
	case events.AggregateLicence:
		obj, err = a.licenceAt(upTo)
	default:
		return nil, fmt.Errorf("ObjectAt: no rendering for %s aggregates", agg.Type)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// withItsCommand extends upTo, a prefix of evs, with the events after it that the same command appended
// as its last event (sameCommand): the state at an event is the state its append left, which is all GET
// ever shows (a lost dispute's chargeback refund follows dispute_closed in one append).
func withItsCommand(evs, upTo []events.Envelope) []events.Envelope {
	last := upTo[len(upTo)-1]
	n := len(upTo)
	for n < len(evs) && sameCommand(evs[n], last) {
		n++
	}
	return evs[:n]
}

// eventsUpTo is the prefix of evs (in log order) at or before seq.
func eventsUpTo(evs []events.Envelope, seq uint64) []events.Envelope {
	for i, e := range evs {
		if e.Sequence > seq {
			return evs[:i]
		}
	}
	return evs
}

func (a *API) saleAt(ctx context.Context, agg events.Aggregate, evs []events.Envelope, seq uint64) (any, error) {
	s := domain.FoldSale(evs)
	if s.ID == "" {
		return nil, domain.ErrNotFound
	}
	last := evs[len(evs)-1]
	a.awaitProjection(ctx, seq)
	licences := func(ctx context.Context, saleID string) ([]sqlite.LicenceRow, error) {
		rows, err := a.cfg.Projection.Reads().LicencesOfSale(ctx, saleID)
		if err != nil {
			return nil, err
		}
		out := rows[:0]
		for _, row := range rows {
			lagg := events.Aggregate{Mode: agg.Mode, StoreID: agg.StoreID, Type: events.AggregateLicence, ID: row.ID}
			levs, _, err := a.cfg.Events.Load(ctx, lagg)
			if err != nil {
				return nil, err
			}
			upTo := eventsUpTo(levs, seq)
			// The licence's events appended by the same command as the sale's event at seq (issued with
			// the completion, revoked by the refund that refunds the sale in full) follow it in the log
			// but belong to the state it left.
			for _, le := range levs[len(upTo):] {
				if !sameCommand(le, last) {
					break
				}
				upTo = levs[:len(upTo)+1]
			}
			l := foldLicence(upTo)
			if l.Issued.LicenceID == "" {
				continue // issued after seq
			}
			out = append(out, licenceRow(l, row))
		}
		return out, nil
	}
	return a.saleData(ctx, s, agg.Mode, licences)
}

// sameCommand tells whether two events were appended by one command: the ledger gives the events of one
// decision one time, correlation and cause (the request, or the gateway delivery they apply).
func sameCommand(a, b events.Envelope) bool {
	return a.CorrelationID != "" && a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID && a.Time.Equal(b.Time)
}

// licenceRow is the read model's row for a licence folded from the log (row gives what the log does
// not change: its store, mode and sale).
func licenceRow(l domain.Licence, row sqlite.LicenceRow) sqlite.LicenceRow {
	row.ID, row.Key, row.SaleID = l.Issued.LicenceID, l.Issued.Key, l.Issued.SaleID
	row.MaxActivations, row.Activations, row.Revoked, row.ExpiresAt = l.Issued.MaxActivations, len(l.Instances), l.Revoked, l.Issued.ExpiresAt
	return row
}

func (a *API) customerAt(ctx context.Context, agg events.Aggregate, all, evs []events.Envelope, seq uint64) (any, error) {
	c := domain.FoldCustomer(evs)
	if c.ID == "" {
		return nil, domain.ErrNotFound
	}
	if customerErased(all) {
		return deletedCustomer(c.ID), nil
	}
	a.awaitProjection(ctx, seq)
	row, err := a.cfg.Projection.Reads().Customer(ctx, agg.StoreID, agg.Mode, agg.ID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		row = sqlite.CustomerRow{StoreID: agg.StoreID, Mode: agg.Mode} // not projected yet: no stats
	case err != nil:
		return nil, err
	}
	row.Customer = c
	return a.customerObject(ctx, row)
}

// customerErased tells whether a customer's events say they were erased: customer_erased, or their
// key destroyed already (a DELETE that stopped before recording it), which the codec shows as
// personal_erased on their registration.
func customerErased(evs []events.Envelope) bool {
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.CustomerErased:
			return true
		case events.CustomerRegistered:
			if p.PersonalErased {
				return true
			}
		case events.CustomerUpdated:
			if p.PersonalErased {
				return true
			}
		}
	}
	return false
}

// deletedCustomer is what is left of an erased customer: DELETE /v1/customers/{id}'s answer.
func deletedCustomer(id string) map[string]any {
	return map[string]any{"id": id, "object": "customer", "deleted": true}
}

func (a *API) licenceAt(evs []events.Envelope) (any, error) {
	l := foldLicence(evs)
	if l.Issued.LicenceID == "" {
		return nil, domain.ErrNotFound
	}
	return a.licenceObject(l), nil
}
