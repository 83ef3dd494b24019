package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// pmShown is a page as the client saw it: where it was asked for (nil: the top), its sales, and the
// cursors it came with.
type pmShown struct {
	at    *sqlite.Cursor[sqlite.Position]
	sales []lmSale
	links sqlite.Links[sqlite.Position]
}

// move is the model of where going on from a page leads: from a page with sales, the sales just older
// than its last (forward) or just newer than its first (back); from an empty page, which has no sale of
// its own, back the way the client came, from the position it asked for, that position included (the
// sale there, the last one the client saw, may still be listed). ok is false where the model has no way
// on: the top of the list going back, and the way an empty page was asked for.
func (p pmShown) move(f sqlite.SaleFilter, forward bool) (sqlite.SaleFilter, bool) {
	f.After, f.Before, f.Inclusive = nil, nil, false
	switch {
	case len(p.sales) > 0 && forward:
		f.After = lmPos(p.sales[len(p.sales)-1])
	case len(p.sales) > 0:
		f.Before = lmPos(p.sales[0])
	case p.at == nil || p.at.Back != forward:
		return f, false
	case forward:
		f.After, f.Inclusive = &p.at.At, true
	default:
		f.Before, f.Inclusive = &p.at.At, true
	}
	return f, true
}

// withCursor is f paged at c, as the API reads a cursor.
func withCursor(f sqlite.SaleFilter, c *sqlite.Cursor[sqlite.Position]) sqlite.SaleFilter {
	return f.At(c)
}

// pmChanges changes the fixture's sales behind the log, as the API's clients and gateways do between
// two page fetches: a sale paid (it leaves status=awaiting_payment), a completed sale settled, a
// customer erased (their sales lose the email a search finds them by), a new sale.
type pmChanges struct {
	fx     *lmFixture
	r      *rand.Rand
	erased map[string]bool
	now    int64
}

func (c *pmChanges) apply(t *testing.T, evs ...events.Envelope) {
	t.Helper()
	for i := range evs {
		c.fx.seq++
		evs[i].Sequence = c.fx.seq
	}
	if err := c.fx.st.Apply(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func saleAgg(s lmSale) events.Aggregate {
	return events.Aggregate{Mode: s.mode, StoreID: s.store, Type: events.AggregateSale, ID: s.id}
}

// change makes one change, to a sale of near (the sales around the client's page) half the time.
func (c *pmChanges) change(t *testing.T, near []lmSale) string {
	t.Helper()
	pick := func() *lmSale {
		if len(near) > 0 && c.r.IntN(2) == 0 {
			id := near[c.r.IntN(len(near))].id
			for i := range c.fx.sales {
				if c.fx.sales[i].id == id {
					return &c.fx.sales[i]
				}
			}
		}
		for {
			if s := &c.fx.sales[c.r.IntN(len(c.fx.sales))]; s.store == lmMainStore && s.mode == events.ModeLive {
				return s
			}
		}
	}
	s := pick()
	at := time.UnixMicro(s.at).UTC().Add(time.Hour)
	switch k := c.r.IntN(10); {
	case k < 4 && s.status == domain.StatusAwaitingPayment:
		c.apply(t, events.Envelope{Aggregate: saleAgg(*s), Time: at, Payload: events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)}})
		s.status = domain.StatusCompleted
		return "paid " + s.id
	case k < 6 && s.status == domain.StatusCompleted:
		c.apply(t, events.Envelope{Aggregate: saleAgg(*s), Time: at, Payload: events.SaleSettled{Source: "schedule"}})
		s.status = domain.StatusSettled
		return "settled " + s.id
	case k < 8 && !c.erased[s.customer]:
		agg := events.Aggregate{Mode: s.mode, StoreID: s.store, Type: events.AggregateCustomer, ID: s.customer}
		c.apply(t,
			events.Envelope{Aggregate: agg, Time: at, Payload: events.CustomerRegistered{CustomerID: s.customer, CustomerData: events.CustomerData{Email: s.email}, Source: "api"}},
			events.Envelope{Aggregate: agg, Time: at, Payload: events.CustomerErased{CustomerID: s.customer}})
		c.erased[s.customer] = true
		for i := range c.fx.sales {
			if c.fx.sales[i].customer == s.customer {
				c.fx.sales[i].email = ""
			}
		}
		return "erased " + s.customer
	default:
		cu := c.fx.customers[c.r.IntN(len(c.fx.customers))]
		if c.erased[cu.id] {
			return "nothing"
		}
		c.now += int64(time.Second / time.Microsecond)
		n := lmSale{id: lmID(c.r, domain.PrefixSale), store: lmMainStore, mode: events.ModeLive, status: domain.StatusAwaitingPayment,
			customer: cu.id, email: cu.email, at: c.now}
		c.apply(t, lmSaleEvents(nil, n)...)
		c.fx.sales = append([]lmSale{n}, c.fx.sales...) // the newest of all
		return "new " + n.id
	}
}

// TestCursorsFollowTheModelWhileSalesChange walks lists along the cursors the API hands out
// (sqlite.PageLinks over ListSales), forward and back at random, while between fetches sales are paid
// and settled out of a status filter, customers erased out of an email search, and new sales arrive.
// Every page must be the model's page (pmShown.move, then lmPage on the list as it is now), and a page
// must have a cursor in every direction where the model had sales beyond it when it was fetched:
// nothing becomes unreachable. has_more and next_cursor must say exactly whether the model has older
// sales, on pages reached going back too (sqlite.ExactOlder). Going back from an empty page used to skip
// its anchor; a page reached going back used to claim older sales that had all left.
func TestCursorsFollowTheModelWhileSalesChange(t *testing.T) {
	t.Parallel()
	shapes := []struct {
		name string
		f    sqlite.SaleFilter
	}{
		{"no filter", sqlite.SaleFilter{}},
		{"status=awaiting_payment", sqlite.SaleFilter{Status: domain.StatusAwaitingPayment}},
		{"status=completed", sqlite.SaleFilter{Status: domain.StatusCompleted}},
		{"email prefix", sqlite.SaleFilter{Search: "buyer1"}},
	}
	for _, sh := range shapes {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed=%d", sh.name, seed), func(t *testing.T) {
				t.Parallel()
				pmWalk(t, sh.f, seed)
			})
		}
	}
}

func pmWalk(t *testing.T, shape sqlite.SaleFilter, seed uint64) {
	fx := lmBuild(t, 60, 10, nil)
	r := rand.New(rand.NewPCG(seed, 9))
	ch := &pmChanges{fx: fx, r: r, erased: map[string]bool{}, now: lmStart.UnixMicro() + 800*lmDay}
	f := shape
	f.StoreID, f.Mode = lmMainStore, events.ModeLive

	var log []string // what happened, for the failure message
	fetch := func(at *sqlite.Cursor[sqlite.Position], want sqlite.SaleFilter) (pmShown, bool) {
		t.Helper()
		got, more, err := fx.st.ListSales(context.Background(), withCursor(f, at))
		if err != nil {
			t.Fatal(err)
		}
		list := fx.match(f)
		wantPage, _ := lmPage(list, want)
		shown := pmShown{at: at}
		gk, wk := make([]string, len(got)), make([]string, len(wantPage))
		for i, s := range got {
			gk[i] = lmKeyOf(s)
		}
		for i, s := range wantPage {
			wk[i] = s.key()
		}
		if !slices.Equal(gk, wk) {
			t.Errorf("after %v\nfetched at %s, want the model's %s:\n%s", log, lmString(withCursor(f, at)), lmString(want), lmDiff(gk, wk))
			return shown, false
		}
		shown.sales = wantPage
		pos := make([]sqlite.Position, len(got))
		for i, s := range got {
			pos[i] = *lmPosOf(s)
		}
		shown.links, err = sqlite.ExactOlder(at, sqlite.PageLinks(at, pos, more), func(c sqlite.Cursor[sqlite.Position]) (bool, error) {
			return fx.st.HasSales(context.Background(), f.At(&c))
		})
		if err != nil {
			t.Fatal(err)
		}
		// has_more is whether older sales follow the page, on pages reached going back too, and
		// next_cursor is set exactly then.
		older := false
		if mf, ok := shown.move(f, true); ok {
			beyond, _ := lmPage(list, mf)
			older = len(beyond) > 0
		}
		if shown.links.HasMore != older || (shown.links.Next != nil) != older {
			t.Errorf("after %v\n%s: has_more %v, next_cursor %v; the model has older sales: %v", log, lmString(withCursor(f, at)),
				shown.links.HasMore, shown.links.Next != nil, older)
			return shown, false
		}
		for _, dir := range []struct {
			forward bool
			link    *sqlite.Cursor[sqlite.Position]
		}{{true, shown.links.Next}, {false, shown.links.Prev}} {
			if mf, ok := shown.move(f, dir.forward); ok && dir.link == nil {
				if beyond, _ := lmPage(list, mf); len(beyond) > 0 {
					t.Errorf("after %v\n%s: no cursor forward=%v, but the model has %d sales that way", log, lmString(withCursor(f, at)), dir.forward, len(beyond))
					return shown, false
				}
			}
		}
		return shown, true
	}

	top := f
	top.Limit = []int{1, 2, 3, 5}[r.IntN(4)]
	f.Limit = top.Limit
	page, ok := fetch(nil, top)
	for step := 0; ok && step < 150; step++ {
		near := page.sales
		if l := fx.match(f); len(page.sales) > 0 {
			i := slices.IndexFunc(l, func(s lmSale) bool { return s.id == page.sales[0].id })
			near = l[max(0, i-f.Limit):min(len(l), max(i, 0)+2*f.Limit)]
		}
		for range r.IntN(3) {
			log = append(log, ch.change(t, near))
		}
		forward := r.IntN(2) == 0
		link := page.links.Prev
		if forward {
			link = page.links.Next
		}
		if link == nil {
			forward = !forward
			if link = page.links.Prev; forward {
				link = page.links.Next
			}
		}
		if link == nil { // no way on either side: start again from the top
			log = append(log, "top")
			page, ok = fetch(nil, top)
			continue
		}
		want, modelOK := page.move(f, forward)
		if !modelOK {
			t.Fatalf("after %v\na cursor forward=%v the model has no way for: %+v", log, forward, *link)
		}
		log = append(log, fmt.Sprintf("forward=%v", forward))
		if len(log) > 12 {
			log = log[len(log)-12:]
		}
		page, ok = fetch(link, want)
	}
}
