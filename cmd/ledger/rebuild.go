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
		fs.DurationVar(&stall, "stall-timeout", stall, "give up, with the connection's last error, when the log sends no event for this long")
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
	if err := m.connectTool(ctx, "ledger-rebuild", conn.options()...); err != nil {
		return err
	}
	res, err := projections.Rebuild(ctx, m.events, opts)
	if err != nil {
		return err
	}
	what := "switched to it; a running ledger serves it once it has caught up"
	if !opts.Swap {
		what = "as-of store; nothing switched"
	}
	fmt.Fprintf(stderr, "rebuilt %s up to sequence %d in %s (%s)\n", res.Path, res.Applied, res.Elapsed.Round(time.Millisecond), what)
	return nil
}

// connState keeps what the tool's NATS connection last went through, for a stalled rebuild to report.
type connState struct {
	mu  sync.Mutex
	err error
}

func (c *connState) set(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// Err is the connection's trouble, nil while it is connected.
func (c *connState) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
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
			if c.Err() == nil && nc.LastError() != nil {
				c.set(fmt.Errorf("the NATS connection to %s was closed: %w", redactURL(strings.Join(nc.Servers(), ",")), nc.LastError()))
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
