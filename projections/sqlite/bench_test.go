package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// BenchmarkListSales measures GET /v1/sales at the size the issue names: (*sqlite.Store).ListSales,
// which is all the handler does besides parsing and encoding, over a read store of 1,000,000 sales.
//
// The store is built once per process through the real fold (events applied with Store.Apply in
// batches of 4,096) and cached under os.TempDir(), so later runs reuse it; see buildSalesFixture.
// Before the sub-benchmarks, logPlans logs EXPLAIN QUERY PLAN and a timing for every filter shape the
// handler can build. Every sub-benchmark runs b.N queries (b.N walks of ten pages for walk-10-pages)
// one after another with varying parameters, times each query, and reports p50, p99 and max in
// milliseconds; ns/op is the mean per query (per walk).
//
// The setup log (build time, plans) shows with -v:
//
//	go test -v -run '^$' -bench ListSales -benchtime 2000x -timeout 30m ./projections/sqlite/
func BenchmarkListSales(b *testing.B) {
	fx := loadSalesFixture(b)
	st := fx.store
	ctx := context.Background()

	fx.logPlans(b)

	// Each case draws the parameters of one query. They are drawn before the timer starts, from a
	// generator seeded per case, so every run asks the same questions.
	type query struct {
		f    sqlite.SaleFilter
		walk int // >0: follow next cursors for this many pages; each page is one sample
	}
	scope := func() sqlite.SaleFilter {
		return sqlite.SaleFilter{StoreID: benchBigStore, Mode: events.ModeLive, Limit: 15}
	}
	cases := []struct {
		name string
		make func(r *rand.Rand) query
	}{
		{"first-page", func(r *rand.Rand) query { return query{f: scope()} }},
		{"per_page=100", func(r *rand.Rand) query {
			f := scope()
			f.Limit = 100
			if r.IntN(4) > 0 { // three in four continue from a cursor somewhere in the list
				f.After = fx.pos(fx.bigLive[r.IntN(len(fx.bigLive))])
			}
			return query{f: f}
		}},
		{"status=completed", func(r *rand.Rand) query {
			f := scope()
			f.Status = domain.StatusCompleted
			if r.IntN(4) > 0 {
				l := fx.byStatus[domain.StatusCompleted]
				f.After = fx.pos(l[r.IntN(len(l))])
			}
			return query{f: f}
		}},
		{"customer_id", func(r *rand.Rand) query {
			f := scope()
			f.CustomerID = customerID(fx.randomCustomer(r))
			return query{f: f}
		}},
		{"search=email-prefix", func(r *rand.Rand) query {
			// What a person types: the whole address, or its first 10 or 9 characters ("buyer01234",
			// 10 customers, about 45 sales; "buyer0123", 100 customers, about 450 sales), in random case.
			f := scope()
			email := customerEmail(fx.randomCustomer(r))
			switch r.IntN(3) {
			case 0:
				f.Search = strings.ToUpper(email[:1]) + email[1:]
			case 1:
				f.Search = email[:10]
			default:
				f.Search = email[:9]
			}
			return query{f: f}
		}},
		{"search=email-prefix-4k", func(r *rand.Rand) query {
			// An 8-character prefix, "buyer012": 1,000 customers, about 4,500 sales (0.5% of the store's).
			f := scope()
			f.Search = customerEmail(fx.randomCustomer(r))[:8]
			return query{f: f}
		}},
		{"search=email-prefix-44k", func(r *rand.Rand) query {
			// A 7-character prefix, "buyer01": 10,000 customers, about 45,000 sales (5.5%): what a
			// one- or two-letter prefix matches among real addresses.
			f := scope()
			f.Search = customerEmail(fx.randomCustomer(r))[:7]
			return query{f: f}
		}},
		{"search=sale-id", func(r *rand.Rand) query {
			f := scope()
			f.Search = saleID(int(fx.bigLive[r.IntN(len(fx.bigLive))]))
			return query{f: f}
		}},
		{"date-range", func(r *rand.Rand) query {
			f := scope()
			f.From, f.To = randomMonth(r)
			if r.IntN(2) == 0 {
				if n, ok := fx.randomIn(r, fx.bigLive, f.From, f.To); ok {
					f.After = fx.pos(n)
				}
			}
			return query{f: f}
		}},
		{"date-range-year+cursor", func(r *rand.Rand) query {
			// A one-year range, paged: a cursor at a random place inside it.
			f := scope()
			f.From = benchStart.AddDate(0, 0, r.IntN(730-365))
			f.To = f.From.AddDate(1, 0, 0).Add(-time.Microsecond)
			if n, ok := fx.randomIn(r, fx.bigLive, f.From, f.To); ok {
				f.After = fx.pos(n)
			}
			return query{f: f}
		}},
		{"status+date-range", func(r *rand.Rand) query {
			f := scope()
			f.Status = benchStatuses[r.IntN(len(benchStatuses))]
			f.From, f.To = randomMonth(r)
			if r.IntN(2) == 0 {
				if n, ok := fx.randomIn(r, fx.byStatus[f.Status], f.From, f.To); ok {
					f.After = fx.pos(n)
				}
			}
			return query{f: f}
		}},
		{"deep-cursor", func(r *rand.Rand) query {
			// The page after the 495,000th to 505,000th newest sale of the store.
			f := scope()
			f.After = fx.pos(fx.newest(fx.deepK() - 5_000 + r.IntN(10_001)))
			return query{f: f}
		}},
		{"prev-page", func(r *rand.Rand) query {
			// prev_cursor: the page of newer sales before a position (ascending scan, reversed).
			f := scope()
			f.Before = fx.pos(fx.bigLive[r.IntN(len(fx.bigLive))])
			return query{f: f}
		}},
		{"walk-10-pages", func(r *rand.Rand) query {
			f := scope()
			if r.IntN(4) > 0 {
				f.After = fx.pos(fx.bigLive[r.IntN(len(fx.bigLive))])
			}
			return query{f: f, walk: 10}
		}},
	}

	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(i+1), 42))
			qs := make([]query, b.N)
			for j := range qs {
				qs[j] = c.make(r)
			}
			var lat, walks []time.Duration
			lat = make([]time.Duration, 0, b.N)
			rows := 0
			b.ResetTimer()
			for j := range b.N {
				q := qs[j]
				if q.walk == 0 {
					t0 := time.Now()
					out, _, err := st.ListSales(ctx, q.f)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					rows += len(out)
					continue
				}
				var total time.Duration
				f := q.f
				for range q.walk {
					t0 := time.Now()
					out, more, err := st.ListSales(ctx, f)
					d := time.Since(t0)
					lat, total = append(lat, d), total+d
					if err != nil {
						b.Fatal(err)
					}
					rows += len(out)
					if !more {
						break
					}
					last := out[len(out)-1] // the handler's next_cursor
					f.After = &sqlite.Position{CreatedAt: last.CreatedAt.UTC().UnixMicro(), ID: last.ID}
				}
				walks = append(walks, total)
			}
			b.StopTimer()
			p := percentiles(lat)
			b.ReportMetric(p(0.50), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(p(1), "max-ms")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			if len(walks) > 0 {
				b.ReportMetric(percentiles(walks)(0.99), "p99-walk-ms")
			}
		})
	}
}

// percentiles returns the q-quantile (nearest rank) of ds in milliseconds.
func percentiles(ds []time.Duration) func(q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return func(q float64) float64 {
		if len(s) == 0 {
			return 0
		}
		i := int(q*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return float64(s[i]) / float64(time.Millisecond)
	}
}

// The data set. Everything about sale n (0-based) follows from n alone, so the queries can find
// customers, ids and positions without reading the store, and a cached store can be checked.
const (
	benchSales      = 1_000_000
	benchCustomers  = 200_000
	benchBatch      = 4096
	benchGenVersion = 2 // bump when the generator changes: it keys the cached file
)

const (
	benchBigStore   = "str_BenchBigShop00000000000" // 90% of customers, so of sales
	benchMidStore   = "str_BenchMidShop00000000000"
	benchSmallStore = "str_BenchSmallShop000000000"
)

var (
	benchStores   = []string{benchBigStore, benchMidStore, benchSmallStore}
	benchStatuses = []string{domain.StatusAwaitingPayment, domain.StatusCompleted, domain.StatusFailed, domain.StatusAbandoned, domain.StatusSettled}
	benchStart    = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// benchStep spreads the sales evenly over two years (about 63 s apart); each gets a jitter below
	// the step, so created_at rises strictly with n and the newest-first list is n descending.
	benchStep = int64(730*24*time.Hour/time.Microsecond) / benchSales
)

func mix64(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// id22 is prefix plus 22 base62 characters drawn from seed, the shape of domain.NewID.
func id22(prefix string, seed uint64) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, len(prefix)+22)
	copy(b, prefix)
	h1, h2 := mix64(seed), mix64(seed^0x5bd1e995)
	for i := range 11 {
		b[len(prefix)+i], h1 = base62[h1%62], h1/62
		b[len(prefix)+11+i], h2 = base62[h2%62], h2/62
	}
	return string(b)
}

// saleID is fixed-width and rises with n, so with created_at: inserts into the primary key append.
// (Real ids are random; the list queries never read the primary key, and an id lookup is one seek
// either way.)
func saleID(n int) string     { return fmt.Sprintf("sal_%022d", n+1) }
func customerID(c int) string { return id22("cus_", uint64(c)<<1|1) }
func customerEmail(c int) string {
	return fmt.Sprintf("buyer%06d@example.com", c)
}

// customerScope: customers 0–179,999 buy from the big store, the rest from the two small ones; one in
// ten is a test-mode customer.
func customerScope(c int) (store, mode string) {
	mode = events.ModeLive
	if c%10 == 9 {
		mode = events.ModeTest
	}
	switch {
	case c < 180_000:
		return benchBigStore, mode
	case c < 195_000:
		return benchMidStore, mode
	default:
		return benchSmallStore, mode
	}
}

type saleMeta struct {
	customer int
	at       int64 // created_at, unix microseconds
	status   string
}

// meta of sale n. Statuses: 40% completed, 10% settled, 8% failed, 14% abandoned, 28% awaiting payment.
func meta(n int) saleMeta {
	h := mix64(uint64(n) ^ 0xa0761d6478bd642f)
	m := saleMeta{
		customer: int(h % benchCustomers),
		at:       benchStart.UnixMicro() + int64(n)*benchStep + int64((h>>24)%uint64(benchStep)),
	}
	switch p := (h >> 48) % 100; {
	case p < 40:
		m.status = domain.StatusCompleted
	case p < 50:
		m.status = domain.StatusSettled
	case p < 58:
		m.status = domain.StatusFailed
	case p < 72:
		m.status = domain.StatusAbandoned
	default:
		m.status = domain.StatusAwaitingPayment
	}
	return m
}

var benchProducts = func() []events.Product {
	ps := make([]events.Product, 50)
	for i := range ps {
		id := id22("prd_", uint64(i)+1e9)
		ps[i] = events.Product{
			ID: id, Name: fmt.Sprintf("Ebook bundle volume %d", i+1), Type: "digital",
			Price: events.Amount{Amount: int64(900 + 100*i), Currency: "USD"},
			Files: []events.ProductFile{{
				ID: id22("fil_", uint64(i)+2e9), Name: fmt.Sprintf("bundle-%02d.zip", i+1), Size: int64(1<<20 + i*4096),
				Type: "application/zip", URL: fmt.Sprintf("https://files.example.com/products/%s/bundle-%02d.zip", id, i+1),
			}},
			Instructions: "Thank you for your purchase. Your download links are valid for 24 hours.",
		}
		if i%3 == 0 {
			ps[i].Licence = &events.LicenceTerms{MaxActivations: 3}
		}
	}
	return ps
}()

// saleEvents appends the events of sale n to out: sale_started (after a customer_registered on the
// customer's first sale), then, by status, the payment and completion (and settlement), the failed
// payment or the abandonment. Sequences are assigned by the caller.
func saleEvents(out []events.Envelope, n int, firstOfCustomer bool) []events.Envelope {
	m := meta(n)
	store, mode := customerScope(m.customer)
	at := time.UnixMicro(m.at).UTC()
	cust := events.CustomerRef{ID: customerID(m.customer), Email: customerEmail(m.customer), FirstName: "Buyer", LastName: fmt.Sprintf("Number %d", m.customer)}
	if firstOfCustomer {
		out = append(out, events.Envelope{
			Aggregate: events.Aggregate{Mode: mode, StoreID: store, Type: events.AggregateCustomer, ID: cust.ID},
			Time:      at,
			Payload: events.CustomerRegistered{CustomerID: cust.ID, Source: "checkout",
				CustomerData: events.CustomerData{Email: cust.Email, FirstName: cust.FirstName, LastName: cust.LastName}},
		})
	}
	id := saleID(n)
	agg := events.Aggregate{Mode: mode, StoreID: store, Type: events.AggregateSale, ID: id}
	p := benchProducts[n%len(benchProducts)]
	amt := p.Price
	out = append(out, events.Envelope{Aggregate: agg, Time: at, Payload: events.SaleStarted{
		SaleID:   id,
		Store:    events.StoreRef{ID: store, Name: "Shop " + store[9:13], Slug: strings.ToLower(store[4:13])},
		Product:  p,
		Customer: cust,
		Channel:  "store",
		Context: &events.SaleContext{IPAddress: fmt.Sprintf("203.0.113.%d", n%250), Country: &events.Country{Code: "US", Name: "United States"},
			DeviceType: "desktop", Locale: "en-US"},
		OriginalAmount: amt, DiscountAmount: events.Amount{Currency: amt.Currency}, Amount: amt,
		ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: at.Add(30 * time.Minute),
	}})
	paid := func(t time.Time) {
		fee := amt.Amount * 5 / 100
		out = append(out,
			events.Envelope{Aggregate: agg, Time: t, Payload: events.PaymentRecorded{
				Status: "success", Gateway: "stripe", TransactionID: "pi_" + id[4:], DeliveryID: "evt_" + id[4:],
				Method: &events.PaymentMethod{ID: "card", Name: "Card"}, Amount: amt,
				Fee: &events.Amount{Amount: amt.Amount*29/1000 + 30, Currency: amt.Currency}}},
			events.Envelope{Aggregate: agg, Time: t, Payload: events.SaleCompleted{
				Files: []events.IssuedFile{{ID: p.Files[0].ID, Name: p.Files[0].Name, Size: p.Files[0].Size, Type: p.Files[0].Type,
					URL: p.Files[0].URL, ExpiresAt: t.Add(24 * time.Hour)}},
				Instructions: p.Instructions,
				ServiceFee:   events.Amount{Amount: fee, Currency: amt.Currency}, SettlementTotal: events.Amount{Amount: amt.Amount - fee, Currency: amt.Currency},
				SettlementDueAt: t.Add(7 * 24 * time.Hour)}},
		)
	}
	switch m.status {
	case domain.StatusCompleted:
		paid(at.Add(2 * time.Minute))
	case domain.StatusSettled:
		paid(at.Add(2 * time.Minute))
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(7*24*time.Hour + 2*time.Minute), Payload: events.SaleSettled{Source: "schedule"}})
	case domain.StatusFailed:
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(time.Minute), Payload: events.PaymentRecorded{
			Status: "failed", Gateway: "stripe", TransactionID: "pi_" + id[4:], DeliveryID: "evt_" + id[4:], Amount: amt,
			FailureError: &events.FailureError{Code: "card_declined", Message: "Your card was declined."}}})
	case domain.StatusAbandoned:
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(30 * time.Minute), Payload: events.SaleAbandoned{}})
	}
	return out
}

// benchLog generates the whole log in batches of benchBatch events with sequences 1, 2, …: the three
// stores, then every sale's events in order. It returns the last sequence.
func benchLog(yield func([]events.Envelope) error) (uint64, error) {
	var seq uint64
	batch := make([]events.Envelope, 0, benchBatch+8)
	flush := func(force bool) error {
		for len(batch) >= benchBatch || (force && len(batch) > 0) {
			k := min(len(batch), benchBatch)
			chunk := slices.Clone(batch[:k])
			for i := range chunk {
				seq++
				chunk[i].Sequence = seq
			}
			if err := yield(chunk); err != nil {
				return err
			}
			batch = append(batch[:0], batch[k:]...)
		}
		return nil
	}
	for i, id := range benchStores {
		batch = append(batch, events.Envelope{
			Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
			Time:      benchStart.Add(-time.Hour),
			Payload: events.StoreCreated{StoreID: id, Name: "Shop " + id[9:13], Slug: strings.ToLower(id[4:13]), ServiceFeePercent: "5",
				SettlementDelayDays: 7, AbandonAfterMinutes: 30, Keys: []events.APIKey{
					{Mode: events.ModeLive, Hash: fmt.Sprintf("%064x", 2*i+1), Prefix: "sk_live_", Last4: "000" + fmt.Sprint(2*i+1)},
					{Mode: events.ModeTest, Hash: fmt.Sprintf("%064x", 2*i+2), Prefix: "sk_test_", Last4: "000" + fmt.Sprint(2*i+2)},
				}},
		})
	}
	seen := make([]bool, benchCustomers)
	for n := range benchSales {
		c := meta(n).customer
		batch = saleEvents(batch, n, !seen[c])
		seen[c] = true
		if err := flush(false); err != nil {
			return seq, err
		}
	}
	return seq, flush(true)
}

// salesFixture is the built store plus what the queries need to know about its contents.
type salesFixture struct {
	store    *sqlite.Store
	path     string
	lastSeq  uint64
	bigLive  []int32            // sale numbers of the big store's live mode, oldest first
	byStatus map[string][]int32 // the same, by status
	byCust   []int32            // customers of the big store's live mode
}

var (
	fixtureOnce sync.Once
	fixture     *salesFixture
	fixtureErr  error
)

func loadSalesFixture(b *testing.B) *salesFixture {
	b.Helper()
	fixtureOnce.Do(func() { fixture, fixtureErr = buildSalesFixture(b) })
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixture
}

func buildSalesFixture(b *testing.B) (*salesFixture, error) {
	fx := &salesFixture{byStatus: map[string][]int32{}}
	for n := range benchSales {
		m := meta(n)
		if s, mode := customerScope(m.customer); s == benchBigStore && mode == events.ModeLive {
			fx.bigLive = append(fx.bigLive, int32(n))
			fx.byStatus[m.status] = append(fx.byStatus[m.status], int32(n))
		}
	}
	for c := range benchCustomers {
		if s, mode := customerScope(c); s == benchBigStore && mode == events.ModeLive {
			fx.byCust = append(fx.byCust, int32(c))
		}
	}
	// The last sequence, without building anything.
	var err error
	if fx.lastSeq, err = benchLog(func([]events.Envelope) error { return nil }); err != nil {
		return nil, err
	}

	fx.path = filepath.Join(os.TempDir(), fmt.Sprintf("ledger-bench-sales-%d-schema%d-gen%d.db", benchSales, sqlite.SchemaVersion, benchGenVersion))
	fx.store, err = openCachedStore(b, fx.path, func() string { return fx.cacheInvalid(b) }, func() error { return fx.build(b) },
		fmt.Sprintf("%d sales, checkpoint %d", benchSales, fx.lastSeq))
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(fx.path); err == nil {
		b.Logf("store file: %.2f GB; big store live mode: %d sales, %d customers", float64(fi.Size())/1e9, len(fx.bigLive), len(fx.byCust))
	}
	return fx, nil
}

// openCachedStore opens the benchmark store cached at path, building it first when invalid says why
// the cache cannot be used (and checking the build the same way). It then reads the file once, so every
// run starts with it in the OS page cache whether it was just built or reused after a reboot: the
// figures are for a warm store. checked describes, for the log, what a reused cache was checked for.
func openCachedStore(b *testing.B, path string, invalid func() string, build func() error, checked string) (*sqlite.Store, error) {
	if why := invalid(); why != "" {
		b.Logf("building %s: %s", path, why)
		if err := build(); err != nil {
			return nil, err
		}
		if why := invalid(); why != "" {
			return nil, fmt.Errorf("freshly built store is not valid: %s", why)
		}
	} else {
		b.Logf("reusing %s (checked: schema version %d, same schema, %s)", path, sqlite.SchemaVersion, checked)
	}
	t0 := time.Now()
	if f, err := os.Open(path); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	b.Logf("warmed the OS page cache in %s", time.Since(t0).Round(time.Millisecond))
	return sqlite.Open(path)
}

// openCacheToCheck opens the cached store at path read-only, once it exists and has the current
// SchemaVersion and exactly the schema a fresh store gets (tables and indexes); otherwise why says what
// is wrong. The caller checks the contents and closes db.
func openCacheToCheck(b *testing.B, path string) (db *sql.DB, why string) {
	if _, err := os.Stat(path); err != nil {
		return nil, "no cached store"
	}
	fresh := filepath.Join(b.TempDir(), "schema.db")
	s, err := sqlite.Open(fresh)
	if err != nil {
		return nil, "cannot open a fresh store: " + err.Error()
	}
	s.Close()
	want, err := schemaOf(fresh)
	if err != nil {
		return nil, err.Error()
	}
	var version int
	db, err = sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err == nil {
		err = db.QueryRow(`PRAGMA user_version`).Scan(&version)
	}
	switch {
	case err != nil:
		why = err.Error()
	case version != sqlite.SchemaVersion:
		why = fmt.Sprintf("schema version %d, current %d", version, sqlite.SchemaVersion)
	default:
		if got, err := schemaOf(path); err != nil || got != want {
			why = "the schema differs from a fresh store's"
		}
	}
	if why != "" {
		if db != nil {
			db.Close()
		}
		return nil, why
	}
	return db, ""
}

// cacheInvalid says why the cached file cannot be used, or "" if it can: it must exist, have the
// current SchemaVersion, exactly the schema a fresh store gets (tables and indexes), all the sales and
// the log's last sequence as checkpoint.
func (fx *salesFixture) cacheInvalid(b *testing.B) string {
	db, why := openCacheToCheck(b, fx.path)
	if why != "" {
		return why
	}
	defer db.Close()
	var count int
	var seq uint64
	if err := db.QueryRow(`SELECT count(*) FROM sales`).Scan(&count); err != nil || count != benchSales {
		return fmt.Sprintf("%d sales (%v), want %d", count, err, benchSales)
	}
	if err := db.QueryRow(`SELECT seq FROM checkpoint WHERE id = 1`).Scan(&seq); err != nil || seq != fx.lastSeq {
		return fmt.Sprintf("checkpoint %d (%v), want %d", seq, err, fx.lastSeq)
	}
	n := int(fx.newest(fx.deepK()))
	var status string
	if err := db.QueryRow(`SELECT status FROM sales WHERE id = ?`, saleID(n)).Scan(&status); err != nil || status != meta(n).status {
		return fmt.Sprintf("sale %s is %q (%v), want %q", saleID(n), status, err, meta(n).status)
	}
	return ""
}

func schemaOf(path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var t, n, tbl, s string
		if err := rows.Scan(&t, &n, &tbl, &s); err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "%s %s %s %s\n", t, n, tbl, s)
	}
	return sb.String(), rows.Err()
}

// build folds the whole log into a new file next to the cache and renames it into place when done, so
// an interrupted build or a concurrent run never leaves a half-built cache behind.
func (fx *salesFixture) build(b *testing.B) error {
	tmp := fmt.Sprintf("%s.building-%d", fx.path, os.Getpid())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
		os.Remove(fx.path + suffix)
	}
	// The fold is the production one (sqlite.Open's settings, Apply, batches of 4,096). Two things
	// differ, for the build only: the writer connection checkpoints its WAL every 100,000 pages instead
	// of 8,192 (set through a fold, the one hook onto that connection), so an index page that many
	// batches touch is copied into the file once per 400 MB of WAL rather than once per 32 MB, and the
	// garbage collector runs less often. At 300,000 sales the checkpoint setting cut the build by a
	// quarter (58 s to 44 s); a 1 GiB page cache, tried the same way, made it slower.
	var tuned bool
	tune := func(ctx context.Context, tx *sql.Tx, e events.Envelope) error {
		if tuned {
			return nil
		}
		tuned = true
		_, err := tx.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 100000`)
		return err
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	st, err := sqlite.Open(tmp, sqlite.WithFold(tune))
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	// Generating and encoding the events runs in its own goroutine, a batch ahead of Apply, as the
	// projections.Runner decodes the next batch while the previous one applies.
	ch := make(chan []events.Envelope, 4)
	errStop := errors.New("stop")
	stop := make(chan struct{})
	genErr := make(chan error, 1)
	go func() {
		_, err := benchLog(func(batch []events.Envelope) error {
			select {
			case ch <- batch:
				return nil
			case <-stop:
				return errStop
			}
		})
		close(ch)
		genErr <- err
	}()
	var applied, batches int
	for batch := range ch {
		if err := st.Apply(ctx, batch); err != nil {
			close(stop)
			for range ch {
			}
			st.Close()
			return err
		}
		applied += len(batch)
		batches++
		if batches%100 == 0 {
			b.Logf("  … %d events in %s", applied, time.Since(start).Round(time.Second))
		}
	}
	if err := <-genErr; err != nil {
		st.Close()
		return err
	}
	took := time.Since(start)
	if err := st.Close(); err != nil {
		return err
	}
	b.Logf("build: %d sales, %d events applied in %d batches of up to %d in %s (%.0f events/s, %.0f sales/s)",
		benchSales, applied, batches, benchBatch, took.Round(time.Millisecond), float64(applied)/took.Seconds(), benchSales/took.Seconds())
	// Closing the last connection checkpoints and removes the WAL; make sure of it before renaming.
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		db, err := sql.Open("sqlite", "file:"+tmp)
		if err != nil {
			return err
		}
		_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		db.Close()
		if err != nil {
			return err
		}
		os.Remove(tmp + "-wal")
		os.Remove(tmp + "-shm")
	}
	return os.Rename(tmp, fx.path)
}

// newest is the sale number of the k-th newest sale (0-based) of the big store's live mode.
func (fx *salesFixture) newest(k int) int32 { return fx.bigLive[len(fx.bigLive)-1-k] }

// deepK is the depth of deep-cursor: the 500,000th newest sale of the big store's live mode.
func (fx *salesFixture) deepK() int { return min(500_000, len(fx.bigLive)/2) }

// pos is the list position of sale n, as next_cursor encodes it.
func (fx *salesFixture) pos(n int32) *sqlite.Position {
	return &sqlite.Position{CreatedAt: meta(int(n)).at, ID: saleID(int(n))}
}

func (fx *salesFixture) randomCustomer(r *rand.Rand) int {
	return int(fx.byCust[r.IntN(len(fx.byCust))])
}

// randomIn picks a random sale of list (oldest first) created within [from, to].
func (fx *salesFixture) randomIn(r *rand.Rand, list []int32, from, to time.Time) (int32, bool) {
	lo := sort.Search(len(list), func(i int) bool { return meta(int(list[i])).at >= from.UnixMicro() })
	hi := sort.Search(len(list), func(i int) bool { return meta(int(list[i])).at > to.UnixMicro() })
	if hi <= lo {
		return 0, false
	}
	return list[lo+r.IntN(hi-lo)], true
}

// randomMonth is start_date..end_date of a random 31-day window inside the data, as the handler turns
// them into From and To.
func randomMonth(r *rand.Rand) (from, to time.Time) {
	from = benchStart.AddDate(0, 0, r.IntN(730-31))
	return from, from.AddDate(0, 0, 31).Add(-time.Microsecond)
}

// logPlans logs EXPLAIN QUERY PLAN for every filter shape the handler can build, with parameters that
// are the worst case for the plan (a cursor near the old end of a date range, a short email prefix),
// and times each shape through ListSales (median of three, after a first call that warms the caches;
// one call if it takes over a second).
// It flags plans that sort (USE TEMP B-TREE) or that do not use the cursor as an index bound, and
// times over the 10 ms target.
func (fx *salesFixture) logPlans(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+fx.path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	base := sqlite.SaleFilter{StoreID: benchBigStore, Mode: events.ModeLive, Limit: 15}
	mid := fx.pos(fx.newest(fx.deepK()))
	month := func() (time.Time, time.Time) {
		return benchStart.AddDate(1, 0, 0), benchStart.AddDate(1, 1, 0).Add(-time.Microsecond)
	}
	year := func() (time.Time, time.Time) {
		return benchStart.AddDate(0, 6, 0), benchStart.AddDate(1, 6, 0).Add(-time.Microsecond)
	}
	// nearOldEnd is the 100th-oldest sale of list inside [from, to]: a cursor deep into the range.
	nearOldEnd := func(list []int32, from time.Time) *sqlite.Position {
		i := sort.Search(len(list), func(i int) bool { return meta(int(list[i])).at >= from.UnixMicro() })
		return fx.pos(list[i+100])
	}
	c := fx.randomCustomer(rand.New(rand.NewPCG(7, 7)))
	email := customerEmail(c)
	type shape struct {
		name      string
		benchmark bool // the shape of a sub-benchmark; the others are combinations the handler also accepts
		mod       func(*sqlite.SaleFilter)
	}
	shapes := []shape{
		{"first-page", true, func(f *sqlite.SaleFilter) {}},
		{"per_page=100 + cursor", true, func(f *sqlite.SaleFilter) { f.Limit, f.After = 100, mid }},
		{"status", true, func(f *sqlite.SaleFilter) { f.Status = domain.StatusCompleted }},
		{"status + cursor", true, func(f *sqlite.SaleFilter) { f.Status, f.After = domain.StatusCompleted, mid }},
		{"customer_id", true, func(f *sqlite.SaleFilter) { f.CustomerID = customerID(c) }},
		{"search=email-prefix (9 chars, ~450 sales)", true, func(f *sqlite.SaleFilter) { f.Search = email[:9] }},
		{"search=email-prefix (8 chars, ~4,500)", true, func(f *sqlite.SaleFilter) { f.Search = email[:8] }},
		{"search=email-prefix (7 chars, ~45,000)", true, func(f *sqlite.SaleFilter) { f.Search = email[:7] }},
		{"search=sale-id", true, func(f *sqlite.SaleFilter) { f.Search = mid.ID }},
		{"date-range (month)", true, func(f *sqlite.SaleFilter) { f.From, f.To = month() }},
		{"date-range (month) + cursor at its old end", true, func(f *sqlite.SaleFilter) {
			f.From, f.To = month()
			f.After = nearOldEnd(fx.bigLive, f.From)
		}},
		{"date-range (year) + cursor at its old end", true, func(f *sqlite.SaleFilter) {
			f.From, f.To = year()
			f.After = nearOldEnd(fx.bigLive, f.From)
		}},
		{"status+date-range (month)", true, func(f *sqlite.SaleFilter) {
			f.Status = domain.StatusCompleted
			f.From, f.To = month()
		}},
		{"status+date-range (month) + cursor at its old end", true, func(f *sqlite.SaleFilter) {
			f.Status = domain.StatusCompleted
			f.From, f.To = month()
			f.After = nearOldEnd(fx.byStatus[f.Status], f.From)
		}},
		{"deep-cursor", true, func(f *sqlite.SaleFilter) { f.After = mid }},
		{"prev-page (Before)", true, func(f *sqlite.SaleFilter) { f.Before = mid }},
		{"status + customer_id", false, func(f *sqlite.SaleFilter) { f.Status, f.CustomerID = domain.StatusCompleted, customerID(c) }},
		{"customer_id + date-range (year)", false, func(f *sqlite.SaleFilter) {
			f.CustomerID = customerID(c)
			f.From, f.To = year()
		}},
		{"status + search=email-prefix (9 chars)", false, func(f *sqlite.SaleFilter) { f.Status, f.Search = domain.StatusFailed, email[:9] }},
		{"status + search=email-prefix (7 chars)", false, func(f *sqlite.SaleFilter) { f.Status, f.Search = domain.StatusFailed, email[:7] }},
		{"search=whole email + date-range (month)", false, func(f *sqlite.SaleFilter) {
			f.Search = email
			f.From, f.To = month()
		}},
		{"customer_id + search=whole email", false, func(f *sqlite.SaleFilter) { f.CustomerID, f.Search = customerID(c), email }},
		{"customer_id + search=\"buyer\" (every email)", false, func(f *sqlite.SaleFilter) { f.CustomerID, f.Search = customerID(c), "buyer" }},
		{"search=sale-id + status", false, func(f *sqlite.SaleFilter) { f.Status, f.Search = domain.StatusCompleted, mid.ID }},
	}
	var flagged []string
	for _, sh := range shapes {
		f := base
		sh.mod(&f)
		q, args, err := sqlite.ListQuery(ctx, fx.store, f)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			b.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				b.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")

		// The first call warms the caches.
		if _, _, err := fx.store.ListSales(ctx, f); err != nil {
			b.Fatal(err)
		}
		var took []time.Duration
		for range 3 {
			if len(took) == 1 && took[0] > time.Second {
				break // slow enough to show without repeating
			}
			t0 := time.Now()
			if _, _, err := fx.store.ListSales(ctx, f); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
		}
		slices.Sort(took)
		median := took[len(took)/2]

		var verdict []string
		// An email search sorts by design, but boundedly: below the broad-prefix cap at most that many
		// index keys, above it only the page's rows.
		if strings.Contains(p, "TEMP B-TREE") && !strings.Contains(q, "INDEXED BY") {
			verdict = append(verdict, "SORTS")
		}
		if !strings.Contains(p, "USING") {
			verdict = append(verdict, "SCANS")
		}
		if f.After != nil && !strings.Contains(p, "(created_at,id)<") || f.Before != nil && !strings.Contains(p, "(created_at,id)>") {
			verdict = append(verdict, "CURSOR NOT AN INDEX BOUND")
		}
		if median > 10*time.Millisecond {
			verdict = append(verdict, "OVER 10 ms")
		}
		if len(verdict) == 0 {
			verdict = append(verdict, "ok")
		} else {
			flagged = append(flagged, sh.name)
		}
		kind := "benchmarked"
		if !sh.benchmark {
			kind = "combination"
		}
		b.Logf("plan %-52s %-11s %8.2f ms  %s: %s", sh.name, kind, float64(median)/float64(time.Millisecond), strings.Join(verdict, ", "), p)
	}
	if len(flagged) > 0 {
		b.Logf("PLAN CHECK: %d of %d shapes flagged: %s", len(flagged), len(shapes), strings.Join(flagged, "; "))
	} else {
		b.Logf("PLAN CHECK: every shape is an index search in list order, no unbounded sort, under 10 ms")
	}
}
