package main

import (
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// seedConfig says what seedSales writes: one live store with Sales sales by Customers customers, their
// times spread evenly over Span ending an hour before Now.
type seedConfig struct {
	DataDir   string
	Sales     int
	Customers int
	Span      time.Duration
	Now       time.Time
	// Seed makes the shape (who buys what, when, and what happens next) the same every run; ids, keys
	// and event ids are random, as the ledger's own are.
	Seed uint64
	// Progress, if set, is called every 100,000 events with the count so far.
	Progress func(events int)
}

// seedInfo is what a seeded data dir holds, for the harness that reads it back.
type seedInfo struct {
	StoreID  string         `json:"store_id"`
	LiveKey  string         `json:"live_key"`
	TestKey  string         `json:"test_key"`
	Events   int            `json:"events"`
	LastSeq  uint64         `json:"last_seq"`
	ByStatus map[string]int `json:"by_status"`
	Took     string         `json:"took"`
}

// Seeded store settings: unpaid checkouts stay open 30 days (the most a store may set), so the sales
// awaiting payment in a seed stay payable for weeks after it was made.
const (
	seedAbandonMinutes = 43200
	seedSettleDays     = 7
)

// seedSales writes a sales history into dataDir with no ledger running, as `ledger serve` lays the
// data dir out and as the ledger itself writes each event: the same subjects, envelope, codec and
// sealed personal data (the store's keyring), appended with AppendWrites and the same conditions the
// handlers use. What each step writes mirrors its handler:
//
//   - the store: slug_reserved and store_created (handlers.newStore);
//   - a checkout: email_claimed and customer_registered on a customer's first purchase, then
//     sale_started (handlers.startSale; the claim's subject is its keyed hash, as handlers.claimID);
//   - a gateway's payment report: webhook_received on the platform subject (handlers.deliveryEnvelope),
//     then what the payment processor appends for it: payment_succeeded and sale_completed (with
//     licence_issued for a licensed product), or payment_failed;
//   - downloads: download_recorded; the timers: sale_abandoned after the store's abandon delay and
//     sale_settled when the settlement is due, with correlation id "timer".
//
// Events go in time order (a sale completes while later checkouts start), in atomic batches of up to
// 500, as group commit writes them. At the end the payment processor's and the webhook dispatcher's
// consumers are made at the end of the log, as a ledger that handled all of it would have left them;
// the read store is left to the ledger's first start to fold.
func seedSales(ctx context.Context, cfg seedConfig) (seedInfo, error) {
	start := time.Now()
	lcfg, err := loadConfig("serve", nil, func(k string) string {
		return map[string]string{"LEDGER_DATA_DIR": cfg.DataDir, "LEDGER_NATS_LISTEN": "off",
			"LEDGER_SYNC_ALWAYS": "false", "LEDGER_ADMIN_TOKEN": adminToken}[k]
	}, nil)
	if err != nil {
		return seedInfo{}, err
	}
	m := &Main{Config: lcfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	lock, err := lockDataDir(cfg.DataDir, "seed")
	if err != nil {
		return seedInfo{}, err
	}
	m.lock = lock
	if err := m.connect(ctx); err != nil {
		return seedInfo{}, err
	}
	if _, err := m.events.Keys(ctx); err != nil {
		return seedInfo{}, err
	}
	claimKey, err := m.events.SharedSecret(ctx, "email_claim_key", 1)
	if err != nil {
		return seedInfo{}, err
	}
	s := &seeder{cfg: cfg, st: m.events, claimKey: claimKey, rng: rand.New(rand.NewPCG(cfg.Seed, 1)),
		sales: map[string]*seedSale{}, info: seedInfo{ByStatus: map[string]int{}}}
	if err := s.createStore(ctx); err != nil {
		return seedInfo{}, err
	}
	if err := s.run(ctx); err != nil {
		return seedInfo{}, err
	}
	// Consumers as a ledger that processed all of it leaves them: past the end of the log.
	last, err := m.events.LastSequence(ctx)
	if err != nil {
		return seedInfo{}, err
	}
	s.info.LastSeq = last
	payments, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		return seedInfo{}, err
	}
	if _, err := m.events.JetStream().CreateConsumer(ctx, jetstream.StreamName, natsjs.ConsumerConfig{
		Durable: payments, FilterSubject: "ledger.platform.*.webhook.*.webhook_received",
		AckPolicy: natsjs.AckExplicitPolicy, MaxDeliver: -1, MaxAckPending: 256,
		DeliverPolicy: natsjs.DeliverByStartSequencePolicy, OptStartSeq: last + 1,
	}); err != nil {
		return seedInfo{}, fmt.Errorf("payments consumer: %w", err)
	}
	if _, err := m.events.WebhooksConsumer(ctx, 1, webhookFilters); err != nil {
		return seedInfo{}, err
	}
	s.info.Took = time.Since(start).Round(time.Second).String()
	return s.info, nil
}

type seeder struct {
	cfg      seedConfig
	st       *jetstream.Store
	claimKey []byte
	rng      *rand.Rand
	store    events.StoreCreated
	terms    domain.StoreTerms
	// customers[i] is customer i's id once registered.
	customers []string
	sales     map[string]*seedSale
	queue     seedQueue
	batch     []events.Write
	// inBatch are the subject filters that already have a write in the batch: only the first of each
	// may carry a condition.
	inBatch map[string]bool
	touched []*seedSale
	pushes  int
	info    seedInfo
}

// seedSale is a sale with events still to come, as the seeder last folded it.
type seedSale struct {
	sale    domain.Sale
	agg     events.Aggregate
	pending bool // in the batch being built: its Version is not known yet
	left    int  // later events still queued
}

func (s *seeder) createStore(ctx context.Context) error {
	fee, delay, abandon := "5", seedSettleDays, seedAbandonMinutes
	id := domain.NewID(domain.PrefixStore)
	keys := domain.NewStoreKeys()
	slug, store, err := domain.CreateStore{Name: "Million Sales", Slug: "million-sales", ServiceFeePercent: &fee,
		SettlementDelayDays: &delay, AbandonAfterMinutes: &abandon}.Decide(id, keys)
	if err != nil {
		return err
	}
	at := s.cfg.Now.Add(-s.cfg.Span - 24*time.Hour).UTC()
	env := func(agg events.Aggregate, p events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: at, CorrelationID: "req_seed", Payload: p}
	}
	if _, err := s.st.AppendWrites(ctx,
		events.Write{Event: env(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateSlug, ID: slug.Slug}, slug),
			Expect: 0, ExpectFilter: "ledger.platform.*.slug." + slug.Slug + ".*"},
		events.Write{Event: env(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id}, store), Expect: 0},
	); err != nil {
		return err
	}
	s.store = store
	s.terms = domain.StoreTerms{Store: events.StoreRef{ID: store.StoreID, Name: store.Name, Slug: store.Slug},
		ServiceFeePercent: store.ServiceFeePercent, SettlementDelayDays: store.SettlementDelayDays,
		AbandonAfter: time.Duration(store.AbandonAfterMinutes) * time.Minute}
	s.info.StoreID, s.info.LiveKey, s.info.TestKey = id, keys.Live, keys.Test
	s.info.Events += 2
	return nil
}

// Kinds of the later events of a sale.
const (
	seedPaid = iota
	seedFailed
	seedAbandon
	seedDownload
	seedSettle
)

// run starts the sales in time order, and between them writes each sale's later events when their time
// comes.
func (s *seeder) run(ctx context.Context) error {
	n := s.cfg.Sales
	s.customers = make([]string, s.cfg.Customers)
	s.inBatch = map[string]bool{}
	end := s.cfg.Now.Add(-time.Hour)
	first := end.Add(-s.cfg.Span)
	step := s.cfg.Span / time.Duration(max(1, n))
	for i := range n {
		at := first.Add(time.Duration(i) * step)
		if err := s.due(ctx, at); err != nil {
			return err
		}
		if err := s.checkout(ctx, i, at); err != nil {
			return err
		}
	}
	if err := s.due(ctx, s.cfg.Now); err != nil {
		return err
	}
	return s.flush(ctx)
}

var seedProducts = []struct {
	id, name, typ string
	price         int64
	licence       bool
}{
	{"prd_course", "Premium Course", "course", 9900, false},
	{"prd_ebook", "The Handbook", "ebook", 1900, false},
	{"prd_templates", "Template Pack", "digital", 2900, false},
	{"prd_app", "Desktop App", "software", 4900, true},
	{"prd_bundle", "Everything Bundle", "bundle", 14900, false},
}

var seedFirstNames = []string{"Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "John"}
var seedLastNames = []string{"Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Doe"}

// checkout starts sale i at the given time, as POST /v1/checkouts does, and decides what happens to it.
func (s *seeder) checkout(ctx context.Context, i int, at time.Time) error {
	c := s.rng.IntN(len(s.customers))
	p := seedProducts[s.rng.IntN(len(seedProducts))]
	product := events.Product{ID: p.id, Name: p.name, Type: p.typ, Price: events.Amount{Amount: p.price, Currency: "USD"},
		Files: []events.ProductFile{{Name: p.id + ".zip", URL: "https://cdn.example.com/" + p.id + ".zip"}}}
	if p.licence {
		product.Licence = &events.LicenceTerms{MaxActivations: 3}
	}
	email := fmt.Sprintf("buyer%06d@example.com", c)
	cmd := domain.Checkout{Product: product, Customer: events.CustomerRef{Email: email,
		FirstName: seedFirstNames[c%len(seedFirstNames)], LastName: seedLastNames[c/len(seedFirstNames)%len(seedLastNames)]}}
	if i%5 == 0 {
		cmd.Discount = &events.Discount{Code: "SAVE20", Type: "percentage", Value: "20"}
	}
	saleID := domain.NewID(domain.PrefixSale)
	started, err := cmd.Decide(saleID, "", s.terms, domain.NewID, at)
	if err != nil {
		return fmt.Errorf("checkout %d: %w", i, err)
	}
	corr := "req_" + domain.RandomString(20)
	mode, storeID := events.ModeLive, s.store.StoreID
	env := func(agg events.Aggregate, pl events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: at.UTC(), CorrelationID: corr, Payload: pl}
	}
	var ws []events.Write
	customerID := s.customers[c]
	if customerID == "" {
		customerID = domain.NewID(domain.PrefixCustomer)
		s.customers[c] = customerID
		mac := hmac.New(sha256.New, s.claimKey)
		mac.Write([]byte(mode + "|" + storeID + "|" + started.Customer.Email))
		claim := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateEmail, ID: hex.EncodeToString(mac.Sum(nil)[:16])}
		ref := started.Customer
		in := domain.CustomerInput{Email: &ref.Email, FirstName: &ref.FirstName, LastName: &ref.LastName, Phone: &ref.Phone}
		fields, err := (domain.CustomerFields{}).Apply(in, true)
		if err != nil {
			return fmt.Errorf("customer %d: %w", c, err)
		}
		ws = append(ws,
			events.Write{Event: env(claim, events.EmailClaimed{CustomerID: customerID}), Expect: 0},
			events.Write{Event: env(events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateCustomer, ID: customerID},
				events.CustomerRegistered{CustomerID: customerID, Source: "checkout", CustomerData: events.CustomerData(fields)}), Expect: 0})
	}
	started.Customer.ID, started.CustomerID = customerID, customerID
	agg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateSale, ID: saleID}
	ss := &seedSale{agg: agg}
	ws = append(ws, events.Write{Event: env(agg, started), Expect: 0})
	if err := s.add(ctx, ss, ws...); err != nil {
		return err
	}
	// What happens next. Recent unpaid checkouts are still open; older ones were abandoned.
	age := s.cfg.Now.Sub(at)
	unpaid := 0.2
	if age < 21*24*time.Hour {
		unpaid = 0.5
	}
	switch r := s.rng.Float64(); {
	case r < unpaid:
		if abandon := started.AbandonAt.Add(3 * time.Second); abandon.Before(s.cfg.Now) {
			s.push(ss, abandon, seedAbandon)
		}
	case r < unpaid+0.08:
		s.push(ss, at.Add(time.Duration(1+s.rng.IntN(10))*time.Minute), seedFailed)
	default:
		s.push(ss, at.Add(time.Duration(1+s.rng.IntN(20))*time.Minute), seedPaid)
	}
	s.settled(ss)
	return nil
}

// push queues a later event of a sale.
func (s *seeder) push(ss *seedSale, at time.Time, kind int) {
	if ss.left == 0 {
		s.sales[ss.sale.ID] = ss
	}
	ss.left++
	s.pushes++
	heap.Push(&s.queue, seedItem{at: at, seq: s.pushes, sale: ss.sale.ID, kind: kind})
}

// settled counts a sale that has no later event to come, and forgets it.
func (s *seeder) settled(ss *seedSale) {
	if ss.left == 0 {
		s.info.ByStatus[ss.sale.Status]++
		delete(s.sales, ss.sale.ID)
	}
}

// due writes the later events whose time is before t.
func (s *seeder) due(ctx context.Context, t time.Time) error {
	for len(s.queue) > 0 && s.queue[0].at.Before(t) {
		it := heap.Pop(&s.queue).(seedItem)
		ss := s.sales[it.sale]
		ss.left--
		if err := s.later(ctx, ss, it); err != nil {
			return err
		}
		s.settled(ss)
	}
	return nil
}

// later writes one later event of a sale, decided on the sale as folded so far.
func (s *seeder) later(ctx context.Context, ss *seedSale, it seedItem) error {
	sale := ss.sale
	at := it.at.UTC()
	switch it.kind {
	case seedAbandon:
		return s.add(ctx, ss, s.timerWrite(ss, sale.Abandon(at), at)...)
	case seedSettle:
		pls, err := sale.Settle(at, "schedule")
		if err != nil {
			return err
		}
		return s.add(ctx, ss, s.timerWrite(ss, pls, at)...)
	case seedDownload:
		pls, err := sale.RecordDownload(sale.Completed.Files[0].ID)
		if err != nil {
			return err
		}
		ev := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: ss.agg, Time: at, CorrelationID: "req_" + domain.RandomString(20), Payload: pls[0]}
		return s.add(ctx, ss, events.Write{Event: ev, Expect: sale.Version})
	}
	// A gateway delivery, then what the payment processor appends for it.
	kind, report := "payment.succeeded", events.PaymentRecorded{Status: "success"}
	if it.kind == seedFailed {
		kind, report.Status = "payment.failed", "failed"
		report.FailureError = &events.FailureError{Code: "card_declined", Message: "The card was declined."}
	}
	delivery := events.WebhookReceived{Gateway: "standard", DeliveryID: "msg_" + domain.RandomString(24), Kind: kind,
		SaleID: sale.ID, TransactionID: "txn_" + domain.RandomString(16), Amount: &sale.Started.Amount}
	key := domain.HashID(delivery.Gateway + ":" + delivery.DeliveryID)
	denv := events.Envelope{ID: domain.PrefixEvent + "wh" + key, Time: at, CorrelationID: delivery.DeliveryID, Payload: delivery,
		Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: delivery.Gateway, Type: events.AggregateWebhook, ID: key}}
	if err := s.add(ctx, nil, events.Write{Event: denv, Expect: 0}); err != nil {
		return err
	}
	report.Gateway, report.TransactionID, report.DeliveryID, report.Amount = "standard", delivery.TransactionID, delivery.DeliveryID, sale.Started.Amount
	g := domain.Grants{LinkTTL: 168 * time.Hour}
	var licences []events.Payload
	if sale.Started.Product.Licence != nil {
		l := domain.NewLicence(sale, at)
		g.Licences = append(g.Licences, domain.IssuedLicence{ID: l.LicenceID, Key: l.Key, MaxActivations: l.MaxActivations, ExpiresAt: l.ExpiresAt})
		licences = append(licences, l)
	}
	pls, err := sale.RecordPayment(report, g, at)
	if err != nil {
		return err
	}
	if len(pls) < 2 {
		licences = nil
	}
	ws := make([]events.Write, 0, len(pls)+len(licences))
	for i, pl := range pls {
		w := events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: ss.agg, Time: at,
			CorrelationID: denv.CorrelationID, CausationID: denv.ID, Payload: pl}, Expect: events.NoExpectation}
		if i == 0 {
			w.Expect = sale.Version
		}
		ws = append(ws, w)
	}
	for _, l := range licences {
		lagg := events.Aggregate{Mode: ss.agg.Mode, StoreID: ss.agg.StoreID, Type: events.AggregateLicence, ID: l.(events.LicenceIssued).LicenceID}
		ws = append(ws, events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: lagg, Time: at,
			CorrelationID: denv.CorrelationID, CausationID: denv.ID, Payload: l}, Expect: 0})
	}
	if err := s.add(ctx, ss, ws...); err != nil {
		return err
	}
	if it.kind == seedPaid {
		// Downloads within two days for most buyers; the settlement when it falls due.
		for d := range 2 {
			when := at.Add(time.Duration(1+s.rng.IntN(48*60)) * time.Minute)
			if s.rng.Float64() < []float64{0.6, 0.2}[d] && when.Before(s.cfg.Now) {
				s.push(ss, when, seedDownload)
			}
		}
		if due := ss.sale.Completed.SettlementDueAt.Add(3 * time.Second); due.Before(s.cfg.Now) {
			s.push(ss, due, seedSettle)
		}
	}
	return nil
}

// timerWrite is what handlers.Timers appends for a due sale.
func (s *seeder) timerWrite(ss *seedSale, pls []events.Payload, at time.Time) []events.Write {
	ws := make([]events.Write, len(pls))
	for i, p := range pls {
		ws[i] = events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: ss.agg, Time: at, CorrelationID: "timer", Payload: p},
			Expect: events.NoExpectation}
	}
	if len(ws) > 0 {
		ws[0].Expect = ss.sale.Version
	}
	return ws
}

// add puts one command's writes in the batch (flushing first if they would not fit) and folds the sale's
// own into ss. A sale already in the batch keeps only its first write's condition, as group commit
// never puts two conditional appends to one aggregate in a batch: the later one goes without.
func (s *seeder) add(ctx context.Context, ss *seedSale, ws ...events.Write) error {
	if len(s.batch)+len(ws) > 500 {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	for _, w := range ws {
		filter := w.ExpectFilter
		if filter == "" {
			filter = w.Event.Aggregate.Filter()
		}
		switch {
		case s.inBatch[filter]:
			w.Expect = events.NoExpectation
		case ss != nil && w.Event.Aggregate == ss.agg && w.Expect != events.NoExpectation:
			w.Expect = ss.sale.Version // decided before a flush that gave the sale its sequence
		}
		s.inBatch[filter] = true
		s.batch = append(s.batch, w)
		if ss != nil && w.Event.Aggregate == ss.agg {
			ss.sale = ss.sale.Evolve(w.Event)
		}
	}
	if ss != nil && !ss.pending {
		ss.pending = true
		s.touched = append(s.touched, ss)
	}
	return nil
}

// flush appends the batch and gives each sale in it its last sequence.
func (s *seeder) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	last, err := s.st.AppendWrites(ctx, s.batch...)
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(s.batch), err)
	}
	seqs := map[events.Aggregate]uint64{}
	for i, w := range s.batch {
		seqs[w.Event.Aggregate] = last - uint64(len(s.batch)-1-i)
	}
	for _, ss := range s.touched {
		ss.sale.Version, ss.pending = seqs[ss.agg], false
	}
	before := s.info.Events
	s.info.Events += len(s.batch)
	if s.cfg.Progress != nil && before/100_000 != s.info.Events/100_000 {
		s.cfg.Progress(s.info.Events)
	}
	s.batch, s.touched = s.batch[:0], s.touched[:0]
	clear(s.inBatch)
	return nil
}

// seedItem is a later event of a sale, due at a time; seq keeps items of one time in the order pushed.
type seedItem struct {
	at   time.Time
	seq  int
	sale string
	kind int
}

type seedQueue []seedItem

func (q seedQueue) Len() int { return len(q) }
func (q seedQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q seedQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *seedQueue) Push(x any)   { *q = append(*q, x.(seedItem)) }
func (q *seedQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// TestSeedReadsBack seeds a small history, starts the ledger on it and checks that the ledger reads it as
// its own: every sale folded with the status the seeder decided, a returning buyer found by the email
// claim, a seeded awaiting sale paid by a gateway delivery, and no seeded delivery handed to the payment
// processor again.
func TestSeedReadsBack(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := seedSales(ctx, seedConfig{DataDir: dir, Sales: 1000, Customers: 300, Span: 60 * 24 * time.Hour, Now: time.Now(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range info.ByStatus {
		total += n
	}
	if total != 1000 || info.ByStatus["awaiting_payment"] == 0 || info.ByStatus["settled"] == 0 || info.ByStatus["abandoned"] == 0 || info.ByStatus["failed"] == 0 {
		t.Fatalf("seed shape: %+v", info)
	}
	m := startMain(t, dir, withGateways)
	if err := m.live.WaitFor(ctx, info.LastSeq); err != nil {
		t.Fatal(err)
	}
	c := client{t, "http://" + m.HTTPAddr}
	auth := "Bearer " + info.LiveKey
	var awaiting map[string]any
	for status, want := range info.ByStatus {
		got, cursor := 0, ""
		for {
			r := c.do("GET", "/v1/sales?per_page=100&status="+status+cursor, auth, nil)
			if r.status != 200 {
				t.Fatalf("list %s: %d %s", status, r.status, r.raw)
			}
			page := r.body["data"].([]any)
			got += len(page)
			if status == "awaiting_payment" && awaiting == nil && len(page) > 0 {
				awaiting = page[0].(map[string]any)
			}
			next, _ := r.body["pagination"].(map[string]any)["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if got != want {
			t.Errorf("status %s: the ledger lists %d sales, the seeder wrote %d", status, got, want)
		}
	}
	buyer := awaiting["customer"].(map[string]any)
	r := c.post("/v1/checkouts", info.LiveKey, "", fmt.Sprintf(`{"product":{"id":"prd_x","name":"X","type":"course","price":{"amount":500,"currency":"USD"}},"customer":{"email":%q}}`, buyer["email"]))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	if got := r.body["data"].(map[string]any)["customer"].(map[string]any)["id"]; got != buyer["id"] {
		t.Errorf("a returning buyer got customer %v, the seeded one is %v", got, buyer["id"])
	}
	id := awaiting["id"].(string)
	amount := int64(awaiting["amount"].(map[string]any)["amount"].(float64))
	if r := c.standardWebhook("msg_seed_pay", paymentBody("payment.succeeded", id, amount, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	waitSale(t, c, info.LiveKey, id, func(d map[string]any) bool { return d["status"] == "completed" })
	name, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := m.events.JetStream().Consumer(ctx, jetstream.StreamName, name)
	if err != nil {
		t.Fatal(err)
	}
	if ci := cons.CachedInfo(); ci.Delivered.Consumer != 1 {
		t.Errorf("the payment processor was handed %d deliveries; only the new one is new", ci.Delivered.Consumer)
	}
}
