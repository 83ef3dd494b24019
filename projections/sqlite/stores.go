package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

const (
	sqlInsertStore = `INSERT INTO stores
		(id, name, slug, service_fee_percent, settlement_delay_days, abandon_after_minutes, created_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertAPIKey = `INSERT INTO api_keys (hash, store_id, mode, prefix, last4) VALUES (?, ?, ?, ?, ?)`
)

func foldStoreCreated(b *batchTx, e events.Envelope, p events.StoreCreated) error {
	err := b.exec(sqlInsertStore,
		p.StoreID, p.Name, p.Slug, p.ServiceFeePercent, p.SettlementDelayDays, p.AbandonAfterMinutes,
		e.Time.UTC().Format(time.RFC3339Nano), e.Sequence)
	if err != nil {
		return err
	}
	for _, k := range p.Keys {
		if err := b.exec(sqlInsertAPIKey,
			k.Hash, p.StoreID, k.Mode, k.Prefix, k.Last4); err != nil {
			return err
		}
	}
	return nil
}

// StoreRow is a store as the read model holds it.
type StoreRow struct {
	ID                  string
	Name                string
	Slug                string
	ServiceFeePercent   string
	SettlementDelayDays int
	AbandonAfterMinutes int
	CreatedAt           time.Time
}

// KeyScope is what an API key grants: one store, one mode.
type KeyScope struct {
	StoreID string
	Mode    string
}

// KeyScope looks up the store and mode of a key by the key's SHA-256 hash. Unknown hashes are
// domain.ErrNotFound.
func (s *Store) KeyScope(ctx context.Context, hash string) (KeyScope, error) {
	var k KeyScope
	err := s.queryRow(ctx, `SELECT store_id, mode FROM api_keys WHERE hash = ?`, hash).Scan(&k.StoreID, &k.Mode)
	if errors.Is(err, sql.ErrNoRows) {
		return KeyScope{}, domain.ErrNotFound
	}
	return k, err
}

// Store returns one store by id; unknown ids are domain.ErrNotFound.
func (s *Store) Store(ctx context.Context, id string) (StoreRow, error) {
	var (
		r       StoreRow
		created string
	)
	err := s.queryRow(ctx, `SELECT id, name, slug, service_fee_percent, settlement_delay_days, abandon_after_minutes, created_at
		FROM stores WHERE id = ?`, id).Scan(&r.ID, &r.Name, &r.Slug, &r.ServiceFeePercent, &r.SettlementDelayDays, &r.AbandonAfterMinutes, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return StoreRow{}, domain.ErrNotFound
	}
	if err != nil {
		return StoreRow{}, err
	}
	r.CreatedAt, err = time.Parse(time.RFC3339Nano, created)
	return r, err
}

// Dump returns every row of every read-model table except the checkpoint, as text, in a stable order.
// Tests compare a rebuilt store with the live one through it.
func (s *Store) Dump(ctx context.Context) (map[string][]string, error) {
	tables := map[string]string{
		"stores":             `SELECT id, name, slug, service_fee_percent, settlement_delay_days, abandon_after_minutes, created_at, version FROM stores ORDER BY id`,
		"api_keys":           `SELECT hash, store_id, mode, prefix, last4 FROM api_keys ORDER BY hash`,
		"sales":              `SELECT id, store_id, mode, status, customer_id, customer_email, created_at, due_at, doc, version, gateway, transaction_id FROM sales ORDER BY id`,
		"licences":           `SELECT id, key, store_id, mode, sale_id, max_activations, activations, revoked, expires_at FROM licences ORDER BY id`,
		"customers":          `SELECT seq, id, store_id, mode, email, created_at, doc, version, completed_sales, spent, first_purchase_at, last_purchase_at FROM customers ORDER BY seq`,
		"customers_fts":      `SELECT rowid, name, email, phone FROM customers_fts ORDER BY rowid`,
		"webhook_endpoints":  `SELECT seq, id, store_id, mode, doc, version, failing_since FROM webhook_endpoints ORDER BY seq`,
		"webhook_deliveries": `SELECT seq, id, store_id, mode, endpoint_id, due_at, doc, version FROM webhook_deliveries ORDER BY seq`,
	}
	out := map[string][]string{}
	for name, q := range tables {
		rows, err := s.r.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			out[name] = append(out[name], fmtRow(vals))
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fmtRow(vals []any) string {
	b := make([]byte, 0, 64)
	for i, v := range vals {
		if i > 0 {
			b = append(b, '|')
		}
		b = fmt.Appendf(b, "%v", v)
	}
	return string(b)
}
