package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"testing"
)

// TestDebugProfilesFromTheStart: LEDGER_DEBUG_ADDR serves Go's profiles on a listener of its own, and
// does so from the start of Run, so that a start that is slow (or fails later) can be profiled too.
func TestDebugProfilesFromTheStart(t *testing.T) {
	var logs syncBuffer
	m := startMainLogged(t, t.TempDir(), &logs, func(c *Config) { c.DebugAddr = "127.0.0.1:0" })
	addr := regexp.MustCompile(`msg="serving profiles" addr=(\S+)`).FindStringSubmatch(logs.String())
	if addr == nil {
		t.Fatalf("no profiles line in the log:\n%s", logs.String())
	}
	if addr[1] == m.HTTPAddr {
		t.Fatal("profiles served on the API's listener")
	}
	res, err := http.Get("http://" + addr[1] + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/debug/pprof/: %d", res.StatusCode)
	}

	// A start that fails at its last step (the API's address is taken) had served profiles before.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := m.Config
	cfg.DataDir, cfg.HTTPAddr = t.TempDir(), taken.Addr().String()
	var failed syncBuffer
	m2 := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(&failed, nil))}
	defer m2.Close()
	if err := m2.Run(context.Background()); err == nil {
		t.Fatal("started on a taken address")
	}
	if !regexp.MustCompile(`msg="serving profiles"`).MatchString(failed.String()) {
		t.Errorf("a failed start served no profiles before it failed:\n%s", failed.String())
	}
}
