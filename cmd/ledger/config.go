package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

// Config is the ledger's start-up configuration. Every field has an environment variable and a flag;
// the flag wins.
type Config struct {
	HTTPAddr        string
	PublicURL       string
	DataDir         string
	NATSURL         string
	NATSListen      string
	AdminToken      string
	GatewaySecrets  map[string]string
	SyncAlways      bool
	GroupCommit     bool
	NATSReplicas    int
	ReadyMaxLag     uint64
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	DownloadTTL     time.Duration
	DebugAddr       string
	// AnalyticsPassword enables the read-only NATS user "analytics" on the embedded listener.
	AnalyticsPassword string
	// HTTPMaxConns caps the API's open connections; at the cap idle keep-alive connections are closed.
	HTTPMaxConns int
	// The API server's timeouts: for a request's headers, for the whole request (body included), for
	// the answer (from the end of the headers), and for an idle keep-alive connection.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration
	// RateLimit is the requests per second each API key (and the admin token) may make, RateBurst how
	// many it may make at once; RateLimitIP the requests per second of each client address without a
	// valid key (bursts of twice as many). Zero turns a limit off.
	RateLimit   float64
	RateBurst   int
	RateLimitIP float64
	// WebhookRetrySchedule is the wait before each retry of an outgoing webhook delivery;
	// WebhookAllowPrivate lets endpoints be on loopback, private and link-local addresses (never cloud
	// metadata ones).
	WebhookRetrySchedule webhooksout.Schedule
	WebhookAllowPrivate  bool

	// webhookTimeout and webhookPollEvery replace the outgoing webhooks' attempt timeout (15 s) and how
	// often due attempts are looked for (1 s); tests shorten them.
	webhookTimeout   time.Duration
	webhookPollEvery time.Duration

	// readyCheckEvery is how often background states are looked at for /readyz (0: 5 s); tests shorten it.
	readyCheckEvery time.Duration
	// paymentsRedelivery and paymentsGiveUpAfter replace the payment processor's redelivery delays and
	// the attempt from which a delivery whose sale cannot be found goes to the poison queue (zero: the
	// defaults, 1 s … 5 min and 12); tests shorten them.
	paymentsRedelivery  []time.Duration
	paymentsGiveUpAfter int

	gatewaySecretsRaw string
	// envErrs are the environment variables whose values did not parse, by name; their settings are not
	// range-checked (the zero value left behind would only add a second, misleading error).
	envErrs map[string]error
}

// Gateways whose webhook signatures the ledger verifies.
var knownGateways = map[string]bool{"standard": true, "moneroo": true, "stripe": true, "paystack": true}

// setDefaults fills every field from its environment variable, or its default.
func (c *Config) setDefaults(env func(string) string) {
	get := func(k, def string) string {
		if v := env(k); v != "" {
			return v
		}
		return def
	}
	c.HTTPAddr = get("LEDGER_HTTP_ADDR", "127.0.0.1:8080")
	c.PublicURL = get("LEDGER_PUBLIC_URL", "")
	c.DataDir = get("LEDGER_DATA_DIR", "./data")
	c.NATSURL = get("LEDGER_NATS_URL", "")
	c.NATSListen = get("LEDGER_NATS_LISTEN", "127.0.0.1:4222")
	c.AdminToken = get("LEDGER_ADMIN_TOKEN", "")
	c.DebugAddr = get("LEDGER_DEBUG_ADDR", "")
	c.AnalyticsPassword = get("LEDGER_NATS_ANALYTICS_PASSWORD", "")
	c.gatewaySecretsRaw = get("LEDGER_GATEWAY_SECRETS", "")
	var err error
	c.envErrs = map[string]error{}
	note := func(k string, err error) {
		if err != nil {
			c.envErrs[k] = fmt.Errorf("%s=%q: %v", k, env(k), err)
		}
	}
	c.SyncAlways, err = strconv.ParseBool(get("LEDGER_SYNC_ALWAYS", "true"))
	note("LEDGER_SYNC_ALWAYS", err)
	c.GroupCommit, err = strconv.ParseBool(get("LEDGER_GROUP_COMMIT", "true"))
	note("LEDGER_GROUP_COMMIT", err)
	c.NATSReplicas, err = strconv.Atoi(get("LEDGER_NATS_REPLICAS", "1"))
	note("LEDGER_NATS_REPLICAS", err)
	c.ReadyMaxLag, err = strconv.ParseUint(get("LEDGER_READY_MAX_LAG", "10000"), 10, 64)
	note("LEDGER_READY_MAX_LAG", err)
	note("LEDGER_LOG_LEVEL", c.LogLevel.UnmarshalText([]byte(get("LEDGER_LOG_LEVEL", "info"))))
	c.ShutdownTimeout, err = time.ParseDuration(get("LEDGER_SHUTDOWN_TIMEOUT", "15s"))
	note("LEDGER_SHUTDOWN_TIMEOUT", err)
	c.DownloadTTL, err = time.ParseDuration(get("LEDGER_DOWNLOAD_TTL", "168h"))
	note("LEDGER_DOWNLOAD_TTL", err)
	c.HTTPMaxConns, err = strconv.Atoi(get("LEDGER_HTTP_MAX_CONNS", "1024"))
	note("LEDGER_HTTP_MAX_CONNS", err)
	c.HTTPReadHeaderTimeout, err = time.ParseDuration(get("LEDGER_HTTP_READ_HEADER_TIMEOUT", "5s"))
	note("LEDGER_HTTP_READ_HEADER_TIMEOUT", err)
	c.HTTPReadTimeout, err = time.ParseDuration(get("LEDGER_HTTP_READ_TIMEOUT", "15s"))
	note("LEDGER_HTTP_READ_TIMEOUT", err)
	c.HTTPWriteTimeout, err = time.ParseDuration(get("LEDGER_HTTP_WRITE_TIMEOUT", "30s"))
	note("LEDGER_HTTP_WRITE_TIMEOUT", err)
	c.HTTPIdleTimeout, err = time.ParseDuration(get("LEDGER_HTTP_IDLE_TIMEOUT", "120s"))
	note("LEDGER_HTTP_IDLE_TIMEOUT", err)
	c.RateLimit, err = strconv.ParseFloat(get("LEDGER_RATE_LIMIT", "100"), 64)
	note("LEDGER_RATE_LIMIT", err)
	c.RateBurst, err = strconv.Atoi(get("LEDGER_RATE_BURST", "200"))
	note("LEDGER_RATE_BURST", err)
	c.RateLimitIP, err = strconv.ParseFloat(get("LEDGER_RATE_LIMIT_IP", "1000"), 64)
	note("LEDGER_RATE_LIMIT_IP", err)
	c.WebhookAllowPrivate, err = strconv.ParseBool(get("LEDGER_WEBHOOK_ALLOW_PRIVATE", "false"))
	note("LEDGER_WEBHOOK_ALLOW_PRIVATE", err)
	// ParseSchedule's error names the variable and its value already.
	if c.WebhookRetrySchedule, err = webhooksout.ParseSchedule(get(webhooksout.ScheduleEnv, webhooksout.DefaultScheduleText)); err != nil {
		c.envErrs[webhooksout.ScheduleEnv] = err
	}
}

// bindFlags registers a flag for every field; defaults come from setDefaults.
func (c *Config) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "API listen address; host:0 picks a free port (LEDGER_HTTP_ADDR)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL of the links the API hands out, e.g. https://ledger.example.com; default http://<resolved HTTP address> (LEDGER_PUBLIC_URL)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "embedded JetStream store and read stores (LEDGER_DATA_DIR)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "external NATS URLs, comma-separated; empty runs the embedded server (LEDGER_NATS_URL)")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "where the embedded server also accepts clients, or off (LEDGER_NATS_LISTEN)")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "admin API bearer token; generated on first start when empty (LEDGER_ADMIN_TOKEN)")
	fs.StringVar(&c.gatewaySecretsRaw, "gateway-secrets", c.gatewaySecretsRaw, "comma list gateway=secret (LEDGER_GATEWAY_SECRETS)")
	fs.BoolVar(&c.SyncAlways, "sync-always", c.SyncAlways, "fsync every JetStream write before acknowledging it (LEDGER_SYNC_ALWAYS)")
	fs.BoolVar(&c.GroupCommit, "group-commit", c.GroupCommit, "let concurrent appends share one atomic batch and one fsync (LEDGER_GROUP_COMMIT)")
	fs.IntVar(&c.NATSReplicas, "nats-replicas", c.NATSReplicas, "replicas of the LEDGER stream on a cluster (LEDGER_NATS_REPLICAS)")
	fs.Uint64Var(&c.ReadyMaxLag, "ready-max-lag", c.ReadyMaxLag, "projection lag in events above which /readyz fails (LEDGER_READY_MAX_LAG)")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (LEDGER_LOG_LEVEL)")
	fs.DurationVar(&c.DownloadTTL, "download-ttl", c.DownloadTTL, "how long a completed sale's signed download links stay valid (LEDGER_DOWNLOAD_TTL)")
	fs.StringVar(&c.AnalyticsPassword, "nats-analytics-password", c.AnalyticsPassword, "password of the read-only NATS user analytics on the embedded listener; empty: no such user (LEDGER_NATS_ANALYTICS_PASSWORD)")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "where to serve Go's /debug/pprof profiles; empty: nowhere (LEDGER_DEBUG_ADDR)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGTERM waits for in-flight requests (LEDGER_SHUTDOWN_TIMEOUT)")
	fs.IntVar(&c.HTTPMaxConns, "http-max-conns", c.HTTPMaxConns, "most API connections open at once; at the cap idle keep-alive connections are closed (LEDGER_HTTP_MAX_CONNS)")
	fs.DurationVar(&c.HTTPReadHeaderTimeout, "http-read-header-timeout", c.HTTPReadHeaderTimeout, "time a client has to send a request's headers (LEDGER_HTTP_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", c.HTTPReadTimeout, "time a client has to send a whole request, body included; a body still arriving then is 408 (LEDGER_HTTP_READ_TIMEOUT)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", c.HTTPWriteTimeout, "time to answer a request, from the end of its headers (LEDGER_HTTP_WRITE_TIMEOUT)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.HTTPIdleTimeout, "how long an idle keep-alive connection stays open (LEDGER_HTTP_IDLE_TIMEOUT)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second each API key and the admin token may make; 0: no limit (LEDGER_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "requests a key may make at once, above its rate (LEDGER_RATE_BURST)")
	fs.TextVar(&c.WebhookRetrySchedule, "webhook-retry-schedule", c.WebhookRetrySchedule, "waits before each retry of a failed webhook delivery, a comma list of durations; after the last one the delivery is failed (LEDGER_WEBHOOK_RETRY_SCHEDULE)")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "let webhook endpoints be on loopback, private and link-local addresses, for development; cloud metadata addresses stay refused (LEDGER_WEBHOOK_ALLOW_PRIVATE)")
	fs.Float64Var(&c.RateLimitIP, "rate-limit-ip", c.RateLimitIP, "requests per second each client address may make without a valid key (bursts of twice as many); gateway webhooks are not limited; 0: no limit (LEDGER_RATE_LIMIT_IP)")
}

// flagsWin forgets the environment's unparsable values of the settings a flag in fs has set.
func (c *Config) flagsWin(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) { delete(c.envErrs, flagEnv(f)) })
}

// flagEnv is the environment variable of a configuration flag: every usage ends with it, "(LEDGER_…)".
func flagEnv(f *flag.Flag) string {
	i := strings.LastIndex(f.Usage, "(LEDGER_")
	if i < 0 || !strings.HasSuffix(f.Usage, ")") {
		return ""
	}
	return f.Usage[i+1 : len(f.Usage)-1]
}

// Validate checks every field and reports all problems at once. It also parses the gateway secrets.
func (c *Config) Validate() error { return c.validate(func(string) bool { return true }) }

// validate checks the settings uses says the command uses (by environment variable), and of those only
// the ones whose value parsed.
func (c *Config) validate(uses func(env string) bool) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(c.envErrs)) {
		if uses(k) {
			errs = append(errs, c.envErrs[k])
		}
	}
	check := func(k string) bool { return uses(k) && c.envErrs[k] == nil }
	if _, _, err := net.SplitHostPort(c.HTTPAddr); check("LEDGER_HTTP_ADDR") && err != nil {
		errs = append(errs, fmt.Errorf("LEDGER_HTTP_ADDR %q: %v", c.HTTPAddr, err))
	}
	if check("LEDGER_PUBLIC_URL") && c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("LEDGER_PUBLIC_URL %q: want an absolute http(s) URL", c.PublicURL))
		}
	}
	if check("LEDGER_DATA_DIR") && c.DataDir == "" {
		errs = append(errs, errors.New("LEDGER_DATA_DIR is empty"))
	}
	if check("LEDGER_NATS_LISTEN") && c.NATSListen != "off" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			errs = append(errs, fmt.Errorf("LEDGER_NATS_LISTEN %q: want host:port or off: %v", c.NATSListen, err))
		}
	}
	if check("LEDGER_NATS_REPLICAS") && (c.NATSReplicas < 1 || c.NATSReplicas > 5) {
		errs = append(errs, fmt.Errorf("LEDGER_NATS_REPLICAS %d: want 1 to 5", c.NATSReplicas))
	}
	if check("LEDGER_NATS_REPLICAS") && c.NATSURL == "" && c.NATSReplicas != 1 {
		errs = append(errs, errors.New("LEDGER_NATS_REPLICAS above 1 needs an external cluster (LEDGER_NATS_URL)"))
	}
	if check("LEDGER_NATS_ANALYTICS_PASSWORD") && c.AnalyticsPassword != "" && len(c.AnalyticsPassword) < 16 {
		errs = append(errs, errors.New("LEDGER_NATS_ANALYTICS_PASSWORD is shorter than 16 characters"))
	}
	if check("LEDGER_ADMIN_TOKEN") && c.AdminToken != "" && len(c.AdminToken) < 24 {
		errs = append(errs, errors.New("LEDGER_ADMIN_TOKEN is shorter than 24 characters"))
	}
	if check("LEDGER_DOWNLOAD_TTL") && c.DownloadTTL < time.Second {
		errs = append(errs, errors.New("LEDGER_DOWNLOAD_TTL must be at least 1s"))
	}
	if check("LEDGER_SHUTDOWN_TIMEOUT") && c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("LEDGER_SHUTDOWN_TIMEOUT must be positive"))
	}
	if check("LEDGER_RATE_LIMIT") && (c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0)) {
		errs = append(errs, fmt.Errorf("LEDGER_RATE_LIMIT %v: want a number of requests per second, 0 for no limit", c.RateLimit))
	}
	if check("LEDGER_RATE_BURST") && c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("LEDGER_RATE_BURST %d: want at least 1", c.RateBurst))
	}
	if check("LEDGER_RATE_LIMIT_IP") && (c.RateLimitIP < 0 || math.IsNaN(c.RateLimitIP) || math.IsInf(c.RateLimitIP, 0)) {
		errs = append(errs, fmt.Errorf("LEDGER_RATE_LIMIT_IP %v: want a number of requests per second, 0 for no limit", c.RateLimitIP))
	}
	if check("LEDGER_HTTP_MAX_CONNS") && c.HTTPMaxConns < 1 {
		errs = append(errs, fmt.Errorf("LEDGER_HTTP_MAX_CONNS %d: want at least 1", c.HTTPMaxConns))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"LEDGER_HTTP_READ_HEADER_TIMEOUT", c.HTTPReadHeaderTimeout}, {"LEDGER_HTTP_READ_TIMEOUT", c.HTTPReadTimeout},
		{"LEDGER_HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout}, {"LEDGER_HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout},
	} {
		if check(d.name) && d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	c.GatewaySecrets = map[string]string{}
	if !uses("LEDGER_GATEWAY_SECRETS") {
		return errors.Join(errs...)
	}
	for _, pair := range strings.Split(c.gatewaySecretsRaw, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, secret, ok := strings.Cut(pair, "=")
		switch {
		case !ok || secret == "":
			errs = append(errs, fmt.Errorf("LEDGER_GATEWAY_SECRETS: entry for %q is not gateway=secret", name))
		case !knownGateways[name]:
			errs = append(errs, fmt.Errorf("LEDGER_GATEWAY_SECRETS: unknown gateway %q (known: standard, moneroo, stripe, paystack)", name))
		case name == "standard" && !validStandardSecret(secret):
			errs = append(errs, errors.New("LEDGER_GATEWAY_SECRETS: the standard secret must be whsec_ followed by base64"))
		default:
			c.GatewaySecrets[name] = secret
		}
	}
	return errors.Join(errs...)
}

// loadConfig reads the environment, then the flags in args.
func loadConfig(name string, args []string, env func(string) string, extra func(*flag.FlagSet)) (Config, error) {
	var c Config
	c.setDefaults(env)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.bindFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c.flagsWin(fs)
	return c, c.Validate()
}

// validStandardSecret checks the Standard Webhooks secret format: whsec_<base64 key>.
func validStandardSecret(s string) bool {
	key, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) > 0
}
