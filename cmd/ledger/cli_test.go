package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runCLI runs one ledger command line in-process and returns its stdout and stderr.
func runCLI(t *testing.T, e map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, env(e), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// listedCommands parses `ledger help`: the names under "commands:".
func listedCommands(t *testing.T, out string) []string {
	t.Helper()
	var names []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "commands:":
			in = true
		case in && strings.HasPrefix(line, "  "):
			names = append(names, strings.Fields(line)[0])
		case in:
			in = false
		}
	}
	if len(names) == 0 {
		t.Fatalf("help lists no commands:\n%s", out)
	}
	return names
}

// docCommands finds every `ledger <command>` the README and docs/ tell a reader to run: in sh blocks
// and in inline code.
func docCommands(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	inBlock := regexp.MustCompile(`^\s*(?:\$ )?(?:\./|\S*/)?ledger ([a-z][a-z-]*)\b|go run \./cmd/ledger ([a-z][a-z-]*)\b`)
	inline := regexp.MustCompile("`(?:\\./)?ledger ([a-z][a-z-]*)\\b")
	found := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sh := false
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				sh = !sh && strings.HasPrefix(line, "```sh")
				continue
			}
			re := inline
			if sh {
				re = inBlock
			}
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				name := m[1]
				if len(m) > 2 && m[2] != "" {
					name = m[2]
				}
				if name != "" {
					found[name] = append(found[name], filepath.Base(f)+":"+strconv.Itoa(i+1))
				}
			}
		}
	}
	return found
}

// `ledger help` tells the truth: every command it lists exists and shows its own usage, every command
// that exists is listed, and every `ledger <command>` the docs mention is one of them.
func TestHelpListsEveryCommand(t *testing.T) {
	out, _, err := runCLI(t, nil, "help")
	if err != nil {
		t.Fatal(err)
	}
	listed := listedCommands(t, out)
	isListed := map[string]bool{}
	for _, name := range listed {
		isListed[name] = true
		stdout, stderr, err := runCLI(t, nil, name, "-h")
		if err != nil || !strings.HasPrefix(stdout, "usage: ledger "+name) || stderr != "" {
			t.Errorf("ledger %s -h: err %v, stdout %q, stderr %q", name, err, stdout, stderr)
		}
	}
	for _, c := range commands {
		if !isListed[c.name] {
			t.Errorf("command %q exists but ledger help does not list it", c.name)
		}
	}
	for name, where := range docCommands(t) {
		if !isListed[name] {
			t.Errorf("the docs run \"ledger %s\" (%v), which ledger help does not list", name, where)
		}
	}
	if _, _, err := runCLI(t, nil, "no-such-command"); err == nil || !strings.Contains(err.Error(), `unknown command "no-such-command"`) {
		t.Errorf("an unknown command: %v", err)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		if stdout, _, err := runCLI(t, nil, args...); err != nil || stdout != out {
			t.Errorf("ledger %v: %v\n%s", args, err, stdout)
		}
	}
}

// `ledger <command> -h` prints that command's own flags, to stdout.
func TestCommandFlags(t *testing.T) {
	tests := []struct {
		cmd      string
		has, not []string
	}{
		{"serve", []string{"-http-addr", "-data-dir", "-gateway-secrets", "-admin-token", "-shutdown-timeout"}, []string{"-until", "-json"}},
		{"rebuild", []string{"-data-dir", "-nats-url", "-nats-listen", "-until", "-out", "-log-level"},
			[]string{"-http-addr", "-admin-token", "-gateway-secrets", "-download-ttl", "-public-url", "-sync-always", "-debug-addr"}},
		{"tail", []string{"-data-dir", "-nats-url", "-nats-listen", "-json", "-store", "-type", "-aggregate", "-since", "-follow"},
			[]string{"-http-addr", "-admin-token", "-until"}},
		{"version", []string{"takes no flags"}, []string{"-data-dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			stdout, stderr, err := runCLI(t, nil, tt.cmd, "-h")
			if err != nil || stderr != "" {
				t.Fatalf("err %v, stderr %q", err, stderr)
			}
			for _, want := range tt.has {
				if !strings.Contains(stdout, want) {
					t.Errorf("usage lacks %s:\n%s", want, stdout)
				}
			}
			for _, bad := range tt.not {
				if strings.Contains(stdout, bad+" ") || strings.Contains(stdout, bad+"\n") {
					t.Errorf("usage lists %s, which %s does not use:\n%s", bad, tt.cmd, stdout)
				}
			}
		})
	}
	if _, _, err := runCLI(t, nil, "rebuild", "--http-addr", "x"); err == nil || !strings.Contains(err.Error(), "http-addr") {
		t.Errorf("rebuild with a serve flag: %v", err)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, err := runCLI(t, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ledger github.com/salesledger/ledger", "go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestTail(t *testing.T) {
	const analyticsPW = "analytics-password-0123456789"
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1"; c.AnalyticsPassword = analyticsPW })
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "tailed")
	if r := c.post("/v1/customers", live, "", `{"email":"ada@example.com","first_name":"Ada"}`); r.status != 201 {
		t.Fatal(r.raw)
	}
	if r := c.post("/v1/checkouts", live, "", checkoutBody("grace@example.com", 9900, "")); r.status != 201 {
		t.Fatal(r.raw)
	}
	head, err := m.events.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	listen := strings.TrimPrefix(m.NATSURL, "nats://")
	viaLedger := []string{"tail", "--data-dir", dir, "--nats-listen", listen, "--follow=false"}
	tailOut := func(e map[string]string, args ...string) []string {
		t.Helper()
		stdout, stderr, err := runCLI(t, e, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		if stdout == "" {
			return nil
		}
		return strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	}

	// Text: one line per event, the whole log with --since 1; personal data opened (the ledger user
	// reads the keyring).
	lines := tailOut(nil, append(viaLedger, "--since", "1")...)
	if uint64(len(lines)) != head {
		t.Fatalf("%d lines for %d events:\n%s", len(lines), head, strings.Join(lines, "\n"))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"  1  platform  " + storeID, "store_created", "customer_registered", "email=ada@example.com",
		"sale_started  amount=9900 USD", "customer=grace@example.com", "product=\"Premium Course\""} {
		if !strings.Contains(text, want) {
			t.Errorf("tail output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  1  `).MatchString(lines[0]) {
		t.Errorf("first line %q does not start with the time and sequence 1", lines[0])
	}

	// Default: the last 10 events.
	if n := len(tailOut(nil, viaLedger...)); n != min(int(head), tailLast) {
		t.Errorf("without --since: %d lines, want %d", n, min(int(head), tailLast))
	}

	// JSON, one object per line, filtered by aggregate and by type.
	var seen []tailEvent
	for _, line := range tailOut(nil, append(viaLedger, "--since", "1", "--json", "--aggregate", "customer")...) {
		var ev tailEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not one JSON object: %q: %v", line, err)
		}
		seen = append(seen, ev)
	}
	if len(seen) < 2 {
		t.Fatalf("--aggregate customer: %d events, want the two customers' registrations", len(seen))
	}
	for _, ev := range seen {
		if ev.Aggregate != "customer" || ev.Sequence == 0 || ev.Time == "" || ev.StoreID != storeID {
			t.Errorf("--aggregate customer gave %+v", ev)
		}
		if ev.Type == "customer_registered" && (ev.Personal != "clear" || !strings.Contains(string(ev.Data), "@example.com")) {
			t.Errorf("registration through the ledger user: personal %q, data %s", ev.Personal, ev.Data)
		}
	}
	for _, line := range tailOut(nil, append(viaLedger, "--since", "1", "--type", "sale_started,store_created")...) {
		if !strings.Contains(line, "sale_started") && !strings.Contains(line, "store_created") {
			t.Errorf("--type sale_started,store_created gave %q", line)
		}
	}
	if got := tailOut(nil, append(viaLedger, "--since", "1", "--store", "str_nobody")...); len(got) != 0 {
		t.Errorf("--store of another store: %v", got)
	}
	if got := tailOut(nil, append(viaLedger, "--since", "1h", "--aggregate", "store")...); len(got) != 1 {
		t.Errorf("--since 1h --aggregate store: %v, want the one store", got)
	}
	if got := tailOut(nil, append(viaLedger, "--since", "2100-01-01T00:00:00Z")...); len(got) != 0 {
		t.Errorf("--since in the future: %v", got)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--type", "sale.*"}} {
		if _, _, err := runCLI(t, nil, append(viaLedger, bad...)...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("tail %v: err %v, want one naming %s", bad, err, bad[0])
		}
	}

	// Through a client that cannot read the keyring (the analytics user), personal data stays sealed.
	url := "nats://analytics:" + analyticsPW + "@" + listen
	stdout, stderr, err := runCLI(t, map[string]string{"LEDGER_NATS_URL": url}, "tail", "--since", "1", "--follow=false", "--json")
	if err != nil {
		t.Fatalf("tail as analytics: %v\n%s", err, stderr)
	}
	if strings.Contains(stdout, "ada@example.com") || strings.Contains(stdout, "grace@example.com") {
		t.Fatalf("personal data in the clear without the keyring:\n%s", stdout)
	}
	if !strings.Contains(stdout, `"personal":"sealed"`) || !strings.Contains(stderr, "personal data stays sealed") {
		t.Errorf("sealed personal data not said so:\nstdout %s\nstderr %s", stdout, stderr)
	}

	// Following: new events appear as they are appended, and cancelling ends it cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--data-dir", dir, "--nats-listen", listen, "--aggregate", "store"}, env(nil), &out, &out)
	}()
	otherID, _, _ := createStore(t, c, "followed")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), otherID) {
		if time.Now().After(deadline) {
			t.Fatalf("the followed store never appeared:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not stop when cancelled")
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "/str_") {
			t.Errorf("--aggregate store followed %q", sc.Text())
		}
	}
}

// With no ledger running, tail opens the data dir itself: it stops at the end of the log unless told to
// follow, and while it follows, a ledger started meanwhile is told who holds the data dir.
func TestTailOnAnOfflineDataDir(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, nil)
	createStore(t, client{t, "http://" + m.HTTPAddr}, "offline")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	offline := []string{"tail", "--data-dir", dir, "--nats-listen", "off", "--since", "1"}

	// No --follow: the log up to its end, then it returns by itself.
	done := make(chan error, 1)
	var out, errOut syncBuffer
	go func() { done <- run(context.Background(), offline, env(nil), &out, &errOut) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail: %v\n%s", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("tail on an offline data dir kept following:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "store_created") || !strings.Contains(errOut.String(), "opened the data dir") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}

	// --follow: a warning that it holds the data dir, and a ledger started meanwhile names it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut = syncBuffer{}, syncBuffer{}
	go func() { done <- run(ctx, append(offline, "--follow"), env(nil), &out, &errOut) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "store_created") {
		if time.Now().After(deadline) {
			t.Fatalf("tail --follow showed nothing:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(errOut.String(), "warning") || !strings.Contains(errOut.String(), "LOCK") {
		t.Errorf("tail --follow on the data dir gave no warning:\n%s", errOut.String())
	}
	cfg, err := loadConfig("serve", nil, env(map[string]string{"LEDGER_DATA_DIR": dir, "LEDGER_HTTP_ADDR": "127.0.0.1:0", "LEDGER_NATS_LISTEN": "off"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	second := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler)}
	err = second.Run(context.Background())
	second.Close()
	if want := fmt.Sprintf("pid %d ledger tail", os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("ledger serve beside tail --follow: err %v, want one naming %q", err, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail did not stop when cancelled")
	}
}
