package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// The webhook endpoints read model keeps each endpoint's folded state (domain.WebhookEndpoint as JSON,
// which never carries its secrets: they stay sealed in the log, where deleting the endpoint shreds them)
// and the columns lists need. seq, the rowid, is the order endpoints were created in: lists run newest
// first by it. A deleted endpoint's row is removed.
const webhookEndpointsSchema = `
CREATE TABLE IF NOT EXISTS webhook_endpoints (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so a cursor never lands on another endpoint
	id       TEXT NOT NULL UNIQUE,
	store_id TEXT NOT NULL,
	mode     TEXT NOT NULL,
	doc      TEXT NOT NULL,
	version  INTEGER NOT NULL,
	failing_since INTEGER -- unix microseconds (webhook_deliveries.go)
) STRICT;
CREATE INDEX IF NOT EXISTS webhook_endpoints_by_scope ON webhook_endpoints (store_id, mode, seq);
`

const (
	sqlSelectWebhookEndpointDoc = `SELECT doc FROM webhook_endpoints WHERE id = ?`
	sqlInsertWebhookEndpoint    = `INSERT INTO webhook_endpoints (id, store_id, mode, doc, version) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlUpdateWebhookEndpoint = `UPDATE webhook_endpoints SET doc = ?, version = ? WHERE id = ?`
	sqlEnableWebhookEndpoint = `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?`
	sqlDeleteWebhookEndpoint = `DELETE FROM webhook_endpoints WHERE id = ?`
)

func foldWebhookEndpoint(b *batchTx, e events.Envelope) error {
	var (
		w   domain.WebhookEndpoint
		doc string
	)
	known := true
	switch err := b.queryRow(sqlSelectWebhookEndpointDoc, e.Aggregate.ID).Scan(&doc); {
	case err == nil:
		if err := json.Unmarshal([]byte(doc), &w); err != nil {
			return fmt.Errorf("webhook endpoint %s: stored state: %w", e.Aggregate.ID, err)
		}
	case errors.Is(err, sql.ErrNoRows):
		known = false
		switch e.Payload.(type) {
		case events.WebhookEndpointCreated:
		case events.WebhookEndpointDeleted:
			return nil
		default:
			return fmt.Errorf("%s for webhook endpoint %s, which was never created", e.Type(), e.Aggregate.ID)
		}
	default:
		return err
	}
	w = w.Evolve(e)
	if w.Deleted {
		return b.exec(sqlDeleteWebhookEndpoint, w.ID)
	}
	out, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if !known {
		return b.exec(sqlInsertWebhookEndpoint, w.ID, e.Aggregate.StoreID, e.Aggregate.Mode, string(out), w.Version)
	}
	if u, ok := e.Payload.(events.WebhookEndpointUpdated); ok && (u.Disabled != nil && !*u.Disabled || u.URL != nil) {
		// Enabled again, or another receiver: its failures start over.
		if err := b.exec(sqlEnableWebhookEndpoint, w.ID); err != nil {
			return err
		}
	}
	return b.exec(sqlUpdateWebhookEndpoint, string(out), w.Version, w.ID)
}

// WebhookEndpointRow is an endpoint as the API shows it (without its secrets), and since when every
// attempt to it failed (zero: its last attempt succeeded, or none failed since it was enabled).
type WebhookEndpointRow struct {
	domain.WebhookEndpoint
	StoreID, Mode string
	Seq           int64
	FailingSince  time.Time
}

const webhookEndpointCols = `seq, store_id, mode, doc, failing_since`

func scanWebhookEndpoint(scan func(...any) error) (WebhookEndpointRow, error) {
	var (
		r       WebhookEndpointRow
		doc     string
		failing sql.NullInt64
	)
	if err := scan(&r.Seq, &r.StoreID, &r.Mode, &doc, &failing); err != nil {
		return r, err
	}
	if failing.Valid {
		r.FailingSince = time.UnixMicro(failing.Int64).UTC()
	}
	return r, json.Unmarshal([]byte(doc), &r.WebhookEndpoint)
}

// WebhookEndpointsOf returns every endpoint of a store and mode, oldest first: the candidates for an
// outgoing event (webhooksout.Recipients chooses among them). The webhook dispatcher asks for every sale,
// customer and licence event, and most stores have no endpoint: that answer is remembered until a batch
// that changes an endpoint commits, so it costs no query.
func (s *Store) WebhookEndpointsOf(ctx context.Context, storeID, mode string) ([]WebhookEndpointRow, error) {
	key := storeID + "|" + mode
	gen := s.endpointsGen.Load() // before the query: a change committed after it makes "none" stale
	if g, ok := s.noEndpoints.Load(key); ok && g.(uint64) == gen {
		return nil, nil
	}
	rows, err := s.query(ctx, `SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE store_id = ? AND mode = ? ORDER BY seq`, storeID, mode)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebhookEndpointRow
	for rows.Next() {
		r, err := scanWebhookEndpoint(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		s.noEndpoints.Store(key, gen)
	}
	return out, nil
}

// WebhookEndpoint returns one endpoint of a store and mode; another store's, another mode's or a deleted
// one is domain.ErrNotFound.
func (s *Store) WebhookEndpoint(ctx context.Context, storeID, mode, id string) (WebhookEndpointRow, error) {
	r, err := scanWebhookEndpoint(s.queryRow(ctx, `SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE id = ? AND store_id = ? AND mode = ?`, id, storeID, mode).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return WebhookEndpointRow{}, domain.ErrNotFound
	}
	return r, err
}

// WebhookEndpointFilter selects and pages endpoints. StoreID and Mode are always applied.
type WebhookEndpointFilter struct {
	StoreID, Mode string
	SeqPage
}

func listWebhookEndpointsQuery(f WebhookEndpointFilter) (string, []any) {
	return seqListQuery("webhook_endpoints", webhookEndpointCols, []string{"store_id = ?", "mode = ?"}, []any{f.StoreID, f.Mode}, f.SeqPage)
}

// HasWebhookEndpoints tells whether any endpoint matches f at its position (Limit aside).
func (s *Store) HasWebhookEndpoints(ctx context.Context, f WebhookEndpointFilter) (bool, error) {
	f.Limit = 0 // LIMIT 1
	q, args := listWebhookEndpointsQuery(f)
	return s.anyRow(ctx, q, args)
}

// ListWebhookEndpoints returns up to Limit endpoints, newest first, and whether more exist beyond them
// in the direction of travel.
func (s *Store) ListWebhookEndpoints(ctx context.Context, f WebhookEndpointFilter) ([]WebhookEndpointRow, bool, error) {
	q, args := listWebhookEndpointsQuery(f)
	return listPage(ctx, s, q, args, f.Limit, f.Before > 0, scanWebhookEndpoint)
}
