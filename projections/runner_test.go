package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// appendStores appends n store_created events, one per store, and returns the last sequence.
func appendStores(t testing.TB, s *jetstream.Store, from, n int) uint64 {
	t.Helper()
	var last uint64
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("str_%06d", i)
		seq, err := s.Append(context.Background(), 0, events.Envelope{
			ID:        "evt_" + id,
			Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
			Time:      time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			Payload: events.StoreCreated{StoreID: id, Name: "Shop", Slug: fmt.Sprintf("shop-%d", i), ServiceFeePercent: "5",
				Keys: []events.APIKey{{Mode: "live", Hash: "h" + id, Prefix: "sk_live_", Last4: "abcd"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	return last
}

// countApplies is a fold that counts how often each sequence is applied, so a double-apply shows.
func countApplies(ctx context.Context, tx *sql.Tx, e events.Envelope) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS applies (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO applies (seq, n) VALUES (?, 1) ON CONFLICT (seq) DO UPDATE SET n = n + 1`, e.Sequence)
	return err
}

// appliesOf reads countApplies' table: how many sequences were applied, the highest, and the most
// times any one was.
func appliesOf(t *testing.T, path string) (rows, top, most int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*), coalesce(max(seq), 0), coalesce(max(n), 0) FROM applies`).Scan(&rows, &top, &most); err != nil {
		t.Fatal(err)
	}
	return rows, top, most
}

func runUntilApplied(t *testing.T, r *projections.Runner, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := r.WaitFor(wctx, seq); err != nil {
		t.Fatalf("waiting for %d (applied %d): %v; runner error: %v", seq, r.Applied(), err, r.Err())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCrashMidBatchResumesWithoutLossOrDoubleApply(t *testing.T) {
	srv := jstest.Start(t, "")
	last := appendStores(t, srv.Store, 1, 100)
	path := filepath.Join(t.TempDir(), "read.db")

	// First life: the process "dies" while applying event 57, after several batches of 10 committed.
	ctx, crash := context.WithCancel(context.Background())
	dying := func(ctx context.Context, tx *sql.Tx, e events.Envelope) error {
		if e.Sequence == 57 {
			crash()
			return errors.New("power cut")
		}
		return nil
	}
	st, err := sqlite.Open(path, sqlite.WithFold(countApplies), sqlite.WithFold(dying))
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(srv.Store, st, quiet, nil)
	r.BatchSize = 10
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := st.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A batch takes what was read while the previous one ran, up to 10 events: the one holding 57 rolled
	// back whole, so the checkpoint is where the batch before it ended, and nothing after it was applied.
	if cp >= 57 || cp < 47 {
		t.Fatalf("checkpoint after the crash = %d, want the end of a batch before 57 (47-56)", cp)
	}
	crashRows, top, _ := appliesOf(t, path)
	if crashRows != int(cp) || top != int(cp) {
		t.Fatalf("after the crash, %d sequences applied up to %d; want exactly 1-%d (the checkpoint)", crashRows, top, cp)
	}
	st.Close()

	// Second life: same file, resumes at the checkpoint.
	st, err = sqlite.Open(path, sqlite.WithFold(countApplies))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r = projections.NewRunner(srv.Store, st, quiet, nil)
	r.BatchSize = 10
	runUntilApplied(t, r, last)

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, total, minN, maxN int
	if err := db.QueryRow(`SELECT count(*), sum(n), min(n), max(n) FROM applies`).Scan(&rows, &total, &minN, &maxN); err != nil {
		t.Fatal(err)
	}
	if rows != 100 || total != 100 || minN != 1 || maxN != 1 {
		t.Fatalf("applies: %d sequences, %d applications, n in [%d,%d]; want each of 100 exactly once", rows, total, minN, maxN)
	}
	var stores int
	if err := db.QueryRow(`SELECT count(*) FROM stores`).Scan(&stores); err != nil || stores != 100 {
		t.Fatalf("stores = %d (%v), want 100", stores, err)
	}
}

func TestRunnerFollowsLiveAppendsAndReportsLag(t *testing.T) {
	srv := jstest.Start(t, "")
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "read.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := projections.NewRunner(srv.Store, st, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	for round := 0; round < 3; round++ {
		last := appendStores(t, srv.Store, 1+round*20, 20)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := r.WaitFor(wctx, last); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		wcancel()
		if r.Lag() != 0 {
			t.Fatalf("lag %d after catching up", r.Lag())
		}
	}
	if _, err := st.Store(ctx, "str_000042"); err != nil {
		t.Fatal(err)
	}
}
