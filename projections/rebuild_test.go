package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salesledger/ledger/events/jetstream/jstest"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

func TestRebuildEqualsLiveAndSwapsIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := jstest.Start(t, "")
	last := appendStores(t, srv.Store, 1, 150)
	dir := t.TempDir()

	live, err := projections.OpenLive(dir, srv.Store, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	live.Poll, live.CloseDelay = 20*time.Millisecond, 0
	runDone := make(chan error, 1)
	go func() { runDone <- live.Run(ctx) }()
	if err := live.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	want, err := live.Store().Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldPath := live.Path()

	var progress bytes.Buffer
	res, err := projections.Rebuild(ctx, srv.Store, projections.RebuildOptions{Dir: dir, Swap: true, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != last {
		t.Fatalf("rebuild applied up to %d, want %d", res.Applied, last)
	}
	if !strings.Contains(progress.String(), "100%") {
		t.Errorf("progress output %q never reached 100%%", progress.String())
	}

	// The serving projection switches to the rebuilt file and keeps following new events.
	deadline := time.Now().Add(10 * time.Second)
	for live.Path() != res.Path {
		if time.Now().After(deadline) {
			t.Fatalf("live projection still serves %s, want the rebuilt %s", live.Path(), res.Path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := live.Store().Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt store differs from the live one:\n got %v\nwant %v", got, want)
	}
	more := appendStores(t, srv.Store, 1000, 5)
	if err := live.WaitFor(ctx, more); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Store().Store(ctx, "str_001004"); err != nil {
		t.Fatalf("event after the swap not projected: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if matches, _ := filepath.Glob(oldPath + "*"); len(matches) != 0 {
		t.Errorf("replaced store files left behind: %v", matches)
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

func TestRebuildUntil(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	appendStores(t, srv.Store, 1, 30) // store i has time 2026-01-01T00:00:i

	tests := []struct {
		name   string
		opts   projections.RebuildOptions
		stores int
	}{
		{"sequence", projections.RebuildOptions{UntilSeq: 12}, 12},
		{"time", projections.RebuildOptions{UntilTime: time.Date(2026, 1, 1, 0, 0, 20, 0, time.UTC)}, 20},
		{"beyond the head", projections.RebuildOptions{UntilSeq: 1 << 40}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Out = filepath.Join(t.TempDir(), "asof.db")
			var progress bytes.Buffer
			tt.opts.Progress = &progress
			if _, err := projections.Rebuild(ctx, srv.Store, tt.opts); err != nil {
				t.Fatal(err)
			}
			// The bar ends at 100 % of the events the bound takes, with a rate and the time left.
			final := progress.String()[strings.LastIndex(progress.String(), "\r")+1:]
			if !strings.Contains(final, "100%") || !strings.Contains(final, fmt.Sprintf("%d/%d", tt.stores, tt.stores)) ||
				!strings.Contains(final, "events/s") {
				t.Errorf("final progress %q: want 100%% of %d events and a rate", final, tt.stores)
			}
			st, err := sqlite.Open(tt.opts.Out)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			dump, err := st.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(dump["stores"]); n != tt.stores {
				t.Fatalf("as-of store has %d stores, want %d", n, tt.stores)
			}
		})
	}
}

// A time before the log's first event is an error, not an empty store.
func TestRebuildUntilBeforeTheFirstEvent(t *testing.T) {
	srv := jstest.Start(t, "")
	appendStores(t, srv.Store, 1, 3) // 2026-01-01T00:00:01Z to :03
	out := filepath.Join(t.TempDir(), "asof.db")
	_, err := projections.Rebuild(context.Background(), srv.Store, projections.RebuildOptions{Out: out, UntilTime: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)})
	if !errors.Is(err, projections.ErrNothingThatOld) || !strings.Contains(err.Error(), "2026-01-01T00:00:01Z") {
		t.Fatalf("err = %v; want ErrNothingThatOld naming the first event's time", err)
	}
	if matches, _ := filepath.Glob(out + "*"); len(matches) != 0 {
		t.Fatalf("files written: %v", matches)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("as-of store exists: %v", err)
	}
}

// A rebuild removes the *.building files that killed rebuilds left, unless another rebuild is running
// (it holds the rebuild lock) and may be writing one of them.
func TestRebuildRemovesLeftovers(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	appendStores(t, srv.Store, 1, 3)
	dir := t.TempDir()
	leftovers := []string{"read-1.db.building", "read-1.db.building-wal", "read-1.db.building-shm", "asof-2026.db.building"}
	for _, name := range append(leftovers, "read-2.db") {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("left by a killed rebuild"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exist := func(names []string) (n int) {
		for _, name := range names {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				n++
			}
		}
		return n
	}

	// Another rebuild runs: it holds the lock shared, and nothing is removed.
	other, err := os.OpenFile(filepath.Join(dir, projections.RebuildLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, srv.Store, projections.RebuildOptions{Dir: dir, Out: filepath.Join(dir, "asof-a.db"), UntilSeq: 2}); err != nil {
		t.Fatal(err)
	}
	if n := exist(leftovers); n != len(leftovers) {
		t.Fatalf("%d of the leftovers removed while another rebuild held the lock", len(leftovers)-n)
	}
	other.Close()

	if _, err := projections.Rebuild(ctx, srv.Store, projections.RebuildOptions{Dir: dir, Out: filepath.Join(dir, "asof-b.db"), UntilSeq: 2}); err != nil {
		t.Fatal(err)
	}
	if n := exist(leftovers); n != 0 {
		t.Fatalf("%d leftovers still there", n)
	}
	if exist([]string{"read-2.db", "asof-a.db", "asof-b.db"}) != 3 {
		t.Fatal("a finished store was removed")
	}
}
