// Command loadgen drives realistic traffic at a running ledger over HTTP — checkouts, then signed
// Standard Webhooks payment deliveries with duplicates and out-of-order arrivals — and prints throughput
// and latency percentiles, then checks that every paid sale ended completed. It only talks to the URL
// it is given (loopback by default) and stops by itself.
//
// The ledger must run without its per-key rate limit (LEDGER_RATE_LIMIT=0): the harness sends everything
// with one key, and would otherwise measure the limiter (it stops at the first 429 and says so).
//
//	LEDGER_RATE_LIMIT=0 LEDGER_GATEWAY_SECRETS=standard=whsec_c2VjcmV0LWtleS1mb3ItbG9hZGdlbi0wMTIzNDU2Nzg5 go run ./cmd/ledger
//	go run ./cmd/loadgen -admin-token <token from the ledger's log> -sales 5000 -concurrency 64
//
// With -readers N it runs the reads mode instead (reads.go): against a store that already has a history
// (-key), N readers call GET /v1/sales with a dashboard's filters while payment deliveries for the
// store's sales awaiting payment flow at -webhook-rate per second, for -duration; it prints the reads'
// p50/p90/p99 (overall and by query shape) and the achieved webhook rate (docs/benchmarks.md, "At
// 1,000,000 sales"):
//
//	go run ./cmd/loadgen -key sk_live_... -readers 64 -webhook-rate 1000 -duration 60s
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type config struct {
	url, adminToken, secret string
	sales, concurrency      int
	duplicates, reordered   float64
	timeout                 time.Duration

	// The reads mode (readers > 0): reads.go.
	key         string
	readers     int
	webhookRate float64
	duration    time.Duration
	seed        int64
	readRate    float64
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "the ledger's base URL")
	flag.StringVar(&c.adminToken, "admin-token", os.Getenv("LEDGER_ADMIN_TOKEN"), "admin token, to create the store the load runs in")
	flag.StringVar(&c.secret, "secret", "whsec_c2VjcmV0LWtleS1mb3ItbG9hZGdlbi0wMTIzNDU2Nzg5", "the ledger's standard gateway secret")
	flag.IntVar(&c.sales, "sales", 2000, "checkouts to create; each gets a pending and a succeeded delivery")
	flag.IntVar(&c.concurrency, "concurrency", 64, "requests in flight (reads mode: the webhook senders)")
	flag.Float64Var(&c.duplicates, "duplicates", 0.2, "fraction of deliveries sent twice")
	flag.Float64Var(&c.reordered, "reordered", 0.3, "fraction of sales whose succeeded delivery is sent before their pending one")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "stop after this long whatever happens")
	flag.IntVar(&c.readers, "readers", 0, "reads mode: this many concurrent GET /v1/sales readers (in turn: first page, status, a cursor page, customer_id, an email-prefix search, a month date range) against the store of -key, while its sales awaiting payment get paid at -webhook-rate; 0: the default mode (checkouts, then webhooks)")
	flag.StringVar(&c.key, "key", "", "reads mode: the API key of the store to read and pay (a store with history, e.g. from seed.json of cmd/ledger's BenchmarkMillionStart)")
	flag.Float64Var(&c.webhookRate, "webhook-rate", 1000, "reads mode: payment deliveries per second, a pending and a succeeded one per sale awaiting payment (0: reads alone), sent by -concurrency senders")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "reads mode: how long the readers and the deliveries run")
	flag.Float64Var(&c.readRate, "read-rate", 0, "reads mode: the readers share this many reads per second, each read sent at its time whatever the answers before (open loop); 0: each reader reads back to back (closed loop)")
	flag.Int64Var(&c.seed, "seed", 1, "reads mode: seed of the readers' choice of query parameters")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `Usage: loadgen [flags]

Default mode: creates a store, -sales checkouts, then a signed pending and succeeded Standard Webhooks
delivery per sale (-duplicates, -reordered), -concurrency requests in flight; prints throughput and
latency per phase and the ledger's CPU per request, and checks that every sale completed.

Reads mode (-readers N): against the store of -key, which already has its sales, N readers call
GET /v1/sales for -duration (in turn: first page, status, a cursor page, customer_id, an email-prefix
search, a month date range) while payment deliveries for the store's sales awaiting payment are sent at
-webhook-rate per second (-read-rate: the readers share that many reads per second instead of reading
back to back); prints the reads' p50/p90/p99 overall and by query, the achieved webhook rate
and the ledger's CPU, and checks that every sale paid in the run completed.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	do := run
	if c.readers > 0 {
		do = runReads
	}
	if err := do(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}

func run(ctx context.Context, c config, out io.Writer) error {
	key, err := createStore(ctx, c)
	if err != nil {
		return err
	}
	cpu0, cpuErr := ledgerCPU(ctx, c.url)
	// Phase 1: checkouts.
	ids := make([]string, c.sales)
	res := drive(ctx, c.concurrency, c.sales, func(i int) error {
		body := fmt.Sprintf(`{"product":{"id":"prd_load","name":"Load","type":"course","price":{"amount":%d,"currency":"USD"}},"customer":{"email":"load%d@example.com"}}`, 1000+i%500, i%1000)
		var sale struct {
			Data struct{ ID string } `json:"data"`
		}
		if err := call(ctx, "POST", c.url+"/v1/checkouts", "Bearer "+key, nil, body, 201, &sale); err != nil {
			return err
		}
		ids[i] = sale.Data.ID
		return nil
	})
	res.print(out, "checkouts")
	if res.errors > 0 {
		return fmt.Errorf("%d checkouts failed (first: %v)", res.errors, res.firstErr)
	}
	cpu1, err := ledgerCPU(ctx, c.url)
	if cpuErr == nil && err == nil {
		fmt.Fprintf(out, "ledger CPU %8.0f µs per checkout (process_cpu_seconds_total, %0.2f s for %d)\n",
			(cpu1-cpu0)/float64(c.sales)*1e6, cpu1-cpu0, c.sales)
	} else {
		cpuErr = errors.Join(cpuErr, err)
	}
	// Phase 2: deliveries, shuffled, with duplicates and succeeded-before-pending.
	toPay := make([]payable, len(ids))
	for i, sale := range ids {
		toPay[i] = payable{sale, int64(1000 + i%500)}
	}
	ds := deliveriesFor(toPay, "", c, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	secret, err := base64.StdEncoding.DecodeString(c.secret[len("whsec_"):])
	if err != nil {
		return fmt.Errorf("-secret is not whsec_<base64>: %w", err)
	}
	sent := time.Now()
	res = drive(ctx, c.concurrency, len(ds), func(i int) error {
		return sendDelivery(ctx, c.url, secret, ds[i])
	})
	res.print(out, "webhooks")
	if res.errors > 0 {
		return fmt.Errorf("%d webhooks failed (first: %v)", res.errors, res.firstErr)
	}
	// Phase 3: every sale must end completed, whatever the order and repetition of its deliveries. While
	// waiting, one cheap request a poll (is any sale still awaiting payment?); then one full count.
	start := time.Now()
	for {
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := call(ctx, "GET", c.url+"/v1/sales?status=awaiting_payment&per_page=1", "Bearer "+key, nil, "", 200, &page); err != nil {
			return err
		}
		if len(page.Data) == 0 {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sales still awaiting payment: %w", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	all, lag := time.Since(sent), time.Since(start)
	done, err := countCompleted(ctx, c.url, key)
	if err != nil {
		return err
	}
	if done != c.sales {
		return fmt.Errorf("%d of %d sales completed; the others are not awaiting payment either", done, c.sales)
	}
	fmt.Fprintf(out, "all %d sales completed %s after the last webhook was answered\n", c.sales, lag.Round(time.Millisecond))
	fmt.Fprintf(out, "sustained  %6d deliveries recorded and applied in %7s  %8.0f deliveries/s (first webhook sent to last sale completed)\n",
		len(ds), all.Round(time.Millisecond), float64(len(ds))/all.Seconds())
	if cpu2, err := ledgerCPU(ctx, c.url); cpuErr == nil && err == nil {
		fmt.Fprintf(out, "ledger CPU %8.0f µs per webhook, recorded and applied (%0.2f s for %d, the polls for the last completion and the final count of completed sales included)\n",
			(cpu2-cpu1)/float64(len(ds))*1e6, cpu2-cpu1, len(ds))
	} else {
		fmt.Fprintf(out, "ledger CPU not measured: %v\n", errors.Join(cpuErr, err))
	}
	return nil
}

// ledgerCPU reads the ledger process's CPU seconds so far from its /metrics (the Prometheus process
// collector's process_cpu_seconds_total; Linux only): the loadgen may run elsewhere than the ledger.
func ledgerCPU(ctx context.Context, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("/metrics: %w", err)
	}
	f, ok := families["process_cpu_seconds_total"]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, errors.New("/metrics has no process_cpu_seconds_total")
	}
	return f.GetMetric()[0].GetCounter().GetValue(), nil
}

func payment(kind, sale string, amount int) string {
	return fmt.Sprintf(`{"type":%q,"data":{"sale_id":%q,"transaction_id":"txn_%s","amount":{"amount":%d,"currency":"USD"}}}`, kind, sale, sale, amount)
}

func createStore(ctx context.Context, c config) (string, error) {
	if c.adminToken == "" {
		return "", errors.New("-admin-token (or LEDGER_ADMIN_TOKEN) is required to create the load's store")
	}
	var created struct {
		Data struct {
			Keys struct{ Test string } `json:"keys"`
		} `json:"data"`
	}
	body := fmt.Sprintf(`{"name":"Load test","slug":"load-%d","service_fee_percent":"5"}`, time.Now().UnixNano())
	err := call(ctx, "POST", c.url+"/v1/admin/stores", "Bearer "+c.adminToken, nil, body, 201, &created)
	return created.Data.Keys.Test, err
}

// countCompleted walks GET /v1/sales?status=completed with its cursor.
func countCompleted(ctx context.Context, base, key string) (int, error) {
	n, cursor := 0, ""
	for {
		var page struct {
			Data       []json.RawMessage `json:"data"`
			Pagination struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"pagination"`
		}
		u := base + "/v1/sales?status=completed&per_page=100"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if err := call(ctx, "GET", u, "Bearer "+key, nil, "", 200, &page); err != nil {
			return n, err
		}
		n += len(page.Data)
		if page.Pagination.NextCursor == nil {
			return n, nil
		}
		cursor = *page.Pagination.NextCursor
	}
}

func call(ctx context.Context, method, url, auth string, headers map[string]string, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("%s %s: 429 rate limited: start the ledger with LEDGER_RATE_LIMIT=0 so the harness measures the ledger, not its rate limit", method, url)
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type result struct {
	n, errors int
	firstErr  error
	elapsed   time.Duration
	latencies []time.Duration
}

// drive runs n requests with the given concurrency and records each one's latency.
func drive(ctx context.Context, concurrency, n int, do func(i int) error) result {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      = result{n: n, latencies: make([]time.Duration, 0, n)}
		wg       sync.WaitGroup
		start    = time.Now()
		failures atomic.Int64
	)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := do(i)
				d := time.Since(t0)
				mu.Lock()
				res.latencies = append(res.latencies, d)
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				}
				mu.Unlock()
				if err != nil && failures.Add(1) > 100 {
					return // the server is down or misconfigured: stop hammering it
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r result) print(out io.Writer, what string) {
	slices.Sort(r.latencies)
	q := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "%-10s %6d requests in %7s  %8.0f req/s  p50 %-9s p90 %-9s p99 %-9s max %-9s errors %d\n",
		what, len(r.latencies), r.elapsed.Round(time.Millisecond), float64(len(r.latencies))/r.elapsed.Seconds(),
		q(0.50), q(0.90), q(0.99), q(1), r.errors)
}
