package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

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
	// StallTimeout, when set, fails the rebuild once no event has arrived for that long while events
	// remain: its source went away (a ledger that died under it, a lost connection).
	StallTimeout time.Duration
	// SourceErr, when set, says what is wrong with the source (the connection's last error); a stalled
	// rebuild reports it.
	SourceErr func() error
	Logger    *slog.Logger
	Options   []sqlite.Option
}

// RebuildResult says what a rebuild produced.
type RebuildResult struct {
	Path    string
	Applied uint64 // the last stream sequence folded into the store
	Elapsed time.Duration
}

// TimeSeeker is a log that tells an event's time by its stream sequence (the event store does). Rebuild
// uses it to know, before it starts, how far --until a time reaches.
type TimeSeeker interface {
	TimeAt(ctx context.Context, seq uint64) (time.Time, error)
}

// ErrNothingThatOld is a rebuild --until a time before the log's first event: there is no as-of state
// to build.
var ErrNothingThatOld = errors.New("no event is that old")

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
	// The progress runs to the last event --until a time takes, not to the head: found by its time.
	progressTarget := target
	if ts, ok := log.(TimeSeeker); ok && !opts.UntilTime.IsZero() && target > 0 {
		last, err := lastAtOrBefore(ctx, ts.TimeAt, target, opts.UntilTime)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild: finding the last event until %s: %w", opts.UntilTime.Format(time.RFC3339), err)
		}
		if last == 0 {
			first, _ := ts.TimeAt(ctx, 1)
			return RebuildResult{}, fmt.Errorf("rebuild --until %s: %w: the log's first event is from %s; nothing was written",
				opts.UntilTime.UTC().Format(time.RFC3339), ErrNothingThatOld, first.UTC().Format(time.RFC3339))
		}
		progressTarget = last
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
	unlock, err := lockRebuild(lockDir(opts.Dir, path), opts.Logger)
	if err != nil {
		return RebuildResult{}, err
	}
	defer unlock()
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
		bar := startProgress(opts.Progress, r, progressTarget)
		runCtx, cancel := context.WithCancelCause(ctx)
		stopWatch := watchStall(runCtx, cancel, r, target, opts.StallTimeout, opts.SourceErr)
		err = r.Run(runCtx)
		stopWatch()
		if err == nil && runCtx.Err() != nil {
			err = context.Cause(runCtx)
		}
		cancel(nil)
		bar.stop(err == nil)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild into %s: %w", path, err)
		}
	}
	if !opts.UntilTime.IsZero() && head > 0 && r.Applied() == 0 {
		return RebuildResult{}, fmt.Errorf("rebuild --until %s: %w; nothing was written", opts.UntilTime.UTC().Format(time.RFC3339), ErrNothingThatOld)
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

// ErrStalled is a rebuild whose source sent nothing for its StallTimeout.
var ErrStalled = errors.New("the log sent no event")

// watchStall cancels the run with ErrStalled (and the source's own error) once the runner has made no
// progress for timeout, counted from its last progress (or from the start). The runner, waiting inside
// the client library for an event that will not come, is woken by the cancellation.
func watchStall(ctx context.Context, cancel context.CancelCauseFunc, r *Runner, target uint64, timeout time.Duration, sourceErr func() error) (stop func()) {
	if timeout <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			last := r.MovedAt()
			if last.Before(start) {
				last = start
			}
			if wait := stallWait(last, time.Now(), timeout); wait > 0 || max(r.Read(), r.Applied()) >= target {
				t.Reset(max(wait, timeout/10))
				continue
			}
			err := fmt.Errorf("%w for %s, at sequence %d of %d", ErrStalled, time.Since(last).Round(time.Millisecond), max(r.Read(), r.Applied()), target)
			if sourceErr != nil {
				if serr := sourceErr(); serr != nil {
					err = fmt.Errorf("%w: %w", err, serr)
				}
			}
			cancel(err)
			return
		}
	}()
	return func() { close(done); <-finished }
}

// stallWait is how long after now a run that last made progress at last has stalled for timeout; zero
// or less once it has.
func stallWait(last, now time.Time, timeout time.Duration) time.Duration {
	return last.Add(timeout).Sub(now)
}

// lastAtOrBefore is the last sequence in [1, head] whose event time is not after until, or 0 when even
// the first event is later. It searches by halves, taking event times to grow with the sequence: each
// writer stamps its own clock, so they may not quite, but the bound only sizes the progress bar (the
// runner itself stops at the first later event).
func lastAtOrBefore(ctx context.Context, timeAt func(context.Context, uint64) (time.Time, error), head uint64, until time.Time) (uint64, error) {
	lo, hi := uint64(0), head // invariant: lo is at or before until (0: none known), everything above hi is after
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		t, err := timeAt(ctx, mid)
		if err != nil {
			return 0, err
		}
		if t.After(until) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// RebuildLockFile, in the read store directory, is held (shared) by every rebuild while it runs. A
// rebuild that can take it exclusively knows no other runs, and removes the *.building files that
// killed rebuilds left behind.
const RebuildLockFile = "rebuild.lock"

func lockDir(dir, path string) string {
	if dir != "" {
		return dir
	}
	return filepath.Dir(path)
}

// lockRebuild takes the rebuild lock in dir: exclusively first, to remove leftovers when no other
// rebuild runs, then shared for the rebuild's duration.
func lockRebuild(dir string, logger *slog.Logger) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("rebuild: read store dir %s is not usable: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, RebuildLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rebuild: lock file: %w", err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		removeLeftovers(dir, logger)
	}
	// Shared from here on (blocking only while another rebuild removes its own leftovers).
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("rebuild: lock file: %w", err)
	}
	return func() { f.Close() }, nil
}

// removeLeftovers deletes the *.building stores (with their WAL and shared memory) of rebuilds that
// were killed; the caller holds the rebuild lock exclusively, so none of them is being written.
func removeLeftovers(dir string, logger *slog.Logger) {
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.building"))
	for _, p := range leftovers {
		var size int64
		for _, f := range []string{p, p + "-wal", p + "-shm"} {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		if err := RemoveStore(p); err != nil {
			logger.Warn("removing the leftover of an interrupted rebuild", "path", p, "err", err)
			continue
		}
		logger.Info("removed the leftover of an interrupted rebuild", "path", p, "bytes", size)
	}
}

// progress draws the rebuild's progress bar (github.com/schollz/progressbar): percentage, events done
// of the target, events per second and the time left, redrawn every 200 ms whatever the batch size.
type progress struct {
	bar      *progressbar.ProgressBar
	w        io.Writer
	r        *Runner
	target   uint64
	shown    uint64 // the position last given to the bar
	quit     chan struct{}
	finished chan struct{}
}

// progressEvery is how often the bar is redrawn.
const progressEvery = 200 * time.Millisecond

func startProgress(w io.Writer, r *Runner, target uint64) *progress {
	p := &progress{w: w, r: r, target: target, quit: make(chan struct{}), finished: make(chan struct{})}
	if w == nil {
		close(p.finished)
		return p
	}
	p.bar = newBar(w, target)
	go func() {
		defer close(p.finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.show(progressDone(r.Applied(), r.Read(), target))
			}
		}
	}()
	return p
}

// show moves the bar to done. A tick without progress is not fed to the bar: it would count as a
// sample of zero events per second, and the bar would show "0 events/hr" and, dividing by that rate, "0s"
// left. The rate is then the average since the last move, and a stall shows as a bar that stands still
// (the stall timeout ends it).
func (p *progress) show(done uint64) {
	if done == p.shown {
		return
	}
	p.shown = done
	_ = p.bar.Set64(int64(done))
}

// newBar is the bar: "42% |████      | (4200/10000, 61000 events/s) [0s:0s]", elapsed and left in the
// brackets; at the end the elapsed time alone.
func newBar(w io.Writer, target uint64) *progressbar.ProgressBar {
	bar := progressbar.NewOptions64(int64(target),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(progressEvery),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	// The clock starts now, not at the first event: the first rate is events over the time they took.
	bar.StartWithoutRender()
	return bar
}

// progressDone is the position the bar shows: events committed, or read and being applied (a batch of
// up to 4,096 events commits at once), never past the target.
func progressDone(applied, read, target uint64) uint64 {
	return min(max(applied, read), target)
}

// stop draws the final state: on success the bar ends at 100 % of what was applied (a time bound may end
// a little before or after its estimate); on failure it stays where it was.
func (p *progress) stop(ok bool) {
	close(p.quit)
	<-p.finished
	if p.bar == nil {
		return
	}
	if ok {
		if done := p.r.Applied(); done != p.target {
			p.bar.ChangeMax64(int64(max(done, 1)))
		}
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit()
	fmt.Fprintln(p.w)
}
