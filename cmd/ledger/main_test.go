package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events/jetstream"
)

const adminToken = "adm_test_token_0123456789abcdef"

// startMain runs the whole ledger in-process on free ports with its data in dir.
func startMain(t *testing.T, dir string, tweak func(*Config)) *Main {
	t.Helper()
	return startMainWithClock(t, dir, tweak, nil)
}

// startMainWithClock is startMain with the ledger's clock replaced.
func startMainWithClock(t *testing.T, dir string, tweak func(*Config), now func() time.Time) *Main {
	t.Helper()
	cfg, err := loadConfig("serve", nil, func(k string) string {
		return map[string]string{
			"LEDGER_DATA_DIR":    dir,
			"LEDGER_HTTP_ADDR":   "127.0.0.1:0",
			"LEDGER_NATS_LISTEN": "off",
			"LEDGER_ADMIN_TOKEN": adminToken,
			"LEDGER_SYNC_ALWAYS": "false",
			// Tests drive the API harder than a client may; TestRateLimits turns the limits on.
			"LEDGER_RATE_LIMIT":    "0",
			"LEDGER_RATE_LIMIT_IP": "0",
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

type client struct {
	t    *testing.T
	base string
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c client) do(method, path, auth string, body io.Reader) response {
	c.t.Helper()
	return c.send(method, path, map[string]string{"Authorization": auth}, body)
}

// send makes one request with the given headers (empty values are left out) and decodes the answer.
func (c client) send(method, path string, headers map[string]string, body io.Reader) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func createStore(t *testing.T, c client, slug string) (id, live, test string) {
	t.Helper()
	r := c.do("POST", "/v1/admin/stores", "Bearer "+adminToken,
		strings.NewReader(fmt.Sprintf(`{"name":"Shop %s","slug":%q,"service_fee_percent":"5"}`, slug, slug)))
	if r.status != http.StatusCreated {
		t.Fatalf("create store: %d %s", r.status, r.raw)
	}
	if r.header.Get("Ledger-Position") == "" {
		t.Error("create store: no Ledger-Position header")
	}
	d := r.body["data"].(map[string]any)
	keys := d["keys"].(map[string]any)
	return d["store"].(map[string]any)["id"].(string), keys["live"].(string), keys["test"].(string)
}

func TestStoresKeysAndScopes(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}

	idA, liveA, testA := createStore(t, c, "shop-a")
	idB, liveB, _ := createStore(t, c, "shop-b")
	if !strings.HasPrefix(liveA, "sk_live_") || !strings.HasPrefix(testA, "sk_test_") || !strings.HasPrefix(idA, "str_") {
		t.Fatalf("unexpected id or key shapes: %s %s %s", idA, liveA, testA)
	}

	tests := []struct {
		name, auth     string
		status         int
		wantStore      string
		wantMode, code string
	}{
		{"bearer live key", "Bearer " + liveA, 200, idA, "live", ""},
		{"bearer test key", "Bearer " + testA, 200, idA, "test", ""},
		{"basic auth, key as user", "Basic " + basic(liveB+":"), 200, idB, "live", ""},
		{"no credentials", "", 401, "", "", "unauthenticated"},
		{"unknown key", "Bearer sk_live_" + strings.Repeat("x", 40), 401, "", "", "unauthenticated"},
		{"test prefix on a live key", "Bearer sk_test_" + strings.TrimPrefix(liveA, "sk_live_"), 401, "", "", "unauthenticated"},
		{"basic with a password", "Basic " + basic(liveA+":pw"), 401, "", "", "unauthenticated"},
		{"admin token on the store API", "Bearer " + adminToken, 401, "", "", "unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("GET", "/v1/store", tt.auth, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if tt.code != "" {
				if r.errorCode() != tt.code {
					t.Fatalf("error code %q, want %q", r.errorCode(), tt.code)
				}
				return
			}
			d := r.body["data"].(map[string]any)
			if d["id"] != tt.wantStore || d["mode"] != tt.wantMode {
				t.Fatalf("got store %v mode %v, want %s %s", d["id"], d["mode"], tt.wantStore, tt.wantMode)
			}
		})
	}
	if r := c.do("GET", "/v1/store", "", nil); r.raw != `{"error":{"code":"unauthenticated","message":"Authentication credentials were not provided."}}`+"\n" {
		t.Errorf("401 body = %s", r.raw)
	}
}

func basic(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAdminBadInput(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "taken")
	admin := "Bearer " + adminToken

	tests := []struct {
		name, auth, body string
		status           int
		code             string
		field            string
	}{
		{"store key on the admin API", "Bearer " + live, `{"name":"x","slug":"x"}`, 403, "forbidden", ""},
		{"no credentials", "", `{"name":"x","slug":"x"}`, 401, "unauthenticated", ""},
		{"wrong admin token", "Bearer adm_wrong_token_0123456789abcdef", `{"name":"x","slug":"x"}`, 401, "unauthenticated", ""},
		{"malformed JSON", admin, `{"name":"x",`, 400, "invalid_request", ""},
		{"not an object", admin, `[1,2]`, 400, "invalid_request", ""},
		{"empty body", admin, ``, 400, "invalid_request", ""},
		{"unknown field", admin, `{"name":"x","slug":"x","colour":"red"}`, 400, "invalid_request", ""},
		{"field of the wrong type", admin, `{"name":5,"slug":"x"}`, 422, "validation_failed", "name"},
		{"missing name", admin, `{"slug":"x"}`, 422, "validation_failed", "name"},
		{"bad slug", admin, `{"name":"x","slug":"Not A Slug"}`, 422, "validation_failed", "slug"},
		{"fee over 100", admin, `{"name":"x","slug":"x","service_fee_percent":"100.5"}`, 422, "validation_failed", "service_fee_percent"},
		{"negative delay", admin, `{"name":"x","slug":"x","settlement_delay_days":-1}`, 422, "validation_failed", "settlement_delay_days"},
		{"slug taken", admin, `{"name":"x","slug":"taken"}`, 409, "slug_taken", ""},
		{"body over 1 MiB", admin, `{"name":"` + strings.Repeat("a", 1<<20) + `","slug":"big"}`, 413, "payload_too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("POST", "/v1/admin/stores", tt.auth, strings.NewReader(tt.body))
			if r.status != tt.status || r.errorCode() != tt.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.errorCode(), tt.status, tt.code, r.raw)
			}
			if tt.field != "" {
				fields := r.body["error"].(map[string]any)["fields"].(map[string]any)
				if _, ok := fields[tt.field]; !ok {
					t.Fatalf("fields %v do not name %q", fields, tt.field)
				}
			}
		})
	}
	// Nothing of the rejected requests reached the log: only the one store's two events.
	if seq, err := m.events.LastSequence(context.Background()); err != nil || seq != 2 {
		t.Fatalf("stream holds %d events (%v), want 2", seq, err)
	}
}

func TestRestartKeepsStoresAndKeys(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, nil)
	c := client{t, "http://" + m.HTTPAddr}
	id, live, _ := createStore(t, c, "persistent")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = startMain(t, dir, nil)
	c = client{t, "http://" + m.HTTPAddr}
	r := c.do("GET", "/v1/store", "Bearer "+live, nil)
	if r.status != 200 || r.body["data"].(map[string]any)["id"] != id {
		t.Fatalf("after restart: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/v1/admin/stores", "Bearer "+adminToken, strings.NewReader(`{"name":"x","slug":"persistent"}`)); r.status != 409 {
		t.Fatalf("slug reservation lost on restart: %d %s", r.status, r.raw)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	createStore(t, c, "metered")
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := c.do("GET", p, "", nil); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.raw)
		}
	}
	r := c.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`ledger_appends_total{outcome="ok"} 1`,
		`ledger_appended_events_total 2`,
		`ledger_projection_lag_events 0`,
		`ledger_projection_applied_events_total 2`,
		`ledger_http_request_duration_seconds_count{code="201",method="POST",route="POST /v1/admin/stores"} 1`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(r.raw, adminToken) {
		t.Error("/metrics leaks the admin token")
	}
}

func TestUnusableDataDirAndUnreachableNATS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "data")
	cfg := Config{}
	cfg.setDefaults(func(string) string { return "" })
	cfg.DataDir, cfg.HTTPAddr = bad, "127.0.0.1:0"
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("unusable data dir: err = %v, want a message naming %s", err, bad)
	}

	cfg.DataDir, cfg.NATSURL = t.TempDir(), "nats://127.0.0.1:1"
	m = &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	start := time.Now()
	err = m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "cannot reach NATS at nats://127.0.0.1:1") {
		t.Fatalf("unreachable NATS: err = %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("giving up took %s; retries must be bounded", time.Since(start))
	}
}

func TestExternalNATS(t *testing.T) {
	ext, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "external"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown()
	m := startMain(t, t.TempDir(), func(c *Config) { c.NATSURL = ext.ClientURL() })
	if m.ns != nil {
		t.Fatal("an embedded server started although LEDGER_NATS_URL was set")
	}
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "external")
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// The events are in the external server's LEDGER stream.
	nc, err := nats.Connect(ext.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := natsjs.New(nc)
	st, err := js.Stream(context.Background(), "LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("external LEDGER stream holds %d messages, want 2", n)
	}
}

// TestBinarySIGTERM runs the real binary: it logs its address when ready, drains on SIGTERM and exits 0,
// and a second start on the same data dir finds the store where it was.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := ledgerBinary(t)
	dir := t.TempDir()
	start := func() (*exec.Cmd, string, *syncBuffer) { return runLedger(t, bin, dir) }
	cmd, addr, logs := start()
	c := client{t, "http://" + addr}
	_, live, _ := createStore(t, c, "signalled")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), live) {
		t.Fatal("a store key appeared in the logs")
	}

	cmd, addr, _ = start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	c = client{t, "http://" + addr}
	if r := c.do("GET", "/v1/store", "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("after restart: %d %s", r.status, r.raw)
	}
}

func TestConcurrentStoresWithOneSlug(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	const racers = 20
	statuses := make(chan int, racers)
	for i := 0; i < racers; i++ {
		go func() {
			req, _ := http.NewRequest("POST", c.base+"/v1/admin/stores", strings.NewReader(`{"name":"Race","slug":"contested"}`))
			req.Header.Set("Authorization", "Bearer "+adminToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	count := map[int]int{}
	for i := 0; i < racers; i++ {
		count[<-statuses]++
	}
	if count[201] != 1 || count[409] != racers-1 {
		t.Fatalf("statuses %v; want one 201 and %d 409s", count, racers-1)
	}
}

func TestReadYourWritesAndReadiness(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "ryw")
	get := func(minPos string) response {
		req, _ := http.NewRequest("GET", c.base+"/v1/store", nil)
		req.Header.Set("Authorization", "Bearer "+live)
		req.Header.Set("Ledger-Min-Position", minPos)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
		_ = json.Unmarshal(raw, &r.body)
		return r
	}
	if r := get("2"); r.status != 200 {
		t.Fatalf("Ledger-Min-Position at the projected position: %d %s", r.status, r.raw)
	}
	if r := get("soon"); r.status != 400 || !strings.Contains(r.raw, "Ledger-Min-Position") {
		t.Fatalf("bad Ledger-Min-Position: %d %s", r.status, r.raw)
	}

	// An event the projection cannot decode stops it (it never skips what it does not understand):
	// readiness fails and a read that needs the later position is refused after its bounded wait.
	msg := nats.NewMsg("ledger.live.str_x.sale.sal_x.teleported")
	msg.Header.Set("ce-specversion", "1.0")
	msg.Header.Set("ce-type", "teleported")
	msg.Data = []byte(`{}`)
	if err := m.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.do("GET", "/readyz", "", nil)
		if r.status == 503 {
			if r.body["status"] != "not_ready" {
				t.Fatalf("readyz body %s", r.raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d with a failing projection: %s", r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := get("3"); r.status != 503 || r.errorCode() != "projection_lagging" || r.header.Get("Retry-After") == "" {
		t.Fatalf("read past a stuck projection: %d %s", r.status, r.raw)
	}
}

// A first start that fails (the NATS port is taken) keeps no admin token: the next, successful start
// generates one, logs it, and it works. The ready line names the process.
func TestFirstStartFailureKeepsNoAdminToken(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	start := func(listen string) (*Main, string, error) {
		cfg, err := loadConfig("serve", nil, env(map[string]string{"LEDGER_DATA_DIR": dir, "LEDGER_HTTP_ADDR": "127.0.0.1:0",
			"LEDGER_NATS_LISTEN": listen, "LEDGER_SYNC_ALWAYS": "false"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		err = m.Run(context.Background())
		if err != nil {
			m.Close()
		} else {
			t.Cleanup(func() { m.Close() })
		}
		return m, logs.String(), err
	}

	_, logs, err := start(taken.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken NATS port: %v", err)
	}
	if strings.Contains(logs, "admin_token=") {
		t.Errorf("a failed start logged an admin token:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, adminTokenFile)); !os.IsNotExist(err) {
		t.Fatalf("a failed start kept an admin token hash: %v", err)
	}
	taken.Close()

	m, logs, err := start("127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	token := regexp.MustCompile(`admin_token=(adm_\w+)`).FindStringSubmatch(logs)
	if token == nil {
		t.Fatalf("the first successful start logged no admin token:\n%s", logs)
	}
	if !regexp.MustCompile(`msg="ledger ready" .*pid=` + strconv.Itoa(os.Getpid()) + ` `).MatchString(logs) {
		t.Errorf("the ready line does not name the process %d:\n%s", os.Getpid(), logs)
	}
	c := client{t, "http://" + m.HTTPAddr}
	if r := c.do("POST", "/v1/admin/stores", "Bearer "+token[1], strings.NewReader(`{"name":"First","slug":"first"}`)); r.status != 201 {
		t.Fatalf("the logged admin token: %d %s", r.status, r.raw)
	}
}

// A shutdown that runs out of time says which requests were still running and that they were cut, and
// cuts them.
func TestShutdownTimeoutNamesWhatWasCut(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { c.ShutdownTimeout = 300 * time.Millisecond })
	_, live, _ := createStore(t, client{t, "http://" + m.HTTPAddr}, "slowbody")
	conn, err := net.Dial("tcp", m.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body that never arrives: the request stays in flight until the read timeout (15 s by default).
	fmt.Fprintf(conn, "POST /v1/customers HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", live)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(m.inFlight.describe(time.Now()), "1 request") {
		if time.Now().After(deadline) {
			t.Fatalf("the request never arrived: %s", m.inFlight.describe(time.Now()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	err = m.Close()
	if err == nil {
		t.Fatal("shutdown with a request still running reported no error")
	}
	for _, want := range []string{"LEDGER_SHUTDOWN_TIMEOUT (300ms)", "POST /v1/customers", "cut"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("shutdown error does not say %q: %v", want, err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the cut connection: %v", err)
	}
}

// TestDataDirFilesArePrivate: every file the ledger itself creates in its data dir (the read store and
// its WAL and shared-memory files, CURRENT, the lock, the admin token hash, NATS seeds) is readable by
// its owner only, and a read store left group- or world-readable by an older version is made so at the
// next start. The embedded JetStream's own files are nats-server's (0640 in 0750 directories).
func TestDataDirFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	check := func() {
		t.Helper()
		n := 0
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "jetstream" {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			n++
			if perm := info.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s is %v, want no access beyond its owner", path, perm)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 4 {
			t.Fatalf("found %d files in the data dir; the walk missed the read store", n)
		}
	}
	m := startMain(t, dir, nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "private")
	mustCustomer(t, c, live, `{"email":"p@example.com","first_name":"Pat"}`)
	check()
	m.Close()

	reads, _ := filepath.Glob(filepath.Join(dir, readDir, "*.db*"))
	if len(reads) == 0 {
		t.Fatal("no read store file under read/")
	}
	for _, p := range reads {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startMain(t, dir, nil)
	check()
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ledgerBinary builds the ledger once per test run (for the tests that run the real binary: signals,
// kill -9) and returns its path; the build lives in a temp dir removed when the run ends (at the latest
// by the OS: tests have no TestMain to clean up after).
func ledgerBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ledger-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ledger")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// runLedger starts the binary bin serving data dir dir (HTTP and NATS on free ports, the test admin
// token, env added to the environment) and returns once it logged that it is ready, with its HTTP
// address and its logs so far and to come.
func runLedger(t *testing.T, bin, dir string, env ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1", "--data-dir", dir)
	cmd.Env = append(append(os.Environ(), "LEDGER_ADMIN_TOKEN="+adminToken), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ready := regexp.MustCompile(`msg="ledger ready" http=http://(\S+)`)
	sc := bufio.NewScanner(stderr)
	addr := make(chan string, 1)
	go func() {
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a, logs
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no ready line; logs:\n%s", logs.String())
	}
	return nil, "", nil
}
