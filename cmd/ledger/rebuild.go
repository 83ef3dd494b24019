package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/salesledger/ledger/projections"
)

// rebuild is `ledger rebuild`: fold the log from sequence 1 into a fresh read store. Without --until
// the new store replaces the live one (a running ledger switches to it once it has caught up). With
// --until (a sequence, an RFC 3339 time or a YYYY-MM-DD date, UTC end of day) it writes an as-of store
// to --out and switches nothing.
//
// It reads the log from LEDGER_NATS_URL, else from a running ledger's embedded server at
// LEDGER_NATS_LISTEN, else it starts the embedded server on the data dir itself.
func rebuild(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	var until, out string
	stall := 30 * time.Second
	cfg, err := commandConfig(commandRebuild, args, env, stdout, func(fs *flag.FlagSet) {
		fs.StringVar(&until, "until", "", "stop after this stream sequence, RFC 3339 time or YYYY-MM-DD date (as-of store, no switch)")
		fs.StringVar(&out, "out", "", "file for the as-of store (with --until; default data/read/asof-<until>.db)")
		fs.DurationVar(&stall, "stall-timeout", stall, "give up, with the connection's last error, after this long without progress (no event read, no batch applied)")
	})
	if err != nil {
		return flagErr(err)
	}
	logger := newLogger(stderr, cfg.LogLevel)
	if stall <= 0 {
		return fmt.Errorf("--stall-timeout %s: want a positive duration", stall)
	}
	var conn connState
	opts := projections.RebuildOptions{Dir: filepath.Join(cfg.DataDir, readDir), Progress: stderr, Logger: logger, Swap: until == "",
		StallTimeout: stall, SourceErr: conn.Err}
	if until != "" {
		if opts.UntilSeq, opts.UntilTime, err = parseUntil(until); err != nil {
			return err
		}
		opts.Out = out
		if opts.Out == "" {
			opts.Out = filepath.Join(opts.Dir, "asof-"+sanitize(until)+".db")
		}
	} else if out != "" {
		return fmt.Errorf("--out is for as-of stores and needs --until")
	}

	m := &Main{Config: cfg, Log: logger}
	defer m.Close()
	probe := newKeysProbe(logger)
	if err := m.connectTool(ctx, "ledger-rebuild", append(conn.options(), probe.option())...); err != nil {
		return err
	}
	conn.watch(m.nc)
	// Personal data is folded opened: without the keyring a rebuild would write a store of sealed rows.
	if _, err := probe.keys(ctx, m.events); err != nil {
		if errors.Is(err, errKeysDenied) {
			return fmt.Errorf("rebuild needs the operator credentials: it reads the keys bucket to open personal data, "+
				"and the NATS user of LEDGER_NATS_URL may not (%v). Run it on the ledger's host without LEDGER_NATS_URL: "+
				"it then dials the ledger's listener (LEDGER_NATS_LISTEN) as the operator user, with the NKey seed %s",
				err, filepath.Join(cfg.DataDir, operatorSeedFile))
		}
		return fmt.Errorf("rebuild: %w", err)
	}
	res, err := projections.Rebuild(ctx, m.events, opts)
	if err != nil {
		// A lost connection surfaces as whatever request it broke (a key's lookup timing out): name the
		// connection's own cause, unless the stall watchdog already did.
		if serr := conn.Err(); serr != nil && !errors.Is(err, projections.ErrStalled) {
			err = fmt.Errorf("%w (%w)", serr, err)
		}
		return fmt.Errorf("%w; nothing was switched: %s", err, keptStore(opts))
	}
	what := "switched to it; a running ledger serves it once it has caught up"
	if !opts.Swap {
		what = "as-of store; nothing switched"
	}
	fmt.Fprintf(stderr, "rebuilt %s up to sequence %d in %s (%s)\n", res.Path, res.Applied, res.Elapsed.Round(time.Millisecond), what)
	return nil
}

// keptStore says which read store stays in use after a failed rebuild.
func keptStore(opts projections.RebuildOptions) string {
	if !opts.Swap {
		return "no as-of store was written"
	}
	if cur, err := projections.ReadCurrent(opts.Dir); err == nil && cur != "" {
		return "the ledger keeps its read store " + cur
	}
	return "the ledger keeps its read store"
}

// connState keeps what the tool's NATS connection last went through, for a failed rebuild to report.
type connState struct {
	mu  sync.Mutex
	err error
	nc  *nats.Conn
}

func (c *connState) set(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// watch makes Err look at the connection itself too: the handlers run asynchronously, and may not have
// run yet when a request the lost connection broke fails.
func (c *connState) watch(nc *nats.Conn) {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
}

// Err is the connection's trouble, nil while it is connected.
func (c *connState) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.nc == nil {
		return c.err
	}
	switch st := c.nc.Status(); st {
	case nats.CONNECTED, nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return nil
	default:
		err := c.nc.LastError()
		if err == nil {
			err = errors.New(strings.ToLower(st.String()))
		}
		return fmt.Errorf("lost the NATS connection to %s: %w", redactURL(strings.Join(c.nc.Servers(), ",")), err)
	}
}

func (c *connState) options() []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil {
				err = errors.New("disconnected")
			}
			c.set(fmt.Errorf("lost the NATS connection to %s: %w", redactURL(strings.Join(nc.Servers(), ",")), err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { c.set(nil) }),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if c.Err() == nil {
				err := nc.LastError()
				if err == nil {
					err = nats.ErrConnectionClosed
				}
				c.set(fmt.Errorf("the NATS connection to %s was closed: %w", redactURL(strings.Join(nc.Servers(), ",")), err))
			}
		}),
	}
}

func parseUntil(s string) (uint64, time.Time, error) {
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil && seq > 0 {
		return seq, time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return 0, t, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return 0, d.Add(24*time.Hour - time.Nanosecond), nil
	}
	return 0, time.Time{}, fmt.Errorf("--until %q: want a stream sequence, an RFC 3339 time or a YYYY-MM-DD date", s)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
