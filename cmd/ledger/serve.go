package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	wmmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/handlers"
	"github.com/salesledger/ledger/handlers/payments"
	"github.com/salesledger/ledger/handlers/salecache"
	"github.com/salesledger/ledger/handlers/webhooksout"
	"github.com/salesledger/ledger/projections"
)

// Main is the composition root: it builds every component from Config, and Close takes them down in
// reverse order. End-to-end tests run it with ":0" ports and a temp data dir.
type Main struct {
	Config Config
	Log    *slog.Logger

	// Now is the clock of every decision (event times, deadlines, link expiry); nil means time.Now.
	// Tests set it to replay a past period.
	Now func() time.Time

	// HTTPAddr is the resolved API address once Run returned; NATSURL the resolved NATS client URL.
	HTTPAddr string
	NATSURL  string

	lock *os.File
	ns   *server.Server
	nc   *nats.Conn
	// gateNC is the consumer gate's connection (embedded server with a listener only).
	gateNC  *nats.Conn
	events  *jetstream.Store
	live    *projections.Live
	httpSrv *http.Server
	// inFlight are the API requests being served.
	inFlight inFlight
	router   *wmmessage.Router
	// stopGroups ends group commit, after the last append.
	stopGroups func()
	debugSrv   *http.Server
	timers     *handlers.Timers
	// webhooks sends the outgoing webhooks; webhooksDone is closed once it stopped.
	webhooks     *webhooksout.Dispatcher
	webhooksDone chan struct{}
	// api serves the HTTP contract (tests render objects with it: api.ObjectAt).
	api  *handlers.API
	stop context.CancelFunc
	done chan struct{}
}

// Data dir layout.
const (
	jetstreamDir   = "jetstream"
	readDir        = "read"
	adminTokenFile = "admin_token.sha256"
	lockFile       = "LOCK"
)

// timersMinLag is the least lag at which the timers still run: with LEDGER_READY_MAX_LAG at 0, a
// replica under steady load is rarely exactly caught up at a tick, and its sales would never be
// abandoned or settled.
const timersMinLag = 1000

// Run starts the ledger and returns once it serves HTTP; it logs one line with the resolved address.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir %s is not usable: %w", cfg.DataDir, err)
	}
	lock, err := lockDataDir(cfg.DataDir, "ledger serve")
	if err != nil {
		return err
	}
	m.lock = lock
	if cfg.DebugAddr != "" {
		// From the start, so that a slow start can be profiled too.
		if err := m.serveDebug(cfg.DebugAddr); err != nil {
			return err
		}
	}
	adminHash, keepAdminToken, err := m.adminTokenHash()
	if err != nil {
		return err
	}
	if err := m.connect(ctx); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	appends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_appends_total", Help: "Event appends by outcome (ok, conflict, error).",
	}, []string{"outcome"})
	appended := prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_appended_events_total", Help: "Events appended to the log."})
	reg.MustRegister(appends, appended)
	m.events.Observe = func(n int, err error) {
		switch {
		case err == nil:
			appends.WithLabelValues("ok").Inc()
			appended.Add(float64(n))
		case errors.Is(err, domain.ErrConflict):
			appends.WithLabelValues("conflict").Inc()
		default:
			appends.WithLabelValues("error").Inc()
		}
	}

	if cfg.GroupCommit {
		groups := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledger_append_group_seconds",
			Help:    "Time to write one group of concurrent appends, by how it was written: batch (one atomic batch), single (append by append), fallback (a batch refused as a whole, re-written append by append).",
			Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, 1},
		}, []string{"how"})
		grouped := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ledger_append_group_events", Help: "Events per group of concurrent appends.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 500},
		})
		reg.MustRegister(groups, grouped)
		m.stopGroups = m.events.EnableGroupCommit(jetstream.GroupCommit{Observe: func(n int, how string, took time.Duration) {
			groups.WithLabelValues(how).Observe(took.Seconds())
			grouped.Observe(float64(n))
		}})
	}

	live, err := projections.OpenLive(filepath.Join(cfg.DataDir, readDir), m.events, m.Log.With("component", "projection"), projections.NewMetrics(reg))
	if err != nil {
		return err
	}
	m.live = live
	runCtx, stop := context.WithCancel(context.Background())
	m.stop, m.done = stop, make(chan struct{})
	go func() {
		defer close(m.done)
		_ = live.Run(runCtx)
	}()
	if m.ns != nil {
		// Restarts the embedded JetStream once the disk takes writes again after filling up.
		m.events.Health().WatchEmbedded(m.ns, filepath.Join(cfg.DataDir, jetstreamDir))
	}
	go m.events.Health().Run(runCtx, m.Log.With("component", "write-health"))

	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	paymentsName, err := m.events.PaymentsConsumer(pctx, cfg.NATSReplicas)
	pcancel()
	if err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	webhooksName, err := m.events.WebhooksConsumer(wctx, cfg.NATSReplicas, webhookFilters)
	wcancel()
	if err != nil {
		return err
	}
	if m.gateNC != nil {
		// The reader roles reach consumers only through the gate (events/jetstream/accounts.go).
		if _, err := jetstream.ServeConsumerGate(m.gateNC, m.Log.With("component", "consumer-gate"),
			map[string]string{jetstream.PaymentsDurable: paymentsName, jetstream.WebhooksDurable: webhooksName},
			jetstream.AnalyticsRole, jetstream.OperatorRole); err != nil {
			return err
		}
	}
	deliveries := m.events.NewSubscriber(jetstream.SubscriberConfig{
		Durable: paymentsName,
		Label:   jetstream.PaymentsDurable,
		Filter:  "ledger.platform.*.webhook.*.webhook_received",
		// Deliveries of one sale wait for each other inside the processor, and each append waits for
		// its group's fsync; enough in flight keeps the processor up with webhooks arriving at full
		// speed (docs/benchmarks.md).
		InFlight:   256,
		Redelivery: cfg.paymentsRedelivery,
		CheckEvery: m.readyCheckEvery(),
		Log:        m.Log.With("component", "payments"),
	})
	// One cache of the sales this process's commands and payments left, shared by the API and the
	// processor (salecache): a payment for a sale checked out here decides without a read.
	sales := salecache.New(16384)
	router, err := payments.NewRouter(payments.Config{
		Sales:       sales,
		Log:         m.Log,
		Events:      m.events,
		Reads:       func() payments.Reads { return live.Store() },
		Decode:      jetstream.EnvelopeOf,
		LinkTTL:     cfg.DownloadTTL,
		Now:         m.Now,
		Subscriber:  deliveries,
		GiveUpAfter: cfg.paymentsGiveUpAfter,
	})
	if err != nil {
		return err
	}
	m.router = router
	go func() {
		if err := router.Run(runCtx); err != nil {
			m.Log.Error("payment processor stopped", "err", err)
		}
	}()
	<-router.Running()

	webhookEvents := m.events.NewSubscriber(jetstream.SubscriberConfig{
		Durable:    webhooksName,
		Label:      jetstream.WebhooksDurable,
		Filters:    webhookFilters,
		InFlight:   64,
		CheckEvery: m.readyCheckEvery(),
		Log:        m.Log.With("component", "webhooks"),
	})

	m.timers = &handlers.Timers{Log: m.Log, Events: m.events, Reads: func() handlers.ReadStore { return live.Store() }, Every: 5 * time.Second, Batch: 500, Now: m.Now,
		CaughtUp: func() bool { return live.Lag() <= max(cfg.ReadyMaxLag, timersMinLag) }}
	go m.timers.Run(runCtx)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen on %s: %w", cfg.HTTPAddr, err)
	}
	m.HTTPAddr = ln.Addr().String()
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + m.HTTPAddr
	}
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	downloadKey, err := m.events.SharedSecret(sctx, "download_signing_key", cfg.NATSReplicas)
	var (
		claimKey  []byte
		cursorKey []byte
		keys      *jetstream.Keyring
		photos    *jetstream.Photos
	)
	if err == nil {
		claimKey, err = m.events.SharedSecret(sctx, "email_claim_key", cfg.NATSReplicas)
	}
	if err == nil {
		cursorKey, err = m.events.SharedSecret(sctx, "customer_cursor_key", cfg.NATSReplicas)
	}
	if err == nil {
		keys, err = m.events.Keys(sctx)
	}
	if err == nil {
		photos, err = m.events.Photos(sctx, cfg.NATSReplicas)
	}
	scancel()
	if err != nil {
		ln.Close()
		return err
	}
	api := handlers.New(handlers.Config{
		Sales:                sales,
		Log:                  m.Log,
		Events:               m.events,
		Projection:           liveProjection{live},
		AdminTokenHash:       adminHash,
		GatewaySecrets:       cfg.GatewaySecrets,
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate,
		WakeWebhooks:         func() { m.webhooks.Wake() },
		DownloadKey:          downloadKey,
		ClaimKey:             claimKey,
		CursorKey:            cursorKey,
		Keys:                 keys,
		Photos:               photos,
		DownloadTTL:          cfg.DownloadTTL,
		Now:                  m.Now,
		PublicURL:            publicURL,
		Registry:             reg,
		ReadyMaxLag:          cfg.ReadyMaxLag,
		ReadyChecks: []handlers.ReadyCheck{{Name: "payment processor", Err: func() error {
			if !router.IsRunning() {
				return errors.New("not running")
			}
			return deliveries.Err()
		}}, {Name: "webhook dispatcher", Err: func() error {
			if !m.webhooks.IsRunning() {
				return errors.New("not running")
			}
			return webhookEvents.Err()
		}}},
		RateLimits: handlers.RateLimits{PerKey: cfg.RateLimit, PerKeyBurst: cfg.RateBurst,
			PerIP: cfg.RateLimitIP, PerIPBurst: max(1, int(2*cfg.RateLimitIP))},
		WriteHealth: m.events.Health().Err,
		// A gateway's body follows its headers at once; give it what a client has for its headers.
		WebhookBodyTimeout: min(cfg.HTTPReadHeaderTimeout, cfg.HTTPReadTimeout),
	})
	m.api = api
	m.webhooks, err = webhooksout.NewDispatcher(webhooksout.DispatcherConfig{
		Log:     m.Log,
		Events:  m.events,
		Reads:   func() webhooksout.Reads { return live.Store() },
		WaitFor: live.WaitFor,
		Render:  api.ObjectAt,
		Erased:  keys.Erased,
		Decode:  jetstream.EnvelopeOf,
		Peek:    jetstream.PeekMessage,
		// Scheduling is a read and an append per event; attempts run in the endpoints' own queues.
		Subscriber: webhookEvents,
		Sender: webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: cfg.WebhookAllowPrivate,
			Timeout: cfg.webhookTimeout, Version: moduleVersion()}),
		Timeout:   cfg.webhookTimeout,
		Schedule:  cfg.WebhookRetrySchedule,
		PollEvery: cfg.webhookPollEvery,
		Registry:  reg,
		Now:       m.Now,
	})
	if err != nil {
		ln.Close()
		return err
	}
	m.webhooksDone = make(chan struct{})
	go func() {
		defer close(m.webhooksDone)
		if err := m.webhooks.Run(runCtx); err != nil {
			m.Log.Error("webhook dispatcher stopped", "err", err)
		}
	}()
	<-m.webhooks.Running()
	conns := handlers.NewConnLimit(cfg.HTTPMaxConns, reg)
	// A client sends its request header right after connecting; one silent for a second (or the
	// read-header timeout, if shorter) can give its slot up at the cap.
	conns.Grace = min(cfg.HTTPReadHeaderTimeout, time.Second)
	m.httpSrv = &http.Server{
		Handler:           m.inFlight.wrap(api.Handler()),
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         conns.ConnState,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.httpSrv.Serve(conns.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	}()
	if err := keepAdminToken(); err != nil {
		return err
	}
	durability := "fsync every write (SyncAlways)"
	switch {
	case cfg.NATSURL != "":
		durability = "the external cluster's own settings"
	case !cfg.SyncAlways:
		durability = "fsync on the server's interval (SyncAlways off)"
	}
	m.Log.Info("ledger ready", "http", "http://"+m.HTTPAddr, "pid", os.Getpid(), "nats", m.NATSURL, "data_dir", cfg.DataDir,
		"durability", durability, "read_store", live.Path())
	return nil
}

// webhookFilters are the subjects outgoing webhooks follow from: the events of sales, customers and
// licences, in both modes.
var webhookFilters = []string{
	"ledger.*.*." + events.AggregateSale + ".>",
	"ledger.*.*." + events.AggregateCustomer + ".>",
	"ledger.*.*." + events.AggregateLicence + ".>",
}

// moduleVersion is the ledger's module version for the webhooks' User-Agent: "dev" for a build outside a
// tagged module.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// readyCheckEvery is how often background states that readiness reports are looked at.
func (m *Main) readyCheckEvery() time.Duration {
	if m.Config.readyCheckEvery > 0 {
		return m.Config.readyCheckEvery
	}
	return 5 * time.Second
}

// liveProjection adapts projections.Live to handlers.Projection.
type liveProjection struct{ *projections.Live }

func (p liveProjection) Reads() handlers.ReadStore { return p.Live.Store() }

// connect starts the embedded server or reaches the external one, and ensures the LEDGER stream.
func (m *Main) connect(ctx context.Context) error {
	cfg := m.Config
	if cfg.NATSURL == "" {
		listen := cfg.NATSListen
		if listen == "off" {
			listen = ""
		}
		ecfg := jetstream.EmbeddedConfig{
			StoreDir:   filepath.Join(cfg.DataDir, jetstreamDir),
			Listen:     listen,
			SyncAlways: cfg.SyncAlways,
		}
		auth, err := newNATSAuth(cfg.DataDir, listen != "", cfg.AnalyticsPassword)
		if err != nil {
			return err
		}
		ecfg.Nkeys, ecfg.Operators, ecfg.Analytics = auth.nkeys, auth.operators, auth.analytics
		ns, err := jetstream.StartEmbedded(ecfg, m.Log)
		if err != nil {
			return err
		}
		m.ns = ns
		nc, err := nats.Connect("", auth.self, nats.InProcessServer(ns), nats.Name("ledger"),
			nats.CustomInboxPrefix(jetstream.InboxPrefix))
		if err != nil {
			return fmt.Errorf("connect to the embedded nats-server: %w", err)
		}
		m.nc = nc
		if listen != "" {
			// The consumer gate answers the listener's readers on a connection of its own.
			if m.gateNC, err = nats.Connect("", auth.self, nats.InProcessServer(ns), nats.Name("ledger-gate"),
				nats.CustomInboxPrefix(jetstream.InboxPrefix)); err != nil {
				return fmt.Errorf("connect to the embedded nats-server: %w", err)
			}
		}
		m.NATSURL = "in-process"
		if listen != "" {
			m.NATSURL = ns.ClientURL()
		}
	} else {
		nc, err := connectExternal(ctx, cfg.NATSURL, m.Log)
		if err != nil {
			return err
		}
		m.nc = nc
		m.NATSURL = redactURL(nc.ConnectedUrl())
	}
	st, err := jetstream.New(m.nc)
	if err != nil {
		return err
	}
	m.events = st
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := st.EnsureStream(ectx, jetstream.StreamConfig{Replicas: cfg.NATSReplicas}); err != nil {
		return err
	}
	return nil
}

// connectAttempts bounds the retries against an unreachable external NATS.
const connectAttempts = 5

func connectExternal(ctx context.Context, urls string, log *slog.Logger) (*nats.Conn, error) {
	var last error
	backoff := 200 * time.Millisecond
	for attempt := 1; attempt <= connectAttempts; attempt++ {
		nc, err := nats.Connect(urls, nats.Name("ledger"), nats.Timeout(3*time.Second), nats.MaxReconnects(-1),
			nats.CustomInboxPrefix(jetstream.InboxPrefix))
		if err == nil {
			return nc, nil
		}
		last = err
		log.Warn("NATS unreachable; retrying", "url", redactURL(urls), "attempt", attempt, "of", connectAttempts, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return nil, fmt.Errorf("cannot reach NATS at %s after %d attempts: %w", redactURL(urls), connectAttempts, last)
}

// redactURL hides credentials in NATS URLs before they reach a log.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// adminTokenHash returns the hash of the admin token: the configured one, or the one kept from an
// earlier start, or a new one. A new token is kept (its hash written to the data dir) and logged only by
// keep, once the start has succeeded: a start that fails must not keep a token nobody saw.
func (m *Main) adminTokenHash() (hash string, keep func() error, err error) {
	nothing := func() error { return nil }
	if m.Config.AdminToken != "" {
		return domain.HashKey(m.Config.AdminToken), nothing, nil
	}
	path := filepath.Join(m.Config.DataDir, adminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nothing, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", nil, fmt.Errorf("admin token hash %s: %w", path, err)
	}
	token := "adm_" + domain.RandomString(40)
	hash = domain.HashKey(token)
	keep = func() error {
		if err := os.WriteFile(path, []byte(hash+"\n"), 0o600); err != nil {
			return fmt.Errorf("data dir %s is not writable: %w", m.Config.DataDir, err)
		}
		m.Log.Warn("generated the admin token; it is shown only this once and stored hashed in "+path+
			" (set LEDGER_ADMIN_TOKEN or delete the file to replace it)", "admin_token", token)
		return nil
	}
	return hash, keep, nil
}

// errDataDirInUse: another process holds the data dir's LOCK.
var errDataDirInUse = errors.New("in use")

// lockDataDir takes an exclusive lock so that two ledgers never share one data dir. The holder writes
// "pid N <what>" (ledger serve, ledger tail …) into the lock file, for the process it keeps out to name.
func lockDataDir(dir, what string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another ledger process"
		if b, rerr := io.ReadAll(io.LimitReader(f, 256)); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			holder = strings.ToValidUTF8(string(bytes.TrimSpace(b)), "?")
		}
		f.Close()
		return nil, fmt.Errorf("data dir %s is %w by %s (it holds %s): %w", dir, errDataDirInUse, holder, path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d %s\n", os.Getpid(), what)), 0)
	}
	return f, nil
}

// Close drains in-flight requests, stops the projection, and shuts NATS down, in that order.
func (m *Main) Close() error {
	var errs []error
	if m.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if err := m.httpSrv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			// Cut what still runs rather than close NATS and the read store under it.
			running := m.inFlight.describe(time.Now())
			m.httpSrv.Close()
			errs = append(errs, fmt.Errorf("shutdown: in-flight requests did not finish within LEDGER_SHUTDOWN_TIMEOUT (%s); "+
				"still running were %s; their connections were cut and their clients got no answer "+
				"(what a write had appended before stays in the log)", m.Config.ShutdownTimeout, running))
		} else if err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if m.debugSrv != nil {
		errs = append(errs, m.debugSrv.Close())
	}
	if m.router != nil {
		errs = append(errs, m.router.Close())
	}
	if m.stop != nil {
		m.stop()
		<-m.done
		if m.webhooksDone != nil {
			<-m.webhooksDone
		}
	}
	if m.stopGroups != nil {
		m.stopGroups()
	}
	if m.gateNC != nil {
		m.gateNC.Close()
	}
	if m.nc != nil {
		m.nc.Close()
	}
	if m.ns != nil {
		m.ns.Shutdown()
		m.ns.WaitForShutdown()
	}
	if m.lock != nil {
		errs = append(errs, m.lock.Close())
	}
	return errors.Join(errs...)
}

// serveDebug serves Go's profiles on their own listener, never on the API's.
func (m *Main) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.debugSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.Log.Info("serving profiles", "addr", ln.Addr().String())
	go func() { _ = m.debugSrv.Serve(ln) }()
	return nil
}
