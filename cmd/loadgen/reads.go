package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// readShapes are the GET /v1/sales queries a dashboard makes, asked in turn by each reader.
var readShapes = []string{"first", "status", "cursor", "customer", "search", "dates"}

// listedSale is what the reads mode keeps of a sale it listed.
type listedSale struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Amount struct {
		Amount int64 `json:"amount"`
	} `json:"amount"`
	CreatedAt string `json:"created_at"`
	Customer  struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"customer"`
}

type salesPage struct {
	Data       []listedSale `json:"data"`
	Pagination struct {
		NextCursor *string `json:"next_cursor"`
	} `json:"pagination"`
}

// runReads is the reads mode (-readers > 0): against a store that already has its sales (-key), -readers
// goroutines call GET /v1/sales one request after another for -duration, while payment deliveries for
// the store's sales awaiting payment are sent at -webhook-rate per second (a pending and a succeeded one
// per sale, with -duplicates and -reordered as in the default mode). It prints the reads' latency
// percentiles, overall and by query shape (with -read-rate, the readers share that many reads per second
// instead of reading back to back), the webhooks' achieved rate and latency, and then checks that
// every sale paid during the run completed.
func runReads(ctx context.Context, c config, out io.Writer) error {
	if c.key == "" {
		return errors.New("-readers needs -key: the API key of a store that has sales (cmd/ledger's BenchmarkMillionStart writes one to seed.json)")
	}
	auth := "Bearer " + c.key
	rng := rand.New(rand.NewPCG(uint64(c.seed), 2))
	wanted := int(c.webhookRate * c.duration.Seconds())
	sales := (wanted + 1) / 2

	// What the readers ask about: cursors and customers from the first pages of the whole list, and the
	// sales awaiting payment that the deliveries pay.
	var cursors []string
	var customers []listedSale
	cursor := ""
	for range 50 {
		var page salesPage
		if err := call(ctx, "GET", c.url+"/v1/sales?per_page=100"+cursor, auth, nil, "", 200, &page); err != nil {
			return err
		}
		customers = append(customers, page.Data...)
		if page.Pagination.NextCursor == nil {
			break
		}
		cursors = append(cursors, *page.Pagination.NextCursor)
		cursor = "&cursor=" + url.QueryEscape(*page.Pagination.NextCursor)
	}
	if len(customers) == 0 {
		return errors.New("the store has no sales: -readers reads an existing history")
	}
	var awaiting []listedSale
	cursor = ""
	for len(awaiting) < sales && c.webhookRate > 0 {
		var page salesPage
		if err := call(ctx, "GET", c.url+"/v1/sales?per_page=100&status=awaiting_payment"+cursor, auth, nil, "", 200, &page); err != nil {
			return err
		}
		awaiting = append(awaiting, page.Data...)
		if page.Pagination.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + url.QueryEscape(*page.Pagination.NextCursor)
	}
	if len(awaiting) < sales {
		return fmt.Errorf("-webhook-rate %g for %s needs %d sales awaiting payment (two deliveries each); the store has %d",
			c.webhookRate, c.duration, sales, len(awaiting))
	}
	// Oldest first: the newest awaiting sales stay on the readers' first pages longest.
	awaiting = awaiting[len(awaiting)-sales:]
	slices.Reverse(awaiting)
	toPay := make([]payable, len(awaiting))
	for i, s := range awaiting {
		toPay[i] = payable{s.ID, s.Amount.Amount}
	}
	ds := deliveriesFor(toPay, strconv.FormatInt(time.Now().UnixNano(), 36)+"_", c, rng)
	pace := "back to back"
	if c.readRate > 0 {
		pace = fmt.Sprintf("%g reads/s between them", c.readRate)
	}
	fmt.Fprintf(out, "reads      %d readers (%s) for %s; %d cursors, %d customers to ask about; %d deliveries for %d sales awaiting payment at %g/s\n",
		c.readers, pace, c.duration, len(cursors), len(customers), len(ds), len(awaiting), c.webhookRate)

	secret, err := base64.StdEncoding.DecodeString(c.secret[len("whsec_"):])
	if err != nil {
		return fmt.Errorf("-secret is not whsec_<base64>: %w", err)
	}
	cpu0, cpuErr := ledgerCPU(ctx, c.url)
	runCtx, stop := context.WithTimeout(ctx, c.duration)
	defer stop()
	start := time.Now()

	// Webhooks: delivery i is due at start + i/rate; a pool sends them, so a slow answer delays only
	// its own sender. One not sent by the end of -duration is not sent.
	var (
		whMu      sync.Mutex
		whLat     []time.Duration
		whErrs    int
		whFirst   error
		whSent    atomic.Int64
		sentOK    []delivery
		whWG      sync.WaitGroup
		queue     = make(chan delivery, 4096)
		lateCount atomic.Int64
	)
	for range c.concurrency {
		whWG.Add(1)
		go func() {
			defer whWG.Done()
			for d := range queue {
				t0 := time.Now()
				err := sendDelivery(ctx, c.url, secret, d)
				lat := time.Since(t0)
				whSent.Add(1)
				whMu.Lock()
				whLat = append(whLat, lat)
				if err != nil {
					whErrs++
					if whFirst == nil {
						whFirst = err
					}
				} else {
					sentOK = append(sentOK, d)
				}
				whMu.Unlock()
			}
		}()
	}
	go func() {
		defer close(queue)
		if c.webhookRate <= 0 {
			return
		}
		for i, d := range ds {
			due := start.Add(time.Duration(float64(i) / c.webhookRate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-runCtx.Done():
					return
				case <-time.After(wait):
				}
			} else if runCtx.Err() != nil {
				return
			}
			select {
			case queue <- d:
			default:
				lateCount.Add(1) // every sender busy: the rate is not kept
				select {
				case queue <- d:
				case <-runCtx.Done():
					return
				}
			}
		}
	}()

	// Readers.
	type sample struct {
		shape int
		lat   time.Duration
	}
	var (
		rdMu    sync.Mutex
		samples []sample
		rdErrs  int
		rdFirst error
		rdWG    sync.WaitGroup
	)
	for r := range c.readers {
		rdWG.Add(1)
		go func() {
			defer rdWG.Done()
			rr := rand.New(rand.NewPCG(uint64(c.seed), uint64(100+r)))
			var mine []sample
			errs, i := 0, r
			var first error
			for k := 0; runCtx.Err() == nil; k++ {
				if c.readRate > 0 {
					// Open loop: this reader's k-th read is due at its slot, whatever the answers before.
					due := start.Add(time.Duration(float64(k*c.readers+r) / c.readRate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-runCtx.Done():
						case <-time.After(wait):
						}
						if runCtx.Err() != nil {
							break
						}
					}
				}
				shape := i % len(readShapes)
				i++
				q := readQuery(shape, rr, cursors, customers)
				t0 := time.Now()
				err := call(runCtx, "GET", c.url+"/v1/sales"+q, auth, nil, "", 200, nil)
				lat := time.Since(t0)
				if runCtx.Err() != nil {
					break // cut by the end of the run: not a measurement
				}
				mine = append(mine, sample{shape, lat})
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			rdMu.Lock()
			samples = append(samples, mine...)
			rdErrs += errs
			if rdFirst == nil {
				rdFirst = first
			}
			rdMu.Unlock()
		}()
	}
	rdWG.Wait()
	elapsed := time.Since(start)
	whWG.Wait()
	whElapsed := time.Since(start)
	cpu1, err := ledgerCPU(ctx, c.url)

	all := make([]time.Duration, len(samples))
	byShape := make([][]time.Duration, len(readShapes))
	for i, s := range samples {
		all[i] = s.lat
		byShape[s.shape] = append(byShape[s.shape], s.lat)
	}
	printLatencies(out, "reads", all, elapsed, rdErrs)
	for i, name := range readShapes {
		printLatencies(out, "  "+name, byShape[i], elapsed, 0)
	}
	if rdErrs > 0 {
		fmt.Fprintf(out, "first read error: %v\n", rdFirst)
	}
	sent := whSent.Load()
	fmt.Fprintf(out, "webhooks   %6d sent in %7s  %8.0f/s achieved of %g/s asked  (%d waited for a free sender)\n",
		sent, whElapsed.Round(time.Millisecond), float64(sent)/whElapsed.Seconds(), c.webhookRate, lateCount.Load())
	printLatencies(out, "  latency", whLat, whElapsed, whErrs)
	if cpuErr == nil && err == nil {
		fmt.Fprintf(out, "ledger CPU %6.2f cores on average (process_cpu_seconds_total, %0.1f s in %s)\n",
			(cpu1-cpu0)/elapsed.Seconds(), cpu1-cpu0, elapsed.Round(time.Millisecond))
	}
	if whErrs > 0 {
		return fmt.Errorf("%d webhooks failed (first: %v)", whErrs, whFirst)
	}
	if rdErrs > 0 {
		return fmt.Errorf("%d reads failed (first: %v)", rdErrs, rdFirst)
	}
	return checkPaid(ctx, c, auth, sentOK, out)
}

// readQuery is one GET /v1/sales query string of the given shape.
func readQuery(shape int, rng *rand.Rand, cursors []string, sales []listedSale) string {
	s := sales[rng.IntN(len(sales))]
	switch readShapes[shape] {
	case "status":
		return "?status=" + []string{"completed", "awaiting_payment", "settled"}[rng.IntN(3)]
	case "cursor":
		if len(cursors) > 0 {
			return "?cursor=" + url.QueryEscape(cursors[rng.IntN(len(cursors))])
		}
	case "customer":
		if s.Customer.ID != "" {
			return "?customer_id=" + url.QueryEscape(s.Customer.ID)
		}
	case "search":
		if len(s.Customer.Email) > 6 {
			return "?search=" + url.QueryEscape(s.Customer.Email[:len(s.Customer.Email)-6]) // a prefix, as typed so far
		}
	case "dates":
		// The month before one of the listed sales.
		if t, err := time.Parse(time.RFC3339, s.CreatedAt); err == nil {
			return "?start_date=" + t.AddDate(0, -1, 0).Format("2006-01-02") + "&end_date=" + t.Format("2006-01-02")
		}
	}
	return ""
}

type delivery struct{ id, body string }

// payable is a sale to pay: its id and its amount in minor units.
type payable struct {
	id     string
	amount int64
}

// deliveriesFor makes a pending and a succeeded delivery per sale, with delivery ids load_p_<tag><sale>
// and load_s_<tag><sale>: c.reordered of the sales get the succeeded one first, c.duplicates of the
// deliveries are sent twice, and they are shuffled in windows of 256, so a sale's two deliveries stay
// close but interleave with others.
func deliveriesFor(sales []payable, tag string, c config, rng *rand.Rand) []delivery {
	var ds []delivery
	for _, s := range sales {
		pending := delivery{"load_p_" + tag + s.id, payment("payment.pending", s.id, int(s.amount))}
		success := delivery{"load_s_" + tag + s.id, payment("payment.succeeded", s.id, int(s.amount))}
		pair := []delivery{pending, success}
		if rng.Float64() < c.reordered {
			pair = []delivery{success, pending}
		}
		for _, d := range pair {
			ds = append(ds, d)
			if rng.Float64() < c.duplicates {
				ds = append(ds, d)
			}
		}
	}
	for w := 0; w < len(ds); w += 256 {
		end := min(w+256, len(ds))
		rng.Shuffle(end-w, func(i, j int) { ds[w+i], ds[w+j] = ds[w+j], ds[w+i] })
	}
	return ds
}

func sendDelivery(ctx context.Context, base string, secret []byte, d delivery) error {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(d.id + "." + ts + "." + d.body))
	h := map[string]string{"webhook-id": d.id, "webhook-timestamp": ts,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))}
	return call(ctx, "POST", base+"/v1/webhooks/standard", "", h, d.body, 200, nil)
}

// checkPaid waits until every sale whose succeeded delivery was answered 200 has completed: one
// GET /v1/sales/{id} each, then again for those not yet completed, up to 100 rounds.
func checkPaid(ctx context.Context, c config, auth string, sent []delivery, out io.Writer) error {
	var paid []string
	for _, d := range sent {
		var body struct {
			Type string `json:"type"`
			Data struct {
				SaleID string `json:"sale_id"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(d.body), &body) == nil && body.Type == "payment.succeeded" {
			paid = append(paid, body.Data.SaleID)
		}
	}
	slices.Sort(paid)
	paid = slices.Compact(paid)
	start := time.Now()
	pending := paid
	for round := 0; len(pending) > 0; round++ {
		if round == 100 {
			return fmt.Errorf("%d of %d paid sales not completed %s after the run", len(pending), len(paid), time.Since(start).Round(time.Millisecond))
		}
		if round > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		var mu sync.Mutex
		var still []string
		res := drive(ctx, c.concurrency, len(pending), func(i int) error {
			var sale struct {
				Data struct{ Status string } `json:"data"`
			}
			if err := call(ctx, "GET", c.url+"/v1/sales/"+pending[i], auth, nil, "", 200, &sale); err != nil {
				return err
			}
			if sale.Data.Status != "completed" {
				mu.Lock()
				still = append(still, pending[i])
				mu.Unlock()
			}
			return nil
		})
		if res.errors > 0 {
			return fmt.Errorf("checking the paid sales: %v", res.firstErr)
		}
		pending = still
	}
	fmt.Fprintf(out, "checked    all %d sales whose succeeded delivery was sent completed (%s after the run)\n",
		len(paid), time.Since(start).Round(time.Millisecond))
	return nil
}

// printLatencies prints one line of percentiles, in the default mode's format.
func printLatencies(out io.Writer, what string, lats []time.Duration, elapsed time.Duration, errs int) {
	result{n: len(lats), errors: errs, elapsed: elapsed, latencies: lats}.print(out, what)
}
