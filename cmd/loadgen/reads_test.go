package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	testAdminToken = "adm_loadgen_test_token_0123456789abcdef"
	testSecret     = "whsec_c2VjcmV0LWtleS1mb3ItbG9hZGdlbi0wMTIzNDU2Nzg5"
)

// startLedger builds and runs the real ledger binary on a temp data dir and returns its base URL.
func startLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ledger")
	if out, err := exec.Command("go", "build", "-o", bin, "../ledger").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0", "--nats-listen", "off", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "LEDGER_ADMIN_TOKEN="+testAdminToken, "LEDGER_RATE_LIMIT=0", "LEDGER_SYNC_ALWAYS=false",
		"LEDGER_GATEWAY_SECRETS=standard="+testSecret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := regexp.MustCompile(`msg="ledger ready" http=(\S+)`)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := ready.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1]
		}
	}
	t.Fatal("the ledger exited before it was ready")
	return ""
}

// TestReadsMode runs the reads mode against a real ledger with a small history: every read and every
// delivery answered, and every sale paid during the run completed.
func TestReadsMode(t *testing.T) {
	base := startLedger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := config{url: base, adminToken: testAdminToken, secret: testSecret, concurrency: 8, duplicates: 0.2, reordered: 0.3,
		readers: 4, webhookRate: 40, duration: time.Second, seed: 1}
	key, err := createStore(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c.key = key
	res := drive(ctx, 8, 60, func(i int) error {
		body := fmt.Sprintf(`{"product":{"id":"prd_load","name":"Load","type":"course","price":{"amount":%d,"currency":"USD"}},"customer":{"email":"load%d@example.com"}}`, 1000+i, i%7)
		return call(ctx, "POST", base+"/v1/checkouts", "Bearer "+key, nil, body, 201, nil)
	})
	if res.errors > 0 {
		t.Fatal(res.firstErr)
	}
	var out bytes.Buffer
	if err := runReads(ctx, c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"reads ", "  first", "  customer", "  dates", "  latency", "webhooks ", "checked    all"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output has no %q line:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
	if !regexp.MustCompile(`(?m)^reads +\d+ requests .* errors 0$`).MatchString(out.String()) {
		t.Errorf("reads failed:\n%s", out.String())
	}

	// Open loop: the readers share a rate.
	c.readRate, c.webhookRate = 100, 20
	out.Reset()
	if err := runReads(ctx, c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`(?m)^reads +\d+ requests .* errors 0$`).MatchString(out.String()) || !strings.Contains(out.String(), "100 reads/s between them") {
		t.Errorf("open-loop reads:\n%s", out.String())
	}

	// Asking for more deliveries than there are sales awaiting payment is refused up front.
	c.webhookRate, c.duration = 1000, time.Minute
	if err := runReads(ctx, c, &out); err == nil || !strings.Contains(err.Error(), "awaiting payment") {
		t.Errorf("too few sales: %v", err)
	}
}
