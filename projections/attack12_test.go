package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream/jstest"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

// The reader runs ahead until the channel of BatchSize is full and it blocks sending; the run is
// cancelled while a batch is being applied. Run must return (no reader left blocked on the channel,
// no drain waiting forever), and a second run resumes from the checkpoint without loss or double apply.
func TestAttack12RunnerCancelWhileReaderBlocksOnFullChannel(t *testing.T) {
	srv := jstest.Start(t, "")
	last := appendStores(t, srv.Store, 1, 60)
	path := filepath.Join(t.TempDir(), "read.db")
	release := make(chan struct{})
	var held atomic.Bool
	hold := func(ctx context.Context, tx *sql.Tx, e events.Envelope) error {
		if err := countApplies(ctx, tx, e); err != nil {
			return err
		}
		if e.Sequence == 3 && held.CompareAndSwap(false, true) {
			<-release
		}
		return nil
	}
	st, err := sqlite.Open(path, sqlite.WithFold(hold))
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(srv.Store, st, quiet, nil)
	r.BatchSize = 2
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// Wait for the reader to fill the channel (2) and block on the next send: it has read 3 + 2 + 1.
	for r.Read() < 6 {
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel while its reader was blocked on a full channel")
	}
	st.Close()

	st, err = sqlite.Open(path, sqlite.WithFold(countApplies))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r = projections.NewRunner(srv.Store, st, quiet, nil)
	r.BatchSize = 7
	runUntilApplied(t, r, last)
	rows, top, most := appliesOf(t, path)
	if rows != int(last) || top != int(last) || most != 1 {
		t.Fatalf("after resume: %d sequences up to %d, most applied %d times; want 1-%d once each", rows, top, most, last)
	}
}

// A bounded run (rebuild --until) with batches smaller than the distance to the bound, and a StopAt
// bound, stop exactly at the bound.
func TestAttack12RunnerBoundsWithSmallBatches(t *testing.T) {
	srv := jstest.Start(t, "")
	appendStores(t, srv.Store, 1, 80)
	for _, c := range []struct {
		name   string
		until  uint64
		stopAt uint64
		want   int
	}{{"until", 37, 0, 37}, {"stop at", 80, 23, 22}, {"until first", 1, 0, 1}} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "read.db")
			st, err := sqlite.Open(path, sqlite.WithFold(countApplies))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r := projections.NewRunner(srv.Store, st, quiet, nil)
			r.BatchSize, r.FailFast, r.Until = 4, true, c.until
			if c.stopAt != 0 {
				r.StopAt = func(e events.Envelope) bool { return e.Sequence >= c.stopAt }
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.Run(ctx); err != nil || ctx.Err() != nil {
				t.Fatalf("run: %v (ctx %v)", err, ctx.Err())
			}
			cp, _ := st.Checkpoint(context.Background())
			rows, top, most := appliesOf(t, path)
			if int(cp) != c.want || rows != c.want || top != c.want || most != 1 {
				t.Fatalf("checkpoint %d, %d sequences up to %d (most %d times); want exactly 1-%d", cp, rows, top, most, c.want)
			}
		})
	}
}

// A batch that fails is retried from the checkpoint: nothing lost, nothing applied twice.
func TestAttack12RunnerRetriesAFailedBatchFromItsCheckpoint(t *testing.T) {
	srv := jstest.Start(t, "")
	last := appendStores(t, srv.Store, 1, 90)
	path := filepath.Join(t.TempDir(), "read.db")
	var failures atomic.Int32
	flaky := func(ctx context.Context, tx *sql.Tx, e events.Envelope) error {
		if err := countApplies(ctx, tx, e); err != nil {
			return err
		}
		if (e.Sequence == 31 || e.Sequence == 64) && failures.Add(1) <= 3 {
			return errors.New("transient")
		}
		return nil
	}
	st, err := sqlite.Open(path, sqlite.WithFold(flaky))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := projections.NewRunner(srv.Store, st, quiet, nil)
	r.BatchSize = 5
	runUntilApplied(t, r, last)
	rows, top, most := appliesOf(t, path)
	if rows != int(last) || top != int(last) || most != 1 {
		t.Fatalf("%d sequences up to %d, most applied %d times; want 1-%d once each", rows, top, most, last)
	}
}
