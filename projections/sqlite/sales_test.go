package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// The model tests fold a small but realistic log into a real store and compare every page ListSales
// returns with the page a brute-force model of the documented semantics computes: StoreID and Mode
// always applied; Status and CustomerID exact; Search an exact sale id when it starts with "sal_" (in
// any case), else a case-insensitive prefix of the customer email; From and To inclusive; newest first
// by (created_at, id); After strictly older than the position, Before strictly newer (still returned
// newest first); more says whether items exist beyond the page in the direction of travel.

const (
	lmMainStore  = "str_ListModelMain000000000"
	lmOtherStore = "str_ListModelOther00000000"
	lmDay        = int64(24 * time.Hour / time.Microsecond)
	lmCustomers  = 300 // 276 "buyerNNN@example.com", 23 "shopperNNN@example.org", "sal_desk@example.org"
	lmBatch      = 1000
)

var (
	lmStart    = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // sales spread over the 730 days from here
	lmMonth    = [2]time.Time{time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)}
	lmYear     = [2]time.Time{time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)}
	lmStatuses = []string{domain.StatusAwaitingPayment, domain.StatusCompleted, domain.StatusFailed, domain.StatusAbandoned, domain.StatusSettled}
)

// lmSale is what the model knows of a sale.
type lmSale struct {
	id, store, mode, status, customer, email string
	at                                       int64 // created_at, unix microseconds
}

func (s lmSale) key() string {
	return fmt.Sprintf("%s@%d %s %s %s", s.id, s.at, s.status, s.customer, s.email)
}

func lmKeyOf(s domain.Sale) string {
	return fmt.Sprintf("%s@%d %s %s %s", s.ID, s.CreatedAt.UTC().UnixMicro(), s.Status, s.Started.CustomerID, s.Started.Customer.Email)
}

// lmCmp orders a sale against a position: <0 if the sale is older (comes after it in the list).
func lmCmp(s lmSale, p sqlite.Position) int {
	switch {
	case s.at != p.CreatedAt:
		if s.at < p.CreatedAt {
			return -1
		}
		return 1
	default:
		return strings.Compare(s.id, p.ID)
	}
}

func lmPos(s lmSale) *sqlite.Position { return &sqlite.Position{CreatedAt: s.at, ID: s.id} }

func lmPosOf(s domain.Sale) *sqlite.Position {
	return &sqlite.Position{CreatedAt: s.CreatedAt.UTC().UnixMicro(), ID: s.ID}
}

type lmCustomer struct{ id, email string }

// lmFixture is a store and the model of what was folded into it.
type lmFixture struct {
	st        *sqlite.Store
	customers []lmCustomer
	sales     []lmSale // every scope, newest first
	seq       uint64   // the last stream sequence folded
}

func lmID(r *rand.Rand, prefix string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte(prefix)
	for range 22 {
		b = append(b, base62[r.IntN(62)])
	}
	return string(b)
}

// lmBuild folds nMain sales of the main store's live mode, nOther of another store's live mode and
// nOther of the main store's test mode, all drawn from the same customers and the same two years. The
// first main sales get the times in pinned (each twice: a tie); one in ten later sales shares the
// previous sale's microsecond, half of those its customer too.
func lmBuild(t testing.TB, nMain, nOther int, pinned []int64) *lmFixture {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(20240101, 730))
	fx := &lmFixture{}
	for i := range lmCustomers {
		email := fmt.Sprintf("buyer%03d@example.com", i)
		switch {
		case i == lmCustomers-1: // searching for its start is searching for a sale id
			email = "sal_desk@example.org"
		case i >= 276:
			email = fmt.Sprintf("shopper%03d@example.org", i)
		}
		fx.customers = append(fx.customers, lmCustomer{id: lmID(r, "cus_"), email: email})
	}

	var log []events.Envelope
	for _, id := range []string{lmMainStore, lmOtherStore} {
		log = append(log, events.Envelope{
			Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
			Time:      lmStart.Add(-time.Hour),
			Payload: events.StoreCreated{StoreID: id, Name: id, Slug: strings.ToLower(id[4:]), ServiceFeePercent: "5",
				SettlementDelayDays: 7, AbandonAfterMinutes: 30},
		})
	}
	// No customer_registered: the sales read model does not need the customers (which three scopes
	// could not share), and their purchase statistics would only slow the fold down.
	scopes := []struct {
		store, mode string
		n           int
	}{{lmMainStore, events.ModeLive, nMain}, {lmOtherStore, events.ModeLive, nOther}, {lmMainStore, events.ModeTest, nOther}}
	for _, sc := range scopes {
		var prev lmSale
		for i := range sc.n {
			c := fx.customers[r.IntN(lmCustomers)]
			s := lmSale{id: lmID(r, domain.PrefixSale), store: sc.store, mode: sc.mode, customer: c.id, email: c.email,
				at: lmStart.UnixMicro() + r.Int64N(730*lmDay)}
			switch {
			case i < 2*len(pinned):
				s.at = pinned[i/2]
			case i > 0 && r.IntN(10) == 0:
				s.at = prev.at
				if r.IntN(2) == 0 {
					s.customer, s.email = prev.customer, prev.email
				}
			}
			switch p := r.IntN(100); {
			case p < 20:
				s.status = domain.StatusCompleted
			case p < 28:
				s.status = domain.StatusSettled
			case p < 38:
				s.status = domain.StatusFailed
			case p < 50:
				s.status = domain.StatusAbandoned
			default:
				s.status = domain.StatusAwaitingPayment
			}
			log = lmSaleEvents(log, s)
			fx.sales = append(fx.sales, s)
			prev = s
		}
	}

	var err error
	if fx.st, err = sqlite.Open(filepath.Join(t.TempDir(), "read.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.st.Close() })
	for i := range log {
		log[i].Sequence = uint64(i + 1)
	}
	fx.seq = uint64(len(log))
	for i := 0; i < len(log); i += lmBatch {
		if err := fx.st.Apply(ctx, log[i:min(i+lmBatch, len(log))]); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(fx.sales, func(a, b lmSale) int { return -lmCmp(a, *lmPos(b)) })
	return fx
}

// lmSaleEvents appends sale_started and, by status, what brought the sale there: as few events as
// reach each status, since folding is most of the test's time under -race.
func lmSaleEvents(out []events.Envelope, s lmSale) []events.Envelope {
	agg := events.Aggregate{Mode: s.mode, StoreID: s.store, Type: events.AggregateSale, ID: s.id}
	at := time.UnixMicro(s.at).UTC()
	amt := events.Amount{Amount: 1900, Currency: "USD"}
	out = append(out, events.Envelope{Aggregate: agg, Time: at, Payload: events.SaleStarted{
		SaleID: s.id, Store: events.StoreRef{ID: s.store}, CustomerID: s.customer, Customer: events.CustomerRef{ID: s.customer, Email: s.email},
		Channel: "store", OriginalAmount: amt, Amount: amt, ServiceFeePercent: "5", SettlementDelayDays: 7,
		AbandonAt: at.Add(30 * time.Minute),
	}})
	paid := func() {
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(time.Minute), Payload: events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)}})
	}
	switch s.status {
	case domain.StatusCompleted:
		paid()
	case domain.StatusSettled:
		paid()
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(7 * 24 * time.Hour), Payload: events.SaleSettled{Source: "schedule"}})
	case domain.StatusFailed:
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(time.Minute), Payload: events.PaymentRecorded{Status: "failed", Gateway: "stripe", Amount: amt}})
	case domain.StatusAbandoned:
		out = append(out, events.Envelope{Aggregate: agg, Time: at.Add(30 * time.Minute), Payload: events.SaleAbandoned{}})
	}
	return out
}

// match is the model of f's filters (cursors and Limit aside): the matching sales, newest first.
func (fx *lmFixture) match(f sqlite.SaleFilter) []lmSale {
	q := strings.ToLower(f.Search)
	var out []lmSale
	for _, s := range fx.sales {
		switch {
		case s.store != f.StoreID || s.mode != f.Mode,
			f.Status != "" && s.status != f.Status,
			f.CustomerID != "" && s.customer != f.CustomerID,
			f.Search != "" && strings.HasPrefix(q, domain.PrefixSale) && s.id != f.Search,
			f.Search != "" && !strings.HasPrefix(q, domain.PrefixSale) && !strings.HasPrefix(s.email, q),
			!f.From.IsZero() && s.at < f.From.UnixMicro(),
			!f.To.IsZero() && s.at > f.To.UnixMicro():
			continue
		}
		out = append(out, s)
	}
	return out
}

// lmPage is the model's page of list (match's result for f) at f's cursor.
func lmPage(list []lmSale, f sqlite.SaleFilter) (page []lmSale, more bool) {
	switch {
	case f.After != nil: // list[i:] is older than the position (or at it, when Inclusive)
		i, _ := slices.BinarySearchFunc(list, *f.After, func(s lmSale, p sqlite.Position) int {
			if c := lmCmp(s, p); c < 0 || c == 0 && f.Inclusive {
				return 1
			}
			return -1
		})
		rest := list[i:]
		return rest[:min(len(rest), f.Limit)], len(rest) > f.Limit
	case f.Before != nil: // list[:j] is newer than the position (or at it, when Inclusive)
		j, _ := slices.BinarySearchFunc(list, *f.Before, func(s lmSale, p sqlite.Position) int {
			if c := lmCmp(s, p); c < 0 || c == 0 && !f.Inclusive {
				return 1
			}
			return -1
		})
		k := max(0, j-f.Limit)
		return list[k:j], k > 0
	default:
		return list[:min(len(list), f.Limit)], len(list) > f.Limit
	}
}

func lmString(f sqlite.SaleFilter) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{%s/%s", f.StoreID, f.Mode)
	if f.Status != "" {
		fmt.Fprintf(&b, " status=%s", f.Status)
	}
	if f.CustomerID != "" {
		fmt.Fprintf(&b, " customer=%s", f.CustomerID)
	}
	if f.Search != "" {
		fmt.Fprintf(&b, " search=%q", f.Search)
	}
	if !f.From.IsZero() {
		fmt.Fprintf(&b, " from=%s(%d)", f.From.Format(time.RFC3339Nano), f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		fmt.Fprintf(&b, " to=%s(%d)", f.To.Format(time.RFC3339Nano), f.To.UnixMicro())
	}
	if f.After != nil {
		fmt.Fprintf(&b, " after=%d/%s", f.After.CreatedAt, f.After.ID)
	}
	if f.Before != nil {
		fmt.Fprintf(&b, " before=%d/%s", f.Before.CreatedAt, f.Before.ID)
	}
	if f.Inclusive {
		b.WriteString(" inclusive")
	}
	fmt.Fprintf(&b, " limit=%d}", f.Limit)
	return b.String()
}

// lmDiff describes how got differs from want.
func lmDiff(got, want []string) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			fmt.Fprintf(&b, "first difference at %d\n", i)
			break
		}
	}
	for _, side := range []struct {
		sign     string
		in, from []string
	}{{"-want", want, got}, {"+got ", got, want}} {
		n := 0
		for _, k := range side.in {
			if !slices.Contains(side.from, k) {
				if n++; n <= 8 {
					fmt.Fprintf(&b, "%s %s\n", side.sign, k)
				}
			}
		}
		if n > 8 {
			fmt.Fprintf(&b, "%s … %d more\n", side.sign, n-8)
		}
	}
	return b.String()
}

// page runs f and checks it against the model; ok is false (and the test failed) if they differ.
func (fx *lmFixture) page(t *testing.T, f sqlite.SaleFilter, list []lmSale) (got []domain.Sale, more, ok bool) {
	t.Helper()
	got, more, err := fx.st.ListSales(context.Background(), f)
	if err != nil {
		t.Errorf("%s: %v", lmString(f), err)
		return nil, false, false
	}
	want, wantMore := lmPage(list, f)
	gk, wk := make([]string, len(got)), make([]string, len(want))
	for i := range got {
		gk[i] = lmKeyOf(got[i])
	}
	for i := range want {
		wk[i] = want[i].key()
	}
	if !slices.Equal(gk, wk) || more != wantMore {
		t.Errorf("%s:\n got %d sales, more=%v\nwant %d sales, more=%v\n%s", lmString(f), len(gk), more, len(wk), wantMore, lmDiff(gk, wk))
		return got, more, false
	}
	return got, more, true
}

// walk pages from f's cursor in its direction (Before: towards newer sales) for up to maxPages pages
// (0: to the end), checking every page against the model. It returns the ids seen in list order.
func (fx *lmFixture) walk(t *testing.T, f sqlite.SaleFilter, list []lmSale, maxPages int) (seen []string, ok bool) {
	t.Helper()
	for n := 0; maxPages == 0 || n < maxPages; n++ {
		got, more, ok := fx.page(t, f, list)
		if !ok {
			return seen, false
		}
		ids := make([]string, len(got))
		for i, s := range got {
			ids[i] = s.ID
		}
		if f.Before != nil {
			seen = append(ids, seen...)
		} else {
			seen = append(seen, ids...)
		}
		if !more {
			if maxPages == 0 && len(got) > 0 { // past the end stays empty
				next := f
				if f.Before != nil {
					next.Before = lmPosOf(got[0])
				} else {
					next.After = lmPosOf(got[len(got)-1])
				}
				if _, _, ok := fx.page(t, next, list); !ok {
					return seen, false
				}
			}
			return seen, true
		}
		if len(got) == 0 {
			t.Errorf("%s: an empty page with more", lmString(f))
			return seen, false
		}
		if f.Before != nil {
			f.Before = lmPosOf(got[0])
		} else {
			f.After = lmPosOf(got[len(got)-1])
		}
	}
	return seen, true
}

func lmIDs(list []lmSale) []string {
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.id
	}
	return ids
}

// lmCursors are the positions a shape is paged from besides the top: in its list (its ends, near its
// top, its middle, the middle one of three sales in one microsecond); around each bound of its date
// range, the nearest sale outside it and positions before and after every sale of the bound's
// microsecond and of the one just outside it (so that a cursor implies the bound or just fails to);
// and before and after all the data.
func lmCursors(all, list []lmSale, f sqlite.SaleFilter) []*sqlite.Position {
	var ps []*sqlite.Position
	if n := len(list); n > 0 {
		ps = append(ps, lmPos(list[0]), lmPos(list[min(n-1, 20)]), lmPos(list[n/2]), lmPos(list[n-1]))
		for i := n / 3; i+2 < n; i++ {
			if list[i].at == list[i+2].at {
				ps = append(ps, lmPos(list[i+1]))
				break
			}
		}
	}
	if !f.From.IsZero() {
		from := f.From.UnixMicro()
		for _, s := range all { // newest first: the newest sale older than From
			if s.at < from {
				ps = append(ps, lmPos(s))
				break
			}
		}
		ps = lmAround(ps, from-1, from)
	}
	if !f.To.IsZero() {
		to := f.To.UnixMicro()
		for i := len(all) - 1; i >= 0; i-- { // the oldest sale newer than To
			if all[i].at > to {
				ps = append(ps, lmPos(all[i]))
				break
			}
		}
		ps = lmAround(ps, to, to+1)
	}
	return lmAround(ps, lmStart.UnixMicro()-lmDay, lmStart.UnixMicro()+800*lmDay)
}

// lmAround appends the positions before and after every sale of each of these microseconds ("sal_"
// sorts before every sale id, "sal_~" after).
func lmAround(ps []*sqlite.Position, micros ...int64) []*sqlite.Position {
	for _, at := range micros {
		ps = append(ps, &sqlite.Position{CreatedAt: at, ID: "sal_"}, &sqlite.Position{CreatedAt: at, ID: "sal_~"})
	}
	return ps
}

// lmPinned are the times the first sales of the main store get (two sales each): the date ranges'
// exact bounds and the microseconds just outside them.
func lmPinned() []int64 {
	var ps []int64
	for _, r := range [][2]time.Time{lmMonth, lmYear} {
		from, to := r[0].UnixMicro(), r[1].UnixMicro()
		ps = append(ps, from, to, from-1, to+1)
	}
	return ps
}

// TestListSalesMatchesModel pages through every filter shape the API can build (see lmCheckShape),
// comparing each page and its more with the model's. The shapes' first statements are checked to take
// the path they are meant to cover: a broad email prefix (at least broadSearch matches) walking
// sales_by_time or sales_by_status, a narrow one sales_by_email, an email prefix with customer_id kept
// out of index choice, a sale id.
//
// It takes about 2 s, and 20–35 s under -race on two cores: folding the 4,000-odd sales a broad
// prefix needs costs about 6 s alone there (modernc.org/sqlite is Go translated from C, and -race
// turns on checkptr), and every broad-prefix page pays the capped count.
func TestListSalesMatchesModel(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	fx := lmBuild(t, 4500, 200, lmPinned())
	t.Logf("folded %d sales in %s", len(fx.sales), time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()
	scope := sqlite.SaleFilter{StoreID: lmMainStore, Mode: events.ModeLive}
	all := fx.match(scope)

	// What the shapes rely on: a customer of each kind with many sales, a sale in the middle, ties,
	// a prefix above broadSearch (4,000) and ones below it.
	count := map[string]int{}
	for _, s := range all {
		count[s.customer]++
	}
	var buyer, shopper lmCustomer
	for _, c := range fx.customers {
		if strings.HasPrefix(c.email, "buyer") && count[c.id] > count[buyer.id] {
			buyer = c
		}
		if strings.HasPrefix(c.email, "shopper") && count[c.id] > count[shopper.id] {
			shopper = c
		}
	}
	mid := all[len(all)/2]
	ties := 0
	for i := 1; i < len(all); i++ {
		if all[i].at == all[i-1].at {
			ties++
		}
	}
	for _, st := range lmStatuses {
		if n := len(fx.match(sqlite.SaleFilter{StoreID: scope.StoreID, Mode: scope.Mode, Status: st})); n < 200 {
			t.Fatalf("fixture: %d sales %s", n, st)
		}
	}
	broad := len(fx.match(sqlite.SaleFilter{StoreID: scope.StoreID, Mode: scope.Mode, Search: "buyer"}))
	narrow := len(fx.match(sqlite.SaleFilter{StoreID: scope.StoreID, Mode: scope.Mode, Search: "buyer01"}))
	if len(all) != 4500 || broad < 4000 || narrow >= 4000 || narrow < 100 || ties < 100 || count[buyer.id] < 10 || count[shopper.id] < 10 {
		t.Fatalf("fixture: %d sales, %d match buyer, %d buyer01, %d ties, customers with %d and %d sales",
			len(all), broad, narrow, ties, count[buyer.id], count[shopper.id])
	}
	t.Logf("main scope: %d sales, %d in the same microsecond as the next newer; %q matches %d, %q %d; %s has %d",
		len(all), ties, "buyer", broad, "buyer01", narrow, buyer.email, count[buyer.id])

	cases := []struct {
		name string
		f    sqlite.SaleFilter
		sql  string // a fragment of the first page's statement: the path the shape is meant to take
	}{
		// The costliest first (it pays the capped count on each of its pages): the walks run in
		// parallel, GOMAXPROCS at a time.
		{name: "broad prefix", f: sqlite.SaleFilter{Search: "buyer"}, sql: "INDEXED BY sales_by_time"},
		{name: "no filter"},
		{name: "status=completed", f: sqlite.SaleFilter{Status: domain.StatusCompleted}},
		{name: "status=abandoned", f: sqlite.SaleFilter{Status: domain.StatusAbandoned}},
		{name: "status=failed", f: sqlite.SaleFilter{Status: domain.StatusFailed}},
		{name: "customer_id", f: sqlite.SaleFilter{CustomerID: buyer.id}},
		{name: "narrow prefix", f: sqlite.SaleFilter{Search: "buyer01"}, sql: "INDEXED BY sales_by_email"},
		{name: "prefix upper-case", f: sqlite.SaleFilter{Search: "BuYeR01"}, sql: "INDEXED BY sales_by_email"},
		{name: "prefix of the other domain", f: sqlite.SaleFilter{Search: "Shopper"}, sql: "INDEXED BY sales_by_email"},
		{name: "whole email", f: sqlite.SaleFilter{Search: buyer.email}, sql: "INDEXED BY sales_by_email"},
		{name: "whole email upper-case", f: sqlite.SaleFilter{Search: strings.ToUpper(buyer.email)}, sql: "INDEXED BY sales_by_email"},
		{name: "prefix matching nothing", f: sqlite.SaleFilter{Search: "nobody"}},
		{name: "sale id", f: sqlite.SaleFilter{Search: mid.id}, sql: "id = ?"},
		{name: "sale id with SAL_", f: sqlite.SaleFilter{Search: "SAL_" + mid.id[4:]}, sql: "id = ?"},          // an id, not an email: no match
		{name: "email prefix looking like a sale id", f: sqlite.SaleFilter{Search: "Sal_Desk"}, sql: "id = ?"}, // no match either
		{name: "status+broad prefix", f: sqlite.SaleFilter{Status: domain.StatusCompleted, Search: "BUYER"}, sql: "INDEXED BY sales_by_status"},
		{name: "status+narrow prefix", f: sqlite.SaleFilter{Status: domain.StatusCompleted, Search: "buyer01"}, sql: "INDEXED BY sales_by_email"},
		{name: "customer_id+broad prefix", f: sqlite.SaleFilter{CustomerID: buyer.id, Search: "buyer"}, sql: "+customer_email >= ?"},
		{name: "customer_id+whole email", f: sqlite.SaleFilter{CustomerID: buyer.id, Search: buyer.email}, sql: "+customer_email >= ?"},
		{name: "customer_id+prefix not theirs", f: sqlite.SaleFilter{CustomerID: shopper.id, Search: "buyer"}, sql: "+customer_email >= ?"},
		{name: "customer_id+status", f: sqlite.SaleFilter{CustomerID: buyer.id, Status: domain.StatusAwaitingPayment}},
		{name: "month", f: sqlite.SaleFilter{From: lmMonth[0], To: lmMonth[1]}},
		{name: "year", f: sqlite.SaleFilter{From: lmYear[0], To: lmYear[1]}},
		{name: "from only", f: sqlite.SaleFilter{From: lmYear[1]}},
		{name: "to only", f: sqlite.SaleFilter{To: lmMonth[1]}},
		{name: "inverted range", f: sqlite.SaleFilter{From: lmMonth[1], To: lmMonth[0]}},
		{name: "month+status", f: sqlite.SaleFilter{Status: domain.StatusCompleted, From: lmMonth[0], To: lmMonth[1]}},
		{name: "year+status", f: sqlite.SaleFilter{Status: domain.StatusAbandoned, From: lmYear[0], To: lmYear[1]}},
		{name: "broad prefix+month", f: sqlite.SaleFilter{Search: "buyer", From: lmMonth[0], To: lmMonth[1]}, sql: "INDEXED BY sales_by_time"},
		{name: "broad prefix+year+status", f: sqlite.SaleFilter{Status: domain.StatusFailed, Search: "buyer", From: lmYear[0], To: lmYear[1]}, sql: "INDEXED BY sales_by_status"},
		{name: "narrow prefix+year", f: sqlite.SaleFilter{Search: "buyer01", From: lmYear[0], To: lmYear[1]}, sql: "INDEXED BY sales_by_email"},
		{name: "customer_id+year", f: sqlite.SaleFilter{CustomerID: buyer.id, From: lmYear[0], To: lmYear[1]}},
		{name: "customer_id+broad prefix+month", f: sqlite.SaleFilter{CustomerID: buyer.id, Search: "buyer", From: lmMonth[0], To: lmMonth[1]}, sql: "+customer_email >= ?"},
		{name: "sale id+month", f: sqlite.SaleFilter{Search: mid.id, From: lmMonth[0], To: lmMonth[1]}, sql: "id = ?"},
	}
	t.Run("shapes", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				f := c.f
				f.StoreID, f.Mode = scope.StoreID, scope.Mode
				if c.sql != "" {
					if q, _, err := sqlite.ListQuery(ctx, fx.st, f); err != nil || !strings.Contains(q, c.sql) {
						t.Errorf("the statement does not take the path under test (%q): %v\n%s", c.sql, err, q)
					}
				}
				list := fx.match(f)
				for _, limit := range []int{15, 100} {
					t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
						t.Parallel()
						f := f
						f.Limit = limit
						lmCheckShape(t, fx, f, list, all)
					})
				}
			})
		}
	})
	t.Logf("%d shapes in %s", len(cases), time.Since(t0).Round(time.Millisecond))
}

// lmCheckShape walks f's shape at f.Limit: forward from the top through every page, every page the
// model's and every sale seen once, in order; at 15 a page, back from the oldest sale to the top (for
// lists of up to 600 sales) and a page either way from each of lmCursors, without and with the position itself.
func lmCheckShape(t *testing.T, fx *lmFixture, f sqlite.SaleFilter, list, all []lmSale) {
	seen, ok := fx.walk(t, f, list, 0)
	if !ok {
		return
	}
	if want := lmIDs(list); !slices.Equal(seen, want) {
		t.Fatalf("%s: the walk saw %d sales, want %d\n%s", lmString(f), len(seen), len(want), lmDiff(seen, want))
	}
	if f.Limit != 15 {
		return
	}
	if len(list) > 0 && len(list) <= 600 { // the longer ones cost seconds under -race
		b := f
		b.Before = lmPos(list[len(list)-1])
		seen, ok := fx.walk(t, b, list, 0)
		if !ok {
			return
		}
		if want := lmIDs(list[:len(list)-1]); !slices.Equal(seen, want) {
			t.Fatalf("%s: the walk back saw %d sales, want %d\n%s", lmString(b), len(seen), len(want), lmDiff(seen, want))
		}
	}
	for _, p := range lmCursors(all, list, f) {
		for _, inclusive := range []bool{false, true} {
			a, b := f, f
			a.After, b.Before = p, p
			a.Inclusive, b.Inclusive = inclusive, inclusive
			if _, ok := fx.walk(t, a, list, 1); !ok {
				return
			}
			if _, ok := fx.walk(t, b, list, 1); !ok {
				return
			}
		}
	}
}

// TestListSalesScopedToStoreAndMode: the main store's live mode, another store's live mode and the
// main store's test mode share customers, emails and times; no list of one shows a sale of another.
func TestListSalesScopedToStoreAndMode(t *testing.T) {
	t.Parallel()
	fx := lmBuild(t, 300, 300, nil)
	byID := map[string]lmSale{}
	perScope := map[string]map[string]bool{} // customer → scopes with their sales
	first := map[string]lmSale{}             // scope → a sale of it
	for _, s := range fx.sales {
		byID[s.id] = s
		sc := s.store + "/" + s.mode
		if perScope[s.customer] == nil {
			perScope[s.customer] = map[string]bool{}
		}
		perScope[s.customer][sc] = true
		if _, ok := first[sc]; !ok {
			first[sc] = s
		}
	}
	var shared string // a customer with sales in all three scopes
	for _, c := range fx.customers {
		if len(perScope[c.id]) == 3 {
			shared = c.id
			break
		}
	}
	if shared == "" || len(first) != 3 {
		t.Fatal("fixture: no customer with sales in all three scopes")
	}
	scopes := [][2]string{{lmMainStore, events.ModeLive}, {lmOtherStore, events.ModeLive}, {lmMainStore, events.ModeTest}}
	for _, sc := range scopes {
		filters := []sqlite.SaleFilter{
			{},
			{Status: domain.StatusCompleted},
			{CustomerID: shared},
			{Search: "buyer"},
			{Search: "BUYER1"},
			{CustomerID: shared, Search: "b"},
			{From: lmMonth[0], To: lmYear[1]},
		}
		for _, o := range scopes { // each scope's sale ids: found in their own scope only
			filters = append(filters, sqlite.SaleFilter{Search: first[o[0]+"/"+o[1]].id})
		}
		for _, f := range filters {
			f.StoreID, f.Mode, f.Limit = sc[0], sc[1], 15
			list := fx.match(f)
			seen, ok := fx.walk(t, f, list, 0)
			if !ok {
				continue
			}
			for _, id := range seen {
				if s := byID[id]; s.store != f.StoreID || s.mode != f.Mode {
					t.Errorf("%s: listed %s, a sale of %s/%s", lmString(f), id, s.store, s.mode)
				}
			}
			s, isID := byID[f.Search]
			switch {
			case isID && (s.store == f.StoreID && s.mode == f.Mode) != (len(seen) == 1):
				t.Errorf("%s: %d sales for the id of a sale of %s/%s", lmString(f), len(seen), s.store, s.mode)
			case !isID && len(list) == 0:
				t.Errorf("%s: the fixture has no sale for this filter", lmString(f))
			}
		}
	}
}
