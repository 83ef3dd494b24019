package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// RebuildOptions says what to rebuild and where.
type RebuildOptions struct {
	// Dir is the read store directory of the live store.
	Dir string
	// Out is the file to build; empty means a fresh file in Dir.
	Out string
	// UntilSeq, when non-zero, stops after this stream sequence.
	UntilSeq uint64
	// UntilTime, when non-zero, stops before the first event whose time is after it.
	UntilTime time.Time
	// Swap makes the built store the one CURRENT names; a serving process switches to it once it has
	// caught up with the log.
	Swap bool
	// Progress, when set, receives a progress bar.
	Progress io.Writer
	Logger   *slog.Logger
	Options  []sqlite.Option
}

// RebuildResult says what a rebuild produced.
type RebuildResult struct {
	Path    string
	Applied uint64 // the last stream sequence folded into the store
	Elapsed time.Duration
}

// Rebuild folds the log from sequence 1 into a fresh store, up to the head of the log as it was when the
// rebuild started, or up to UntilSeq / UntilTime. With Swap it then points CURRENT at the new store.
func Rebuild(ctx context.Context, log Log, opts RebuildOptions) (RebuildResult, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	head, err := log.LastSequence(ctx)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: reading the head of the log: %w", err)
	}
	target := head
	if opts.UntilSeq != 0 && opts.UntilSeq < target {
		target = opts.UntilSeq
	}
	path := opts.Out
	if path == "" {
		path = NewStorePath(opts.Dir)
	}
	if _, err := os.Stat(path); err == nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %s already exists", path)
	}
	// Build under a temporary name; only a complete store gets the real one.
	building := path + ".building"
	if err := RemoveStore(building); err != nil {
		return RebuildResult{}, err
	}
	st, err := sqlite.Open(building, opts.Options...)
	if err != nil {
		return RebuildResult{}, err
	}
	defer func() {
		st.Close()
		RemoveStore(building)
	}()
	start := time.Now()
	r := NewRunner(log, st, opts.Logger, nil)
	r.FailFast = true
	if target > 0 {
		r.Until = target
		if !opts.UntilTime.IsZero() {
			r.StopAt = func(e events.Envelope) bool { return e.Time.After(opts.UntilTime) }
		}
		stopBar := progressBar(opts.Progress, r, target, start)
		err = r.Run(ctx)
		stopBar()
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild into %s: %w", path, err)
		}
	}
	res := RebuildResult{Path: path, Applied: r.Applied(), Elapsed: time.Since(start)}
	if err := st.Close(); err != nil { // checkpoints the WAL into the file, so the file alone is the store
		return RebuildResult{}, err
	}
	if err := os.Rename(building, path); err != nil {
		return RebuildResult{}, err
	}
	if opts.Swap {
		if err := WriteCurrent(opts.Dir, path); err != nil {
			return res, fmt.Errorf("rebuild: switching CURRENT to %s: %w", path, err)
		}
	}
	return res, nil
}

// progressBar draws "[=====>    ]  52%  52000/100000 events  61000 ev/s" on w until stopped.
func progressBar(w io.Writer, r *Runner, target uint64, start time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	draw := func() {
		done := r.Applied()
		frac := float64(done) / float64(target)
		width := 30
		filled := int(frac * float64(width))
		bar := strings.Repeat("=", filled)
		if filled < width {
			bar += ">" + strings.Repeat(" ", width-filled-1)
		}
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\r[%s] %3.0f%%  %d/%d events  %.0f ev/s", bar, frac*100, done, target, rate)
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				draw()
				fmt.Fprintln(w)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(quit); <-finished }
}
