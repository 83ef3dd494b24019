// Command ledger is the event-sourced sales ledger: `ledger serve` (the default) runs the API with its
// event store and projection; the other commands are tools around it (`ledger help` lists them).
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

// run dispatches to a command; with no command, or flags first, it is serve.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	name := "serve"
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		// `ledger -h` is the overview of the commands, not serve's flags (`ledger serve -h`).
		name, args = "help", args[1:]
	case len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-':
		name, args = args[0], args[1:]
	}
	cmd, ok := lookupCommand(name)
	if !ok {
		return fmt.Errorf("unknown command %q; run \"ledger help\" for the list", name)
	}
	return cmd.run(ctx, args, env, stdout, stderr)
}

// serve is `ledger serve`: run the ledger until SIGTERM or SIGINT.
func serve(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := commandConfig(commandServe, args, env, stdout, nil)
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
