package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// GroupCommit configures group commit: appends that arrive while others are being written share one
// JetStream atomic batch, and so one fsync. With SyncAlways the server fsyncs every stored message, and
// one fsync is most of an append's cost; an atomic batch is fsynced once at its commit.
//
// A batch has a fixed cost of its own (the server stages it before committing), so a group smaller than
// MinBatch events is published as separate appends instead. Groups are formed only from what is already
// waiting: an append never waits for company, it waits only while earlier groups are written.
type GroupCommit struct {
	// MaxBatch caps the events in one batch (the server allows 1,000).
	MaxBatch int
	// MinBatch is the smallest group written as one batch.
	MinBatch int
	// InFlight is how many groups are written at once. One is best on a single server: the stream
	// commits batches one after another anyway, and while one is written the next grows.
	InFlight int
	// Observe, if set, is told each group's size, how it was written — "batch", "single" or
	// "fallback" (a batch the server refused as a whole, re-written append by append) — and how long
	// writing it took.
	Observe func(events int, how string, took time.Duration)
}

// member is one AppendWrites call waiting in a group.
type member struct {
	ctx     context.Context
	ws      []Write
	msgs    []*nats.Msg
	filters []string
	done    chan appended
}

type appended struct {
	seq uint64
	err error
}

// grouper forms groups from queued appends and writes them.
type grouper struct {
	st    *Store
	cfg   GroupCommit
	queue chan *member
	slots chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// EnableGroupCommit routes every later AppendWrites through group commit. It returns a function that
// stops it; appends already queued are written first.
func (s *Store) EnableGroupCommit(cfg GroupCommit) (stop func()) {
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > 1000 {
		cfg.MaxBatch = 500
	}
	if cfg.MinBatch <= 0 {
		cfg.MinBatch = 8
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
	g := &grouper{st: s, cfg: cfg, queue: make(chan *member, 4*cfg.MaxBatch),
		slots: make(chan struct{}, cfg.InFlight), stop: make(chan struct{})}
	s.group.Store(g)
	g.wg.Add(1)
	go g.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.group.Store(nil)
			close(g.stop)
			g.wg.Wait()
		})
	}
}

// submit queues one append and waits for its outcome. A caller that gives up (its context ends) gets a
// transient error: the append may still be written, and a retry with the same event IDs is absorbed.
func (g *grouper) submit(ctx context.Context, ws []Write, msgs []*nats.Msg) (uint64, error) {
	m := &member{ctx: ctx, ws: ws, msgs: msgs, done: make(chan appended, 1)}
	for _, w := range ws {
		m.filters = append(m.filters, w.Event.Aggregate.Filter())
		if w.ExpectFilter != "" {
			m.filters = append(m.filters, w.ExpectFilter)
		}
	}
	select {
	case g.queue <- m:
	case <-ctx.Done():
		return 0, transient(fmt.Errorf("append: %w", ctx.Err()))
	}
	select {
	case r := <-m.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, transient(fmt.Errorf("append: %w", ctx.Err()))
	}
}

func (g *grouper) run() {
	defer g.wg.Done()
	var held []*member // deferred from the last group: they touch an aggregate it wrote
	for {
		var first *member
		if len(held) > 0 {
			first, held = held[0], held[1:]
		} else {
			select {
			case first = <-g.queue:
			case <-g.stop:
				g.drain()
				return
			}
		}
		// Wait for a free slot before forming the group: while every slot is busy, the queue fills and
		// the next group is larger.
		g.slots <- struct{}{}
		group, rest := g.form(first, held)
		held = rest
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer func() { <-g.slots }()
			g.write(group)
		}()
	}
}

// form takes first, then what is held over and waiting in the queue, up to MaxBatch events. A member
// that touches an aggregate already in the group is held for a later group: JetStream checks a batch's
// conditions against the stream before the batch, so two conditional writes to one aggregate in one
// batch could both pass.
func (g *grouper) form(first *member, held []*member) (group, rest []*member) {
	seen := make(map[string]bool)
	n := 0
	add := func(m *member) bool {
		if m.ctx.Err() != nil {
			m.done <- appended{err: transient(fmt.Errorf("append: %w", m.ctx.Err()))}
			return true
		}
		if n > 0 && n+len(m.msgs) > g.cfg.MaxBatch {
			return false
		}
		for _, f := range m.filters {
			if seen[f] {
				return false
			}
		}
		for _, f := range m.filters {
			seen[f] = true
		}
		group = append(group, m)
		n += len(m.msgs)
		return true
	}
	add(first)
	for _, m := range held {
		if !add(m) {
			rest = append(rest, m)
		}
	}
	for n < g.cfg.MaxBatch && len(rest) < g.cfg.MaxBatch {
		select {
		case m := <-g.queue:
			if !add(m) {
				rest = append(rest, m)
			}
		default:
			return group, rest
		}
	}
	return group, rest
}

// drain writes what is left in the queue when group commit stops, one append at a time.
func (g *grouper) drain() {
	for {
		select {
		case m := <-g.queue:
			g.single(m)
		default:
			return
		}
	}
}

// write writes one group: as one atomic batch if it is large enough, otherwise append by append.
func (g *grouper) write(group []*member) {
	start := time.Now()
	n := 0
	for _, m := range group {
		n += len(m.msgs)
	}
	if n < g.cfg.MinBatch || len(group) == 1 {
		g.each(group)
		g.observe(n, "single", start)
		return
	}
	var msgs []*nats.Msg
	for _, m := range group {
		msgs = append(msgs, m.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout())
	defer cancel()
	var last uint64
	err := g.st.retryTransient(ctx, func(ctx context.Context) error {
		var err error
		last, err = g.st.publishAtomic(ctx, msgs)
		return err
	})
	switch {
	case err == nil:
		g.observe(n, "batch", start)
		// The batch is stored contiguously, in order: each member's last event is at a known distance
		// from the batch's last.
		end := 0
		for _, m := range group {
			end += len(m.msgs)
			m.done <- appended{seq: last - uint64(n-end)}
		}
	case errors.Is(err, errBatchRefused):
		// One member's condition failed, or one event is a duplicate: the batch stored nothing. Each
		// member is written on its own and gets its own answer.
		g.each(group)
		g.observe(n, "fallback", start)
	default:
		// Nothing is known about the batch (a timeout, no stream leader): every member hears so and may
		// retry; event IDs make the retry safe.
		for _, m := range group {
			m.done <- appended{err: err}
		}
	}
}

// each writes every member as its own append, concurrently.
func (g *grouper) each(group []*member) {
	var wg sync.WaitGroup
	for _, m := range group {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.single(m)
		}()
	}
	wg.Wait()
}

func (g *grouper) single(m *member) {
	if err := m.ctx.Err(); err != nil {
		m.done <- appended{err: transient(fmt.Errorf("append: %w", err))}
		return
	}
	seq, err := g.st.appendNow(m.ctx, m.ws, m.msgs)
	m.done <- appended{seq: seq, err: err}
}

func (g *grouper) timeout() time.Duration {
	if g.st.AppendTimeout > 0 {
		return g.st.AppendTimeout
	}
	return 10 * time.Second
}

func (g *grouper) observe(n int, how string, start time.Time) {
	if g.cfg.Observe != nil {
		g.cfg.Observe(n, how, time.Since(start))
	}
}
