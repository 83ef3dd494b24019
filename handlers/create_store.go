package handlers

import (
	"context"
	"encoding/json"
	"errors"
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
// The keys are in the response and nowhere else: only their hashes are stored. The response waits
// (bounded) for the local projection, so the keys authenticate as soon as the caller has them.
func (a *API) createStore(w http.ResponseWriter, r *http.Request) {
	var req createStoreRequest
	if _, err := decodeBody(r, &req); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	cmd := domain.CreateStore{Name: req.Name, Slug: req.Slug, SettlementDelayDays: req.SettlementDelayDays, AbandonAfterMinutes: req.AbandonAfterMinutes}
	if fee, ok := percentText(req.ServiceFeePercent); ok {
		cmd.ServiceFeePercent = &fee
	}
	id := domain.NewID(domain.PrefixStore)
	keys := domain.NewStoreKeys()
	slug, store, err := cmd.Decide(id, keys)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	now := a.cfg.Now().UTC()
	corr := requestID(r.Context())
	slugEv := events.Envelope{
		ID:            domain.NewID(domain.PrefixEvent),
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateSlug, ID: slug.Slug},
		Time:          now,
		CorrelationID: corr,
		Payload:       slug,
	}
	storeEv := events.Envelope{
		ID:            domain.NewID(domain.PrefixEvent),
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
		Time:          now,
		CorrelationID: corr,
		Payload:       store,
	}
	seq, err := a.cfg.Events.AppendWrites(r.Context(),
		events.Write{Event: slugEv, Expect: 0, ExpectFilter: "ledger.platform.*.slug." + slug.Slug + ".*"},
		events.Write{Event: storeEv, Expect: 0},
	)
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
		a.log.WarnContext(r.Context(), "store created but not yet projected; its keys work once the projection catches up", "store_id", id, "position", seq)
	}
	body := data{map[string]any{
		"store": storeObject(store, "", now),
		"keys":  map[string]string{"live": keys.Live, "test": keys.Test},
	}}
	positioned(w, seq, http.StatusCreated, body)
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
