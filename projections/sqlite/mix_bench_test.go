package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// saleMix is a realistic sale stream: for each of n sales, sale_started, payment_succeeded,
// sale_completed and two downloads, interleaved as traffic interleaves them (a sale's payment arrives
// while later checkouts start: sale i completes when sale i+lag starts), with sequences in log order.
func saleMix(n, lag int) []events.Envelope {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	amt := events.Amount{Amount: 4900, Currency: "USD"}
	var out []events.Envelope
	agg := func(i int) events.Aggregate {
		return events.Aggregate{Mode: events.ModeLive, StoreID: "str_mix", Type: events.AggregateSale, ID: fmt.Sprintf("sal_mix%07d", i)}
	}
	add := func(i int, at time.Time, p events.Payload) {
		out = append(out, events.Envelope{ID: fmt.Sprintf("evt_mix%09d", len(out)), Aggregate: agg(i), Time: at, Payload: p, Sequence: uint64(len(out) + 1)})
	}
	for i := 0; i < n+lag; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		if i < n {
			customer := fmt.Sprintf("cus_mix%07d", i)
			add(i, at, events.SaleStarted{SaleID: agg(i).ID, Store: events.StoreRef{ID: "str_mix"}, CustomerID: customer,
				Customer: events.CustomerRef{ID: customer, Email: fmt.Sprintf("buyer%d@example.com", i)}, Channel: "api",
				OriginalAmount: amt, Amount: amt, ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: at.Add(time.Hour)})
		}
		if j := i - lag; j >= 0 {
			add(j, at, events.PaymentRecorded{Status: "success", Gateway: "standard", TransactionID: fmt.Sprintf("txn_%d", j), Amount: amt})
			add(j, at, events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)})
			add(j, at, events.DownloadRecorded{FileID: "fil_1"})
			add(j, at, events.DownloadRecorded{FileID: "fil_1"})
		}
	}
	return out
}

// BenchmarkApplySaleMix measures sqlite.Store.Apply on saleMix (20,000 sales, 100,000 events) in the
// projection's batches of 4,096: the read store's cost of a realistic sale stream, without NATS or
// decoding. Reports events/s.
func BenchmarkApplySaleMix(b *testing.B) {
	evs := saleMix(20_000, 50)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st, err := sqlite.Open(filepath.Join(b.TempDir(), "read.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for i := 0; i < len(evs); i += 4096 {
			if err := st.Apply(ctx, evs[i:min(i+4096, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(evs))/time.Since(start).Seconds(), "events/s")
		b.StopTimer()
		s, err := st.Sale(ctx, "str_mix", events.ModeLive, "sal_mix0000000")
		if err != nil || s.Status != domain.StatusCompleted || s.Downloads != 2 {
			b.Fatalf("first sale after the fold: %+v, %v", s, err)
		}
		st.Close()
		b.StartTimer()
	}
}

// TestBatchWritesSalesBeforeAnErasure: within one batch, a sale's events are folded in memory and
// written once; an erasure of its customer in the same batch still anonymises it (the batch's sales
// are written before the erasure reads them), and a later event of the sale in the batch keeps the
// anonymised state. The result equals folding the same events one batch each.
func TestBatchWritesSalesBeforeAnErasure(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sale := events.Aggregate{Mode: events.ModeLive, StoreID: "str_b", Type: events.AggregateSale, ID: "sal_b1"}
	cust := events.Aggregate{Mode: events.ModeLive, StoreID: "str_b", Type: events.AggregateCustomer, ID: "cus_b1"}
	amt := events.Amount{Amount: 900, Currency: "USD"}
	evs := []events.Envelope{
		{Aggregate: cust, Time: at, Payload: events.CustomerRegistered{CustomerID: "cus_b1", CustomerData: events.CustomerData{Email: "gone@example.com"}, Source: "checkout"}},
		{Aggregate: sale, Time: at, Payload: events.SaleStarted{SaleID: "sal_b1", Store: events.StoreRef{ID: "str_b"}, CustomerID: "cus_b1",
			Customer: events.CustomerRef{ID: "cus_b1", Email: "gone@example.com"}, Channel: "api", OriginalAmount: amt, Amount: amt,
			ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: at.Add(time.Hour)}},
		{Aggregate: sale, Time: at, Payload: events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)}},
		{Aggregate: cust, Time: at, Payload: events.CustomerErased{CustomerID: "cus_b1"}},
		{Aggregate: sale, Time: at, Payload: events.DownloadRecorded{FileID: "fil_1"}},
	}
	for i := range evs {
		evs[i].ID, evs[i].Sequence = fmt.Sprintf("evt_b%d", i), uint64(i+1)
	}
	dump := func(batch int) map[string][]string {
		st := applyInBatches(t, evs, batch)
		s, err := st.Sale(ctx, "str_b", events.ModeLive, "sal_b1")
		if err != nil || s.Started.Customer.Email != "" || s.Downloads != 1 || s.Status != domain.StatusCompleted {
			t.Fatalf("batches of %d: sale %+v, %v", batch, s, err)
		}
		d, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	one, each := dump(len(evs)), dump(1)
	for table := range one {
		if fmt.Sprint(one[table]) != fmt.Sprint(each[table]) {
			t.Errorf("table %s: one batch\n%v\nevent by event\n%v", table, one[table], each[table])
		}
	}
}

// TestBatchesFoldLikeSingleEvents: a batch keeps the customers it folds (their rows, search entries
// and purchase totals) and writes each once at its end, as it does sales. Whatever the batch size, the
// read store equals folding one event at a time, table by table: customers registered, changed and
// buying several times in a batch; a customer registered and erased in one batch before another
// registers (the next one's seq is the same either way); an erasure after its customer's purchase in
// the same batch, and a later event of the anonymised sale; a purchase by an erased customer; a refund
// in another currency.
func TestBatchesFoldLikeSingleEvents(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	usd, eur := events.Amount{Amount: 900, Currency: "USD"}, events.Amount{Amount: 1250, Currency: "EUR"}
	var evs []events.Envelope
	add := func(typ, id string, p events.Payload) {
		at = at.Add(time.Minute)
		evs = append(evs, events.Envelope{ID: fmt.Sprintf("evt_t%d", len(evs)), Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: "str_t", Type: typ, ID: id},
			Time: at, Payload: p, Sequence: uint64(len(evs) + 1)})
	}
	register := func(c string) {
		add(events.AggregateCustomer, c, events.CustomerRegistered{CustomerID: c, Source: "checkout",
			CustomerData: events.CustomerData{Email: c + "@example.com", FirstName: "Ada", LastName: c, Phone: "+14155552671"}})
	}
	start := func(s, c string, amt events.Amount) {
		add(events.AggregateSale, s, events.SaleStarted{SaleID: s, Store: events.StoreRef{ID: "str_t"}, CustomerID: c,
			Customer: events.CustomerRef{ID: c, Email: c + "@example.com"}, Channel: "api", OriginalAmount: amt, Amount: amt,
			ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: at.Add(time.Hour)})
	}
	complete := func(s string, amt events.Amount) {
		add(events.AggregateSale, s, events.PaymentRecorded{Status: "success", Gateway: "standard", TransactionID: "txn_" + s, Amount: amt})
		add(events.AggregateSale, s, events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)})
	}
	refund := func(s string, amt events.Amount) {
		add(events.AggregateSale, s, events.RefundRecorded{RefundID: "ref_" + s, Amount: amt, Source: events.RefundSourceAPI})
	}
	update := func(c, first string) {
		add(events.AggregateCustomer, c, events.CustomerUpdated{CustomerID: c,
			CustomerData: events.CustomerData{Email: c + "@example.com", FirstName: first, LastName: c, City: "Abidjan"}})
	}
	register("cus_1")
	start("sal_1", "cus_1", usd)
	register("cus_2")
	complete("sal_1", usd)
	update("cus_1", "Grace")
	start("sal_2", "cus_2", usd)
	complete("sal_2", usd)
	register("cus_3")
	add(events.AggregateCustomer, "cus_3", events.CustomerErased{CustomerID: "cus_3"})
	register("cus_4")
	start("sal_3", "cus_1", usd)
	complete("sal_3", usd)
	refund("sal_3", events.Amount{Amount: 400, Currency: "USD"})
	add(events.AggregateSale, "sal_2", events.DownloadRecorded{FileID: "fil_1"}) // in the batch's copies when the erasure comes
	add(events.AggregateCustomer, "cus_2", events.CustomerErased{CustomerID: "cus_2"})
	add(events.AggregateSale, "sal_2", events.DownloadRecorded{FileID: "fil_1"})
	update("cus_1", "Marie")
	add(events.AggregateCustomer, "cus_4", events.CustomerAddressAdded{CustomerID: "cus_4", AddressID: "adr_1",
		AddressData: events.AddressData{Line1: "1 Rue du Lac", City: "Abidjan", Country: "CI"}})
	start("sal_4", "cus_3", usd) // the erased customer's sale (opened before the erasure reached the checkout)
	complete("sal_4", usd)
	start("sal_5", "cus_1", eur)
	complete("sal_5", eur)
	refund("sal_5", eur)
	register("cus_5")
	start("sal_6", "cus_5", eur)
	complete("sal_6", eur)

	dump := func(batch int) map[string][]string {
		st := applyInBatches(t, evs, batch)
		c1, err := st.Customer(ctx, "str_t", events.ModeLive, "cus_1")
		if err != nil || c1.CompletedSales != 3 || c1.Spent["USD"].AmountText() != "1400" || c1.Spent["EUR"].AmountText() != "0" || c1.Fields.FirstName != "Marie" {
			t.Fatalf("batches of %d: cus_1 %+v, %v", batch, c1, err)
		}
		if c4, err := st.Customer(ctx, "str_t", events.ModeLive, "cus_4"); err != nil || c4.Seq != 4 || len(c4.Addresses) != 1 {
			t.Fatalf("batches of %d: cus_4 %+v, %v", batch, c4, err)
		}
		for _, gone := range []string{"cus_2", "cus_3"} {
			if _, err := st.Customer(ctx, "str_t", events.ModeLive, gone); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("batches of %d: erased %s: %v", batch, gone, err)
			}
		}
		if s, err := st.Sale(ctx, "str_t", events.ModeLive, "sal_2"); err != nil || s.Started.Customer.Email != "" || s.Downloads != 2 {
			t.Fatalf("batches of %d: sale_2 %+v, %v", batch, s, err)
		}
		d, err := st.Dump(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	each := dump(1)
	for _, batch := range []int{2, 3, 5, len(evs)} {
		got := dump(batch)
		for table := range each {
			if fmt.Sprint(got[table]) != fmt.Sprint(each[table]) {
				t.Errorf("table %s: batches of %d\n%v\nevent by event\n%v", table, batch, got[table], each[table])
			}
		}
	}
}

// applyInBatches folds evs into a fresh read store in batches of size events (the last one shorter),
// as the projection would; the store is closed when the test ends.
func applyInBatches(t *testing.T, evs []events.Envelope, size int) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i := 0; i < len(evs); i += size {
		if err := st.Apply(context.Background(), evs[i:min(i+size, len(evs))]); err != nil {
			t.Fatalf("batches of %d, from event %d: %v", size, i, err)
		}
	}
	return st
}
