package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// TestWebhookDeliveriesReadModel: a delivery is claimable when its attempt is due and no lease holds it
// (due_at), not once it is finished; an endpoint's failing_since starts at its first failure, survives
// more failures, and is cleared by a success and by enabling the endpoint again.
// openApplier opens a fresh read store and returns it with a function that applies one event at a
// time, in sequence.
func openApplier(t *testing.T) (*sqlite.Store, func(agg events.Aggregate, at time.Time, p events.Payload)) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seq := uint64(0)
	return st, func(agg events.Aggregate, at time.Time, p events.Payload) {
		t.Helper()
		seq++
		e := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: at, Payload: p, Sequence: seq}
		if err := st.Apply(context.Background(), []events.Envelope{e}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWebhookDeliveriesReadModel(t *testing.T) {
	ctx := context.Background()
	st, apply := openApplier(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	epAgg := events.Aggregate{Mode: events.ModeLive, StoreID: "str_1", Type: events.AggregateWebhookEndpoint, ID: "we_1"}
	apply(epAgg, t0, events.WebhookEndpointCreated{EndpointID: "we_1", URL: "https://example.com", Events: []string{"*"}, SecretLast4: "abcd"})
	cause := events.Envelope{ID: "evt_1", Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: "str_1", Type: events.AggregateSale, ID: "sal_1"}, Time: t0, Sequence: 1}
	sched := domain.ScheduleWebhookDelivery("we_1", cause, "sale.created", "sal_1", t0.Add(45*time.Second))
	dAgg := domain.WebhookDeliveryAggregate(events.ModeLive, "str_1", sched.DeliveryID)
	apply(dAgg, t0, sched)

	claimable := func(now time.Time, skip ...string) int {
		t.Helper()
		rows, err := st.ClaimableWebhookDeliveries(ctx, now, 10, 10, skip)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	failing := func() time.Time {
		t.Helper()
		row, err := st.WebhookEndpoint(ctx, "str_1", events.ModeLive, "we_1")
		if err != nil {
			t.Fatal(err)
		}
		return row.FailingSince
	}
	if claimable(t0) != 0 || claimable(t0.Add(44*time.Second)) != 0 || claimable(t0.Add(45*time.Second)) != 1 ||
		claimable(t0.Add(45*time.Second), "we_1") != 0 {
		t.Fatal("the scheduler's lease is not what due_at says")
	}
	next := t0.Add(5 * time.Second)
	apply(dAgg, t0, events.WebhookDeliveryAttempted{Attempt: 1, At: t0, StatusCode: 500, Error: "HTTP 500", NextAttemptAt: &next})
	if claimable(next.Add(-time.Microsecond)) != 0 || claimable(next) != 1 || !failing().Equal(t0) {
		t.Fatalf("after a failure: claimable %d, failing since %v", claimable(next), failing())
	}
	apply(dAgg, next, events.WebhookDeliveryClaimed{Attempt: 2, Until: next.Add(45 * time.Second)})
	if claimable(next.Add(44*time.Second)) != 0 || claimable(next.Add(45*time.Second)) != 1 {
		t.Fatal("a claim's lease is not what due_at says")
	}
	later := next.Add(5 * time.Minute)
	apply(dAgg, next, events.WebhookDeliveryAttempted{Attempt: 2, At: next, StatusCode: 502, Error: "HTTP 502", NextAttemptAt: &later})
	if !failing().Equal(t0) {
		t.Fatalf("a second failure moved failing_since to %v", failing())
	}
	apply(dAgg, later, events.WebhookDeliveryAttempted{Attempt: 3, At: later, StatusCode: 200, Success: true})
	if claimable(later.Add(time.Hour)) != 0 || !failing().IsZero() {
		t.Fatalf("after a success: claimable %d, failing since %v", claimable(later.Add(time.Hour)), failing())
	}
	row, err := st.WebhookDelivery(ctx, "str_1", events.ModeLive, sched.DeliveryID)
	if err != nil || row.Status != domain.DeliverySucceeded || len(row.Attempts) != 3 {
		t.Fatalf("delivery %+v, %v", row, err)
	}
	if _, err := st.WebhookDelivery(ctx, "str_2", events.ModeLive, sched.DeliveryID); err != domain.ErrNotFound {
		t.Fatalf("another store's delivery: %v", err)
	}

	// Failing again, then disabled and enabled: the count starts over.
	apply(dAgg, later, events.WebhookDeliveryRetryRequested{At: later})
	apply(dAgg, later, events.WebhookDeliveryAttempted{Attempt: 4, At: later, Error: "timed out"})
	if !failing().Equal(later) {
		t.Fatalf("failing since %v, want %v", failing(), later)
	}
	yes, no := true, false
	apply(epAgg, later, events.WebhookEndpointUpdated{EndpointID: "we_1", Disabled: &yes})
	if !failing().Equal(later) {
		t.Fatal("disabling cleared failing_since")
	}
	apply(epAgg, later, events.WebhookEndpointUpdated{EndpointID: "we_1", Disabled: &no})
	if !failing().IsZero() {
		t.Fatalf("enabled again, failing since %v", failing())
	}
}

// TestClaimableDeliveriesPerEndpoint: one endpoint's backlog of due attempts takes at most perEndpoint
// places of a look, so another endpoint's due attempt is in it even when it waited less.
func TestClaimableDeliveriesPerEndpoint(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var batch []events.Envelope
	add := func(endpoint, event string, at time.Time) {
		cause := events.Envelope{ID: event, Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: "str_1", Type: events.AggregateSale, ID: "sal_1"}, Time: at}
		p := domain.ScheduleWebhookDelivery(endpoint, cause, "sale.created", "sal_1", at)
		batch = append(batch, events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: domain.WebhookDeliveryAggregate(events.ModeLive, "str_1", p.DeliveryID),
			Time: at, Payload: p, Sequence: uint64(len(batch) + 1)})
	}
	for i := range 20 {
		add("we_busy", fmt.Sprintf("evt_%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	add("we_other", "evt_other", t0.Add(time.Minute))
	if err := st.Apply(ctx, batch); err != nil {
		t.Fatal(err)
	}
	rows, err := st.ClaimableWebhookDeliveries(ctx, t0.Add(time.Hour), 10, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range rows {
		per[r.EndpointID]++
	}
	if per["we_busy"] != 4 || per["we_other"] != 1 || len(rows) != 5 {
		t.Fatalf("claimable per endpoint: %v", per)
	}
	if rows[0].EventID != "evt_0" {
		t.Fatalf("the longest waiting is not first: %s", rows[0].EventID)
	}
}

// TestNoEndpointsIsRememberedUntilAnEndpointChanges: a store and mode without endpoints is answered
// without a query until a batch that changes an endpoint commits; then the first endpoint, its
// deletion, and another mode each read right at once.
func TestNoEndpointsIsRememberedUntilAnEndpointChanges(t *testing.T) {
	ctx := context.Background()
	st, applyAt := openApplier(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	apply := func(agg events.Aggregate, p events.Payload) { t.Helper(); applyAt(agg, t0, p) }
	count := func(mode string) int {
		t.Helper()
		rows, err := st.WebhookEndpointsOf(ctx, "str_1", mode)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	for range 2 { // the second answer comes from the remembered "none"
		if n := count(events.ModeLive); n != 0 {
			t.Fatalf("%d endpoints before any was created", n)
		}
	}
	ep := events.Aggregate{Mode: events.ModeLive, StoreID: "str_1", Type: events.AggregateWebhookEndpoint, ID: "we_1"}
	apply(ep, events.WebhookEndpointCreated{EndpointID: "we_1", URL: "https://example.com", Events: []string{"*"}, SecretLast4: "abcd"})
	if n := count(events.ModeLive); n != 1 {
		t.Fatalf("%d live endpoints after one was created, want 1", n)
	}
	if n := count(events.ModeTest); n != 0 {
		t.Fatalf("%d test endpoints, want 0", n)
	}
	store := events.Aggregate{Mode: events.ModePlatform, StoreID: "str_2", Type: events.AggregateStore, ID: "str_2"}
	apply(store, events.StoreCreated{StoreID: "str_2", Name: "Shop", Slug: "shop", ServiceFeePercent: "5"}) // changes no endpoint
	if n := count(events.ModeLive); n != 1 {
		t.Fatalf("%d live endpoints after an unrelated batch, want 1", n)
	}
	apply(ep, events.WebhookEndpointDeleted{EndpointID: "we_1"})
	if n := count(events.ModeLive); n != 0 {
		t.Fatalf("%d live endpoints after the deletion, want 0", n)
	}
	ep2 := events.Aggregate{Mode: events.ModeTest, StoreID: "str_1", Type: events.AggregateWebhookEndpoint, ID: "we_2"}
	apply(ep2, events.WebhookEndpointCreated{EndpointID: "we_2", URL: "http://example.com", Events: []string{"*"}, SecretLast4: "abcd"})
	if n := count(events.ModeTest); n != 1 {
		t.Fatalf("%d test endpoints after one was created (none was remembered before), want 1", n)
	}
}
