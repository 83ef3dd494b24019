// Package jetstream is the ledger's event store on NATS JetStream: the embedded server, the LEDGER
// stream, appends with de-duplication and optimistic concurrency, loading one aggregate, and
// subscribing to the log from a sequence.
package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// Users and Nkeys are the ledger's own identities, with every right in LedgerAccount. When any
	// identity is set, the server accepts only those set here, in-process clients included, and keeps
	// the ledger's streams in LedgerAccount with each reader role in an account of its own (accounts.go).
	// Passwords are compared in constant time; keep them out of bcrypt, whose cost every failed login
	// would pay (an unauthenticated stranger could then burn the CPU the API needs).
	Users []*server.User
	Nkeys []*server.NkeyUser
	// Operators are NKeys of OperatorRole; Analytics are users of AnalyticsRole. Their Account and
	// Permissions are set by StartEmbedded.
	Operators []*server.NkeyUser
	Analytics []*server.User
}

// Inbox prefixes (nats.go CustomInboxPrefix). A reply travels to the requester's inbox, and a key read from a
// bucket is a reply. Accounts keep each role's inboxes apart already; the operator's prefix is, besides,
// the one subject space of LedgerAccount exported to another account (its push consumers deliver there),
// so the ledger's own connections use another, and none of their replies crosses to a role.
const (
	// InboxPrefix is the inbox prefix of the ledger's own connections.
	InboxPrefix = "_ledger_inbox"
	// OperatorInboxPrefix is the inbox prefix of operator tools (ledger rebuild, ledger tail).
	OperatorInboxPrefix = "_ledger_ops_inbox"
)

// PaymentsDurable is the well-known name of the durable consumer of webhook deliveries that the payment
// processor pulls from; its real name is Store.PaymentsConsumer's.
const PaymentsDurable = "payments"

// WebhooksDurable is the well-known name of the durable consumer the webhook dispatcher schedules
// outgoing deliveries from; its real name is Store.WebhooksConsumer's.
const WebhooksDurable = "webhooks"

// OwnConsumerPrefix begins the names of the ledger's ephemeral consumers (the projections' subscriptions);
// OperatorConsumerPrefix those of the operator tools' (rebuild).
const (
	OwnConsumerPrefix      = "ledger_"
	OperatorConsumerPrefix = "ops_"
)

// reservedConsumer tells whether a consumer is the ledger's own: the payment processor's (PaymentsDurable
// and every name that begins so), the webhook dispatcher's (WebhooksDurable, likewise) and the
// projections' (OwnConsumerPrefix). No reader role may create,
// change or delete one, nor read its state unless Role.InspectReserved. The reader roles pull from and
// acknowledge for consumers by name (JetStream's cross-account pull path admits no finer rule than "any
// consumer of LEDGER"), so the ledger's consumers are also unguessable: 128 random bits in each name (the
// payment processor's from a shared secret), never a name the client library derives from its counter.
func reservedConsumer(name string) bool {
	return strings.HasPrefix(name, PaymentsDurable) || strings.HasPrefix(name, WebhooksDurable) || strings.HasPrefix(name, OwnConsumerPrefix)
}

// randomToken is 128 random bits in hex, for names and ids no one else may predict.
func randomToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms (Go 1.24+)
	}
	return hex.EncodeToString(b)
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
	if len(cfg.Users)+len(cfg.Nkeys)+len(cfg.Operators)+len(cfg.Analytics) > 0 {
		if err := migrateGlobalAccount(cfg.StoreDir); err != nil {
			return nil, err
		}
		if err := configureAccounts(opts, cfg); err != nil {
			return nil, err
		}
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
		if p == 0 {
			p = server.RANDOM_PORT // nats-server takes 0 for its default port, 4222
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

// slogAdapter routes nats-server's own log lines to slog. What a client causes (a failed login, a refused
// publish or subscription) is logged at debug: strangers can cause it as often as they like, and an error
// line each would fill the disk; the cost of failed logins is measured instead (docs/operations.md). So is
// the server's warning about plaintext passwords: the analytics password is compared in constant time on
// purpose, not through bcrypt.
type slogAdapter struct{ l *slog.Logger }

// clientCaused tells the server's log lines about a client's own mistakes.
func clientCaused(line string) bool {
	for _, s := range []string{"authentication error", "Authorization Violation", "Violation -", "Violation for", "Plaintext passwords"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func (a slogAdapter) at(level slog.Level, format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	if clientCaused(line) {
		level = slog.LevelDebug
	}
	a.l.Log(context.Background(), level, line)
}

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.at(slog.LevelWarn, format, v...) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.at(slog.LevelError, format, v...) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  {}
