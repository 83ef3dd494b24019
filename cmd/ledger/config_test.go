package main

import (
	"strings"
	"testing"
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
