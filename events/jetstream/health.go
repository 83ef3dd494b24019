package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/salesledger/ledger/domain"
)

// Health is the write path's state: whether appends to the log currently work.
//
// Every append reports its outcome to it, and Run probes the log every second, so the state also clears
// once the log takes writes again without waiting for a write: a replica that its readiness took out of a
// load balancer would otherwise wait for a write that never comes.
//
// With the embedded server (WatchEmbedded) the probe also looks after the server. nats-server marks a
// stream that failed to write its file (a full disk: "no space left on device") with a write error it
// never clears, and from then on refuses every write to it (standalone) until JetStream is restarted —
// by an operator, until now. Once the disk takes writes again, the probe restarts the server's JetStream,
// which reloads every stream and consumer from disk, and writes resume by themselves. While the probe
// finds the disk refusing writes or a stream stuck, appends fail at once with domain.ErrUnavailable
// instead of each waiting out its timeout.
type Health struct {
	store *Store

	mu sync.Mutex
	// failure is the last append's or probe's failure, nil once one succeeded.
	failure error
	// fault is what the last probe of the embedded server found wrong; appends fail fast while it is set.
	fault error
	// since is when writes started failing.
	since time.Time

	embedded *server.Server
	storeDir string
	// restarts paces JetStream restarts that do not heal the server.
	nextRestart    time.Time
	restartBackoff time.Duration
}

// ProbeBytes is how much the disk probe writes: the free space that counts as "space is back".
const ProbeBytes = 1 << 20

const (
	probeEvery        = time.Second
	probeTimeout      = 2 * time.Second
	minRestartBackoff = 10 * time.Second
	maxRestartBackoff = 5 * time.Minute
)

// Health is the store's write-path state.
func (s *Store) Health() *Health { return s.health }

// WatchEmbedded lets the probe look after an embedded server whose JetStream store is in storeDir (the
// StoreDir it was started with). Call it before Run.
func (h *Health) WatchEmbedded(ns *server.Server, storeDir string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.embedded, h.storeDir = ns, storeDir
}

// Err is nil while writes work; otherwise why they do not. It is what readiness reports.
func (h *Health) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fault != nil {
		return h.fault
	}
	return h.failure
}

// blocked is the probe's confirmed fault, for appends to fail fast on.
func (h *Health) blocked() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// observe records an append's outcome. A conflict is a success of the write path; a caller that gave up
// says nothing about it.
func (h *Health) observe(err error) {
	if errors.Is(err, domain.ErrConflict) || errors.Is(err, context.Canceled) {
		err = nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil && h.failure == nil && h.fault == nil {
		h.since = time.Now()
	}
	h.failure = err
}

// Run probes every second until ctx is done, logging when writes start failing and when they work again.
func (h *Health) Run(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	var wasFailing error
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.probe(ctx, log)
		err := h.Err()
		switch {
		case err != nil && wasFailing == nil:
			log.Error("writes to the event log are failing", "err", err)
		case err == nil && wasFailing != nil:
			h.mu.Lock()
			since := h.since
			h.mu.Unlock()
			log.Info("writes to the event log work again", "after", time.Since(since).Round(time.Millisecond))
		}
		wasFailing = err
	}
}

// probe checks the embedded server (healing it if it can), then makes a round trip to the stream.
func (h *Health) probe(ctx context.Context, log *slog.Logger) {
	h.mu.Lock()
	ns, failing := h.embedded, h.failure != nil || h.fault != nil
	h.mu.Unlock()
	var fault error
	if ns != nil {
		fault = h.checkEmbedded(ns, failing, log)
	}
	var failure error
	if fault == nil {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, failure = h.store.LastSequence(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if (fault != nil || failure != nil) && h.failure == nil && h.fault == nil {
		h.since = time.Now()
	}
	h.fault = fault
	if fault == nil {
		// The round trip says whether the log answers; it replaces what the last append found.
		h.failure = failure
	}
}

// checkEmbedded asks the embedded server about JetStream and its streams. When something is wrong, or
// writes have been failing, it probes the disk; once the disk takes writes again, it restarts JetStream
// if a stream is stuck. It returns what still stands in the way of writes.
func (h *Health) checkEmbedded(ns *server.Server, failing bool, log *slog.Logger) error {
	stuck := jetStreamProblems(ns)
	if stuck == nil {
		h.mu.Lock()
		h.restartBackoff = 0
		h.mu.Unlock()
		if !failing {
			return nil
		}
	}
	if err := probeDisk(h.storeDir); err != nil {
		return fmt.Errorf("the data disk refuses writes: %w", err)
	}
	if stuck == nil {
		return nil
	}
	h.mu.Lock()
	wait := time.Now().Before(h.nextRestart)
	h.mu.Unlock()
	if wait {
		return stuck
	}
	log.Warn("restarting the embedded JetStream: the disk takes writes again, but a stream still refuses them", "err", stuck)
	if err := restartJetStream(ns, h.storeDir, stuck); err != nil {
		log.Error("restarting the embedded JetStream failed", "err", err)
	}
	h.mu.Lock()
	h.restartBackoff = min(max(2*h.restartBackoff, minRestartBackoff), maxRestartBackoff)
	h.nextRestart = time.Now().Add(h.restartBackoff)
	h.mu.Unlock()
	if stuck := jetStreamProblems(ns); stuck != nil {
		return stuck
	}
	log.Info("embedded JetStream restarted; it takes writes again")
	return nil
}

// jetStreamProblems is nil when the server's JetStream is enabled and every stream recovered and takes
// writes; otherwise what its health check reports.
func jetStreamProblems(ns *server.Server) *jsProblems {
	hs := ns.Healthz(&server.HealthzOptions{Details: true})
	if hs.StatusCode == 200 {
		return nil
	}
	p := &jsProblems{}
	for _, e := range hs.Errors {
		p.msgs = append(p.msgs, e.Error)
		if e.Account != "" && !slices.Contains(p.accounts, e.Account) {
			p.accounts = append(p.accounts, e.Account)
		}
	}
	if hs.Error != "" {
		p.msgs = append(p.msgs, hs.Error)
	}
	return p
}

// jsProblems is what the embedded server's health check found wrong, and in which accounts.
type jsProblems struct {
	msgs     []string
	accounts []string
}

func (p *jsProblems) Error() string { return "jetstream: " + strings.Join(p.msgs, "; ") }

// restartJetStream reloads from disk what p names, as the server did at its start, which clears the
// streams' write errors: the JetStream of each account named (the ledger's streams are in the global
// account) — or, when the server disabled JetStream as a whole, JetStream itself, from the same store
// dir with its limits worked out again from the disk. Messages in flight meanwhile get no
// acknowledgement; their senders retry with the same IDs, and consumers' pulls go unanswered until their
// clients pull again.
func restartJetStream(ns *server.Server, storeDir string, p *jsProblems) error {
	if !ns.JetStreamEnabled() {
		return ns.EnableJetStream(&server.JetStreamConfig{StoreDir: storeDir})
	}
	var errs []error
	for _, name := range p.accounts {
		acc, err := ns.LookupAccount(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Stopping an account's JetStream stops its streams and consumers without deleting anything;
		// enabling it recovers them from their files.
		if err := acc.DisableJetStream(); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", name, err))
			continue
		}
		if err := acc.EnableJetStream(nil, nil); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// probeDisk writes ProbeBytes to a file in dir, syncs and removes it: the disk takes writes if it can.
func probeDisk(dir string) error {
	path := filepath.Join(dir, ".ledger-space-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	_, err = f.Write(make([]byte, ProbeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
