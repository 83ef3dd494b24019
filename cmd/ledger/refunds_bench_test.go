package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRefund measures POST /v1/sales/{id}/refunds end to end against a real ledger (embedded
// JetStream with its defaults, so SyncAlways and group commit on; SQLite read store; HTTP on loopback;
// per-key rate limit off, as for the load harness): the sale's read from the read model, the decision,
// the append of the refund with the sale's sequence as expectation — together with the licence
// revocation of a full refund and the Idempotency-Key's record, one atomic batch — its fsync, the wait
// for the projection and the JSON answer.
//
// Before the timer every sub-benchmark makes its own paid sales in a store of its own: a checkout with
// a file and a licence (as paidSale does) per sale, paid with a signed payment.succeeded Standard
// Webhooks delivery, and waits until each sale is completed in the read model. Every refund request
// carries an Idempotency-Key, as a client that retries should send.
//
//   - c1, c16: one full refund (amount omitted) of each of b.N sales, from 1 or 16 clients: the typical
//     case, every request on another sale. A full refund revokes the sale's licence: three events in one
//     atomic batch.
//   - plain-c16 (a diagnostic): half of each of b.N sales, without Idempotency-Key, 16 clients: one
//     event per refund, which group commit may send as a plain publish; c16 minus this is what the
//     atomic batch of a full refund with a key costs.
//   - same-sale-c16: 16 clients refund the same sale at once, 1/16 of it each (partial refunds of
//     1,000 of a 16,000 sale; the 16th makes it refunded and revokes the licence), then move on to the
//     next sale together: requests i = 16k … 16k+15 go to sale k. Commands on one sale take turns in the
//     ledger (one lock per sale), so this is the contention case.
//
// Each request is timed on the client; p50, p99 and max (nearest rank, ms) and refunds/s (b.N / wall
// time) are reported; ns/op is wall time / b.N. After the timer the benchmark checks that every answer
// was 201 with the amount asked, and reads every sale back (at the highest Ledger-Position answered):
// amount_refunded is the sum of its refunds, the count of refunds is right, and a fully refunded sale
// is refunded with its licence revoked.
//
//	go test -run '^$' -bench Refund -benchtime 2000x ./cmd/ledger/
func BenchmarkRefund(b *testing.B) {
	m := startBenchMain(b, "LEDGER_GATEWAY_SECRETS", "standard=whsec_"+standardKey)
	base := "http://" + m.HTTPAddr
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	b.Cleanup(hc.CloseIdleConnections)
	b.Logf("ledger on %s: SyncAlways=%v GroupCommit=%v NATSReplicas=%d", base, m.Config.SyncAlways, m.Config.GroupCommit, m.Config.NATSReplicas)

	const perSale = 16       // same-sale: refunds per sale, and clients
	const part = int64(1000) // same-sale: each refund
	runs := 0
	for _, tc := range []struct {
		name  string
		conc  int
		same  bool
		plain bool // diagnostic: half of each sale, no Idempotency-Key: one event, no atomic batch
	}{{"c1", 1, false, false}, {"c16", 16, false, false}, {"same-sale-c16", perSale, true, false}, {"plain-c16", 16, false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			runs++
			slug := fmt.Sprintf("bench-refunds-%s-%d", tc.name, runs)
			live, _ := benchCreateStore(b, hc, base, slug)

			// target[i] is request i's sale; amount[k] sale k's amount; want[k] what request i asks of it
			// (0: the rest, amount omitted).
			nSales := b.N
			if tc.same {
				nSales = (b.N + perSale - 1) / perSale
			}
			amounts := make([]int64, nSales)
			for k := range amounts {
				amounts[k] = 1000 + int64(k%50)*100
				if tc.same {
					amounts[k] = perSale * part
				}
			}
			t0 := time.Now()
			sales := benchPaidSales(b, hc, base, live, slug, amounts)
			// Warm up the connections and the refund path on sales of their own, outside the figures.
			warm := benchPaidSales(b, hc, base, live, slug+"-warm", []int64{1000, 1000, 1000, 1000})
			for _, id := range warm {
				if r := benchPostRefund(hc, base, live, id, "warm-"+id, 0); r.err != nil || r.status != http.StatusCreated {
					b.Fatalf("warm-up refund: %d %v %s", r.status, r.err, r.body)
				}
			}
			b.Logf("%d paid sales made in %s", nSales, time.Since(t0).Round(time.Millisecond))

			target := func(i int) int {
				if tc.same {
					return i / perSale
				}
				return i
			}
			ask := func(k int) int64 {
				switch {
				case tc.same:
					return part
				case tc.plain:
					return amounts[k] / 2
				}
				return 0
			}
			before := benchMetrics(b, hc, base)
			lat := make([]time.Duration, b.N)
			got := make([]int64, b.N)
			var (
				next, failed atomic.Int64
				maxPos       benchMax
				firstFailure sync.Once
				failure      string
				wg           sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for range tc.conc {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						id := sales[target(i)]
						t0 := time.Now()
						idem := fmt.Sprintf("%s-%d", slug, i)
						if tc.plain {
							idem = ""
						}
						r := benchPostRefund(hc, base, live, id, idem, ask(target(i)))
						lat[i] = time.Since(t0)
						if r.err != nil || r.status != http.StatusCreated {
							failed.Add(1)
							firstFailure.Do(func() { failure = fmt.Sprintf("refund %d of %s: %d %v %s", i, id, r.status, r.err, r.body) })
							continue
						}
						got[i] = r.amount
						maxPos.Max(r.position)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()

			benchReportLatency(b, lat, elapsed, "refunds/s")
			benchLogMetrics(b, before, benchMetrics(b, hc, base))
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d refunds were not 201; first: %s", n, b.N, failure)
			}

			// What each sale should now hold.
			wantRefunded := make([]int64, nSales)
			wantCount := make([]int, nSales)
			for i := range b.N {
				k := target(i)
				want := ask(k)
				if want == 0 {
					want = amounts[k]
				}
				if got[i] != want {
					b.Fatalf("refund %d of sale %s answered %d, want %d", i, sales[k], got[i], want)
				}
				wantRefunded[k] += want
				wantCount[k]++
			}
			benchCheckRefunds(b, hc, base, live, maxPos.Load(), sales, amounts, wantRefunded, wantCount)
		})
	}
}

// benchPaidSales makes one paid sale per amount (USD minor units; a software product with a file and a
// licence, a buyer of its own), 16 requests in flight: the checkouts, then a signed payment.succeeded
// delivery each, then it waits until every sale is completed in the read model. It returns the ids.
func benchPaidSales(b *testing.B, hc *http.Client, base, key, prefix string, amounts []int64) []string {
	b.Helper()
	ids := make([]string, len(amounts))
	benchEach(b, len(amounts), func(i int) error {
		body := fmt.Sprintf(`{"product":{"id":"prd_app","name":"App","type":"software","price":{"amount":%d,"currency":"USD"},
			"files":[{"name":"app.zip","url":"https://cdn.example.com/app.zip"}],"licence":{"max_activations":3}},
			"customer":{"email":"%s.%d@example.com"}}`, amounts[i], prefix, i)
		status, raw, _, err := benchDo(hc, "POST", base+"/v1/checkouts", body, map[string]string{"Authorization": "Bearer " + key})
		var out struct{ Data struct{ ID string } }
		if err != nil || status != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Data.ID == "" {
			return fmt.Errorf("checkout: %d %v %s", status, err, raw)
		}
		ids[i] = out.Data.ID
		return nil
	})
	benchEach(b, len(amounts), func(i int) error {
		msgID := "msg_pay_" + ids[i]
		body := paymentBody("payment.succeeded", ids[i], amounts[i], "USD")
		secret, _ := base64.StdEncoding.DecodeString(standardKey)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(msgID + "." + ts + "." + body))
		status, raw, _, err := benchDo(hc, "POST", base+"/v1/webhooks/standard", body, map[string]string{
			"webhook-id": msgID, "webhook-timestamp": ts, "webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))})
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("payment of %s: %d %v %s", ids[i], status, err, raw)
		}
		return nil
	})
	benchEach(b, len(amounts), func(i int) error {
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, raw, _, err := benchDo(hc, "GET", base+"/v1/sales/"+ids[i], "", map[string]string{"Authorization": "Bearer " + key})
			var out struct{ Data struct{ Status string } }
			if err == nil && status == http.StatusOK && json.Unmarshal(raw, &out) == nil && out.Data.Status == "completed" {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sale %s not completed after 30 s: %d %v %s", ids[i], status, err, raw)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return ids
}

// benchCheckRefunds reads every sale at the given log position and checks its refunds: amount_refunded
// and the number of refunds as wanted, and a sale refunded in full is refunded with its licence revoked.
func benchCheckRefunds(b *testing.B, hc *http.Client, base, key string, position uint64, ids []string, amounts, refunded []int64, count []int) {
	b.Helper()
	benchEach(b, len(ids), func(k int) error {
		status, raw, _, err := benchDo(hc, "GET", base+"/v1/sales/"+ids[k], "", map[string]string{
			"Authorization": "Bearer " + key, "Ledger-Min-Position": strconv.FormatUint(position, 10)})
		var out struct {
			Data struct {
				Status         string
				AmountRefunded struct{ Amount int64 } `json:"amount_refunded"`
				Refunds        []struct {
					Amount struct{ Amount int64 }
				}
				PostPurchase struct {
					Licences []struct{ Status string }
				} `json:"post_purchase"`
			}
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(raw, &out) != nil {
			return fmt.Errorf("read sale %s: %d %v %s", ids[k], status, err, raw)
		}
		d := out.Data
		sum := int64(0)
		for _, r := range d.Refunds {
			sum += r.Amount.Amount
		}
		if d.AmountRefunded.Amount != refunded[k] || sum != refunded[k] || len(d.Refunds) != count[k] {
			return fmt.Errorf("sale %s: amount_refunded %d, refunds %d adding up to %d; want %d in %d", ids[k], d.AmountRefunded.Amount, len(d.Refunds), sum, refunded[k], count[k])
		}
		full := refunded[k] == amounts[k]
		if want := map[bool]string{true: "refunded", false: "completed"}[full]; d.Status != want {
			return fmt.Errorf("sale %s: status %s, want %s", ids[k], d.Status, want)
		}
		if len(d.PostPurchase.Licences) != 1 || (d.PostPurchase.Licences[0].Status == "revoked") != full {
			return fmt.Errorf("sale %s (refunded in full: %v): licences %+v", ids[k], full, d.PostPurchase.Licences)
		}
		return nil
	})
}

type benchRefund struct {
	status   int
	amount   int64
	position uint64
	body     string
	err      error
}

// benchPostRefund refunds amount of a sale (0: the rest, amount omitted) with an Idempotency-Key (none if
// idem is empty) and
// reads the whole answer, as a client would.
func benchPostRefund(hc *http.Client, base, key, saleID, idem string, amount int64) benchRefund {
	body := `{"reason":"requested_by_customer"}`
	if amount > 0 {
		body = fmt.Sprintf(`{"amount":%d,"reason":"requested_by_customer"}`, amount)
	}
	status, raw, pos, err := benchDo(hc, "POST", base+"/v1/sales/"+saleID+"/refunds", body, map[string]string{
		"Authorization": "Bearer " + key, "Content-Type": "application/json", "Idempotency-Key": idem})
	r := benchRefund{status: status, position: pos, err: err}
	if err != nil {
		return r
	}
	var out struct {
		Data struct{ Amount struct{ Amount int64 } }
	}
	if status != http.StatusCreated || json.Unmarshal(raw, &out) != nil {
		r.body = string(raw)
		return r
	}
	r.amount = out.Data.Amount.Amount
	return r
}

// benchDo makes one request (headers with an empty value are left out) and reads the whole answer: status, body and Ledger-Position (0 if none).
func benchDo(hc *http.Client, method, url, body string, headers map[string]string) (int, []byte, uint64, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	pos, _ := strconv.ParseUint(res.Header.Get("Ledger-Position"), 10, 64)
	return res.StatusCode, raw, pos, err
}

// benchEach runs f(0) … f(n-1) from 16 goroutines and fails the benchmark with the first error.
func benchEach(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var (
		next  atomic.Int64
		first sync.Once
		err   error
		wg    sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if e := f(i); e != nil {
					first.Do(func() { err = e })
					return
				}
			}
		})
	}
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
}

// benchMetrics reads the ledger's append counters from /metrics: appends by outcome, and the groups of
// group commit by how they were written (count and seconds) and their events.
func benchMetrics(b *testing.B, hc *http.Client, base string) map[string]float64 {
	b.Helper()
	status, raw, _, err := benchDo(hc, "GET", base+"/metrics", "", nil)
	if err != nil || status != http.StatusOK {
		b.Fatalf("metrics: %d %v", status, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !(strings.HasPrefix(name, "ledger_appends_total") || strings.HasPrefix(name, "ledger_append_group_seconds_count") ||
			strings.HasPrefix(name, "ledger_append_group_seconds_sum") || strings.HasPrefix(name, "ledger_append_group_events_sum")) {
			continue
		}
		out[name], _ = strconv.ParseFloat(value, 64)
	}
	return out
}

// benchLogMetrics logs what the counters grew by during the timed part, per refund.
func benchLogMetrics(b *testing.B, before, after map[string]float64) {
	b.Helper()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if d := after[k] - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s +%.4g (%.3g/refund)", k, d, d/float64(b.N)))
		}
	}
	b.Logf("during the timed part: %s", strings.Join(parts, ", "))
}
