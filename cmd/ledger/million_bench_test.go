package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkMillionStart measures the real binary over a history of LEDGER_BENCH_SALES sales (default
// 1,000,000; about 4.9 events each): how long its first start takes to fold the history, how long a
// later start takes until /readyz answers ready, and the process's resident memory. Run it with
// -benchtime 1x (b.N is not used):
//
//	go test -run '^$' -bench MillionStart -benchtime 1x -timeout 60m ./cmd/ledger/
//
// The seeded history (seedSales) is kept in $TMPDIR/ledger-bench-million-<sales>-gen1/ with seed.json
// (the store's keys, for cmd/loadgen), and the data dir after the first start (folded) beside it in
// ...-folded/; later invocations reuse both (LEDGER_BENCH_SEED_ONLY=1 stops after the seed, and
// LEDGER_BENCH_STARTS=0 after the first start, for short runs). Each invocation copies the folded data dir once and starts
// the binary LEDGER_BENCH_STARTS times (default 5) on the copy, one after another.
func BenchmarkMillionStart(b *testing.B) {
	sales := 1_000_000
	if v := os.Getenv("LEDGER_BENCH_SALES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		sales = n
	}
	starts := 5
	if v := os.Getenv("LEDGER_BENCH_STARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		starts = n
	}
	bin := ledgerBinary(b)
	base := filepath.Join(os.TempDir(), fmt.Sprintf("ledger-bench-million-%d-gen1", sales))
	seedDir, foldedDir := base, base+"-folded"
	info := seedOnce(b, seedDir, sales)
	b.Logf("seed: %d sales, %d events, statuses %v (built in %s)", sales, info.Events, info.ByStatus, info.Took)
	if os.Getenv("LEDGER_BENCH_SEED_ONLY") != "" {
		return // each step holds the machine for minutes: run them one invocation at a time
	}

	if _, err := os.Stat(filepath.Join(foldedDir, "data")); err != nil {
		tmp := foldedDir + ".tmp"
		_ = os.RemoveAll(tmp)
		copyDir(b, filepath.Join(seedDir, "data"), filepath.Join(tmp, "data"))
		r := startTimed(b, bin, filepath.Join(tmp, "data"))
		caught := r.waitLag(b, 0)
		b.Logf("first start (fold): ready line %s, /readyz ready %s, projection caught up %s (%.0f events/s); RSS %d MB, peak %d MB",
			r.line, r.ready, caught, float64(info.LastSeq)/caught.Seconds(), r.rss(b)>>20, r.hwm(b)>>20)
		r.stop(b)
		if err := os.Rename(tmp, foldedDir); err != nil {
			b.Fatal(err)
		}
	}

	if starts == 0 {
		return
	}
	work := filepath.Join(b.TempDir(), "data")
	copyDir(b, filepath.Join(foldedDir, "data"), work)
	var readies, rssReady, rssReads []float64
	for i := range starts {
		r := startTimed(b, bin, work)
		atReady := r.rss(b)
		// A dashboard's worth of reads: first pages, by status, with the cursor.
		for j := range 2000 {
			q := []string{"", "?status=completed", "?status=awaiting_payment", "?per_page=100"}[j%4]
			if res, err := r.get("/v1/sales"+q, info.LiveKey); err != nil || res != 200 {
				b.Fatalf("GET /v1/sales%s: %d %v", q, res, err)
			}
		}
		afterReads, peak := r.rss(b), r.hwm(b)
		b.Logf("start %d: ready line %s, /readyz ready %s; RSS at ready %d MB, after 2,000 reads %d MB, peak %d MB",
			i+1, r.line, r.ready, atReady>>20, afterReads>>20, peak>>20)
		readies = append(readies, r.ready.Seconds())
		rssReady = append(rssReady, float64(atReady>>20))
		rssReads = append(rssReads, float64(afterReads>>20))
		r.stop(b)
	}
	b.ReportMetric(median(readies), "s-to-ready")
	b.ReportMetric(median(rssReady), "MB-RSS-ready")
	b.ReportMetric(median(rssReads), "MB-RSS-reads")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// seedOnce returns the seed in dir, making it first if dir holds none.
func seedOnce(b *testing.B, dir string, sales int) seedInfo {
	var info seedInfo
	if raw, err := os.ReadFile(filepath.Join(dir, "seed.json")); err == nil {
		if err := json.Unmarshal(raw, &info); err != nil {
			b.Fatal(err)
		}
		return info
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "data"), 0o750); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	info, err := seedSales(context.Background(), seedConfig{DataDir: filepath.Join(tmp, "data"), Sales: sales,
		Customers: max(1, sales/5), Span: 180 * 24 * time.Hour, Now: time.Now(), Seed: 12,
		Progress: func(n int) {
			if n%1_000_000 < 100_000 {
				b.Logf("seeded %d events in %s", n, time.Since(start).Round(time.Second))
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "seed.json"), raw, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	return info
}

func copyDir(b *testing.B, from, to string) {
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	_ = os.Remove(filepath.Join(to, lockFile))
}

// timedLedger is the binary started by startTimed.
type timedLedger struct {
	cmd         *exec.Cmd
	addr        string
	started     time.Time
	line, ready time.Duration // from the start to the ready log line, to /readyz answering 200
}

// startTimed starts the binary on dir and returns once /readyz answered ready.
func startTimed(b *testing.B, bin, dir string) *timedLedger {
	cmd := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1", "--data-dir", dir)
	cmd.Env = append(os.Environ(), "LEDGER_ADMIN_TOKEN="+adminToken, "LEDGER_RATE_LIMIT=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	r := &timedLedger{cmd: cmd, started: time.Now()}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := regexp.MustCompile(`msg="ledger ready" http=http://(\S+)`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			} else if strings.Contains(sc.Text(), "level=ERROR") {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
		}
	}()
	select {
	case r.addr = <-addr:
		r.line = time.Since(r.started)
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		b.Fatal("no ready line within 10 minutes")
	}
	for {
		if code, _, err := r.readyz(); err == nil && code == 200 {
			r.ready = time.Since(r.started)
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *timedLedger) readyz() (int, int64, error) {
	res, err := http.Get("http://" + r.addr + "/readyz")
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	var body struct {
		Lag int64 `json:"projection_lag"`
	}
	err = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body.Lag, err
}

// waitLag waits until the projection is at most lag events behind and returns the time since the start.
func (r *timedLedger) waitLag(b *testing.B, lag int64) time.Duration {
	for {
		if code, l, err := r.readyz(); err == nil && code == 200 && l <= lag {
			return time.Since(r.started)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *timedLedger) get(path, key string) (int, error) {
	req, _ := http.NewRequest("GET", "http://"+r.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = bufio.NewReader(res.Body).WriteTo(discard{})
	return res.StatusCode, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// rss and hwm read the process's resident memory now and at its peak, in bytes.
func (r *timedLedger) rss(b *testing.B) int64 { return procStatus(b, r.cmd.Process.Pid, "VmRSS:") }
func (r *timedLedger) hwm(b *testing.B) int64 { return procStatus(b, r.cmd.Process.Pid, "VmHWM:") }

func procStatus(b *testing.B, pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// stop sends SIGTERM and waits for the exit.
func (r *timedLedger) stop(b *testing.B) {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	if err := r.cmd.Wait(); err != nil {
		b.Errorf("ledger exit: %v", err)
	}
}
