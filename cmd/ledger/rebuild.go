package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

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
	cfg, err := commandConfig(commandRebuild, args, env, stdout, func(fs *flag.FlagSet) {
		fs.StringVar(&until, "until", "", "stop after this stream sequence, RFC 3339 time or YYYY-MM-DD date (as-of store, no switch)")
		fs.StringVar(&out, "out", "", "file for the as-of store (with --until; default data/read/asof-<until>.db)")
	})
	if err != nil {
		return flagErr(err)
	}
	logger := newLogger(stderr, cfg.LogLevel)
	opts := projections.RebuildOptions{Dir: filepath.Join(cfg.DataDir, readDir), Progress: stderr, Logger: logger, Swap: until == ""}
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
	if err := m.connectTool(ctx, "ledger-rebuild"); err != nil {
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
