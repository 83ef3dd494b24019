package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// The sales read model keeps each sale's folded state (domain.Sale as JSON, folded by the domain's own
// Evolve, so the read model and the write side never disagree on what an event means) plus the columns
// every list filter needs, each with an index that serves the filter and the newest-first order
// together: a list never sorts or scans outside its page.
const salesSchema = `
CREATE TABLE IF NOT EXISTS sales (
	id             TEXT PRIMARY KEY,
	store_id       TEXT NOT NULL,
	mode           TEXT NOT NULL,
	status         TEXT NOT NULL,
	customer_id    TEXT NOT NULL,
	customer_email TEXT NOT NULL,
	created_at     INTEGER NOT NULL, -- unix microseconds, UTC
	due_at         INTEGER,          -- unix microseconds of the next timer action (abandon or settle), NULL if none
	doc            TEXT NOT NULL,
	version        INTEGER NOT NULL,
	-- The gateway and its id for the payment that completed the sale ('' before): refunds and disputes
	-- name the charge, not the sale, and find it here.
	gateway        TEXT NOT NULL DEFAULT '',
	transaction_id TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX IF NOT EXISTS sales_by_transaction ON sales (gateway, transaction_id) WHERE transaction_id != '';
CREATE INDEX IF NOT EXISTS sales_due ON sales (due_at) WHERE due_at IS NOT NULL;
-- The trailing columns let a search test every filter inside the index it walks (see ListSales).
CREATE INDEX IF NOT EXISTS sales_by_time     ON sales (store_id, mode, created_at, id, customer_email);
CREATE INDEX IF NOT EXISTS sales_by_status   ON sales (store_id, mode, status, created_at, id, customer_email);
CREATE INDEX IF NOT EXISTS sales_by_customer ON sales (store_id, mode, customer_id, created_at, id);
CREATE INDEX IF NOT EXISTS sales_by_email    ON sales (store_id, mode, customer_email, created_at, id, status);

`

const (
	sqlSelectSaleDoc = `SELECT doc FROM sales WHERE id = ?`
	sqlUpsertSale    = `INSERT INTO sales (id, store_id, mode, status, customer_id, customer_email, created_at, due_at, doc, version, gateway, transaction_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, due_at = excluded.due_at, doc = excluded.doc, version = excluded.version,
			gateway = excluded.gateway, transaction_id = excluded.transaction_id`
)

// batchSale is a sale as a batch left it (batchTx.sales): its store and mode, and whether it changed
// since it was last written.
type batchSale struct {
	sale          domain.Sale
	storeID, mode string
	dirty         bool
}

func foldSale(b *batchTx, e events.Envelope) error {
	cur, ok := b.sales[e.Aggregate.ID]
	if !ok {
		cur = &batchSale{storeID: e.Aggregate.StoreID, mode: e.Aggregate.Mode}
		var doc string
		switch err := b.queryRow(sqlSelectSaleDoc, e.Aggregate.ID).Scan(&doc); {
		case err == nil:
			if err := json.Unmarshal([]byte(doc), &cur.sale); err != nil {
				return fmt.Errorf("sale %s: stored state: %w", e.Aggregate.ID, err)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		b.sales[e.Aggregate.ID] = cur
		b.order = append(b.order, e.Aggregate.ID)
	}
	s := cur.sale.Evolve(e)
	if s.ID == "" {
		return fmt.Errorf("%s for sale %s, which has not started", e.Type(), e.Aggregate.ID)
	}
	cur.sale, cur.dirty = s, true
	switch p := e.Payload.(type) {
	case events.SaleCompleted:
		return foldPurchase(b, s, s.Started.Amount.Amount)
	case events.RefundRecorded:
		return foldPurchase(b, s, -p.Amount.Amount) // totals are net of refunds
	}
	return nil
}

// flushSales writes the batch's changed sales, each once, in the order the batch first folded them.
func (b *batchTx) flushSales() error {
	for _, id := range b.order {
		cur := b.sales[id]
		if !cur.dirty {
			continue
		}
		s := cur.sale
		out, err := json.Marshal(s)
		if err != nil {
			return err
		}
		var due any // NULL: no timer action pending
		if at := s.DueAt(); !at.IsZero() {
			due = at.UTC().UnixMicro()
		}
		var gateway, txn string
		if p := s.Payment; p != nil && p.Status == "success" {
			gateway, txn = p.Gateway, p.TransactionID
		}
		if err := b.exec(sqlUpsertSale, s.ID, cur.storeID, cur.mode, s.Status, s.Started.BuyerID(),
			s.Started.Customer.Email, s.CreatedAt.UTC().UnixMicro(), due, string(out), s.Version, gateway, txn); err != nil {
			return err
		}
		cur.dirty = false
	}
	return nil
}

// SaleByTransaction finds the sale a gateway's payment completed, by the gateway's name and the id it
// gave the payment (Stripe's PaymentIntent, Paystack's reference): refunds and disputes name the
// charge, not the sale. Unknown: domain.ErrNotFound.
func (s *Store) SaleByTransaction(ctx context.Context, gateway, transactionID string) (sale domain.Sale, storeID, mode string, err error) {
	var id string
	err = s.queryRow(ctx, `SELECT id FROM sales WHERE gateway = ? AND transaction_id = ? AND transaction_id != '' LIMIT 1`, gateway, transactionID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Sale{}, "", "", domain.ErrNotFound
	}
	if err != nil {
		return domain.Sale{}, "", "", err
	}
	return s.SaleByID(ctx, id)
}

// SaleRef locates a sale.
type SaleRef struct {
	ID, StoreID, Mode string
}

// DueSales lists up to limit sales whose timer action (abandon an unpaid checkout, settle a due
// settlement) is due at now.
func (s *Store) DueSales(ctx context.Context, now time.Time, limit int) ([]SaleRef, error) {
	rows, err := s.query(ctx, `SELECT id, store_id, mode FROM sales WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?`,
		now.UTC().UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SaleRef
	for rows.Next() {
		var r SaleRef
		if err := rows.Scan(&r.ID, &r.StoreID, &r.Mode); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Sale returns one sale of a store and mode; a sale of another store or mode is domain.ErrNotFound.
func (s *Store) Sale(ctx context.Context, storeID, mode, id string) (domain.Sale, error) {
	var doc string
	err := s.queryRow(ctx, `SELECT doc FROM sales WHERE id = ? AND store_id = ? AND mode = ?`, id, storeID, mode).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Sale{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Sale{}, err
	}
	var sale domain.Sale
	return sale, json.Unmarshal([]byte(doc), &sale)
}

// Position is a place in the newest-first order of a list: the item's creation time and id.
type Position struct {
	CreatedAt int64  // unix microseconds
	ID        string // tie-breaker among sales created in the same microsecond
}

// SaleFilter selects and pages sales. StoreID and Mode are always applied.
type SaleFilter struct {
	StoreID, Mode string
	Status        string
	CustomerID    string
	// Search is a sale id (exact) or the start of a customer email (case-insensitive).
	Search string
	// From and To bound created_at, inclusive; zero means unbounded.
	From, To time.Time
	// After continues the list after this position (older items); Before goes back (newer items).
	After, Before *Position
	// Inclusive makes After and Before include the position itself: the cursor an empty page hands
	// out, whose anchor may still exist (see PageLinks).
	Inclusive bool
	Limit     int
}

// At is f paged at c, as a client's cursor asks (nil: the top of the list).
func (f SaleFilter) At(c *Cursor[Position]) SaleFilter {
	f.After, f.Before, f.Inclusive = nil, nil, false
	if c != nil {
		at := c.At
		if c.Back {
			f.Before = &at
		} else {
			f.After = &at
		}
		f.Inclusive = c.Inclusive
	}
	return f
}

// HasSales tells whether any sale matches f at its position (Limit aside): one row of the index
// ListSales would walk.
func (s *Store) HasSales(ctx context.Context, f SaleFilter) (bool, error) {
	f.Limit = 0 // LIMIT 1
	q, args, err := s.listQuery(ctx, f)
	if err != nil {
		return false, err
	}
	return s.anyRow(ctx, q, args)
}

// ListSales returns up to Limit sales, newest first, and whether more exist beyond them in the
// direction of travel. Every filter is served by an index together with the order; see listQuery.
func (s *Store) ListSales(ctx context.Context, f SaleFilter) ([]domain.Sale, bool, error) {
	q, args, err := s.listQuery(ctx, f)
	if err != nil {
		return nil, false, err
	}
	return listPage(ctx, s, q, args, f.Limit, f.Before != nil, func(scan func(...any) error) (domain.Sale, error) {
		var doc string
		var sale domain.Sale
		if err := scan(&doc); err != nil {
			return sale, err
		}
		return sale, json.Unmarshal([]byte(doc), &sale)
	})
}

// broadSearch is the number of sales an email prefix must match for a search to walk the list order
// and test the email inside the index, rather than sort the prefix's matches: at that density a page
// of matches turns up within a few thousand index entries, and sorting more keys costs more.
const broadSearch = 4000

// listQuery builds ListSales' statement (docs/benchmarks.md has the plans and their timings):
//
//   - The cursor, not a date bound it implies, bounds the index range: a page deep inside a long date
//     range starts at the cursor instead of reading down from end_date.
//   - With customer_id, the email terms are kept out of index selection (unary +): the customer's few
//     sales are filtered, instead of a broad prefix's many being sorted.
//   - An email prefix first counts its matches in sales_by_email, capped at broadSearch. Below the cap
//     the page's keys come from sales_by_email (at most broadSearch keys sorted); at the cap, from the
//     list order (sales_by_status or sales_by_time), the email tested inside the index. Documents are
//     read for the page's keys only.
func (s *Store) listQuery(ctx context.Context, f SaleFilter) (string, []any, error) {
	where := []string{"store_id = ?", "mode = ?"}
	args := []any{f.StoreID, f.Mode}
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.CustomerID != "" {
		add("customer_id = ?", f.CustomerID)
	}
	index := "" // the planner's choice
	// An email is searched in its canonical form (whichever form, Unicode or Punycode, the term is in).
	if q := domain.NormalizeEmail(f.Search); q != "" {
		upper := q + "\U0010FFFF"
		switch {
		case strings.HasPrefix(q, domain.PrefixSale):
			add("id = ?", strings.TrimSpace(f.Search))
		case f.CustomerID != "":
			add("+customer_email >= ? AND +customer_email < ?", q, upper)
		default:
			var n int
			err := s.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM sales INDEXED BY sales_by_email
				WHERE store_id = ? AND mode = ? AND customer_email >= ? AND customer_email < ? LIMIT `+strconv.Itoa(broadSearch)+`)`,
				f.StoreID, f.Mode, q, upper).Scan(&n)
			if err != nil {
				return "", nil, err
			}
			switch {
			case n < broadSearch:
				index = "sales_by_email"
			case f.Status != "":
				index = "sales_by_status"
			default:
				index = "sales_by_time"
			}
			add("customer_email >= ? AND customer_email < ?", q, upper)
		}
	}
	if from := f.From.UTC().UnixMicro(); !f.From.IsZero() && (f.Before == nil || f.Before.CreatedAt < from) {
		add("created_at >= ?", from)
	}
	if to := f.To.UTC().UnixMicro(); !f.To.IsZero() && (f.After == nil || f.After.CreatedAt > to) {
		add("created_at <= ?", to)
	}
	order := "created_at DESC, id DESC"
	lt, gt := "<", ">"
	if f.Inclusive {
		lt, gt = "<=", ">="
	}
	switch {
	case f.After != nil:
		add("(created_at, id) "+lt+" (?, ?)", f.After.CreatedAt, f.After.ID)
	case f.Before != nil:
		add("(created_at, id) "+gt+" (?, ?)", f.Before.CreatedAt, f.Before.ID)
		order = "created_at ASC, id ASC"
	}
	args = append(args, f.Limit+1)
	cond := strings.Join(where, " AND ")
	if index == "" {
		return `SELECT doc FROM sales WHERE ` + cond + ` ORDER BY ` + order + ` LIMIT ?`, args, nil
	}
	return `SELECT doc FROM sales WHERE rowid IN (SELECT rowid FROM sales INDEXED BY ` + index + ` WHERE ` + cond +
		` ORDER BY ` + order + ` LIMIT ?) ORDER BY ` + order, args, nil
}

// SaleByID reads a sale whatever store and mode it belongs to, with them: for callers that are not a
// store's client (the payment processor).
func (s *Store) SaleByID(ctx context.Context, id string) (sale domain.Sale, storeID, mode string, err error) {
	var doc string
	err = s.queryRow(ctx, `SELECT store_id, mode, doc FROM sales WHERE id = ?`, id).Scan(&storeID, &mode, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Sale{}, "", "", domain.ErrNotFound
	}
	if err != nil {
		return domain.Sale{}, "", "", err
	}
	if err := json.Unmarshal([]byte(doc), &sale); err != nil {
		return domain.Sale{}, "", "", err
	}
	return sale, storeID, mode, nil
}

// SaleScope returns the store and mode of a sale; unknown sales are domain.ErrNotFound.
func (s *Store) SaleScope(ctx context.Context, id string) (storeID, mode string, err error) {
	err = s.queryRow(ctx, `SELECT store_id, mode FROM sales WHERE id = ?`, id).Scan(&storeID, &mode)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", domain.ErrNotFound
	}
	return storeID, mode, err
}
