package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// The customers read model keeps each customer's folded state (domain.Customer as JSON), the columns
// the list filters need, and what a support agent wants at a glance: completed sales, total spent per
// currency, first and last purchase. seq, the rowid, is the order customers were registered in the log:
// lists run newest first by it, and the search index (FTS5 with the trigram tokenizer, so any fragment
// of three characters or more is an index lookup) shares it as its rowid.
const customersSchema = `
CREATE TABLE IF NOT EXISTS customers (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so a cursor never lands on another customer
	id                TEXT NOT NULL UNIQUE,
	store_id          TEXT NOT NULL,
	mode              TEXT NOT NULL,
	email             TEXT NOT NULL, -- canonical (domain.NormalizeEmail), whatever form older events kept
	created_at        INTEGER NOT NULL, -- unix microseconds, UTC
	doc               TEXT NOT NULL,
	version           INTEGER NOT NULL,
	completed_sales   INTEGER NOT NULL DEFAULT 0,
	spent             TEXT NOT NULL DEFAULT '{}', -- {"USD": 12300, ...} minor units of completed sales
	first_purchase_at INTEGER,
	last_purchase_at  INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS customers_by_scope ON customers (store_id, mode);
CREATE INDEX IF NOT EXISTS customers_by_time  ON customers (store_id, mode, created_at);
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (store_id, mode, email);
CREATE VIRTUAL TABLE IF NOT EXISTS customers_fts USING fts5(name, email, phone, tokenize = 'trigram');
`

const (
	sqlSelectCustomerDoc = `SELECT seq, doc FROM customers WHERE id = ?`
	sqlSelectCustomerRow = `SELECT seq, doc, completed_sales, spent, first_purchase_at, last_purchase_at FROM customers WHERE id = ?`
	sqlInsertCustomer    = `INSERT INTO customers (id, store_id, mode, email, created_at, doc, version, completed_sales, spent, first_purchase_at, last_purchase_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	sqlUpdateCustomer = `UPDATE customers SET email = ?, doc = ?, version = ?, completed_sales = ?, spent = ?, first_purchase_at = ?, last_purchase_at = ?
		WHERE id = ?`
	sqlDeleteCustomer        = `DELETE FROM customers WHERE id = ?`
	sqlDeleteSearch          = `DELETE FROM customers_fts WHERE rowid = ?`
	sqlInsertSearch          = `INSERT INTO customers_fts (rowid, name, email, phone) VALUES (?, ?, ?, ?)`
	sqlSelectSalesOfCustomer = `SELECT doc FROM sales WHERE store_id = ? AND mode = ? AND customer_id = ?`
)

// batchCustomer is a customer's row as a batch left it (batchTx.customers): the folded customer and
// the purchase columns, written once by flushCustomers.
type batchCustomer struct {
	c             domain.Customer
	seq           int64 // the row's seq; 0 for a customer registered in this batch, not inserted yet
	storeID, mode string
	createdAt     int64 // unix microseconds, for the insert
	completed     int
	spent         string // the spent column as stored; decoded into totals on the first purchase
	totals        map[string]domain.Total
	first, last   sql.NullInt64
	dirty         bool // the doc changed: the row and its search entry are rewritten
	bought        bool // the purchase columns changed
}

// customer is the batch's copy of a customer's row, read on first use; nil if there is no row (never
// registered, or erased).
func (b *batchTx) customer(id string) (*batchCustomer, error) {
	if cur, ok := b.customers[id]; ok {
		return cur, nil
	}
	cur := &batchCustomer{}
	var doc string
	switch err := b.queryRow(sqlSelectCustomerRow, id).Scan(&cur.seq, &doc, &cur.completed, &cur.spent, &cur.first, &cur.last); {
	case errors.Is(err, sql.ErrNoRows):
		cur = nil
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal([]byte(doc), &cur.c); err != nil {
			return nil, fmt.Errorf("customer %s: stored state: %w", id, err)
		}
	}
	b.customers[id] = cur
	return cur, nil
}

// foldCustomer folds a customer event into the batch's copy of the customer. An erasure is written at
// once (eraseCustomer).
func foldCustomer(b *batchTx, e events.Envelope) error {
	if _, ok := e.Payload.(events.CustomerErased); ok {
		return eraseCustomer(b, e)
	}
	cur, err := b.customer(e.Aggregate.ID)
	if err != nil {
		return err
	}
	if cur == nil {
		if _, ok := e.Payload.(events.CustomerRegistered); !ok {
			return fmt.Errorf("%s for customer %s, who is not registered", e.Type(), e.Aggregate.ID)
		}
		// Rows are inserted in the order customers registered, as folding one event at a time does:
		// seq, the list order, is the same either way.
		cur = &batchCustomer{storeID: e.Aggregate.StoreID, mode: e.Aggregate.Mode, createdAt: e.Time.UTC().UnixMicro(), spent: "{}"}
		b.customers[e.Aggregate.ID] = cur
		b.customerOrder = append(b.customerOrder, e.Aggregate.ID)
	} else if !cur.dirty && !cur.bought {
		b.customerOrder = append(b.customerOrder, e.Aggregate.ID)
	}
	cur.c, cur.dirty = cur.c.Evolve(e), true
	return nil
}

// flushCustomers writes the batch's changed customers, each once, in the order they were first
// changed (registered, for new ones): the row (inserted for a new customer) and its search entry.
func (b *batchTx) flushCustomers() error {
	for _, id := range b.customerOrder {
		cur := b.customers[id]
		if cur == nil || (!cur.dirty && !cur.bought) {
			continue
		}
		if cur.bought {
			out, err := encodeSpent(cur.totals)
			if err != nil {
				return fmt.Errorf("customer %s: %w", id, err)
			}
			cur.spent = out
		}
		c := cur.c
		out, err := json.Marshal(c)
		if err != nil {
			return err
		}
		email := domain.NormalizeEmail(c.Fields.Email)
		if cur.seq == 0 {
			res, err := b.execResult(sqlInsertCustomer, c.ID, cur.storeID, cur.mode, email, cur.createdAt, string(out), c.Version,
				cur.completed, cur.spent, cur.first, cur.last)
			if err != nil {
				return err
			}
			if cur.seq, err = res.LastInsertId(); err != nil {
				return err
			}
		} else if err := b.exec(sqlUpdateCustomer, email, string(out), c.Version, cur.completed, cur.spent, cur.first, cur.last, c.ID); err != nil {
			return err
		}
		if cur.dirty {
			if err := b.exec(sqlDeleteSearch, cur.seq); err != nil {
				return err
			}
			// Indexed lower-cased (Unicode, by Go) and in NFC, and searched so: neither case nor the
			// Unicode form ever matters, whatever the script, for the trigram index and the scan of short
			// fragments alike. The email is indexed in its canonical form and as typed, the phone in the
			// forms people write it (domain.PhoneSearchText).
			if err := b.exec(sqlInsertSearch, cur.seq, searchFold(c.Name()), domain.EmailSearchText(c.Fields.Email, c.Fields.EmailAsTyped),
				domain.PhoneSearchText(c.Fields.Phone)); err != nil {
				return err
			}
		}
		cur.dirty, cur.bought = false, false
	}
	b.customerOrder = b.customerOrder[:0]
	return nil
}

// eraseCustomer removes an erased customer's row and search entry and anonymises their sales. The
// batch's customers are written first, so that rows are inserted (and seq taken) in the order customers
// registered, even by one registered and erased in this batch.
func eraseCustomer(b *batchTx, e events.Envelope) error {
	if err := b.flushCustomers(); err != nil {
		return err
	}
	var (
		c      domain.Customer
		rowSeq int64
		doc    string
	)
	switch err := b.queryRow(sqlSelectCustomerDoc, e.Aggregate.ID).Scan(&rowSeq, &doc); {
	case errors.Is(err, sql.ErrNoRows):
		return nil // erased before this store knew it: nothing to remove
	case err != nil:
		return err
	}
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		return fmt.Errorf("customer %s: stored state: %w", e.Aggregate.ID, err)
	}
	if err := b.exec(sqlDeleteSearch, rowSeq); err != nil {
		return err
	}
	if err := b.exec(sqlDeleteCustomer, c.ID); err != nil {
		return err
	}
	b.customers[c.ID] = nil // no row any more
	return anonymiseSales(b, e.Aggregate, c.ID)
}

// searchFold is the form names and search terms are compared in: NFC, lower case.
func searchFold(s string) string { return strings.ToLower(norm.NFC.String(s)) }

// anonymiseSales removes an erased customer's personal data from their sales, as a rebuild would find
// it: the customer's id stays, so the sales still count as theirs. A customer's sales are in the
// customer's store and mode (the sales_by_customer index finds them); the batch's own copies of them are
// anonymised too, and are what the batch writes at its end.
func anonymiseSales(b *batchTx, customer events.Aggregate, customerID string) error {
	rows, err := b.tx.QueryContext(b.ctx, sqlSelectSalesOfCustomer, customer.StoreID, customer.Mode, customerID)
	if err != nil {
		return err
	}
	var sales []domain.Sale
	for rows.Next() {
		var doc string
		var s domain.Sale
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(doc), &s); err != nil {
			rows.Close()
			return err
		}
		if cur, ok := b.sales[s.ID]; ok {
			s = cur.sale // the batch's copy is the newer one
		}
		sales = append(sales, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, cur := range b.sales { // started in this batch, not written yet
		if cur.sale.Started.BuyerID() == customerID && cur.storeID == customer.StoreID && cur.mode == customer.Mode && !slices.ContainsFunc(sales,
			func(s domain.Sale) bool { return s.ID == cur.sale.ID }) {
			sales = append(sales, cur.sale)
		}
	}
	for _, s := range sales {
		s.Started = domain.ErasePersonal(s.Started)
		if cur, ok := b.sales[s.ID]; ok {
			cur.sale, cur.dirty = s, true
		}
		out, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := b.exec(sqlAnonymiseSale, string(out), s.ID); err != nil {
			return err
		}
	}
	return nil
}

const sqlAnonymiseSale = `UPDATE sales SET customer_email = '', doc = ? WHERE id = ?`

// foldPurchase counts a completed sale on its customer (amount: the sale's amount), or takes a refund
// off the customer's total spent (amount negative), so totals are net of refunds. A customer without a
// row (erased) is left alone.
func foldPurchase(b *batchTx, s domain.Sale, amount int64) error {
	customerID := s.Started.BuyerID()
	cur, err := b.customer(customerID)
	if err != nil || cur == nil {
		return err
	}
	if cur.totals == nil {
		if cur.totals, err = decodeSpent(cur.spent); err != nil {
			return fmt.Errorf("customer %s: %w", customerID, err)
		}
	}
	currency := s.Started.Amount.Currency
	t, ok := cur.totals[currency]
	if !ok {
		t = domain.Total{Currency: currency}
	}
	if err := t.Add(amount); err != nil {
		return fmt.Errorf("customer %s: spent: %w", customerID, err)
	}
	cur.totals[currency] = t
	if amount >= 0 {
		at := s.CompletedAt.UTC().UnixMicro()
		cur.completed++
		if !cur.first.Valid || at < cur.first.Int64 {
			cur.first = sql.NullInt64{Int64: at, Valid: true}
		}
		if !cur.last.Valid || at > cur.last.Int64 {
			cur.last = sql.NullInt64{Int64: at, Valid: true}
		}
	}
	if !cur.dirty && !cur.bought {
		b.customerOrder = append(b.customerOrder, customerID)
	}
	cur.bought = true
	return nil
}

// listCustomersQuery builds ListCustomers' statement. A search of three characters or more is driven by
// the trigram index, newest match first (CROSS JOIN keeps it the driver, and the cursor bounds the
// index's rowid, which is the customer's seq): a page costs what its matches cost, however deep. A
// shorter fragment cannot use the index and is tested on each of the store's customers, newest first.
func listCustomersQuery(f CustomerFilter) (string, []any) {
	where := []string{"c.store_id = ?", "c.mode = ?"}
	args := []any{f.StoreID, f.Mode}
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	from, key := "customers c", "c.seq"
	if q := searchFold(strings.TrimSpace(f.Search)); q != "" {
		if len([]rune(q)) >= 3 {
			// The term itself, the canonical forms of an email in it, and the digits of a phone number
			// it may be: one FTS5 query of quoted phrases joined by OR, still one index lookup.
			terms := append(append([]string{q}, domain.EmailSearchForms(q)...), domain.PhoneSearchDigits(q)...)
			var phrases []string
			for _, t := range terms {
				p := `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
				if len([]rune(t)) >= 3 && !slices.Contains(phrases, p) {
					phrases = append(phrases, p)
				}
			}
			from, key = "customers_fts f CROSS JOIN customers c ON c.seq = f.rowid", "f.rowid"
			add("customers_fts MATCH ?", strings.Join(phrases, " OR "))
		} else {
			like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
			from = "customers c JOIN customers_fts f ON f.rowid = c.seq"
			add(`(f.name LIKE ? ESCAPE '\' OR f.email LIKE ? ESCAPE '\' OR f.phone LIKE ? ESCAPE '\')`, like, like, like)
		}
	}
	if !f.From.IsZero() {
		add("c.created_at >= ?", f.From.UTC().UnixMicro())
	}
	if !f.To.IsZero() {
		add("c.created_at <= ?", f.To.UTC().UnixMicro())
	}
	if f.Email != "" {
		add("c.email = ?", f.Email)
	}
	order := key + " DESC"
	lt, gt := " < ?", " > ?"
	if f.Inclusive {
		lt, gt = " <= ?", " >= ?"
	}
	switch {
	case f.After > 0:
		add(key+lt, f.After)
	case f.Before > 0:
		add(key+gt, f.Before)
		order = key + " ASC"
	}
	q := `SELECT c.seq, c.store_id, c.mode, c.doc, c.completed_sales, c.spent, c.first_purchase_at, c.last_purchase_at FROM ` +
		from + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	return q, append(args, f.Limit+1, f.Offset)
}

// CustomerRow is a customer as the API shows it.
type CustomerRow struct {
	domain.Customer
	StoreID, Mode   string
	Seq             int64
	CompletedSales  int
	Spent           map[string]domain.Total // exact totals by currency
	FirstPurchaseAt time.Time
	LastPurchaseAt  time.Time
}

const customerCols = `seq, store_id, mode, doc, completed_sales, spent, first_purchase_at, last_purchase_at`

func scanCustomer(scan func(...any) error) (CustomerRow, error) {
	var (
		r           CustomerRow
		doc, spent  string
		first, last sql.NullInt64
	)
	err := scan(&r.Seq, &r.StoreID, &r.Mode, &doc, &r.CompletedSales, &spent, &first, &last)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(doc), &r.Customer); err != nil {
		return r, err
	}
	if r.Spent, err = decodeSpent(spent); err != nil {
		return r, err
	}
	if first.Valid {
		r.FirstPurchaseAt = time.UnixMicro(first.Int64).UTC()
	}
	if last.Valid {
		r.LastPurchaseAt = time.UnixMicro(last.Int64).UTC()
	}
	return r, nil
}

// Customer returns one customer of a store and mode; another store's, another mode's or an erased one is
// domain.ErrNotFound.
func (s *Store) Customer(ctx context.Context, storeID, mode, id string) (CustomerRow, error) {
	r, err := scanCustomer(s.queryRow(ctx, `SELECT `+customerCols+` FROM customers WHERE id = ? AND store_id = ? AND mode = ?`, id, storeID, mode).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return CustomerRow{}, domain.ErrNotFound
	}
	return r, err
}

// CustomerFilter selects and pages customers. StoreID and Mode are always applied.
type CustomerFilter struct {
	StoreID, Mode string
	// Search is a fragment of the name, email or phone, case-insensitive.
	Search string
	// From and To bound created_at, inclusive; zero means unbounded.
	From, To time.Time
	// After continues after this seq (older customers), Before goes back (newer); Offset skips (page mode).
	After, Before int64
	// Inclusive makes After and Before include that seq itself (see PageLinks).
	Inclusive bool
	// Email is an exact match on the stored (canonical) email.
	Email  string
	Offset int
	Limit  int
}

// At is f paged at c, as a client's cursor asks (nil: the top of the list).
func (f CustomerFilter) At(c *Cursor[int64]) CustomerFilter {
	p := SeqPageAt(c, f.Limit)
	f.After, f.Before, f.Inclusive, f.Offset = p.After, p.Before, p.Inclusive, 0
	return f
}

// HasCustomers tells whether any customer matches f at its position (Limit and Offset aside).
func (s *Store) HasCustomers(ctx context.Context, f CustomerFilter) (bool, error) {
	f.Limit, f.Offset = 0, 0 // LIMIT 1
	q, args := listCustomersQuery(f)
	return s.anyRow(ctx, q, args)
}

// ListCustomers returns up to Limit customers, newest first, and whether more exist beyond them in the
// direction of travel. A search of three characters or more is a trigram-index lookup walked newest
// first; a shorter one reads the store's customers.
func (s *Store) ListCustomers(ctx context.Context, f CustomerFilter) ([]CustomerRow, bool, error) {
	q, args := listCustomersQuery(f)
	return listPage(ctx, s, q, args, f.Limit, f.Before > 0, scanCustomer)
}

// decodeSpent reads the spent column: {"USD": 12300, ...}, minor units by currency as JSON integer
// literals of any size (a total is exact, not an int64).
func decodeSpent(raw string) (map[string]domain.Total, error) {
	var m map[string]json.Number
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("spent: %w", err)
	}
	out := make(map[string]domain.Total, len(m))
	for cur, n := range m {
		t, err := domain.ParseTotal(cur, n.String())
		if err != nil {
			return nil, fmt.Errorf("spent: %w", err)
		}
		out[cur] = t
	}
	return out, nil
}

// encodeSpent writes the spent column (see decodeSpent).
func encodeSpent(spent map[string]domain.Total) (string, error) {
	m := make(map[string]json.Number, len(spent))
	for cur, t := range spent {
		m[cur] = json.Number(t.AmountText())
	}
	b, err := json.Marshal(m)
	return string(b), err
}
