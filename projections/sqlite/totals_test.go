package sqlite_test

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// TestCustomerTotalsAreExact: a customer's total spent is summed exactly, past what an int64 holds (it
// used to wrap around silently), and by currency.
func TestCustomerTotalsAreExact(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const store, cust = "str_totals", "cus_totals"
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	log := []events.Envelope{
		{Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: store, Type: events.AggregateStore, ID: store}, Time: at,
			Payload: events.StoreCreated{StoreID: store, Name: "Totals", Slug: "totals", ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAfterMinutes: 30}},
		{Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: store, Type: events.AggregateCustomer, ID: cust}, Time: at,
			Payload: events.CustomerRegistered{CustomerID: cust, Source: "api", CustomerData: events.CustomerData{Email: "big@example.com"}}},
	}
	sale := func(id string, amt events.Amount) {
		agg := events.Aggregate{Mode: events.ModeLive, StoreID: store, Type: events.AggregateSale, ID: id}
		log = append(log,
			events.Envelope{Aggregate: agg, Time: at, Payload: events.SaleStarted{SaleID: id, Store: events.StoreRef{ID: store}, CustomerID: cust,
				Customer: events.CustomerRef{ID: cust, Email: "big@example.com"}, Channel: "api", OriginalAmount: amt, Amount: amt,
				ServiceFeePercent: "5", SettlementDelayDays: 7, AbandonAt: at.Add(time.Hour)}},
			events.Envelope{Aggregate: agg, Time: at.Add(time.Minute), Payload: events.SaleCompleted{SettlementDueAt: at.Add(7 * 24 * time.Hour)}})
	}
	sale("sal_totals1", events.Amount{Amount: math.MaxInt64, Currency: "USD"})
	sale("sal_totals2", events.Amount{Amount: math.MaxInt64, Currency: "USD"})
	sale("sal_totals3", events.Amount{Amount: 2, Currency: "USD"})
	sale("sal_totals4", events.Amount{Amount: 1050, Currency: "XOF"})
	for i := range log {
		log[i].ID = "evt_" + string(rune('a'+i))
		log[i].Sequence = uint64(i + 1)
	}
	if err := st.Apply(ctx, log); err != nil {
		t.Fatal(err)
	}
	row, err := st.Customer(ctx, store, events.ModeLive, cust)
	if err != nil {
		t.Fatal(err)
	}
	if row.CompletedSales != 4 {
		t.Errorf("completed sales %d; want 4", row.CompletedSales)
	}
	got, err := json.Marshal([]any{row.Spent["USD"], row.Spent["XOF"]})
	if err != nil {
		t.Fatal(err)
	}
	// 2 × 9223372036854775807 + 2 = 18446744073709551616 = 2^64.
	want := `[{"amount":18446744073709551616,"currency":"USD","formatted":"$184,467,440,737,095,516.16"},` +
		`{"amount":1050,"currency":"XOF","formatted":"F CFA 1,050"}]`
	if string(got) != want {
		t.Errorf("total spent\n got %s\nwant %s", got, want)
	}
}
