package webhooksout

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

func TestRecipients(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ep := func(id, store, mode string, evs []string, mod func(*domain.WebhookEndpoint)) Endpoint {
		w := domain.WebhookEndpoint{ID: id, Events: evs, CreatedAt: at.Add(-time.Hour)}
		if mod != nil {
			mod(&w)
		}
		return Endpoint{StoreID: store, Mode: mode, WebhookEndpoint: w}
	}
	completed := []string{SaleCompleted}
	eps := []Endpoint{
		ep("we_all", "str_1", "live", []string{"*"}, nil),
		ep("we_completed", "str_1", "live", completed, nil),
		ep("we_two", "str_1", "live", []string{SaleRefunded, SaleCompleted}, nil),
		ep("we_other_type", "str_1", "live", []string{SaleCreated}, nil),
		ep("we_disabled", "str_1", "live", []string{"*"}, func(w *domain.WebhookEndpoint) { w.Disabled = true }),
		ep("we_deleted", "str_1", "live", []string{"*"}, func(w *domain.WebhookEndpoint) { w.Deleted = true }),
		ep("we_test_mode", "str_1", "test", []string{"*"}, nil),
		ep("we_other_store", "str_2", "live", []string{"*"}, nil),
		ep("we_later", "str_1", "live", []string{"*"}, func(w *domain.WebhookEndpoint) { w.CreatedAt = at.Add(time.Second) }),
		ep("we_same_instant", "str_1", "live", completed, func(w *domain.WebhookEndpoint) { w.CreatedAt = at }),
		ep("we_none", "str_1", "live", nil, nil),
	}
	sale := events.Aggregate{Mode: "live", StoreID: "str_1", Type: events.AggregateSale, ID: "sal_1"}
	tests := []struct {
		name string
		agg  events.Aggregate
		typ  string
		want []string
	}{
		{"sale.completed live", sale, SaleCompleted, []string{"we_all", "we_completed", "we_two", "we_same_instant"}},
		{"sale.created live", sale, SaleCreated, []string{"we_all", "we_other_type"}},
		{"sale.refunded live", sale, SaleRefunded, []string{"we_all", "we_two"}},
		{"test mode", events.Aggregate{Mode: "test", StoreID: "str_1", Type: events.AggregateSale, ID: "sal_1"}, SaleCompleted, []string{"we_test_mode"}},
		{"another store", events.Aggregate{Mode: "live", StoreID: "str_2", Type: events.AggregateSale, ID: "sal_1"}, CustomerDeleted, []string{"we_other_store"}},
		{"a store without endpoints", events.Aggregate{Mode: "live", StoreID: "str_3", Type: events.AggregateSale, ID: "sal_1"}, SaleCompleted, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range Recipients(eps, tt.agg, tt.typ, at) {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Recipients = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBody(t *testing.T) {
	at := time.Date(2026, 3, 1, 13, 4, 5, 987654321, time.FixedZone("WAT", 3600))
	got := Body("evt_4mB0qT2hXcN8yJ1vLr5sKd", SaleCompleted, at, true, json.RawMessage(`{"id": "sal_1",
		"status": "completed"}`))
	want := `{"id":"evt_4mB0qT2hXcN8yJ1vLr5sKd","type":"sale.completed","created_at":"2026-03-01T12:04:05+00:00","livemode":true,"data":{"id":"sal_1","status":"completed"}}`
	if string(got) != want {
		t.Fatalf("Body =\n%s\nwant\n%s", got, want)
	}
	if again := Body("evt_4mB0qT2hXcN8yJ1vLr5sKd", SaleCompleted, at, true, json.RawMessage(`{"id":"sal_1","status":"completed"}`)); string(again) != want {
		t.Fatalf("the same event gave another body: %s", again)
	}
	test := Body("evt_1", CustomerDeleted, at, false, nil)
	if want := `{"id":"evt_1","type":"customer.deleted","created_at":"2026-03-01T12:04:05+00:00","livemode":false,"data":null}`; string(test) != want {
		t.Fatalf("Body = %s, want %s", test, want)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil || len(m) != 5 {
		t.Fatalf("body %s: %v, %d members", got, err, len(m))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("invalid data did not panic")
		}
	}()
	Body("evt_1", SaleCreated, at, true, json.RawMessage(`{`))
}
