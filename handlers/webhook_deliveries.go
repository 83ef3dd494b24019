package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

var (
	errWebhookDeliveryNotFound = &requestError{http.StatusNotFound, "not_found", "The webhook delivery could not be found, please check the id."}
	errWebhookEndpointDisabled = &requestError{http.StatusConflict, "webhook_endpoint_disabled",
		"The delivery's webhook endpoint is disabled; enable it (PATCH {\"disabled\": false}) before retrying."}
)

// webhookDeliveryJSON is the webhook delivery object: one outgoing event (event_id, event_type: the
// body's id and type) sent to one endpoint, its status (pending, succeeded, failed), every attempt, and
// when the next one is due (null unless pending). created_at is when the ledger event happened.
type webhookDeliveryJSON struct {
	ID            string                `json:"id"`
	Object        string                `json:"object"`
	EndpointID    string                `json:"endpoint_id"`
	EventID       string                `json:"event_id"`
	EventType     string                `json:"event_type"`
	Status        string                `json:"status"`
	Attempts      []deliveryAttemptJSON `json:"attempts"`
	NextAttemptAt *string               `json:"next_attempt_at"`
	Livemode      bool                  `json:"livemode"`
	CreatedAt     string                `json:"created_at"`
}

// deliveryAttemptJSON is one attempt: when it started, the receiver's HTTP status (null when no answer
// came), how long it took, and why it failed (null on success).
type deliveryAttemptJSON struct {
	At         string  `json:"at"`
	StatusCode *int    `json:"status_code"`
	DurationMS int64   `json:"duration_ms"`
	Error      *string `json:"error"`
}

func webhookDeliveryObject(sc Scope, d domain.WebhookDelivery) webhookDeliveryJSON {
	out := webhookDeliveryJSON{ID: d.ID, Object: "webhook_delivery", EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType,
		Status: d.Status, Attempts: make([]deliveryAttemptJSON, len(d.Attempts)), NextAttemptAt: optTime(d.NextAttemptAt),
		Livemode: sc.Mode == events.ModeLive, CreatedAt: rfc3339(d.CreatedAt)}
	for i, a := range d.Attempts {
		j := deliveryAttemptJSON{At: rfc3339(a.At), DurationMS: a.DurationMS, Error: optString(a.Error)}
		if a.StatusCode != 0 {
			code := a.StatusCode
			j.StatusCode = &code
		}
		out.Attempts[i] = j
	}
	return out
}

// listWebhookDeliveries is GET /v1/webhook_endpoints/{id}/deliveries: the endpoint's deliveries, newest
// first, per_page (1–100, default 15) and cursor, as the endpoint list pages. An unknown, deleted or
// other store's endpoint is 404.
func (a *API) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc := scopeFrom(ctx)
	reads := a.cfg.Projection.Reads()
	endpointID := r.PathValue("webhook_endpoint_id")
	if _, err := reads.WebhookEndpoint(ctx, sc.StoreID, sc.Mode, endpointID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			err = errWebhookEndpointNotFound
		}
		writeError(w, r, a.log, err)
		return
	}
	filter := func(p sqlite.SeqPage) sqlite.WebhookDeliveryFilter {
		return sqlite.WebhookDeliveryFilter{StoreID: sc.StoreID, Mode: sc.Mode, EndpointID: endpointID, SeqPage: p}
	}
	listBySeq(a, w, r, a.deliveryCursors, func(ctx context.Context, p sqlite.SeqPage) ([]webhookDeliveryJSON, []int64, bool, error) {
		rows, more, err := reads.ListWebhookDeliveries(ctx, filter(p))
		out := make([]webhookDeliveryJSON, len(rows))
		seqs := make([]int64, len(rows))
		for i, row := range rows {
			out[i], seqs[i] = webhookDeliveryObject(sc, row.WebhookDelivery), row.Seq
		}
		return out, seqs, more, err
	}, func(ctx context.Context, p sqlite.SeqPage) (bool, error) {
		return reads.HasWebhookDeliveries(ctx, filter(p))
	})
}

// retryWebhookDelivery is POST /v1/webhook_deliveries/{id}/retry (no body, or {}): an attempt now. A
// pending delivery's next attempt moves to now (its schedule goes on after it); a failed or succeeded
// one is pending again for this one attempt. 202 with the delivery as the request left it; the attempt
// follows within a second. A delivery of a disabled endpoint is 409 (enable it first), of a deleted one
// 404.
func (a *API) retryWebhookDelivery(w http.ResponseWriter, r *http.Request) {
	if err := emptyObjectBody(r); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id := r.PathValue("webhook_delivery_id")
	reads := a.cfg.Projection.Reads()
	row, err := reads.WebhookDelivery(ctx, sc.StoreID, sc.Mode, id)
	if err == nil {
		var ep sqlite.WebhookEndpointRow
		switch ep, err = reads.WebhookEndpoint(ctx, sc.StoreID, sc.Mode, row.EndpointID); {
		case errors.Is(err, domain.ErrNotFound):
			err = errWebhookDeliveryNotFound
		case err == nil && ep.Disabled:
			err = errWebhookEndpointDisabled
		}
	} else if errors.Is(err, domain.ErrNotFound) {
		err = errWebhookDeliveryNotFound
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	d, seq, err := a.requestDeliveryRetry(ctx, sc, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if a.cfg.WakeWebhooks != nil {
		a.cfg.WakeWebhooks()
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusAccepted, data{webhookDeliveryObject(sc, d)})
}

// requestDeliveryRetry appends webhook_delivery_retry_requested with the delivery's last sequence as
// expectation, deciding again from the log after a concurrent change (an attempt recorded meanwhile).
func (a *API) requestDeliveryRetry(ctx context.Context, sc Scope, id string) (domain.WebhookDelivery, uint64, error) {
	agg := domain.WebhookDeliveryAggregate(sc.Mode, sc.StoreID, id)
	for attempt := 0; ; attempt++ {
		evs, _, err := a.cfg.Events.Load(ctx, agg)
		if err != nil {
			return domain.WebhookDelivery{}, 0, err
		}
		d := domain.FoldWebhookDelivery(evs)
		now := a.cfg.Now().UTC()
		p, err := d.RequestRetry(now)
		if errors.Is(err, domain.ErrWebhookDeliveryUnknown) {
			return d, 0, errWebhookDeliveryNotFound
		}
		if err != nil {
			return d, 0, err
		}
		e := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: requestID(ctx), Payload: p}
		seq, err := a.cfg.Events.Append(ctx, d.Version, e)
		if errors.Is(err, domain.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return d, 0, err
		}
		e.Sequence = seq
		return d.Evolve(e), seq, nil
	}
}
