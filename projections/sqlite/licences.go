package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Licences read model: how a licence key is found, and what a sale's post_purchase shows. Commands on a
// licence read the aggregate from the log; this table is for lookups and display.
const licencesSchema = `
CREATE TABLE IF NOT EXISTS licences (
	id              TEXT PRIMARY KEY,
	key             TEXT NOT NULL UNIQUE,
	store_id        TEXT NOT NULL,
	mode            TEXT NOT NULL,
	sale_id         TEXT NOT NULL,
	max_activations INTEGER NOT NULL,
	activations     INTEGER NOT NULL,
	revoked         INTEGER NOT NULL,
	expires_at      INTEGER -- unix microseconds, NULL for lifetime licences
) STRICT;
CREATE INDEX IF NOT EXISTS licences_by_sale ON licences (sale_id);
`

const (
	sqlInsertLicence   = `INSERT INTO licences (id, key, store_id, mode, sale_id, max_activations, activations, revoked, expires_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)`
	sqlLicenceActivity = `UPDATE licences SET activations = activations + ? WHERE id = ?`
	sqlRevokeLicence   = `UPDATE licences SET revoked = 1 WHERE id = ?`
)

func foldLicence(b *batchTx, e events.Envelope) error {
	switch p := e.Payload.(type) {
	case events.LicenceIssued:
		var exp any
		if p.ExpiresAt != nil {
			exp = p.ExpiresAt.UTC().UnixMicro()
		}
		return b.exec(sqlInsertLicence, p.LicenceID, p.Key, e.Aggregate.StoreID, e.Aggregate.Mode, p.SaleID, p.MaxActivations, exp)
	case events.LicenceActivated:
		return b.exec(sqlLicenceActivity, 1, e.Aggregate.ID)
	case events.LicenceDeactivated:
		return b.exec(sqlLicenceActivity, -1, e.Aggregate.ID)
	case events.LicenceRevoked:
		return b.exec(sqlRevokeLicence, e.Aggregate.ID)
	}
	return nil
}

// LicenceRow is a licence as the read model shows it.
type LicenceRow struct {
	ID, Key, StoreID, Mode, SaleID string
	MaxActivations, Activations    int
	Revoked                        bool
	ExpiresAt                      *time.Time
}

const licenceCols = `id, key, store_id, mode, sale_id, max_activations, activations, revoked, expires_at`

func scanLicence(sc interface{ Scan(...any) error }) (LicenceRow, error) {
	var (
		l   LicenceRow
		rev int
		exp sql.NullInt64
	)
	if err := sc.Scan(&l.ID, &l.Key, &l.StoreID, &l.Mode, &l.SaleID, &l.MaxActivations, &l.Activations, &rev, &exp); err != nil {
		return l, err
	}
	l.Revoked = rev == 1
	if exp.Valid {
		t := time.UnixMicro(exp.Int64).UTC()
		l.ExpiresAt = &t
	}
	return l, nil
}

// LicenceByKey finds a licence of a store and mode by its key.
func (s *Store) LicenceByKey(ctx context.Context, storeID, mode, key string) (LicenceRow, error) {
	l, err := scanLicence(s.queryRow(ctx, `SELECT `+licenceCols+` FROM licences WHERE key = ? AND store_id = ? AND mode = ?`, key, storeID, mode))
	if errors.Is(err, sql.ErrNoRows) {
		return LicenceRow{}, domain.ErrNotFound
	}
	return l, err
}

// LicencesOfSale lists the licences a sale issued.
func (s *Store) LicencesOfSale(ctx context.Context, saleID string) ([]LicenceRow, error) {
	rows, err := s.query(ctx, `SELECT `+licenceCols+` FROM licences WHERE sale_id = ? ORDER BY id`, saleID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LicenceRow
	for rows.Next() {
		l, err := scanLicence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
