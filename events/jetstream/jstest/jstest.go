// Package jstest starts a real embedded nats-server with JetStream for tests: in-process, on a free port,
// with its store in the test's temp dir. There is no fake: tests run against the real server.
package jstest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/salesledger/ledger/events/jetstream"
)

// Server is a running embedded server and an event store connected to it.
type Server struct {
	NATS  *server.Server
	Conn  *nats.Conn
	Store *jetstream.Store
	Dir   string
}

// Start runs a server in dir (t.TempDir() when empty) and ensures the LEDGER stream. Everything is
// stopped when the test ends.
func Start(tb testing.TB, dir string) *Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	ns, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: dir, Listen: "127.0.0.1:-1"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns)) // as ledger serve connects
	if err != nil {
		ns.Shutdown()
		tb.Fatal(err)
	}
	st, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.EnsureStream(context.Background(), jetstream.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
	s := &Server{NATS: ns, Conn: nc, Store: st, Dir: dir}
	tb.Cleanup(s.Stop)
	return s
}

// Stop closes the connection and shuts the server down; it is safe to call twice.
func (s *Server) Stop() {
	s.Conn.Close()
	s.NATS.Shutdown()
	s.NATS.WaitForShutdown()
}
