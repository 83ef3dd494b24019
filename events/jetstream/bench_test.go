package jetstream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// The benchmarks in this file compare the ledger's append path (Store.Append: one event, a concurrency
// header, a synchronous PubAck per call) with the ceiling of the same server: raw PublishAsync of the
// very same messages. Both run against a real embedded nats-server with SyncAlways, so every
// acknowledged message is on disk. See docs/benchmarks.md for the commands and the figures.

var benchEpoch = time.Date(2026, 1, 15, 10, 30, 0, 0, time.UTC)

// benchEvent is the i-th event of a run: a store_created opening a new store, so it is the first event of
// its aggregate and is appended with expect 0. Its JSON body is about 300 bytes (one API key with a
// SHA-256-sized hash).
func benchEvent(i int) events.Envelope {
	id := fmt.Sprintf("str_b%09d", i)
	return events.Envelope{
		ID:            fmt.Sprintf("evt_b%09d", i),
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
		Time:          benchEpoch.Add(time.Duration(i) * time.Millisecond),
		CorrelationID: "req_bench",
		Payload: events.StoreCreated{
			StoreID: id, Name: "Benchmark shop", Slug: "shop-" + id[4:], ServiceFeePercent: "2.5",
			SettlementDelayDays: 7, AbandonAfterMinutes: 30,
			Keys: []events.APIKey{{Mode: events.ModeLive, Hash: fmt.Sprintf("%064x", i), Last4: "abcd", Prefix: "sk_live_"}},
		},
	}
}

// startServer starts an embedded server in a fresh directory, fsyncing every write before acknowledging
// it when syncAlways is set, and ensures the LEDGER stream. Like `ledger serve`, the client is connected
// in-process (no TCP). It is stopped when b's current run ends.
func startServer(b *testing.B, syncAlways bool) (*nats.Conn, *jetstream.Store) {
	b.Helper()
	ns, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: b.TempDir(), SyncAlways: syncAlways},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		ns.Shutdown()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	st, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.EnsureStream(context.Background(), jetstream.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	return nc, st
}

// rawMessage is what Store.Append(ctx, expect, e) puts on the wire, rebuilt from the public codec: the
// subject, the CloudEvents headers, Nats-Msg-Id and, unless expect is jetstream.NoExpectation, the
// optimistic-concurrency pair.
func rawMessage(b *testing.B, e events.Envelope, expect uint64) *nats.Msg {
	subject, hdr, data, err := events.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	m.Header.Set("Nats-Msg-Id", e.ID)
	if expect != jetstream.NoExpectation {
		m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(expect, 10))
		m.Header.Set("Nats-Expected-Last-Subject-Sequence-Subject", e.Aggregate.Filter())
	}
	return m
}

// bodySize is the size of one benchmark event's JSON body, for b.SetBytes.
func bodySize(b *testing.B) int64 {
	_, _, data, err := events.Encode(benchEvent(0))
	if err != nil {
		b.Fatal(err)
	}
	return int64(len(data))
}

// reportRate reports events/s for n events over the timed part of the run and checks that the stream
// holds exactly n events, so a silently failed or deduplicated publish cannot inflate the figure.
func reportRate(b *testing.B, st *jetstream.Store, n int) {
	b.Helper()
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, "events/s")
	}
	last, err := st.LastSequence(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if last != uint64(n) {
		b.Fatalf("stream holds %d events after %d appends", last, n)
	}
}

// BenchmarkAppendVsRaw measures events/s into a SyncAlways server:
//
//   - ledger-cN: Store.Append of one new-aggregate event (expect 0), from N goroutines sharing one
//     connection. Each call waits for its PubAck, so throughput is N / (round trip + fsync) at best.
//   - raw-sync-cN: the same pre-encoded messages through JetStream's synchronous PublishMsg from N
//     goroutines: what the ledger would reach with zero overhead of its own.
//   - raw-async-wW: the same pre-encoded messages through PublishMsgAsync with at most W acks
//     outstanding, waiting for every ack at the end: the ceiling of the server and the connection.
func BenchmarkAppendVsRaw(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("ledger-c%d", c), func(b *testing.B) { benchLedgerAppend(b, true, c) })
	}
	b.Run("raw-sync-c64", func(b *testing.B) { benchRawSync(b, true, 64) })
	b.Run("raw-async-w256", func(b *testing.B) { benchRawAsync(b, true, 256, 0) })
}

// BenchmarkAppendVsRawNoSync is BenchmarkAppendVsRaw against a server that does not fsync each write
// (the default 2-minute sync interval). It is a diagnostic, not the durability the ledger runs with: with
// the disk out of the way it shows what the per-append request/reply costs next to PublishAsync.
func BenchmarkAppendVsRawNoSync(b *testing.B) {
	for _, c := range []int{1, 64} {
		b.Run(fmt.Sprintf("ledger-c%d", c), func(b *testing.B) { benchLedgerAppend(b, false, c) })
	}
	b.Run("raw-sync-c64", func(b *testing.B) { benchRawSync(b, false, 64) })
	b.Run("raw-async-w256", func(b *testing.B) { benchRawAsync(b, false, 256, 0) })
}

// BenchmarkAppend is the ledger side of BenchmarkAppendVsRaw alone.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) { benchLedgerAppend(b, true, c) })
	}
}

// BenchmarkRawPublishAsync is the raw side of BenchmarkAppendVsRaw alone, with a 256-ack window and
// with nats.go's default window (4000), and once without the concurrency headers to show what the
// expected-last-subject-sequence check costs the server.
func BenchmarkRawPublishAsync(b *testing.B) {
	b.Run("w256", func(b *testing.B) { benchRawAsync(b, true, 256, 0) })
	b.Run("w4000", func(b *testing.B) { benchRawAsync(b, true, 4000, 0) })
	b.Run("w256-noexpect", func(b *testing.B) { benchRawAsync(b, true, 256, jetstream.NoExpectation) })
}

// parallel runs op(i) for i in [0, n) on c goroutines and returns the first error.
func parallel(n, c int, op func(i int) error) error {
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

func benchLedgerAppend(b *testing.B, syncAlways bool, c int) {
	_, st := startServer(b, syncAlways)
	ctx := context.Background()
	evs := make([]events.Envelope, b.N)
	for i := range evs {
		evs[i] = benchEvent(i)
	}
	b.SetBytes(bodySize(b))
	b.ResetTimer()
	err := parallel(b.N, c, func(i int) error {
		_, err := st.Append(ctx, 0, evs[i])
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, st, b.N)
}

func benchRawSync(b *testing.B, syncAlways bool, c int) {
	_, st := startServer(b, syncAlways)
	ctx := context.Background()
	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		msgs[i] = rawMessage(b, benchEvent(i), 0)
	}
	js := st.JetStream()
	b.SetBytes(bodySize(b))
	b.ResetTimer()
	err := parallel(b.N, c, func(i int) error {
		_, err := js.PublishMsg(ctx, msgs[i])
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, st, b.N)
}

func benchRawAsync(b *testing.B, syncAlways bool, window int, expect uint64) {
	nc, st := startServer(b, syncAlways)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	js, err := natsjs.New(nc,
		natsjs.WithPublishAsyncMaxPending(window),
		natsjs.WithPublishAsyncErrHandler(func(_ natsjs.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}))
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		msgs[i] = rawMessage(b, benchEvent(i), expect)
	}
	b.SetBytes(bodySize(b))
	b.ResetTimer()
	for _, m := range msgs {
		// The window is full whenever fsync is slower than the client; wait for room instead of failing
		// after nats.go's default 200ms stall.
		if _, err := js.PublishMsgAsync(m, natsjs.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d acks still pending after 5 minutes", js.PublishAsyncPending())
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d async publishes failed; first: %v", n, b.N, *firstErr.Load())
	}
	reportRate(b, st, b.N)
}

// BenchmarkAtomicBatch measures events/s when events are appended as atomic batches of n events (each
// with its own expect-0 condition), one batch at a time and from c concurrent batchers: how far one fsync
// per batch carries a SyncAlways server.
func BenchmarkAtomicBatch(b *testing.B) {
	for _, n := range []int{1, 10, 50, 100, 500} {
		for _, c := range []int{1, 4} {
			b.Run(fmt.Sprintf("n%d-c%d", n, c), func(b *testing.B) { benchAtomicBatch(b, n, c) })
		}
	}
}

func benchAtomicBatch(b *testing.B, n, c int) {
	_, st := startServer(b, true)
	ctx := context.Background()
	total := b.N * n
	ws := make([]jetstream.Write, total)
	for i := range ws {
		ws[i] = jetstream.Write{Event: benchEvent(i), Expect: 0}
	}
	b.SetBytes(bodySize(b) * int64(n))
	b.ResetTimer()
	err := parallel(b.N, c, func(i int) error {
		_, err := st.AppendWrites(ctx, ws[i*n:(i+1)*n]...)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	reportRate(b, st, total)
}
