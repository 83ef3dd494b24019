// Command ledger is the event-sourced sales ledger: `ledger serve` (the default) runs the API with its
// event store and projection; `ledger rebuild` rebuilds the read store from the event log.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		os.Exit(1)
	}
}

const usage = `usage: ledger [command] [flags]

commands:
  serve     run the ledger: embedded or external NATS, projection and HTTP API (default)
  rebuild   rebuild the read store from the event log and switch to it (--until: as-of store, no switch)

Run "ledger <command> -h" for the flags; every flag also has a LEDGER_* environment variable.
`

func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := loadConfig("serve", args, env, nil)
		if err != nil {
			return flagErr(err)
		}
		logger := newLogger(stderr, cfg.LogLevel)
		m := &Main{Config: cfg, Log: logger}
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		<-ctx.Done()
		logger.Info("shutting down: draining requests")
		return m.Close()
	case "rebuild":
		return rebuild(ctx, args, env, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
