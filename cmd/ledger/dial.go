package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/salesledger/ledger/events/jetstream"
)

// natsDialTimeout bounds a tool's connect and login. It is generous: on a busy machine (under -race, with
// other processes on both cores) the login alone has taken more than a second.
const natsDialTimeout = 10 * time.Second

// errNoListener: the configuration names no NATS to dial (no LEDGER_NATS_URL, LEDGER_NATS_LISTEN=off).
var errNoListener = errors.New("LEDGER_NATS_LISTEN is off")

// dialLedgerNATS is how the tools (rebuild, tail) reach a ledger's NATS, in one place: LEDGER_NATS_URL
// when set (its credentials are the URL's, and so is the inbox: NATS's default _INBOX, which any user a
// cluster hands out may use), else a running ledger's embedded listener at LEDGER_NATS_LISTEN as
// the operator user, with the NKey seed the ledger keeps in the data dir and replies on the operator's
// private inbox prefix. extra adds options (connection handlers). The error is the connection's own, for
// the caller to report.
func dialLedgerNATS(cfg Config, name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.Name(name), nats.Timeout(natsDialTimeout)}, extra...)
	if cfg.NATSURL != "" {
		return nats.Connect(cfg.NATSURL, opts...)
	}
	if cfg.NATSListen == "off" {
		return nil, errNoListener
	}
	opts = append(opts, nats.CustomInboxPrefix(jetstream.OperatorInboxPrefix))
	seed := filepath.Join(cfg.DataDir, operatorSeedFile)
	if _, err := os.Stat(seed); err == nil {
		auth, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("nats operator key %s: %w", seed, err)
		}
		opts = append(opts, auth)
	}
	return nats.Connect("nats://"+cfg.NATSListen, opts...)
}

// connectTool reaches the log for a tool without disturbing a running ledger: through dialLedgerNATS,
// or — when no ledger answers and none holds the data dir — by starting the embedded server on the data
// dir itself, without a listener.
func (m *Main) connectTool(ctx context.Context, name string, extra ...nats.Option) error {
	cfg := m.Config
	nc, err := dialLedgerNATS(cfg, name, extra...)
	if err == nil {
		st, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return err
		}
		if cfg.NATSURL == "" {
			// As the operator on the embedded listener: the ledger's own consumer names are refused.
			st.ConsumerPrefix = jetstream.OperatorConsumerPrefix
		}
		m.nc, m.events, m.NATSURL = nc, st, redactURL(nc.ConnectedUrl())
		return nil
	}
	if cfg.NATSURL != "" {
		return fmt.Errorf("cannot reach NATS at %s: %w", redactURL(cfg.NATSURL), err)
	}
	lock, lerr := lockDataDir(cfg.DataDir, strings.Replace(name, "-", " ", 1))
	if lerr != nil {
		if !errors.Is(lerr, errDataDirInUse) {
			return lerr
		}
		if errors.Is(err, errNoListener) {
			return fmt.Errorf("%w; it runs without a NATS listener (LEDGER_NATS_LISTEN=off): stop it, or give it a listener", lerr)
		}
		if _, port, _ := net.SplitHostPort(cfg.NATSListen); port == "0" {
			return fmt.Errorf("%w; LEDGER_NATS_LISTEN %s has port 0, a free port the ledger picked at its start: "+
				"give %s that port (the nats= of its \"ledger ready\" line)", lerr, cfg.NATSListen, name)
		}
		return fmt.Errorf("%w; its NATS listener at %s did not let %s in: %v", lerr, cfg.NATSListen, name, err)
	}
	m.lock = lock
	m.Config.NATSListen = "off"
	return m.connect(ctx)
}

// errKeysDenied: the tool's NATS user may not read the keys bucket (the analytics user may not).
var errKeysDenied = errors.New("permission denied")

// keysProbe opens the keyring for a tool and tells a refusal from a slow answer: a request the server
// refuses goes unanswered, and its permissions violation arrives asynchronously, through the connection's
// error handler (option).
type keysProbe struct {
	once   sync.Once
	denied chan struct{}
	log    *slog.Logger
}

func newKeysProbe(log *slog.Logger) *keysProbe {
	return &keysProbe{denied: make(chan struct{}), log: log}
}

func (p *keysProbe) option() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			p.once.Do(func() { close(p.denied) })
		}
		p.log.Debug("nats", "err", err)
	})
}

// keys opens the keyring within 10 s; errKeysDenied when the server refused.
func (p *keysProbe) keys(ctx context.Context, st *jetstream.Store) (*jetstream.Keyring, error) {
	kctx, cancel := context.WithTimeoutCause(ctx, 10*time.Second, errors.New("no answer within 10s"))
	defer cancel()
	go func() {
		select {
		case <-p.denied:
			cancel()
		case <-kctx.Done():
		}
	}()
	kr, err := st.Keys(kctx)
	if err == nil {
		return kr, nil
	}
	select {
	case <-p.denied:
		return nil, fmt.Errorf("keys bucket: %w", errKeysDenied)
	default:
	}
	if kctx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("keys bucket: %w", context.Cause(kctx))
	}
	return nil, fmt.Errorf("keys bucket: %w", err)
}
