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
	// Users and Nkeys, when either is set, are the only clients the server accepts (in-process ones
	// included). Passwords are compared in constant time; keep them out of bcrypt, whose cost every
	// failed login would pay (an unauthenticated stranger could then burn the CPU the API needs).
	Users []*server.User
	Nkeys []*server.NkeyUser
}

// Inbox prefixes. A reply travels to the requester's inbox, and a key read from a bucket is a reply: each
// role's connections use their own prefix, and only that role may subscribe under it, so no other user of
// the server ever receives a reply of the ledger's (nats.go CustomInboxPrefix).
const (
	// InboxPrefix is the inbox prefix of the ledger's own connections.
	InboxPrefix = "_ledger_inbox"
	// OperatorInboxPrefix is the inbox prefix of operator tools (ledger rebuild, ledger tail).
	OperatorInboxPrefix = "_ledger_ops_inbox"
)

// PaymentsDurable names the durable consumer of webhook deliveries that the payment processor pulls from.
const PaymentsDurable = "payments"

// ReservedConsumers are the durable consumers of LEDGER that belong to the ledger: no other user may create,
// read, acknowledge, pause or delete them. The ledger's other consumers are ordered consumers with random
// names that only their connection learns.
var ReservedConsumers = []string{PaymentsDurable}

// reservedDenies forbids, on the reserved consumers, what streamReader allows on consumers: creating
// (over) them, pulling, acknowledging, deleting — and reading their state unless inspect is set. NATS
// permissions match whole subject tokens and a consumer name is one token, so the rule names each reserved
// consumer rather than a prefix.
func reservedDenies(stream string, inspect bool) []string {
	var deny []string
	for _, c := range ReservedConsumers {
		deny = append(deny,
			"$JS.API.CONSUMER.CREATE."+stream+"."+c,
			"$JS.API.CONSUMER.CREATE."+stream+"."+c+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+stream+"."+c,
			"$JS.API.CONSUMER.DELETE."+stream+"."+c,
			"$JS.API.CONSUMER.MSG.NEXT."+stream+"."+c,
			"$JS.ACK."+stream+"."+c+".>",
			"$JS.FC."+stream+"."+c+".>",
		)
		if !inspect {
			deny = append(deny, "$JS.API.CONSUMER.INFO."+stream+"."+c)
		}
	}
	return deny
}

// streamReader allows reading one stream: its info, consumers of one's own (create, info, delete, pull,
// acknowledge), and direct gets. Listing the stream's consumers is not allowed: their names are not
// the reader's business.
func streamReader(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".*",
		"$JS.API.CONSUMER.INFO." + stream + ".*",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.ACK." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
}

// AnalyticsPermissions is the read-only analytics role: it reads the LEDGER stream through consumers of
// its own and direct gets, and nothing else. It cannot publish to ledger subjects, reach another stream,
// bucket or object store (the data-subject keys and the shared secrets live in buckets), touch the
// ledger's own consumers (ReservedConsumers), or subscribe to any inbox but the default _INBOX.> — never
// to the ledger's (InboxPrefix, OperatorInboxPrefix), where key reads are answered.
func AnalyticsPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: append([]string{"$JS.API.INFO"}, streamReader(StreamName)...),
			Deny:  reservedDenies(StreamName, false),
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{"_INBOX.>", "ledger.>"},
			Deny:  []string{InboxPrefix + ".>", OperatorInboxPrefix + ".>"},
		},
	}
}

// OperatorPermissions is the role of operator tools connecting through the listener (ledger rebuild,
// ledger tail, the nats CLI with the operator NKey): they read the LEDGER stream, the data-subject keys
// (to open sealed personal data, as the projection does) and the photos, and may look at the state of
// the ledger's own consumers (the payments backlog); they write nothing — no event, no key, no secret —
// and cannot pull from, acknowledge for or delete the ledger's consumers. The shared secrets are not
// theirs to read. Their replies come to OperatorInboxPrefix, which no other role may subscribe to.
func OperatorPermissions() *server.Permissions {
	allow := append([]string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"}, streamReader(StreamName)...)
	allow = append(allow, streamReader("KV_"+KeysBucket)...)
	allow = append(allow, streamReader("OBJ_"+PhotosBucket)...)
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: allow,
			Deny:  reservedDenies(StreamName, true),
		},
		Subscribe: &server.SubjectPermission{Allow: []string{OperatorInboxPrefix + ".>"}},
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
	opts.Users, opts.Nkeys = cfg.Users, cfg.Nkeys
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
