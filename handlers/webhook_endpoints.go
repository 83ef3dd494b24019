package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/webhooksout"
	"github.com/salesledger/ledger/projections/sqlite"
)

var (
	errWebhookEndpointNotFound = &requestError{http.StatusNotFound, "not_found", "The webhook endpoint could not be found, please check the id."}
	errTooManyWebhookEndpoints = &requestError{http.StatusConflict, "too_many_webhook_endpoints",
		fmt.Sprintf("The store already has %d webhook endpoints in this mode, the most it may have; delete one first.", domain.MaxWebhookEndpoints)}
)

// webhookEndpointJSON is the webhook endpoint object. The signing secret is in it only in the answers
// to the create and rotate_secret calls that made it (Secret set); everywhere else only its last four
// characters are shown. previous_secret_expires_at is when the secret replaced by the last rotation
// stops signing (null: never rotated).
type webhookEndpointJSON struct {
	ID                      string   `json:"id"`
	Object                  string   `json:"object"`
	URL                     string   `json:"url"`
	Events                  []string `json:"events"`
	Description             *string  `json:"description"`
	Disabled                bool     `json:"disabled"`
	SecretLast4             string   `json:"secret_last4"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	Livemode                bool     `json:"livemode"`
	CreatedAt               string   `json:"created_at"`
	UpdatedAt               string   `json:"updated_at"`
}

// webhookEndpointWithSecret is the answer of create and rotate_secret: the object and the secret, shown
// once (null in a replay of the create: see createWebhookEndpoint).
type webhookEndpointWithSecret struct {
	webhookEndpointJSON
	Secret *string `json:"secret"`
}

func webhookEndpointObject(sc Scope, w domain.WebhookEndpoint) webhookEndpointJSON {
	return webhookEndpointJSON{ID: w.ID, Object: "webhook_endpoint", URL: w.URL, Events: w.Events, Description: optString(w.Description),
		Disabled: w.Disabled, SecretLast4: w.SecretLast4, PreviousSecretExpiresAt: optTime(w.PreviousExpiresAt),
		Livemode: sc.Mode == events.ModeLive, CreatedAt: rfc3339(w.CreatedAt), UpdatedAt: rfc3339(w.UpdatedAt)}
}

func webhookEndpointAgg(sc Scope, id string) events.Aggregate {
	return events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateWebhookEndpoint, ID: id}
}

// webhookEndpointCreate is the body of POST /v1/webhook_endpoints.
type webhookEndpointCreate struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
}

// createWebhookEndpoint is POST /v1/webhook_endpoints: 201 with the endpoint and its new signing secret,
// which no other answer ever shows. The secret is recorded sealed with the endpoint's own key (it cannot
// be hashed: deliveries are signed with it). With an Idempotency-Key the key's record and the endpoint
// are one atomic batch; a replay answers the endpoint as the log has it now, with "secret": null — the
// secret was shown once, to the request that created it, like a new store's keys (a client that lost
// that answer rotates the secret).
func (a *API) createWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	var in webhookEndpointCreate
	raw, err := decodeBody(r, &in)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	idem, err := storeIdempotency(r, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := a.webhookAddress(r.Context(), in.URL); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	// This replica's creates for one store and mode take turns: each decides on the count the one before
	// left, rather than conflict on the cap's expectation (which stays the guard across replicas).
	unlock := a.endpointCreates.Lock(sc.Mode + "." + sc.StoreID)
	defer unlock()
	var (
		ep     domain.WebhookEndpoint
		secret *string
		seq    uint64
	)
	// Racing creates of one store conflict on the endpoint cap's expectation: decide again, more often
	// than other creates do.
	err = a.idempotent(ctx, idem, 10, func(prev *events.IdempotencyKeyRecorded) error {
		if prev != nil {
			ep, secret = domain.WebhookEndpoint{}, nil
			var err error
			ep, err = a.currentWebhookEndpoint(ctx, sc, prev.ResourceID, true)
			seq = ep.Version
			return err
		}
		id, s := domain.NewID(domain.PrefixWebhookEndpoint), domain.NewWebhookSecret()
		p, err := domain.NewWebhookEndpoint(id, domain.WebhookEndpointInput{URL: in.URL, Events: in.Events, Description: in.Description}, s)
		if err != nil {
			return err
		}
		// The cap holds under concurrent creates: the create expects the store's last
		// webhook_endpoint_created to be the one counted, so of two racing creates one is decided again.
		created := "ledger." + sc.Mode + "." + sc.StoreID + "." + events.AggregateWebhookEndpoint + ".*." + events.TypeWebhookEndpointCreated
		made, lastCreated, err := a.cfg.Events.LoadFilter(ctx, created)
		if err != nil {
			return err
		}
		gone, _, err := a.cfg.Events.LoadFilter(ctx, "ledger."+sc.Mode+"."+sc.StoreID+"."+events.AggregateWebhookEndpoint+".*."+events.TypeWebhookEndpointDeleted)
		if err != nil {
			return err
		}
		if len(made)-len(gone) >= domain.MaxWebhookEndpoints {
			return errTooManyWebhookEndpoints
		}
		now := a.cfg.Now().UTC()
		envelope := func(agg events.Aggregate, p events.Payload) events.Envelope {
			return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: requestID(ctx), Payload: p}
		}
		writes := append(idem.writes(envelope, id), events.Write{Event: envelope(webhookEndpointAgg(sc, id), p), Expect: lastCreated, ExpectFilter: created})
		if seq, err = a.cfg.Events.AppendWrites(ctx, writes...); err != nil {
			return err
		}
		ep, secret = domain.WebhookEndpoint{}.Evolve(events.Envelope{Payload: p, Time: now, Sequence: seq}), &s
		return nil
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if secret == nil {
		markReplayed(w)
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusCreated, data{webhookEndpointWithSecret{webhookEndpointObject(sc, ep), secret}})
}

// currentWebhookEndpoint loads an endpoint of the scope: from the read model, or from the log (exact,
// on a retry after a conflict). A deleted or unknown one is 404.
func (a *API) currentWebhookEndpoint(ctx context.Context, sc Scope, id string, fromLog bool) (domain.WebhookEndpoint, error) {
	if !fromLog {
		row, err := a.cfg.Projection.Reads().WebhookEndpoint(ctx, sc.StoreID, sc.Mode, id)
		if err == nil {
			return row.WebhookEndpoint, nil
		}
		if !errors.Is(err, domain.ErrNotFound) {
			return domain.WebhookEndpoint{}, err
		}
	}
	evs, _, err := a.cfg.Events.Load(ctx, webhookEndpointAgg(sc, id))
	if err != nil {
		return domain.WebhookEndpoint{}, err
	}
	ep := domain.FoldWebhookEndpoint(evs)
	if ep.ID == "" || ep.Deleted {
		return domain.WebhookEndpoint{}, errWebhookEndpointNotFound
	}
	return ep, nil
}

// changeWebhookEndpoint loads an endpoint of the caller's scope, decides, and appends with the
// endpoint's last sequence as expectation, deciding again from the log on a concurrent change. It
// returns the endpoint as the change left it and the change's position (the endpoint's own version
// when nothing changed).
func (a *API) changeWebhookEndpoint(ctx context.Context, id string, decide func(domain.WebhookEndpoint) (events.Payload, error)) (domain.WebhookEndpoint, uint64, error) {
	sc := scopeFrom(ctx)
	for attempt := 0; ; attempt++ {
		ep, err := a.currentWebhookEndpoint(ctx, sc, id, attempt > 0)
		if err != nil {
			return ep, 0, err
		}
		p, err := decide(ep)
		if err != nil || p == nil {
			return ep, ep.Version, err
		}
		e := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: webhookEndpointAgg(sc, id), Time: a.cfg.Now().UTC(),
			CorrelationID: requestID(ctx), Payload: p}
		seq, err := a.cfg.Events.Append(ctx, ep.Version, e)
		if errors.Is(err, domain.ErrConflict) && attempt < 5 {
			continue
		}
		if errors.Is(err, events.ErrErased) {
			// The endpoint's key is gone: a DELETE destroyed it (and records the deletion, or failed
			// before it could). No secret can be sealed for it any more: it is gone.
			return ep, 0, errWebhookEndpointNotFound
		}
		if err != nil {
			return ep, 0, err
		}
		e.Sequence = seq
		return ep.Evolve(e), seq, nil
	}
}

// getWebhookEndpoint is GET /v1/webhook_endpoints/{id}.
func (a *API) getWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	row, err := a.cfg.Projection.Reads().WebhookEndpoint(r.Context(), sc.StoreID, sc.Mode, r.PathValue("webhook_endpoint_id"))
	if errors.Is(err, domain.ErrNotFound) {
		err = errWebhookEndpointNotFound
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, data{webhookEndpointObject(sc, row.WebhookEndpoint)})
}

// listWebhookEndpoints is GET /v1/webhook_endpoints: newest first, per_page (1–100, default 15) and
// cursor, as the customer list pages.
func (a *API) listWebhookEndpoints(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	reads := a.cfg.Projection.Reads()
	filter := func(p sqlite.SeqPage) sqlite.WebhookEndpointFilter {
		return sqlite.WebhookEndpointFilter{StoreID: sc.StoreID, Mode: sc.Mode, SeqPage: p}
	}
	listBySeq(a, w, r, a.endpointCursors, func(ctx context.Context, p sqlite.SeqPage) ([]webhookEndpointJSON, []int64, bool, error) {
		rows, more, err := reads.ListWebhookEndpoints(ctx, filter(p))
		out := make([]webhookEndpointJSON, len(rows))
		seqs := make([]int64, len(rows))
		for i, row := range rows {
			out[i], seqs[i] = webhookEndpointObject(sc, row.WebhookEndpoint), row.Seq
		}
		return out, seqs, more, err
	}, func(ctx context.Context, p sqlite.SeqPage) (bool, error) {
		return reads.HasWebhookEndpoints(ctx, filter(p))
	})
}

// listBySeq serves a list paged by seq, newest first (the webhook endpoints, an endpoint's deliveries):
// per_page (1–100, default 15) and cursor (sealed by cursors, bound to the key's store and mode), as the
// customer list pages. list reads the page at a position; has tells whether anything lies at one (so
// that has_more and the cursors are exact).
func listBySeq[T any](a *API, w http.ResponseWriter, r *http.Request, cursors *customerCursors,
	list func(context.Context, sqlite.SeqPage) ([]T, []int64, bool, error), has func(context.Context, sqlite.SeqPage) (bool, error)) {
	ctx := r.Context()
	sc := scopeFrom(ctx)
	q := r.URL.Query()
	limit := 15
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeError(w, r, a.log, badRequest("The per_page parameter must be an integer from 1 to 100."))
			return
		}
		limit = n
	}
	var cur *sqlite.Cursor[int64]
	if q.Has("cursor") {
		c, err := cursors.open(sc, q.Get("cursor"))
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		cur = &c
	}
	items, seqs, more, err := list(ctx, sqlite.SeqPageAt(cur, limit))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	l, err := sqlite.ExactOlder(cur, sqlite.PageLinks(cur, seqs, more), func(c sqlite.Cursor[int64]) (bool, error) {
		return has(ctx, sqlite.SeqPageAt(&c, limit))
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Data       []T                `json:"data"`
		Pagination customerPagination `json:"pagination"`
	}{items, customerPagination{NextCursor: cursors.seal(sc, l.Next), PrevCursor: cursors.seal(sc, l.Prev), HasMore: l.HasMore}})
}

// updateWebhookEndpoint is PATCH /v1/webhook_endpoints/{id}: url, events, description, disabled; a
// member left out keeps its value.
func (a *API) updateWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	var in domain.WebhookEndpointInput
	if _, err := decodeBody(r, &in); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := a.webhookAddress(r.Context(), in.URL); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	ep, seq, err := a.changeWebhookEndpoint(ctx, r.PathValue("webhook_endpoint_id"), func(ep domain.WebhookEndpoint) (events.Payload, error) {
		return ep.Update(in)
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusOK, data{webhookEndpointObject(scopeFrom(ctx), ep)})
}

// rotateWebhookSecret is POST /v1/webhook_endpoints/{id}/rotate_secret (no body, or {}): a new signing
// secret, shown in this answer only. The one it replaces keeps signing deliveries, as a second
// signature, for 24 hours (previous_secret_expires_at); a rotation within them drops the older one.
func (a *API) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	if err := emptyObjectBody(r); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	secret := domain.NewWebhookSecret()
	ep, seq, err := a.changeWebhookEndpoint(ctx, r.PathValue("webhook_endpoint_id"), func(ep domain.WebhookEndpoint) (events.Payload, error) {
		return ep.RotateSecret(secret, a.cfg.Now())
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusOK, data{webhookEndpointWithSecret{webhookEndpointObject(scopeFrom(ctx), ep), &secret}})
}

// emptyObjectBody accepts a request without a body, or with {}: the calls that take no parameters.
func emptyObjectBody(r *http.Request) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return nil
	}
	if err := checkEncoding(raw); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if tooDeep(raw, MaxJSONDepth) || t[0] != '{' || json.Unmarshal(raw, &fields) != nil || len(fields) > 0 {
		return badRequest("This endpoint takes no parameters; send no body, or {}.")
	}
	return nil
}

// deleteWebhookEndpoint is DELETE /v1/webhook_endpoints/{id}. The endpoint's key is destroyed first —
// from then on none of its secrets can be read from the log, by anyone — then webhook_endpoint_deleted
// is recorded. A repeated DELETE after a failure in between finishes the job; once done, the endpoint
// is 404.
func (a *API) deleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id := r.PathValue("webhook_endpoint_id")
	if _, err := a.currentWebhookEndpoint(ctx, sc, id, true); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := a.cfg.Keys.Erase(ctx, id); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	_, seq, err := a.changeWebhookEndpoint(ctx, id, func(ep domain.WebhookEndpoint) (events.Payload, error) { return ep.Delete() })
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusOK, data{map[string]any{"id": id, "object": "webhook_endpoint", "deleted": true}})
}

// webhookAddress applies the delivery client's address rule (handlers/webhooksout.ValidateURL: no
// loopback, private, link-local or cloud-metadata address unless LEDGER_WEBHOOK_ALLOW_PRIVATE; metadata
// never) to a URL given for an endpoint: 422 naming url. A live-mode endpoint must be https, as Stripe
// requires: its deliveries carry customers' personal data (LEDGER_WEBHOOK_ALLOW_PRIVATE, for
// development, lifts that too). The URL's syntax is the domain's; a URL that is not even an absolute
// http(s) URL is left for it to name.
func (a *API) webhookAddress(ctx context.Context, u *string) error {
	if u == nil || domain.WebhookURLProblem(*u) != "" {
		return nil
	}
	if err := webhooksout.ValidateURL(*u, a.cfg.AllowPrivateWebhooks); err != nil {
		return err
	}
	if scopeFrom(ctx).Mode == events.ModeLive && !a.cfg.AllowPrivateWebhooks && !strings.HasPrefix(strings.ToLower(*u), "https:") {
		var v domain.ValidationError
		v.Add("url", "The url field must be an https URL for a live-mode endpoint: its deliveries carry customers' personal data.")
		return v.Err()
	}
	return nil
}
