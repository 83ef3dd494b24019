// Package sqlite is the SQLite read store: the tables projections fold events into, the checkpoint that
// records how far they got, and the queries the HTTP API serves from.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/salesledger/ledger/events"
)

// Store is one read store file. Writes go through a single connection (SQLite has one writer); reads
// use a pool.
type Store struct {
	path   string
	w      *sql.DB
	r      *sql.DB
	extras []Fold

	stmts map[string]*sql.Stmt // prepared at Open on the writer connection, reused by every batch
	reads sync.Map             // query → *sql.Stmt on the reader pool; see readStmt
	nRead atomic.Int32         // statements in reads

	// endpointsGen counts the committed batches that changed a webhook endpoint; noEndpoints holds, per
	// "store|mode", the generation at which that store and mode had none (see WebhookEndpointsOf).
	endpointsGen atomic.Uint64
	noEndpoints  sync.Map
}

// Fold applies one event inside the batch's transaction. Extra folds run after the built-in ones.
type Fold func(ctx context.Context, tx *sql.Tx, e events.Envelope) error

// Option configures Open.
type Option func(*Store)

// WithFold adds a fold that runs for every event, in the same transaction as the built-in folds. The
// sales and customers tables are written at the end of each batch (batchTx.sales, batchTx.customers):
// such a fold sees them as they were before the batch.
func WithFold(f Fold) Option { return func(s *Store) { s.extras = append(s.extras, f) } }

// private creates the store's file readable by its owner only, and makes an existing one (and its WAL
// and shared-memory files) so: the read store holds customers' personal data. SQLite creates the WAL
// and shared-memory files with the database file's permissions.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Open opens (creating if needed) the read store at path and brings its schema up to date.
func Open(path string, opts ...Option) (*Store, error) {
	if err := private(path); err != nil {
		return nil, fmt.Errorf("open read store %s: %w", path, err)
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(5000)", "cache_size(-65536)", "wal_autocheckpoint(8192)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open read store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open read store %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	s := &Store{path: path, w: w, r: r, stmts: map[string]*sql.Stmt{}}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(context.Background()); err == nil {
		err = s.prepare(context.Background())
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("read store %s: %w", path, err)
	}
	return s, nil
}

// maxReadStmts bounds the read statements kept. The API's reads are a few dozen statements (a list's
// query varies with the filters given, not with their values); the bound only keeps a caller that
// builds ever new statement texts from growing the cache without end.
const maxReadStmts = 512

// readStmt is a read statement prepared on the reader pool on first use, and kept: the API's reads are
// few distinct statements run very often, and parsing one costs about as much as running it. Once
// maxReadStmts are kept, a new statement is prepared for the call only (done tells the caller to close
// it after use).
func (s *Store) readStmt(ctx context.Context, query string) (st *sql.Stmt, done func(), err error) {
	if st, ok := s.reads.Load(query); ok {
		return st.(*sql.Stmt), func() {}, nil
	}
	if st, err = s.r.PrepareContext(ctx, query); err != nil {
		return nil, nil, err
	}
	if s.nRead.Load() >= maxReadStmts {
		return st, func() { st.Close() }, nil
	}
	if prev, loaded := s.reads.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), func() {}, nil
	}
	s.nRead.Add(1)
	return st, func() {}, nil
}

// query runs a read statement through readStmt. The rows must be closed.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, done, err := s.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done() // closing a statement with open rows waits for the rows to close (database/sql)
	return st.QueryContext(ctx, args...)
}

// queryRow runs a fixed read statement; see readStmt.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, done, err := s.readStmt(ctx, query)
	if err != nil {
		return s.r.QueryRowContext(ctx, query, args...) // reports the same error through Scan
	}
	defer done()
	return st.QueryRowContext(ctx, args...)
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close closes both connection pools.
func (s *Store) Close() error {
	for _, st := range s.stmts {
		st.Close()
	}
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return errors.Join(s.w.Close(), s.r.Close())
}

// batchTx is one Apply's transaction. exec runs the statements prepared at Open through it: folding
// spends most of its time in SQLite, and re-parsing the same SQL for every event would double that.
// (They cannot be prepared lazily: the writer pool has one connection, which the transaction holds.)
type batchTx struct {
	ctx   context.Context
	tx    *sql.Tx
	s     *Store
	stmts map[string]*sql.Stmt // the prepared statements bound to tx, made on first use in the batch
	// sales holds the sales this batch folded, as they stand, so that a sale's next event in the batch
	// neither reads nor decodes its stored row again; dirty ones are written once, by flushSales, at its
	// end (an erasure, which reads a customer's sales from the table, anonymises the batch's copies of
	// them too). order keeps first-fold order, so a rebuild writes rows in the order live folding did.
	sales map[string]*batchSale
	order []string
	// customers does the same for customers' rows (nil: no row), and customerOrder lists the changed
	// ones, new customers in the order they registered (see flushCustomers).
	customers     map[string]*batchCustomer
	customerOrder []string
}

// flush writes the sales and customers the batch changed.
func (b *batchTx) flush() error {
	if err := b.flushSales(); err != nil {
		return err
	}
	return b.flushCustomers()
}

func (b *batchTx) exec(query string, args ...any) error {
	st, ok := b.stmts[query]
	if !ok {
		prepared, ok := b.s.stmts[query]
		if !ok {
			return fmt.Errorf("statement not prepared at Open: %s", query)
		}
		st = b.tx.StmtContext(b.ctx, prepared)
		b.stmts[query] = st
	}
	_, err := st.ExecContext(b.ctx, args...)
	return err
}

// queryRow runs a prepared single-row query inside the batch's transaction, so it sees the batch's own
// earlier writes.
// execResult is exec for a statement whose result is needed (an insert's rowid).
func (b *batchTx) execResult(query string, args ...any) (sql.Result, error) {
	st, ok := b.stmts[query]
	if !ok {
		prepared, ok := b.s.stmts[query]
		if !ok {
			return nil, fmt.Errorf("statement not prepared at Open: %s", query)
		}
		st = b.tx.StmtContext(b.ctx, prepared)
		b.stmts[query] = st
	}
	return st.ExecContext(b.ctx, args...)
}

func (b *batchTx) queryRow(query string, args ...any) *sql.Row {
	st, ok := b.stmts[query]
	if !ok {
		prepared, ok := b.s.stmts[query]
		if !ok {
			return b.tx.QueryRowContext(b.ctx, query, args...) // unprepared: still correct, only slower
		}
		st = b.tx.StmtContext(b.ctx, prepared)
		b.stmts[query] = st
	}
	return st.QueryRowContext(b.ctx, args...)
}

// writes lists every statement the folds run; Open prepares them.
var writes = []string{
	sqlUpdateCheckpoint,
	sqlInsertStore,
	sqlInsertAPIKey,
	sqlSelectSaleDoc,
	sqlUpsertSale,
	sqlInsertCustomer,
	sqlSelectCustomerDoc,
	sqlSelectCustomerRow,
	sqlUpdateCustomer,
	sqlDeleteCustomer,
	sqlDeleteSearch,
	sqlInsertSearch,
	sqlAnonymiseSale,
	sqlInsertLicence,
	sqlLicenceActivity,
	sqlRevokeLicence,
	sqlSelectWebhookEndpointDoc,
	sqlInsertWebhookEndpoint,
	sqlUpdateWebhookEndpoint,
	sqlDeleteWebhookEndpoint,
	sqlEnableWebhookEndpoint,
	sqlSelectWebhookDeliveryDoc,
	sqlUpsertWebhookDelivery,
	sqlEndpointSucceeded,
	sqlEndpointFailed,
}

func (s *Store) prepare(ctx context.Context) error {
	for _, q := range writes {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

const schema = `
CREATE TABLE IF NOT EXISTS checkpoint (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO checkpoint (id, seq) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS stores (
	id                    TEXT PRIMARY KEY,
	name                  TEXT NOT NULL,
	slug                  TEXT NOT NULL,
	service_fee_percent   TEXT NOT NULL,
	settlement_delay_days INTEGER NOT NULL,
	abandon_after_minutes INTEGER NOT NULL,
	created_at            TEXT NOT NULL,
	version               INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_keys (
	hash     TEXT PRIMARY KEY,
	store_id TEXT NOT NULL REFERENCES stores (id),
	mode     TEXT NOT NULL CHECK (mode IN ('live', 'test')),
	prefix   TEXT NOT NULL,
	last4    TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`

const sqlUpdateCheckpoint = `UPDATE checkpoint SET seq = ? WHERE id = 1`

// SchemaVersion is the read store's schema; a store of another version is not migrated in place but
// rebuilt from the log (ErrSchemaOutdated), since the log, not the store, is the truth.
const SchemaVersion = 11

// ErrSchemaOutdated is an existing store of an older schema.
var ErrSchemaOutdated = errors.New("read store schema is outdated; it must be rebuilt from the log")

func (s *Store) migrate(ctx context.Context) error {
	var version, tables int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'checkpoint'`).Scan(&tables); err != nil {
		return err
	}
	if tables > 0 && version != SchemaVersion {
		return fmt.Errorf("%w (version %d, current %d)", ErrSchemaOutdated, version, SchemaVersion)
	}
	for _, sch := range []string{schema, salesSchema, customersSchema, licencesSchema, webhookEndpointsSchema, webhookDeliveriesSchema, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion)} {
		if _, err := s.w.ExecContext(ctx, sch); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint is the stream sequence of the last event applied.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	var seq uint64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM checkpoint WHERE id = 1`).Scan(&seq)
	return seq, err
}

// Apply folds a batch of events, in stream order, and records the last one's sequence as the
// checkpoint, all in one transaction: after a crash the store holds either the whole batch and its
// checkpoint or neither. Events at or below the checkpoint are skipped, so re-delivery is harmless.
func (s *Store) Apply(ctx context.Context, batch []events.Envelope) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cp uint64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM checkpoint WHERE id = 1`).Scan(&cp); err != nil {
		return err
	}
	last := cp
	// Statements run without the caller's cancellation: the driver watches a cancellable context with a
	// goroutine per statement, which costs more than a whole small insert, and a batch is short anyway.
	b := &batchTx{ctx: context.WithoutCancel(ctx), tx: tx, s: s, stmts: map[string]*sql.Stmt{}, sales: map[string]*batchSale{},
		customers: map[string]*batchCustomer{}}
	for _, e := range batch {
		if e.Sequence <= last {
			continue
		}
		if err := fold(b, e); err != nil {
			return fmt.Errorf("apply seq %d (%s): %w", e.Sequence, e.Type(), err)
		}
		for _, f := range s.extras {
			if err := f(ctx, tx, e); err != nil {
				return fmt.Errorf("apply seq %d (%s): %w", e.Sequence, e.Type(), err)
			}
		}
		last = e.Sequence
	}
	if last == cp {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	if err := b.exec(sqlUpdateCheckpoint, last); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, e := range batch {
		if e.Aggregate.Type == events.AggregateWebhookEndpoint {
			// After the commit: a reader that saw the generation before it and the table without the
			// new endpoint cached "none" under the old generation, which this makes stale.
			s.endpointsGen.Add(1)
			break
		}
	}
	return nil
}

// fold is the closed dispatch from event type to the rows it changes.
func fold(b *batchTx, e events.Envelope) error {
	switch p := e.Payload.(type) {
	case events.StoreCreated:
		return foldStoreCreated(b, e, p)
	case events.SlugReserved:
		return nil // the slug is projected with the store it belongs to
	case events.SaleStarted, events.PaymentRecorded, events.SaleCompleted, events.SaleAbandoned,
		events.SaleSettled, events.DownloadRecorded, events.SaleRated, events.RefundRecorded, events.DisputeOpened, events.DisputeClosed:
		return foldSale(b, e)
	case events.CustomerRegistered, events.CustomerUpdated, events.CustomerAddressAdded, events.CustomerAddressRemoved,
		events.CustomerDefaultAddressSet, events.CustomerPhotoSet, events.CustomerErased:
		return foldCustomer(b, e)
	case events.LicenceIssued, events.LicenceActivated, events.LicenceDeactivated, events.LicenceRevoked:
		return foldLicence(b, e)
	case events.WebhookEndpointCreated, events.WebhookEndpointUpdated, events.WebhookEndpointSecretRotated, events.WebhookEndpointDeleted:
		return foldWebhookEndpoint(b, e)
	case events.WebhookDeliveryScheduled, events.WebhookDeliveryAttempted, events.WebhookDeliveryRetryRequested,
		events.WebhookDeliveryCancelled, events.WebhookDeliveryClaimed:
		return foldWebhookDelivery(b, e)
	case events.EmailClaimed, events.EmailReleased, events.IdempotencyKeyRecorded, events.WebhookReceived, events.WebhookRejected:
		return nil // read from the log itself, where compare-and-set keeps them exact
	default:
		return fmt.Errorf("no fold for %T", p)
	}
}
