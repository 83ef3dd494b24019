// Package jetstream is the ledger's event store on NATS JetStream: the embedded server, the LEDGER
// stream, appends with de-duplication and optimistic concurrency, loading one aggregate, and
// subscribing to the log from a sequence.
package jetstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's file storage.
	StoreDir string
	// Listen is host:port where the server also accepts NATS clients; empty means in-process only.
	// Port -1 (e.g. "127.0.0.1:-1") picks a free port.
	Listen string
	// SyncAlways fsyncs every write before JetStream acknowledges it.
	SyncAlways bool
	// ServerName names the server in logs and cluster metadata.
	ServerName string
	// Users, when set, are the only clients the server accepts (in-process ones included).
	Users []*server.User
}

// AnalyticsPermissions lets a client read the LEDGER stream — stream info, its own consumers, direct
// gets — and nothing else: no publishing to ledger subjects, no other stream, bucket or object store
// (the data-subject keys and the shared secrets live in buckets).
func AnalyticsPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO." + StreamName,
			"$JS.API.STREAM.MSG.GET." + StreamName,
			"$JS.API.DIRECT.GET." + StreamName,
			"$JS.API.DIRECT.GET." + StreamName + ".>",
			"$JS.API.CONSUMER.*." + StreamName,
			"$JS.API.CONSUMER.*." + StreamName + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + StreamName + ".>",
			"$JS.API.CONSUMER.DURABLE.CREATE." + StreamName + ".>",
			"$JS.ACK." + StreamName + ".>",
			"$JS.FC." + StreamName + ".>",
		}},
		Subscribe: &server.SubjectPermission{
			Allow: []string{"_INBOX.>", "ledger.>"},
		},
	}
}

// StartEmbedded starts a nats-server with JetStream in this process and waits until it is ready for
// connections. Shut it down with Shutdown and WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig, log *slog.Logger) (*server.Server, error) {
	if err := checkWritableDir(cfg.StoreDir); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
		// The ledger's own events are small; 1 MiB matches the HTTP body limit.
		MaxPayload: 1 << 20,
	}
	if opts.ServerName == "" {
		opts.ServerName = "ledger"
	}
	if len(cfg.Users) > 0 {
		opts.Users = cfg.Users
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
		if p > 0 {
			// A taken port would only show as the server never becoming ready; say so at once.
			ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
			if err != nil {
				return nil, fmt.Errorf("nats listen address %s: %w", cfg.Listen, err)
			}
			ln.Close()
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	s.SetLoggerV2(slogAdapter{log.With("component", "nats-server")}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats-server did not become ready within 15s (is the listen address in use?)")
	}
	return s, nil
}

// checkWritableDir creates dir if needed and proves it is writable, so that an unusable data dir fails
// start-up with a message naming it instead of failing later inside JetStream.
func checkWritableDir(dir string) error {
	if dir == "" {
		return errors.New("jetstream store dir is empty")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data dir %s is not usable: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(filepath.Clean(name))
}

// slogAdapter routes nats-server's own log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  {}
