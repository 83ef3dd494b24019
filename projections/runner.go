// Package projections folds the event log into read models: the runner that consumes LEDGER in order
// and applies it in batches with a checkpoint, the live projection that swaps in rebuilt stores, and
// rebuild itself.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// Log is the part of the event store a projection reads.
type Log interface {
	Subscribe(ctx context.Context, from uint64, filter string) (*jetstream.Subscription, error)
	LastSequence(ctx context.Context) (uint64, error)
}

// Target is a read store that applies batches atomically together with its checkpoint.
type Target interface {
	Checkpoint(ctx context.Context) (uint64, error)
	Apply(ctx context.Context, batch []events.Envelope) error
}

// Runner keeps one Target folded up to the head of the log. It resumes from the target's committed
// checkpoint, so a crash at any point neither loses nor double-applies an event.
type Runner struct {
	log     Log
	target  Target
	logger  *slog.Logger
	metrics atomic.Pointer[Metrics]

	// BatchSize caps the events applied in one transaction.
	BatchSize int
	// Until, when non-zero, stops the runner once it has applied this sequence (used by rebuild).
	Until uint64
	// StopAt, when set, stops the runner before the first event it returns true for (rebuild --until a time).
	StopAt func(events.Envelope) bool
	// FailFast makes Run return the first failure instead of retrying (rebuild).
	FailFast bool

	applied  atomic.Uint64
	lastRead atomic.Uint64 // the last sequence read from the log, one batch or two ahead of applied
	movedAt  atomic.Int64  // when an event was last read or a batch applied, in Unix nanoseconds
	head     atomic.Uint64
	failing  atomic.Pointer[error]

	mu      sync.Mutex
	advance chan struct{} // closed and replaced whenever applied moves
}

// NewRunner makes a runner; metrics may be nil.
func NewRunner(log Log, target Target, logger *slog.Logger, metrics *Metrics) *Runner {
	r := &Runner{log: log, target: target, logger: logger, BatchSize: 4096, advance: make(chan struct{})}
	r.SetMetrics(metrics)
	return r
}

// SetMetrics starts (or, with nil, stops) reporting to metrics.
func (r *Runner) SetMetrics(m *Metrics) { r.metrics.Store(m) }

// errStop ends a rebuild run once it reached its bound.
var errStop = errors.New("projection reached its bound")

// Run folds until ctx is done (returning nil) or, for a bounded run, until the bound is reached.
// Failures (a read store error, an event that does not decode) are logged and retried with backoff
// from the last checkpoint; meanwhile Err reports the failure and the lag grows.
func (r *Runner) Run(ctx context.Context) error {
	cp, err := r.target.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("projection checkpoint: %w", err)
	}
	r.setApplied(cp)
	go r.watchHead(ctx)
	backoff := 100 * time.Millisecond
	for {
		err := r.runOnce(ctx)
		switch {
		case errors.Is(err, errStop):
			return nil
		case ctx.Err() != nil:
			return nil
		case r.FailFast:
			return err
		}
		r.failing.Store(&err)
		r.logger.Error("projection failed; retrying from checkpoint", "err", err, "checkpoint", r.Applied(), "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// runOnce subscribes from the checkpoint and folds until an error. Reading and decoding run in their
// own goroutine, ahead of the transaction that applies what was read before, so the two costs overlap
// on two cores instead of adding up. A transaction takes every event read while the previous one ran,
// and then, if the last of them was not the stream's last, waits for the rest of what the stream holds
// (up to BatchSize): the log grows by group commits of tens of events, and a transaction's fixed cost —
// its commit rewrites every page it touched — is then shared by a whole group instead of paid by each
// of the two or three events that had arrived when the applier looked.
func (r *Runner) runOnce(ctx context.Context) error {
	cp, err := r.target.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if r.Until != 0 && cp >= r.Until {
		return errStop
	}
	sub, err := r.log.Subscribe(ctx, cp+1, "")
	if err != nil {
		return err
	}
	size := max(r.BatchSize, 1)
	read := make(chan readEvent, size)
	readErr := make(chan error, 1)
	go func() {
		defer close(read)
		readErr <- r.read(sub, read)
	}()
	defer func() {
		sub.Close() // wakes the reader if it is waiting for the stream
		for range read {
		}
	}()
	for first := range read {
		batch := make([]events.Envelope, 1, min(uint64(size), max(uint64(len(read)), first.pending)+1))
		batch[0] = first.e
		last := first
	more:
		for len(batch) < size {
			select {
			case next, ok := <-read:
				if !ok {
					break more
				}
				batch, last = append(batch, next.e), next
				continue
			default:
			}
			if last.pending == 0 {
				break // the stream had nothing more when the last event was read
			}
			next, ok := <-read // more is on its way: the rest of a group commit
			if !ok {
				break
			}
			batch, last = append(batch, next.e), next
		}
		if err := r.apply(ctx, batch); err != nil {
			return err
		}
	}
	return <-readErr
}

// readEvent is an event read, with what the stream held beyond it when it was delivered.
type readEvent struct {
	e       events.Envelope
	pending uint64
}

// read passes the subscription's events on in order, until an error or the run's bound (errStop).
func (r *Runner) read(sub *jetstream.Subscription, out chan<- readEvent) error {
	for {
		d, err := sub.Next()
		if err != nil {
			return err
		}
		r.seeHead(d.Event.Sequence + d.Pending)
		r.lastRead.Store(d.Event.Sequence)
		r.movedAt.Store(time.Now().UnixNano())
		if r.StopAt != nil && r.StopAt(d.Event) {
			return errStop
		}
		out <- readEvent{e: d.Event, pending: d.Pending}
		if r.Until != 0 && d.Event.Sequence >= r.Until {
			return errStop
		}
	}
}

func (r *Runner) apply(ctx context.Context, batch []events.Envelope) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	if err := r.target.Apply(ctx, batch); err != nil {
		return err
	}
	last := batch[len(batch)-1].Sequence
	r.setApplied(last)
	r.failing.Store(nil)
	if m := r.metrics.Load(); m != nil {
		m.applied.Add(float64(len(batch)))
		m.batchSeconds.Observe(time.Since(start).Seconds())
	}
	return nil
}

// watchHead polls the stream's last sequence so that the lag is visible even when no event arrives
// (a stuck or failing projection).
func (r *Runner) watchHead(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if seq, err := r.log.LastSequence(ctx); err == nil {
			r.seeHead(seq)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Runner) seeHead(seq uint64) {
	for {
		h := r.head.Load()
		if seq <= h || r.head.CompareAndSwap(h, seq) {
			break
		}
	}
	if m := r.metrics.Load(); m != nil {
		m.lag.Set(float64(r.Lag()))
	}
}

func (r *Runner) setApplied(seq uint64) {
	r.applied.Store(seq)
	r.movedAt.Store(time.Now().UnixNano())
	r.seeHead(seq)
	r.mu.Lock()
	close(r.advance)
	r.advance = make(chan struct{})
	r.mu.Unlock()
}

// MovedAt is when the runner last made progress: read an event or applied a batch (zero before either).
func (r *Runner) MovedAt() time.Time {
	if n := r.movedAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Applied is the sequence of the last event committed to the target.
func (r *Runner) Applied() uint64 { return r.applied.Load() }

// Read is the sequence of the last event read from the log: ahead of Applied by the batches being
// applied.
func (r *Runner) Read() uint64 { return r.lastRead.Load() }

// Head is the highest stream sequence the runner knows of.
func (r *Runner) Head() uint64 { return r.head.Load() }

// Lag is how many events the target is behind the log.
func (r *Runner) Lag() uint64 {
	h, a := r.head.Load(), r.applied.Load()
	if a >= h {
		return 0
	}
	return h - a
}

// Err is the error of the last failed attempt, nil once a batch applies again.
func (r *Runner) Err() error {
	if p := r.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// WaitFor blocks until the target has applied seq or ctx is done.
func (r *Runner) WaitFor(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		ch := r.advance
		r.mu.Unlock()
		if r.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
