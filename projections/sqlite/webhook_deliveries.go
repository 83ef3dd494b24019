package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// The webhook deliveries read model keeps each delivery's folded state (domain.WebhookDelivery as JSON)
// for the delivery log (GET /v1/webhook_endpoints/{id}/deliveries) and, in due_at, when a replica may
// claim its next attempt: the later of when it is due and when the lease of whoever owns it ends, NULL
// once it is no longer pending. seq, the rowid, is the order deliveries were scheduled in; the log lists
// them newest first by it. Deliveries outlive their endpoint (the log is history), but no API reaches
// them once it is deleted.
//
// An endpoint's failing_since (on webhook_endpoints) is when the first attempt failed since its last
// successful one, in unix microseconds, NULL after a success or when the endpoint is enabled again: the
// dispatcher disables an endpoint failing for 5 days by it.
const webhookDeliveriesSchema = `
CREATE TABLE IF NOT EXISTS webhook_deliveries (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT NOT NULL UNIQUE,
	store_id    TEXT NOT NULL,
	mode        TEXT NOT NULL,
	endpoint_id TEXT NOT NULL,
	due_at      INTEGER, -- unix microseconds, NULL unless pending
	doc         TEXT NOT NULL,
	version     INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, seq);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (due_at) WHERE due_at IS NOT NULL;
`

const (
	sqlSelectWebhookDeliveryDoc = `SELECT doc FROM webhook_deliveries WHERE id = ?`
	sqlUpsertWebhookDelivery    = `INSERT INTO webhook_deliveries (id, store_id, mode, endpoint_id, due_at, doc, version) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, doc = excluded.doc, version = excluded.version`
	sqlEndpointSucceeded = `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?`
	sqlEndpointFailed    = `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, ?) WHERE id = ?`
)

func foldWebhookDelivery(b *batchTx, e events.Envelope) error {
	var (
		d   domain.WebhookDelivery
		doc string
	)
	switch err := b.queryRow(sqlSelectWebhookDeliveryDoc, e.Aggregate.ID).Scan(&doc); {
	case err == nil:
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			return fmt.Errorf("webhook delivery %s: stored state: %w", e.Aggregate.ID, err)
		}
	case errors.Is(err, sql.ErrNoRows):
		if _, ok := e.Payload.(events.WebhookDeliveryScheduled); !ok {
			return fmt.Errorf("%s for webhook delivery %s, which was never scheduled", e.Type(), e.Aggregate.ID)
		}
	default:
		return err
	}
	d = d.Evolve(e)
	if a, ok := e.Payload.(events.WebhookDeliveryAttempted); ok {
		var err error
		if a.Success {
			err = b.exec(sqlEndpointSucceeded, d.EndpointID)
		} else {
			err = b.exec(sqlEndpointFailed, a.At.UTC().UnixMicro(), d.EndpointID)
		}
		if err != nil {
			return err
		}
	}
	out, err := json.Marshal(d)
	if err != nil {
		return err
	}
	var due any // NULL: nothing to claim
	if d.Status == domain.DeliveryPending {
		due = later(d.NextAttemptAt, d.LeaseUntil).UTC().UnixMicro()
	}
	return b.exec(sqlUpsertWebhookDelivery, d.ID, e.Aggregate.StoreID, e.Aggregate.Mode, d.EndpointID, due, string(out), d.Version)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// WebhookDeliveryRow is a delivery as the delivery log shows it, with its store and mode.
type WebhookDeliveryRow struct {
	domain.WebhookDelivery
	StoreID, Mode string
	Seq           int64
}

const webhookDeliveryCols = `seq, store_id, mode, doc`

func scanWebhookDelivery(scan func(...any) error) (WebhookDeliveryRow, error) {
	var (
		r   WebhookDeliveryRow
		doc string
	)
	if err := scan(&r.Seq, &r.StoreID, &r.Mode, &doc); err != nil {
		return r, err
	}
	return r, json.Unmarshal([]byte(doc), &r.WebhookDelivery)
}

// WebhookDelivery returns one delivery of a store and mode; another store's or mode's is
// domain.ErrNotFound.
func (s *Store) WebhookDelivery(ctx context.Context, storeID, mode, id string) (WebhookDeliveryRow, error) {
	r, err := scanWebhookDelivery(s.queryRow(ctx, `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries WHERE id = ? AND store_id = ? AND mode = ?`, id, storeID, mode).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return WebhookDeliveryRow{}, domain.ErrNotFound
	}
	return r, err
}

// ClaimableWebhookDeliveries lists up to limit pending deliveries whose next attempt a replica may claim
// at now (domain.WebhookDelivery.Claimable), those waiting longest first, at most perEndpoint of each
// endpoint (so that one endpoint's backlog never crowds out the others'), leaving out the endpoints in
// skipEndpoints (the caller has no room for more of theirs).
func (s *Store) ClaimableWebhookDeliveries(ctx context.Context, now time.Time, limit, perEndpoint int, skipEndpoints []string) ([]WebhookDeliveryRow, error) {
	where := `due_at IS NOT NULL AND due_at <= ?`
	args := []any{now.UTC().UnixMicro()}
	if len(skipEndpoints) > 0 {
		where += ` AND endpoint_id NOT IN (?` + strings.Repeat(`, ?`, len(skipEndpoints)-1) + `)`
		for _, id := range skipEndpoints {
			args = append(args, id)
		}
	}
	q := `SELECT ` + webhookDeliveryCols + ` FROM (SELECT ` + webhookDeliveryCols + `, due_at,
		row_number() OVER (PARTITION BY endpoint_id ORDER BY due_at) AS n FROM webhook_deliveries WHERE ` + where + `)
		WHERE n <= ? ORDER BY due_at LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, perEndpoint, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebhookDeliveryRow
	for rows.Next() {
		r, err := scanWebhookDelivery(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// WebhookDeliveryFilter selects and pages one endpoint's deliveries. StoreID, Mode and EndpointID are
// always applied.
type WebhookDeliveryFilter struct {
	StoreID, Mode, EndpointID string
	SeqPage
}

func listWebhookDeliveriesQuery(f WebhookDeliveryFilter) (string, []any) {
	return seqListQuery("webhook_deliveries", webhookDeliveryCols, []string{"endpoint_id = ?", "store_id = ?", "mode = ?"},
		[]any{f.EndpointID, f.StoreID, f.Mode}, f.SeqPage)
}

// HasWebhookDeliveries tells whether any delivery matches f at its position (Limit aside).
func (s *Store) HasWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) (bool, error) {
	f.Limit = 0 // LIMIT 1
	q, args := listWebhookDeliveriesQuery(f)
	return s.anyRow(ctx, q, args)
}

// ListWebhookDeliveries returns up to Limit deliveries, newest first, and whether more exist beyond them
// in the direction of travel.
func (s *Store) ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDeliveryRow, bool, error) {
	q, args := listWebhookDeliveriesQuery(f)
	return listPage(ctx, s, q, args, f.Limit, f.Before > 0, scanWebhookDelivery)
}
