package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRebuildCommandOffline(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "first")
	createStore(t, c, "second")
	oldPath := m.live.Path()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// No ledger runs: rebuild starts the embedded server on the data dir itself.
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "100%") || !strings.Contains(stderr.String(), "up to sequence 4") {
		t.Fatalf("rebuild output:\n%s", stderr.String())
	}
	cur, err := projections.ReadCurrent(filepath.Join(dir, readDir))
	if err != nil || cur == oldPath {
		t.Fatalf("CURRENT = %s (%v); want a new store, not %s", cur, err, oldPath)
	}

	// As of sequence 2: the first store only, written to --out, CURRENT untouched.
	out := filepath.Join(t.TempDir(), "asof.db")
	stderr.Reset()
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", "off", "--until", "2", "--out", out}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild --until: %v\n%s", err, stderr.String())
	}
	st, err := sqlite.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := st.Dump(context.Background())
	st.Close()
	if err != nil || len(dump["stores"]) != 1 || !strings.Contains(dump["stores"][0], "first") {
		t.Fatalf("as-of store: %v %v", dump["stores"], err)
	}
	if again, _ := projections.ReadCurrent(filepath.Join(dir, readDir)); again != cur {
		t.Fatalf("--until switched CURRENT to %s", again)
	}
	for _, bad := range [][]string{{"--until", "yesterday"}, {"--out", out}} {
		args := append([]string{"rebuild", "--data-dir", dir, "--nats-listen", "off"}, bad...)
		if err := run(context.Background(), args, env(nil), &stderr, &stderr); err == nil {
			t.Errorf("rebuild %v: no error", bad)
		}
	}

	// The next start serves the rebuilt store, and the keys still work.
	m = startMain(t, dir, nil)
	if m.live.Path() != cur {
		t.Fatalf("serving %s, want the rebuilt %s", m.live.Path(), cur)
	}
	c = client{t, "http://" + m.HTTPAddr}
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("after rebuild: %d %s", r.status, r.raw)
	}
}

func TestRebuildCommandAgainstRunningLedger(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "busy")
	oldPath := m.live.Path()

	listen := strings.TrimPrefix(m.NATSURL, "nats://")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"rebuild", "--data-dir", dir, "--nats-listen", listen}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild against a running ledger: %v\n%s", err, stderr.String())
	}
	deadline := time.Now().Add(15 * time.Second)
	for m.live.Path() == oldPath {
		if time.Now().After(deadline) {
			t.Fatal("the running ledger did not switch to the rebuilt store")
		}
		// The API keeps answering while the switch happens.
		if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
			t.Fatalf("during rebuild: %d %s", r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("after the switch: %d %s", r.status, r.raw)
	}
}
