package main

import (
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

func TestConfig(t *testing.T) {
	envOf := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("defaults match the design", func(t *testing.T) {
		c, err := loadConfig("serve", nil, envOf(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || c.NATSURL != "" || c.NATSListen != "127.0.0.1:4222" ||
			!c.SyncAlways || c.AdminToken != "" || len(c.GatewaySecrets) != 0 || c.RateLimit != 100 || c.HTTPMaxConns != 1024 {
			t.Fatalf("defaults: %+v", c)
		}
	})
	t.Run("webhook settings", func(t *testing.T) {
		c, err := loadConfig("serve", nil, envOf(nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.WebhookRetrySchedule, webhooksout.DefaultSchedule) || c.WebhookAllowPrivate {
			t.Errorf("defaults: schedule %v, allow private %v", c.WebhookRetrySchedule, c.WebhookAllowPrivate)
		}
		c, err = loadConfig("serve", []string{"--webhook-retry-schedule", "1s, 2m"},
			envOf(map[string]string{"LEDGER_WEBHOOK_RETRY_SCHEDULE": "9h", "LEDGER_WEBHOOK_ALLOW_PRIVATE": "true"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.WebhookRetrySchedule, webhooksout.Schedule{time.Second, 2 * time.Minute}) || !c.WebhookAllowPrivate {
			t.Errorf("schedule %v, allow private %v", c.WebhookRetrySchedule, c.WebhookAllowPrivate)
		}
	})
	t.Run("flag beats environment", func(t *testing.T) {
		c, err := loadConfig("serve", []string{"--http-addr", "0.0.0.0:9000", "--sync-always=false", "--gateway-secrets", "moneroo=abc,standard=whsec_c2VjcmV0"},
			envOf(map[string]string{"LEDGER_HTTP_ADDR": "127.0.0.1:1", "LEDGER_DATA_DIR": "/tmp/d", "LEDGER_NATS_LISTEN": "off"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTPAddr != "0.0.0.0:9000" || c.DataDir != "/tmp/d" || c.NATSListen != "off" || c.SyncAlways ||
			c.GatewaySecrets["moneroo"] != "abc" || c.GatewaySecrets["standard"] != "whsec_c2VjcmV0" {
			t.Fatalf("got %+v", c)
		}
	})
	t.Run("every problem at once", func(t *testing.T) {
		_, err := loadConfig("serve", []string{"--nats-listen", "nowhere"}, envOf(map[string]string{
			"LEDGER_HTTP_ADDR":         "no-port",
			"LEDGER_SYNC_ALWAYS":       "maybe",
			"LEDGER_ADMIN_TOKEN":       "short",
			"LEDGER_GATEWAY_SECRETS":   "paypal=x,stripe,standard=not-whsec",
			"LEDGER_NATS_REPLICAS":     "3",
			"LEDGER_HTTP_MAX_CONNS":    "0",
			"LEDGER_HTTP_IDLE_TIMEOUT": "-1s",
			"LEDGER_HTTP_READ_TIMEOUT": "soon",
			"LEDGER_RATE_LIMIT":        "-1",
			"LEDGER_RATE_BURST":        "0",
		}), nil)
		if err == nil {
			t.Fatal("invalid configuration accepted")
		}
		for _, want := range []string{"LEDGER_HTTP_ADDR", "LEDGER_SYNC_ALWAYS", "LEDGER_NATS_LISTEN", "LEDGER_ADMIN_TOKEN",
			`unknown gateway "paypal"`, `entry for "stripe"`, "standard secret must be whsec_", "LEDGER_NATS_REPLICAS above 1",
			"LEDGER_HTTP_MAX_CONNS 0", "LEDGER_HTTP_IDLE_TIMEOUT must be positive", `LEDGER_HTTP_READ_TIMEOUT="soon"`,
			"LEDGER_RATE_LIMIT -1", "LEDGER_RATE_BURST 0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %s:\n%v", want, err)
			}
		}
	})
}

// A setting is reported once, by what is wrong with it; a flag's error names its variable too; a tool
// checks only the settings it uses.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cmd     command
		env     map[string]string
		args    []string
		want    []string // each in the error; none: no error
		notWant []string
	}{
		{"unparsable number: no range error on its zero", commandServe, map[string]string{"LEDGER_HTTP_MAX_CONNS": "lots"}, nil,
			[]string{`LEDGER_HTTP_MAX_CONNS="lots"`}, []string{"LEDGER_HTTP_MAX_CONNS 0", "want at least 1"}},
		{"unparsable duration", commandServe, map[string]string{"LEDGER_SHUTDOWN_TIMEOUT": "soon"}, nil,
			[]string{`LEDGER_SHUTDOWN_TIMEOUT="soon"`}, []string{"must be positive"}},
		{"unparsable replicas", commandServe, map[string]string{"LEDGER_NATS_REPLICAS": "three"}, nil,
			[]string{`LEDGER_NATS_REPLICAS="three"`}, []string{"want 1 to 5", "above 1"}},
		{"unparsable burst", commandServe, map[string]string{"LEDGER_RATE_BURST": "x"}, nil,
			[]string{`LEDGER_RATE_BURST="x"`}, []string{"LEDGER_RATE_BURST 0"}},
		{"parsable but out of range", commandServe, map[string]string{"LEDGER_HTTP_MAX_CONNS": "0"}, nil,
			[]string{"LEDGER_HTTP_MAX_CONNS 0: want at least 1"}, nil},
		{"flag names its variable", commandServe, nil, []string{"--http-max-conns", "lots"},
			[]string{`--http-max-conns (LEDGER_HTTP_MAX_CONNS): invalid value "lots"`}, nil},
		{"bool flag names its variable", commandServe, nil, []string{"--sync-always=maybe"},
			[]string{"--sync-always (LEDGER_SYNC_ALWAYS)"}, nil},
		{"tool flag names its variable", commandRebuild, nil, []string{"--log-level", "loud"},
			[]string{"--log-level (LEDGER_LOG_LEVEL)"}, nil},
		{"a flag wins over an unparsable variable", commandServe, map[string]string{"LEDGER_HTTP_MAX_CONNS": "lots"},
			[]string{"--http-max-conns", "5"}, nil, nil},
		{"serve checks serve's settings", commandServe, map[string]string{"LEDGER_ADMIN_TOKEN": "short", "LEDGER_GATEWAY_SECRETS": "paypal=x"}, nil,
			[]string{"LEDGER_ADMIN_TOKEN", "paypal"}, nil},
		{"rebuild ignores serve's settings", commandRebuild, map[string]string{"LEDGER_ADMIN_TOKEN": "short", "LEDGER_GATEWAY_SECRETS": "paypal=x",
			"LEDGER_HTTP_MAX_CONNS": "lots", "LEDGER_RATE_BURST": "0", "LEDGER_SHUTDOWN_TIMEOUT": "soon"}, nil, nil, nil},
		{"tail ignores serve's settings", commandTail, map[string]string{"LEDGER_HTTP_ADDR": "nowhere", "LEDGER_NATS_REPLICAS": "9"}, nil, nil, nil},
		{"tools check what they use", commandTail, map[string]string{"LEDGER_NATS_LISTEN": "nowhere", "LEDGER_LOG_LEVEL": "loud"}, nil,
			[]string{"LEDGER_NATS_LISTEN", "LEDGER_LOG_LEVEL"}, nil},
		{"unparsable retry schedule", commandServe, map[string]string{"LEDGER_WEBHOOK_RETRY_SCHEDULE": "5s,soon"}, nil,
			[]string{`LEDGER_WEBHOOK_RETRY_SCHEDULE="5s,soon": entry 2`}, nil},
		{"retry schedule flag names its variable", commandServe, nil, []string{"--webhook-retry-schedule", "5s,-1m"},
			[]string{`--webhook-retry-schedule (LEDGER_WEBHOOK_RETRY_SCHEDULE): invalid value "5s,-1m": entry 2`}, nil},
		{"unparsable allow-private", commandServe, map[string]string{"LEDGER_WEBHOOK_ALLOW_PRIVATE": "sometimes"}, nil,
			[]string{`LEDGER_WEBHOOK_ALLOW_PRIVATE="sometimes"`}, nil},
		{"rebuild ignores webhook settings", commandRebuild, map[string]string{"LEDGER_WEBHOOK_RETRY_SCHEDULE": "x",
			"LEDGER_WEBHOOK_ALLOW_PRIVATE": "x"}, nil, nil, nil},
		{"a serve flag given to a tool", commandRebuild, nil, []string{"--http-max-conns", "5"},
			[]string{"--http-max-conns is a setting of ledger serve only"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := commandConfig(tt.cmd, tt.args, env(tt.env), io.Discard, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error says %q:\n%v", w, err)
				}
			}
		})
	}
}

// Port 0 of the NATS listener is any free port, as for the API, not nats-server's default 4222.
func TestNATSListenPortZero(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { c.NATSListen = "127.0.0.1:0" })
	u, err := url.Parse(m.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	if p := u.Port(); p == "0" || p == "4222" || p == "" {
		t.Fatalf("--nats-listen 127.0.0.1:0 listens at %s", m.NATSURL)
	}
}
