package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
)

// groupCounts records how group commit wrote its groups.
type groupCounts struct {
	mu  sync.Mutex
	how map[string]int
}

func (c *groupCounts) observe(_ int, how string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.how == nil {
		c.how = make(map[string]int)
	}
	c.how[how]++
}

func (c *groupCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.how)
}

func (c *groupCounts) get(how string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.how[how]
}

// startGrouped starts a store with group commit, one group in flight so that concurrent appends queue up
// behind it and share batches.
func startGrouped(t *testing.T) (*jetstream.Store, *groupCounts) {
	t.Helper()
	s := jstest.Start(t, "").Store
	c := &groupCounts{}
	stop := s.EnableGroupCommit(jetstream.GroupCommit{MinBatch: 2, InFlight: 1, Observe: c.observe})
	t.Cleanup(stop)
	return s, c
}

// concurrently runs op(i) for i in [0, n) on n goroutines released at once.
func concurrently(n int, op func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			op(i)
		}()
	}
	close(start)
	wg.Wait()
}

// Every concurrent append is stored, and the sequence each one is answered with is where its own last
// event is, whether it went in a shared batch or alone.
func TestGroupCommitSequences(t *testing.T) {
	ctx := context.Background()
	s, counts := startGrouped(t)
	const n = 300
	seqs := make([]uint64, n)
	errs := make([]error, n)
	concurrently(n, func(i int) {
		id := fmt.Sprintf("str_g%03d", i)
		evs := []events.Envelope{created(id, 1)}
		if i%3 == 0 { // some appends carry several events
			evs = append(evs, created(id, 2), created(id, 3))
		}
		seqs[i], errs[i] = s.Append(ctx, 0, evs...)
	})
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		id := fmt.Sprintf("str_g%03d", i)
		got, last, err := s.Load(ctx, storeAgg(id))
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if i%3 == 0 {
			want = 3
		}
		if len(got) != want || last != seqs[i] {
			t.Fatalf("%s: %d events ending at %d; the append answered %d (want %d events)", id, len(got), last, seqs[i], want)
		}
		for j, e := range got {
			if e.ID != created(id, j+1).ID {
				t.Fatalf("%s event %d is %s", id, j, e.ID)
			}
		}
	}
	if total, err := s.LastSequence(ctx); err != nil || total != n+2*(n/3) {
		t.Fatalf("stream holds %d events (%v), want %d", total, err, n+2*(n/3))
	}
	if counts.get("batch") == 0 {
		t.Fatalf("no append shared a batch: %v", counts)
	}
}

// Conditions keep holding inside shared batches: of many appends racing to open one aggregate exactly one
// wins, and the independent appends that shared their batches are all stored.
func TestGroupCommitConflicts(t *testing.T) {
	ctx := context.Background()
	s, counts := startGrouped(t)
	const racers, others = 40, 160
	var won, lost atomic.Int64
	errs := make([]error, others)
	concurrently(racers+others, func(i int) {
		if i < racers {
			_, err := s.Append(ctx, 0, created("str_race", i+1))
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, domain.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("racer %d: %v", i, err)
			}
			return
		}
		_, errs[i-racers] = s.Append(ctx, 0, created(fmt.Sprintf("str_o%03d", i), 1))
	})
	if won.Load() != 1 || lost.Load() != racers-1 {
		t.Fatalf("%d won, %d conflicted; want 1 and %d", won.Load(), lost.Load(), racers-1)
	}
	got, _, err := s.Load(ctx, storeAgg("str_race"))
	if err != nil || len(got) != 1 {
		t.Fatalf("the raced aggregate holds %d events (%v), want 1", len(got), err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("independent append %d: %v", i, err)
		}
	}
	if total, err := s.LastSequence(ctx); err != nil || total != others+1 {
		t.Fatalf("stream holds %d events (%v), want %d", total, err, others+1)
	}
	t.Logf("groups: %v", counts)
}

// Two appends to one aggregate never share a batch: each is checked against the other's outcome, so a
// chain of appends that each expect the previous one's sequence never forks.
func TestGroupCommitSameAggregateChain(t *testing.T) {
	ctx := context.Background()
	s, _ := startGrouped(t)
	seq, err := s.Append(ctx, 0, created("str_chain", 0))
	if err != nil {
		t.Fatal(err)
	}
	// Everyone expects the same sequence; exactly one may extend the aggregate from it.
	const n = 30
	var won atomic.Int64
	concurrently(n, func(i int) {
		_, err := s.Append(ctx, seq, created("str_chain", i+1))
		if err == nil {
			won.Add(1)
		} else if !errors.Is(err, domain.ErrConflict) {
			t.Errorf("append %d: %v", i, err)
		}
	})
	got, _, err := s.Load(ctx, storeAgg("str_chain"))
	if err != nil {
		t.Fatal(err)
	}
	if won.Load() != 1 || len(got) != 2 {
		t.Fatalf("%d appends won from sequence %d and the aggregate holds %d events; want 1 and 2", won.Load(), seq, len(got))
	}
}

// The same event appended many times at once (a retried request) is stored once, and every caller hears
// where.
func TestGroupCommitDuplicates(t *testing.T) {
	ctx := context.Background()
	s, _ := startGrouped(t)
	const n = 20
	seqs := make([]uint64, n)
	concurrently(n+100, func(i int) {
		if i >= n {
			if _, err := s.Append(ctx, 0, created(fmt.Sprintf("str_d%03d", i), 1)); err != nil {
				t.Errorf("append %d: %v", i, err)
			}
			return
		}
		var err error
		seqs[i], err = s.Append(ctx, jetstream.NoExpectation, created("str_dup", 1))
		if err != nil {
			t.Errorf("duplicate %d: %v", i, err)
		}
	})
	got, last, err := s.Load(ctx, storeAgg("str_dup"))
	if err != nil || len(got) != 1 {
		t.Fatalf("the duplicated event is stored %d times (%v)", len(got), err)
	}
	for i, seq := range seqs {
		if seq != last {
			t.Fatalf("duplicate %d was answered %d, the event is at %d", i, seq, last)
		}
	}
}
