package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// attackGen makes a random but valid event stream of customers and their sales: registrations (a new
// customer may take an erased one's email), updates, addresses, photos, erasures, checkouts (also for a
// customer erased meanwhile), payments, completions, abandons, refunds (partial and full), disputes,
// settlements, downloads and ratings, with sequences in log order.
type attackGen struct {
	r     *rand.Rand
	at    time.Time
	evs   []events.Envelope
	cus   []*genCustomer
	sales []*genSale
}

type genCustomer struct {
	id, email  string
	state      string // registered, erased
	addrs      []string
	nextAddr   int
	store      string
	mode       string
	registered bool
}

type genSale struct {
	id, customer, store, mode string
	state                     string // awaiting, completed, settled, refunded, abandoned, failed
	amount, refunded          int64
	currency                  string
	dispute                   string // open dispute id
	disputes                  int
	refunds                   int
}

func (g *attackGen) add(agg events.Aggregate, p events.Payload) {
	g.at = g.at.Add(time.Duration(1+g.r.IntN(90)) * time.Second)
	g.evs = append(g.evs, events.Envelope{ID: fmt.Sprintf("evt_g%06d", len(g.evs)), Aggregate: agg, Time: g.at, Payload: p,
		Sequence: uint64(len(g.evs) + 1)})
}

func (c *genCustomer) agg() events.Aggregate {
	return events.Aggregate{Mode: c.mode, StoreID: c.store, Type: events.AggregateCustomer, ID: c.id}
}

func (s *genSale) agg() events.Aggregate {
	return events.Aggregate{Mode: s.mode, StoreID: s.store, Type: events.AggregateSale, ID: s.id}
}

func (g *attackGen) data(email string) events.CustomerData {
	first := []string{"Ada", "Grace", "Marie", "Émile", "Zoë"}[g.r.IntN(5)]
	return events.CustomerData{Email: email, FirstName: first, LastName: fmt.Sprintf("L%d", g.r.IntN(100)), Phone: "+14155552671",
		City: []string{"", "Abidjan", "Lagos"}[g.r.IntN(3)]}
}

func (g *attackGen) registered() []*genCustomer {
	var out []*genCustomer
	for _, c := range g.cus {
		if c.state == "registered" {
			out = append(out, c)
		}
	}
	return out
}

func (g *attackGen) salesIn(states ...string) []*genSale {
	var out []*genSale
	for _, s := range g.sales {
		for _, st := range states {
			if s.state == st {
				out = append(out, s)
			}
		}
	}
	return out
}

func (g *attackGen) step() {
	pick := func(n int) int { return g.r.IntN(n) }
	switch pick(20) {
	case 0, 1: // a new customer; sometimes with an erased customer's email
		email := fmt.Sprintf("c%d@example.com", len(g.cus))
		for _, c := range g.cus {
			if c.state == "erased" && pick(2) == 0 {
				email = c.email
				break
			}
		}
		store, mode := "str_a", events.ModeLive
		if pick(5) == 0 {
			store, mode = "str_b", events.ModeTest
		}
		c := &genCustomer{id: fmt.Sprintf("cus_g%03d", len(g.cus)), email: email, state: "registered", store: store, mode: mode}
		g.cus = append(g.cus, c)
		g.add(c.agg(), events.CustomerRegistered{CustomerID: c.id, Source: "checkout", CustomerData: g.data(email)})
	case 2:
		if cs := g.registered(); len(cs) > 0 {
			c := cs[pick(len(cs))]
			g.add(c.agg(), events.CustomerUpdated{CustomerID: c.id, CustomerData: g.data(c.email)})
		}
	case 3:
		if cs := g.registered(); len(cs) > 0 {
			c := cs[pick(len(cs))]
			switch {
			case len(c.addrs) < 3 && pick(2) == 0:
				id := fmt.Sprintf("adr_%s_%d", c.id, c.nextAddr)
				c.nextAddr++
				c.addrs = append(c.addrs, id)
				g.add(c.agg(), events.CustomerAddressAdded{CustomerID: c.id, AddressID: id, Default: pick(2) == 0,
					AddressData: events.AddressData{Line1: "1 Rue " + id, City: "Abidjan", Country: "CI"}})
			case len(c.addrs) > 0 && pick(2) == 0:
				i := pick(len(c.addrs))
				g.add(c.agg(), events.CustomerAddressRemoved{CustomerID: c.id, AddressID: c.addrs[i]})
				c.addrs = append(c.addrs[:i:i], c.addrs[i+1:]...)
			case len(c.addrs) > 0:
				g.add(c.agg(), events.CustomerDefaultAddressSet{CustomerID: c.id, AddressID: c.addrs[pick(len(c.addrs))]})
			default:
				g.add(c.agg(), events.CustomerPhotoSet{CustomerID: c.id, Object: "photos/" + c.id, ContentType: "image/png", Size: 100})
			}
		}
	case 4:
		if cs := g.registered(); len(cs) > 0 && pick(2) == 0 {
			c := cs[pick(len(cs))]
			c.state = "erased"
			g.add(c.agg(), events.CustomerErased{CustomerID: c.id})
		}
	case 5, 6, 7: // a checkout; now and then for a customer erased since (the checkout raced the erasure)
		if len(g.cus) == 0 {
			return
		}
		c := g.cus[pick(len(g.cus))]
		if c.state != "registered" && pick(3) != 0 {
			return
		}
		amt := events.Amount{Amount: int64(100 * (1 + pick(20))), Currency: []string{"USD", "EUR"}[pick(2)]}
		s := &genSale{id: fmt.Sprintf("sal_g%03d", len(g.sales)), customer: c.id, store: c.store, mode: c.mode, state: "awaiting",
			amount: amt.Amount, currency: amt.Currency}
		g.sales = append(g.sales, s)
		g.add(s.agg(), events.SaleStarted{SaleID: s.id, Store: events.StoreRef{ID: c.store}, CustomerID: c.id,
			Customer: events.CustomerRef{ID: c.id, Email: c.email, FirstName: "Buyer"}, Channel: "api", OriginalAmount: amt, Amount: amt,
			ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: g.at.Add(time.Hour), Metadata: []byte(`{"k":"v"}`)})
	case 8, 9, 10:
		if ss := g.salesIn("awaiting"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			amt := events.Amount{Amount: s.amount, Currency: s.currency}
			switch pick(6) {
			case 0:
				g.add(s.agg(), events.PaymentRecorded{Status: "pending", Gateway: "standard", Amount: amt})
			case 1:
				s.state = "failed"
				g.add(s.agg(), events.PaymentRecorded{Status: "failed", Gateway: "standard", Amount: amt})
			case 2:
				s.state = "abandoned"
				g.add(s.agg(), events.SaleAbandoned{})
			default:
				s.state = "completed"
				g.add(s.agg(), events.PaymentRecorded{Status: "success", Gateway: "standard", TransactionID: "txn_" + s.id, Amount: amt})
				g.add(s.agg(), events.SaleCompleted{SettlementDueAt: g.at.Add(7 * 24 * time.Hour),
					Files: []events.IssuedFile{{ID: "fil_1", Name: "a.pdf", URL: "https://cdn.example/a.pdf", ExpiresAt: g.at.Add(time.Hour)}}})
			}
		}
	case 11, 12, 13:
		if ss := g.salesIn("completed", "settled"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			left := s.amount - s.refunded
			amt := left
			if pick(2) == 0 && left > 100 {
				amt = 100
			}
			s.refunds++
			s.refunded += amt
			g.add(s.agg(), events.RefundRecorded{RefundID: fmt.Sprintf("ref_%s_%d", s.id, s.refunds), Amount: events.Amount{Amount: amt, Currency: s.currency},
				Source: events.RefundSourceAPI})
			if s.refunded >= s.amount {
				s.state = "refunded"
			}
		}
	case 14:
		if ss := g.salesIn("completed", "settled"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			if s.dispute == "" {
				s.disputes++
				s.dispute = fmt.Sprintf("du_%s_%d", s.id, s.disputes)
				g.add(s.agg(), events.DisputeOpened{DisputeID: s.dispute, Amount: events.Amount{Amount: s.amount - s.refunded, Currency: s.currency}, Gateway: "stripe"})
			} else {
				st := []string{events.DisputeWon, events.DisputeLost}[pick(2)]
				g.add(s.agg(), events.DisputeClosed{DisputeID: s.dispute, Status: st, Gateway: "stripe"})
				if st == events.DisputeLost && s.amount > s.refunded {
					s.refunds++
					g.add(s.agg(), events.RefundRecorded{RefundID: fmt.Sprintf("ref_%s_%d", s.id, s.refunds),
						Amount: events.Amount{Amount: s.amount - s.refunded, Currency: s.currency}, Source: "stripe", DisputeID: s.dispute})
					s.refunded, s.state = s.amount, "refunded"
				}
				s.dispute = ""
			}
		}
	case 15:
		if ss := g.salesIn("completed"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			s.state = "settled"
			g.add(s.agg(), events.SaleSettled{Source: "schedule"})
		}
	case 16, 17:
		if ss := g.salesIn("completed", "settled"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			g.add(s.agg(), events.DownloadRecorded{FileID: "fil_1"})
		}
	case 18:
		if ss := g.salesIn("completed", "settled"); len(ss) > 0 {
			s := ss[pick(len(ss))]
			g.add(s.agg(), events.SaleRated{RatingID: "rat_" + s.id, Value: 1 + pick(5), Comment: "ok"})
		}
	case 19: // an erasure of a customer this store never knew (registered elsewhere, or long gone)
		if pick(4) == 0 {
			g.add(events.Aggregate{Mode: events.ModeLive, StoreID: "str_a", Type: events.AggregateCustomer, ID: fmt.Sprintf("cus_x%03d", len(g.evs))},
				events.CustomerErased{CustomerID: fmt.Sprintf("cus_x%03d", len(g.evs))})
		}
	}
}

func foldInBatches(t *testing.T, evs []events.Envelope, cuts []int) (map[string][]string, error) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	from := 0
	for _, to := range append(cuts, len(evs)) {
		if to <= from {
			continue
		}
		if err := st.Apply(ctx, evs[from:to]); err != nil {
			return nil, fmt.Errorf("batch [%d,%d): %w", from, to, err)
		}
		from = to
	}
	return st.Dump(ctx)
}

// TestAttack12RandomBatchesFoldLikeSingleEvents folds random valid streams of customer and sale events
// event by event and in random batches, and compares every table.
func TestAttack12RandomBatchesFoldLikeSingleEvents(t *testing.T) {
	seeds := 20 // ATTACK12_SEEDS=400 for a longer search (about 6 minutes under -race)
	if n := os.Getenv("ATTACK12_SEEDS"); n != "" {
		seeds, _ = strconv.Atoi(n)
	}
	if testing.Short() {
		seeds = 10
	}
	for seed := 1; seed <= seeds; seed++ {
		g := &attackGen{r: rand.New(rand.NewPCG(uint64(seed), 12)), at: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		for len(g.evs) < genLen() {
			g.step()
		}
		var ones []int
		for i := 1; i < len(g.evs); i++ {
			ones = append(ones, i)
		}
		want, err := foldInBatches(t, g.evs, ones)
		if err != nil {
			t.Fatalf("seed %d, event by event: %v", seed, err)
		}
		for try := 0; try < 3; try++ {
			var cuts []int
			for i := 1; i < len(g.evs); i++ {
				if g.r.IntN(8) == 0 {
					cuts = append(cuts, i)
				}
			}
			if try == 0 {
				cuts = nil // one batch
			}
			got, err := foldInBatches(t, g.evs, cuts)
			if err != nil {
				t.Fatalf("seed %d, batches cut at %v: %v", seed, cuts, err)
			}
			for table := range want {
				if fmt.Sprint(got[table]) != fmt.Sprint(want[table]) {
					t.Errorf("seed %d, table %s differs, batches cut at %v:\n%s", seed, table, cuts, diffRows(got[table], want[table]))
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}

func diffRows(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "  row %d\n    batched:  %s\n    one by one: %s\n", i, g, w)
		}
	}
	return b.String()
}

// Beyond the bound of kept read statements, a statement prepared for one call is closed as soon as the
// query returns its rows; the rows must stay readable to the end, concurrently, under -race.
func TestAttack12RowsOutliveTheirClosedStatement(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := range sqlite.MaxReadStmts {
		if _, err := sqlite.QueryAllInts(ctx, st, fmt.Sprintf("SELECT %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const rowsEach = 3000
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			for k := range 4 {
				off := 1000*g + k
				got, err := sqlite.QueryAllInts(ctx, st,
					fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x + %d FROM c", off), rowsEach)
				if err == nil && len(got) != rowsEach {
					err = fmt.Errorf("statement %d: %d rows, want %d", off, len(got), rowsEach)
				}
				for i, n := range got {
					if err == nil && n != i+1+off {
						err = fmt.Errorf("statement %d: row %d is %d", off, i, n)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func genLen() int {
	if n, err := strconv.Atoi(os.Getenv("ATTACK12_EVENTS")); err == nil {
		return n
	}
	return 120
}
