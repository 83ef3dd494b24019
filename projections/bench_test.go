package projections_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream/jstest"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

// foldEvents is how many events BenchmarkFold and BenchmarkApplyBatch fold per iteration.
const foldEvents = 100_000

var benchLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// foldEvent is the i-th event (1-based) of the benchmark log: a store_created opening store i with a
// live and a test key. Its stream sequence is i.
func foldEvent(i int) events.Envelope {
	id := fmt.Sprintf("str_f%08d", i)
	key := func(mode string) events.APIKey {
		return events.APIKey{Mode: mode, Hash: fmt.Sprintf("%s%060x", mode, i), Prefix: "sk_" + mode + "_", Last4: fmt.Sprintf("%04d", i%10000)}
	}
	return events.Envelope{
		ID:            fmt.Sprintf("evt_f%08d", i),
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
		Time:          time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		CorrelationID: "req_bench",
		Payload: events.StoreCreated{
			StoreID: id, Name: "Benchmark shop", Slug: "shop-" + id[4:], ServiceFeePercent: "5",
			SettlementDelayDays: 7, AbandonAfterMinutes: 30,
			Keys: []events.APIKey{key(events.ModeLive), key(events.ModeTest)},
		},
		Sequence: uint64(i),
	}
}

// BenchmarkFold measures the whole projection path: a Runner subscribed to a real embedded server folds
// 100,000 store_created events (two API keys each) into a fresh SQLite file, from sqlite.Open until
// WaitFor reports the last sequence applied. The events are appended once, before any timed run.
func BenchmarkFold(b *testing.B) {
	srv := jstest.Start(b, "")
	ctx := context.Background()
	start := time.Now()
	var last atomic.Uint64
	// Append parallelises well (the server is not fsyncing each message here), so 64 workers make the
	// setup take seconds. Sequences then follow arrival order, not i; the fold does not care.
	err := parallelN(foldEvents, 64, func(i int) error {
		e := foldEvent(i + 1)
		e.Sequence = 0
		seq, err := srv.Store.Append(ctx, 0, e)
		for {
			cur := last.Load()
			if seq <= cur || last.CompareAndSwap(cur, seq) {
				break
			}
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if last.Load() != foldEvents {
		b.Fatalf("stream ends at %d after appending %d events", last.Load(), foldEvents)
	}
	b.Logf("setup: appended %d events in %s", foldEvents, time.Since(start).Round(time.Millisecond))

	b.Run(fmt.Sprintf("events=%d", foldEvents), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			path := filepath.Join(b.TempDir(), "read.db")
			b.StartTimer()

			st, err := sqlite.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r := projections.NewRunner(srv.Store, st, benchLog, nil)
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
			err = r.WaitFor(wctx, foldEvents)
			wcancel()

			b.StopTimer()
			cancel()
			if err != nil {
				b.Fatalf("fold reached %d of %d: %v; runner error: %v", r.Applied(), foldEvents, err, r.Err())
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			checkFolded(b, st)
			st.Close()
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(float64(foldEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkApplyBatch measures sqlite.Store.Apply alone: the same 100,000 events, decoded in memory from
// their wire form once before timing, applied to a fresh file in batches like the Runner's (no NATS, no
// decoding). Compared with BenchmarkFold it separates the read store's cost from delivery and decoding.
func BenchmarkApplyBatch(b *testing.B) {
	evs := make([]events.Envelope, foldEvents)
	for i := range evs {
		e := foldEvent(i + 1)
		subject, hdr, data, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		if evs[i], err = events.DecodeMessage(subject, func(k string) string { return hdr[k] }, data, e.Sequence); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range []int{1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "read.db")
				b.StartTimer()

				st, err := sqlite.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				for lo := 0; lo < len(evs); lo += size {
					if err := st.Apply(ctx, evs[lo:min(lo+size, len(evs))]); err != nil {
						b.Fatal(err)
					}
				}

				b.StopTimer()
				checkFolded(b, st)
				st.Close()
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(foldEvents*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N*((foldEvents+size-1)/size)), "ms/batch")
		})
	}
}

// checkFolded checks that the store holds the whole log: the checkpoint is at the last event and the
// first and last stores are there.
func checkFolded(b *testing.B, st *sqlite.Store) {
	b.Helper()
	ctx := context.Background()
	cp, err := st.Checkpoint(ctx)
	if err != nil || cp != foldEvents {
		b.Fatalf("checkpoint %d (%v), want %d", cp, err, foldEvents)
	}
	for _, i := range []int{1, foldEvents} {
		id := fmt.Sprintf("str_f%08d", i)
		if _, err := st.Store(ctx, id); err != nil {
			b.Fatalf("store %s: %v", id, err)
		}
		if _, err := st.KeyScope(ctx, fmt.Sprintf("%s%060x", events.ModeTest, i)); err != nil {
			b.Fatalf("test key of %s: %v", id, err)
		}
	}
}

// parallelN runs op(i) for i in [0, n) on c goroutines and returns the first error.
func parallelN(n, c int, op func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Pointer[error]
	)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}
