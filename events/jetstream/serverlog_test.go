package jetstream

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Lines a stranger can cause at will (failed logins, refused publishes) come at debug, so that a flood of
// them cannot fill the disk with errors; the server's own trouble keeps its level. The lines are
// nats-server's, as it formats them.
func TestClientCausedServerLinesAreDebug(t *testing.T) {
	for _, tc := range []struct {
		format string
		args   []any
		warn   bool
		quiet  bool
	}{
		{format: "%s - %s", args: []any{"127.0.0.1:5555 - cid:7", "authentication error"}, quiet: true},
		{format: "%s", args: []any{"127.0.0.1:5555 - cid:7 - \"v1.55.0:go\" - Publish Violation - User \"analytics\", Subject \"ledger.x\""}, quiet: true},
		{format: "%s", args: []any{"Plaintext passwords detected, use nkeys or bcrypt"}, warn: true, quiet: true},
		{format: "JetStream resource limits exceeded for server", warn: true},
		{format: "Error writing msg state: %v", args: []any{"no space left on device"}},
	} {
		var buf bytes.Buffer
		a := slogAdapter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
		if tc.warn {
			a.Warnf(tc.format, tc.args...)
		} else {
			a.Errorf(tc.format, tc.args...)
		}
		if logged := strings.TrimSpace(buf.String()) != ""; logged == tc.quiet {
			t.Errorf("%q: logged at info and above = %v, want %v", tc.format, logged, !tc.quiet)
		}
	}
}
