package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

type createStoreRequest struct {
	Name                string          `json:"name"`
	Slug                string          `json:"slug"`
	ServiceFeePercent   json.RawMessage `json:"service_fee_percent"`
	SettlementDelayDays *int            `json:"settlement_delay_days"`
	AbandonAfterMinutes *int            `json:"abandon_after_minutes"`
}

// storeJSON is the store object of the API.
type storeJSON struct {
	ID                  string `json:"id"`
	Object              string `json:"object"`
	Name                string `json:"name"`
	Slug                string `json:"slug"`
	ServiceFeePercent   string `json:"service_fee_percent"`
	SettlementDelayDays int    `json:"settlement_delay_days"`
	AbandonAfterMinutes int    `json:"abandon_after_minutes"`
	Mode                string `json:"mode,omitempty"`
	CreatedAt           string `json:"created_at"`
}

// createStore is POST /v1/admin/stores. It appends the slug reservation and the store as one atomic batch;
// the reservation's expected sequence of zero on every store's copy of the slug makes the slug unique.
// The keys are in the response only; the log and the read store keep their SHA-256 hashes. With an
// Idempotency-Key (the admin API's own namespace) a replay answers the same store with "keys": null,
// since nothing could show them again. The response waits (bounded) for the local projection, so the
// keys authenticate as soon as the caller has them.
func (a *API) createStore(w http.ResponseWriter, r *http.Request) {
	var req createStoreRequest
	raw, err := decodeBody(r, &req)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	idem, err := idempotencyOf(r, events.ModePlatform, adminScope, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	cmd := domain.CreateStore{Name: req.Name, Slug: req.Slug, SettlementDelayDays: req.SettlementDelayDays, AbandonAfterMinutes: req.AbandonAfterMinutes}
	if fee, ok := percentText(req.ServiceFeePercent); ok {
		cmd.ServiceFeePercent = &fee
	}
	var (
		body     data
		seq      uint64
		replayed bool
	)
	// One more attempt after a conflict: it was the slug, or the same key in flight (then replayed).
	retries := 0
	if idem != nil {
		retries = 1
	}
	err = a.idempotent(r.Context(), idem, retries, func(prev *events.IdempotencyKeyRecorded) (err error) {
		if prev != nil {
			replayed = true
			body, seq, err = a.replayStore(r.Context(), *prev)
			return err
		}
		body, seq, err = a.newStore(r.Context(), cmd, idem)
		return err
	})
	if errors.Is(err, domain.ErrConflict) {
		err = domain.ErrSlugTaken // the store id is new, so only the slug can have been there first
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	wctx, cancel := context.WithTimeout(r.Context(), a.cfg.PositionWait)
	defer cancel()
	if err := a.cfg.Projection.WaitFor(wctx, seq); err != nil {
		a.log.WarnContext(r.Context(), "store created but not yet projected; its keys work once the projection catches up", "position", seq)
	}
	if replayed {
		markReplayed(w)
	}
	positioned(w, seq, http.StatusCreated, body)
}

// storeKeysJSON are a new store's keys as the create answer shows them, once.
type storeKeysJSON struct {
	Live string `json:"live"`
	Test string `json:"test"`
}

// newStore decides and appends a new store, with the Idempotency-Key's record (if any) in its batch.
func (a *API) newStore(ctx context.Context, cmd domain.CreateStore, idem *idempotency) (data, uint64, error) {
	id := domain.NewID(domain.PrefixStore)
	keys := domain.NewStoreKeys()
	slug, store, err := cmd.Decide(id, keys)
	if err != nil {
		return data{}, 0, err
	}
	now := a.cfg.Now().UTC()
	corr := requestID(ctx)
	envelope := func(agg events.Aggregate, p events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: corr, Payload: p}
	}
	shown := storeKeysJSON{Live: keys.Live, Test: keys.Test}
	writes := idem.writes(envelope, id)
	writes = append(writes,
		events.Write{Event: envelope(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateSlug, ID: slug.Slug}, slug),
			Expect: 0, ExpectFilter: "ledger.platform.*.slug." + slug.Slug + ".*"},
		events.Write{Event: envelope(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id}, store), Expect: 0},
	)
	seq, err := a.cfg.Events.AppendWrites(ctx, writes...)
	if err != nil {
		return data{}, 0, err
	}
	return storeAnswer(store, now, &shown), seq, nil
}

// replayStore answers an earlier create with the same Idempotency-Key: the store from the log, without
// its keys (only their hashes were kept).
func (a *API) replayStore(ctx context.Context, prev events.IdempotencyKeyRecorded) (data, uint64, error) {
	evs, last, err := a.cfg.Events.Load(ctx, events.Aggregate{Mode: events.ModePlatform, StoreID: prev.ResourceID, Type: events.AggregateStore, ID: prev.ResourceID})
	if err != nil {
		return data{}, 0, err
	}
	if len(evs) == 0 {
		return data{}, 0, fmt.Errorf("idempotency record names store %s, which the log does not hold", prev.ResourceID)
	}
	created, ok := evs[0].Payload.(events.StoreCreated)
	if !ok {
		return data{}, 0, fmt.Errorf("store %s begins with %s", prev.ResourceID, evs[0].Payload.EventType())
	}
	return storeAnswer(created, evs[0].Time, nil), last, nil
}

func storeAnswer(s events.StoreCreated, created time.Time, keys *storeKeysJSON) data {
	return data{map[string]any{"store": storeObject(s, "", created), "keys": keys}}
}

// percentText accepts a percentage as a JSON number (5, 2.5) or a string ("5"); the literal text is kept
// and parsed as a decimal, never as a float.
func percentText(raw json.RawMessage) (string, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "", false
	}
	if u, err := strconv.Unquote(s); err == nil {
		return u, true
	}
	return s, true
}

func storeObject(s events.StoreCreated, mode string, created time.Time) storeJSON {
	return storeJSON{
		ID: s.StoreID, Object: "store", Name: s.Name, Slug: s.Slug, ServiceFeePercent: s.ServiceFeePercent,
		SettlementDelayDays: s.SettlementDelayDays, AbandonAfterMinutes: s.AbandonAfterMinutes, Mode: mode,
		CreatedAt: created.UTC().Format(time.RFC3339),
	}
}

// getStore is GET /v1/store: the store and mode the key belongs to.
func (a *API) getStore(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	row, err := a.cfg.Projection.Reads().Store(r.Context(), sc.StoreID)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, data{storeObject(events.StoreCreated{
		StoreID: row.ID, Name: row.Name, Slug: row.Slug, ServiceFeePercent: row.ServiceFeePercent,
		SettlementDelayDays: row.SettlementDelayDays, AbandonAfterMinutes: row.AbandonAfterMinutes,
	}, sc.Mode, row.CreatedAt)})
}
