package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/salesledger/ledger/projections/sqlite"
)

// The read store directory holds one or more store files and CURRENT, a one-line file naming the store
// the API serves. Rebuild writes a new store beside the live one and then replaces CURRENT atomically
// (write, fsync, rename); the serving process notices, lets the new store catch up with the log, and
// only then switches reads to it. The API keeps serving the old store meanwhile.
const currentFile = "CURRENT"

// ReadCurrent returns the path of the store CURRENT names, or "" if there is none yet.
func ReadCurrent(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, currentFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%s names no store file: %q", filepath.Join(dir, currentFile), name)
	}
	return filepath.Join(dir, name), nil
}

// WriteCurrent points CURRENT at path (a file in dir) atomically and durably.
func WriteCurrent(dir, path string) error {
	tmp, err := os.CreateTemp(dir, ".CURRENT-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(filepath.Base(path) + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, currentFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// NewStorePath names a fresh store file in dir.
func NewStorePath(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("read-%d.db", time.Now().UnixNano()))
}

// RemoveStore deletes a store file with its WAL and shared-memory files.
func RemoveStore(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Live is the serving projection: the current read store and the runner keeping it up to date, and the
// switch to a rebuilt store when CURRENT changes.
type Live struct {
	log     Log
	dir     string
	logger  *slog.Logger
	metrics *Metrics
	opts    []sqlite.Option
	cur     atomic.Pointer[liveStore]

	// Poll is how often CURRENT is checked for a rebuilt store.
	Poll time.Duration
	// CloseDelay is how long a replaced store stays open for requests still reading it.
	CloseDelay time.Duration
}

type liveStore struct {
	path   string
	store  *sqlite.Store
	runner *Runner
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenLive opens the store CURRENT names in dir, creating an empty one on first start.
func OpenLive(dir string, log Log, logger *slog.Logger, metrics *Metrics, opts ...sqlite.Option) (*Live, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("read store dir %s is not usable: %w", dir, err)
	}
	path, err := ReadCurrent(dir)
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = NewStorePath(dir)
		st, err := sqlite.Open(path, opts...)
		if err != nil {
			return nil, err
		}
		st.Close()
		if err := WriteCurrent(dir, path); err != nil {
			return nil, fmt.Errorf("read store dir %s is not writable: %w", dir, err)
		}
	}
	removeReplaced(dir, path, logger)
	st, err := sqlite.Open(path, opts...)
	if errors.Is(err, sqlite.ErrSchemaOutdated) {
		// A read store is disposable: start a fresh one and fold the log into it.
		logger.Warn("read store has an older schema; rebuilding it from the log", "path", path, "err", err)
		old := path
		path = NewStorePath(dir)
		if st, err = sqlite.Open(path, opts...); err == nil {
			if err = WriteCurrent(dir, path); err == nil {
				_ = RemoveStore(old)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	l := &Live{log: log, dir: dir, logger: logger, metrics: metrics, opts: opts, Poll: time.Second, CloseDelay: 30 * time.Second}
	l.cur.Store(&liveStore{path: path, store: st, runner: NewRunner(log, st, logger, metrics)})
	return l, nil
}

// Store is the read store requests are served from right now.
func (l *Live) Store() *sqlite.Store { return l.cur.Load().store }

// Path is the current store's file.
func (l *Live) Path() string { return l.cur.Load().path }

// Runner is the runner of the current store.
func (l *Live) Runner() *Runner { return l.cur.Load().runner }

// WaitFor blocks until the current store has applied seq.
func (l *Live) WaitFor(ctx context.Context, seq uint64) error { return l.Runner().WaitFor(ctx, seq) }

// Applied is the last stream sequence the current store has applied.
func (l *Live) Applied() uint64 { return l.Runner().Applied() }

// Lag is the current store's distance from the head of the log.
func (l *Live) Lag() uint64 { return l.Runner().Lag() }

// Err is the current runner's failure, if it is failing.
func (l *Live) Err() error { return l.Runner().Err() }

// Run keeps the current store folded and switches to a rebuilt one when CURRENT changes, until ctx is
// done. It closes the store on return.
func (l *Live) Run(ctx context.Context) error {
	l.start(ctx, l.cur.Load())
	t := time.NewTicker(l.Poll)
	defer t.Stop()
	defer func() {
		cur := l.cur.Load()
		cur.cancel()
		<-cur.done
		cur.store.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		path, err := ReadCurrent(l.dir)
		if err != nil {
			l.logger.Error("reading CURRENT", "err", err)
			continue
		}
		if path == "" || path == l.cur.Load().path {
			continue
		}
		if err := l.swap(ctx, path); err != nil && ctx.Err() == nil {
			l.logger.Error("switching to rebuilt read store failed; still serving the old one", "path", path, "err", err)
		}
	}
}

func (l *Live) start(ctx context.Context, ls *liveStore) {
	rctx, cancel := context.WithCancel(ctx)
	ls.cancel, ls.done = cancel, make(chan struct{})
	go func() {
		defer close(ls.done)
		if err := ls.runner.Run(rctx); err != nil {
			l.logger.Error("projection stopped", "path", ls.path, "err", err)
		}
	}()
}

// swap opens the rebuilt store, lets it catch up to where the serving store is, then serves from it.
func (l *Live) swap(ctx context.Context, path string) error {
	st, err := sqlite.Open(path, l.opts...)
	if err != nil {
		return err
	}
	next := &liveStore{path: path, store: st, runner: NewRunner(l.log, st, l.logger, nil)}
	l.start(ctx, next)
	old := l.cur.Load()
	if err := next.runner.WaitFor(ctx, old.runner.Applied()); err != nil {
		next.cancel()
		<-next.done
		st.Close()
		return err
	}
	old.runner.SetMetrics(nil)
	next.runner.SetMetrics(l.metrics)
	l.cur.Store(next)
	old.cancel()
	<-old.done
	l.logger.Info("serving rebuilt read store", "path", path, "applied", next.runner.Applied(), "replaced", old.path)
	time.AfterFunc(l.CloseDelay, func() {
		old.store.Close()
		if err := RemoveStore(old.path); err != nil {
			l.logger.Warn("removing replaced read store", "path", old.path, "err", err)
		}
	})
	return nil
}

// removeReplaced deletes read-*.db stores other than the current one: stores a previous process switched
// away from but had no time to remove. As-of stores (asof-*) and stores being built are left alone.
func removeReplaced(dir, current string, logger *slog.Logger) {
	old, _ := filepath.Glob(filepath.Join(dir, "read-*.db"))
	for _, p := range old {
		if p == current {
			continue
		}
		if err := RemoveStore(p); err != nil {
			logger.Warn("removing replaced read store", "path", p, "err", err)
		}
	}
}
