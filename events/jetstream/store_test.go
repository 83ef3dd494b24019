package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
)

var t0 = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

func storeAgg(id string) events.Aggregate {
	return events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id}
}

func created(id string, n int) events.Envelope {
	return events.Envelope{
		ID:            fmt.Sprintf("evt_%s_%d", id, n),
		Aggregate:     storeAgg(id),
		Time:          t0.Add(time.Duration(n) * time.Second),
		CorrelationID: "req_1",
		Payload:       events.StoreCreated{StoreID: id, Name: "Shop " + id, Slug: "shop-" + id, ServiceFeePercent: "5"},
	}
}

func TestAppendAndLoad(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store

	seq, err := s.Append(ctx, 0, created("str_a", 1))
	if err != nil {
		t.Fatal(err)
	}
	seq2, err := s.Append(ctx, seq, created("str_a", 2), created("str_a", 3))
	if err != nil {
		t.Fatal(err)
	}
	if seq2 != seq+2 {
		t.Fatalf("batch of two ended at %d, want %d", seq2, seq+2)
	}
	if _, err := s.Append(ctx, 0, created("str_b", 1)); err != nil {
		t.Fatal(err)
	}

	got, last, err := s.Load(ctx, storeAgg("str_a"))
	if err != nil {
		t.Fatal(err)
	}
	if last != seq2 || len(got) != 3 {
		t.Fatalf("loaded %d events ending at %d, want 3 ending at %d", len(got), last, seq2)
	}
	for i, e := range got {
		want := created("str_a", i+1)
		if e.ID != want.ID || !e.Time.Equal(want.Time) || e.CorrelationID != "req_1" || e.Aggregate != want.Aggregate {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
		if p := e.Payload.(events.StoreCreated); p.Name != "Shop str_a" {
			t.Errorf("event %d payload = %+v", i, p)
		}
	}

	none, last, err := s.Load(ctx, storeAgg("str_none"))
	if err != nil || len(none) != 0 || last != 0 {
		t.Fatalf("unknown aggregate: %v %d %v", none, last, err)
	}
}

func TestDuplicateMsgIDIsAbsorbed(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	s := srv.Store

	first, err := s.Append(ctx, jetstream.NoExpectation, created("str_a", 1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, jetstream.NoExpectation, created("str_a", 1))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("re-append returned seq %d, want the original %d", again, first)
	}
	// The same for an atomic batch re-sent after a lost acknowledgement.
	b1, err := s.Append(ctx, first, created("str_a", 2), created("str_a", 3))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.Append(ctx, first, created("str_a", 2), created("str_a", 3))
	if err != nil {
		t.Fatalf("re-sent batch: %v", err)
	}
	if b1 != b2 {
		t.Fatalf("re-sent batch returned %d, want %d", b2, b1)
	}
	last, err := s.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last != 3 {
		t.Fatalf("stream holds %d messages, want 3", last)
	}
}

func TestWrongExpectationIsConflict(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store
	seq, err := s.Append(ctx, 0, created("str_a", 1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		evs  []events.Envelope
	}{
		{"single event (10071)", []events.Envelope{created("str_a", 2)}},
		{"atomic batch (10164)", []events.Envelope{created("str_a", 3), created("str_a", 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stale := range []uint64{0, seq + 5} {
				_, err := s.Append(ctx, stale, tt.evs...)
				if !errors.Is(err, domain.ErrConflict) {
					t.Fatalf("expect %d: err = %v, want ErrConflict", stale, err)
				}
			}
		})
	}
	evs, _, err := s.Load(ctx, storeAgg("str_a"))
	if err != nil || len(evs) != 1 {
		t.Fatalf("after conflicts the aggregate has %d events (%v), want 1: nothing partial", len(evs), err)
	}
}

func TestConcurrentAppendOneWinner(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store
	seq, err := s.Append(ctx, 0, created("str_a", 0))
	if err != nil {
		t.Fatal(err)
	}
	const racers = 16
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts int
		others    []error
	)
	start := make(chan struct{})
	for i := 1; i <= racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Append(ctx, seq, created("str_a", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 || conflicts != racers-1 || len(others) > 0 {
		t.Fatalf("wins=%d conflicts=%d others=%v; want 1 winner and %d conflicts", wins, conflicts, others, racers-1)
	}
}

func TestExpectFilterAcrossAggregates(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store
	claim := func(store string) error {
		slug := events.Envelope{
			ID:        "evt_slug_" + store,
			Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: store, Type: events.AggregateSlug, ID: "shop"},
			Time:      t0,
			Payload:   events.SlugReserved{Slug: "shop", StoreID: store},
		}
		_, err := s.AppendWrites(ctx,
			jetstream.Write{Event: slug, Expect: 0, ExpectFilter: "ledger.platform.*.slug.shop.*"},
			jetstream.Write{Event: created(store, 1), Expect: 0},
		)
		return err
	}
	if err := claim("str_a"); err != nil {
		t.Fatal(err)
	}
	if err := claim("str_b"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second claim of one slug: err = %v, want ErrConflict", err)
	}
	if evs, _, _ := s.Load(ctx, storeAgg("str_b")); len(evs) != 0 {
		t.Fatalf("the losing store was partly written: %d events", len(evs))
	}
}

func TestSubscribeFromSequence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := jstest.Start(t, "").Store
	for i := 1; i <= 5; i++ {
		if _, err := s.Append(ctx, jetstream.NoExpectation, created("str_a", i)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := s.Subscribe(ctx, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for want := uint64(3); want <= 5; want++ {
		d, err := sub.Next()
		if err != nil {
			t.Fatal(err)
		}
		if d.Event.Sequence != want || d.Pending != 5-want {
			t.Fatalf("got seq %d pending %d, want seq %d pending %d", d.Event.Sequence, d.Pending, want, 5-want)
		}
	}
	// Live events arrive too.
	if _, err := s.Append(ctx, jetstream.NoExpectation, created("str_a", 6)); err != nil {
		t.Fatal(err)
	}
	if d, err := sub.Next(); err != nil || d.Event.Sequence != 6 {
		t.Fatalf("live event: %v %v", d.Event.Sequence, err)
	}
	cancel()
	if _, err := sub.Next(); !errors.Is(err, jetstream.ErrSubscriptionClosed) {
		t.Fatalf("after cancel: %v, want ErrSubscriptionClosed", err)
	}
}

func TestRestartKeepsEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := jstest.Start(t, dir)
	seq, err := srv.Store.Append(ctx, 0, created("str_a", 1), created("str_a", 2))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	srv = jstest.Start(t, dir)
	evs, last, err := srv.Store.Load(ctx, storeAgg("str_a"))
	if err != nil || len(evs) != 2 || last != seq {
		t.Fatalf("after restart: %d events, last %d, err %v; want 2, %d", len(evs), last, err, seq)
	}
	// The concurrency state survives too: a stale expectation still conflicts.
	if _, err := srv.Store.Append(ctx, 0, created("str_a", 3)); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale append after restart: %v", err)
	}
}

// Loading must not leave consumers behind: thousands of loads once exhausted the server's consumer
// limit and stalled the payment processor.
func TestLoadLeavesNoConsumers(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	for i := 1; i <= 300; i++ { // more than one direct-get batch of 256 for one aggregate
		if _, err := srv.Store.Append(ctx, jetstream.NoExpectation, created("str_a", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		evs, last, err := srv.Store.Load(ctx, storeAgg("str_a"))
		if err != nil || len(evs) != 300 || last != 300 {
			t.Fatalf("load: %d events, last %d, %v", len(evs), last, err)
		}
	}
	info, err := srv.Store.JetStream().Stream(ctx, jetstream.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Consumers; n != 0 {
		t.Fatalf("%d consumers left behind by loads", n)
	}
}

// A conditional append sent again (a retry after its acknowledgement was lost) is recognised as the
// append that already happened, not reported as a conflict; a different append with the same stale
// expectation still conflicts.
func TestResentConditionalAppendIsNotAConflict(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store
	first, err := s.Append(ctx, 0, created("str_r", 1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx, 0, created("str_r", 1))
	if err != nil || again != first {
		t.Fatalf("re-sent single append: %d, %v; want %d", again, err, first)
	}
	two, err := s.Append(ctx, first, created("str_r", 2), created("str_r", 3))
	if err != nil {
		t.Fatal(err)
	}
	againTwo, err := s.Append(ctx, first, created("str_r", 2), created("str_r", 3))
	if err != nil || againTwo != two {
		t.Fatalf("re-sent batch: %d, %v; want %d", againTwo, err, two)
	}
	if _, err := s.Append(ctx, first, created("str_r", 4)); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("another append on a stale expectation: %v, want a conflict", err)
	}
	got, _, err := s.Load(ctx, storeAgg("str_r"))
	if err != nil || len(got) != 3 {
		t.Fatalf("the aggregate holds %d events (%v), want 3", len(got), err)
	}
}
