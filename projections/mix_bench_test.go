package projections_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
	"github.com/salesledger/ledger/projections"
	"github.com/salesledger/ledger/projections/sqlite"
)

// The realistic mix BenchmarkFoldMix folds: -mix.sales checkouts (about 7.8 events each) in mixStores
// stores, made by mixWorkers concurrent "clients", so that the stream interleaves them as traffic does.
const (
	mixStores  = 20
	mixWorkers = 64
)

var mixSales = flag.Int("mix.sales", 30_000, "checkouts in BenchmarkFoldMix's log (about 7.8 events each)")

// mixLog is what setting up the mix wrote and what a correct fold of it must show.
type mixLog struct {
	last      uint64 // the stream's last sequence
	byType    map[string]int
	sales     map[string]*mixSale     // every sale as the writers folded it from their own events
	customers map[string]*mixCustomer // every customer, erased ones included
	licences  int
}

// mixSale is a sale as its writer folded it, with the exact envelopes (and sequences) it appended.
type mixSale struct {
	agg  events.Aggregate
	sale domain.Sale
	cust *mixCustomer
}

// mixCustomer is a customer as its writer folded it, and what a fold must total for them.
type mixCustomer struct {
	agg      events.Aggregate
	c        domain.Customer
	claim    events.Aggregate
	claimSeq uint64
	sales    int              // completed sales (refunded ones still count, as in the read model)
	spent    map[string]int64 // minor units by currency, net of refunds
	erased   bool
}

// mixStore is one store of the mix.
type mixStore struct {
	terms domain.StoreTerms
	id    string
}

// mixProducts are what the stores sell: an ebook, a licensed app, a course with two files, in three
// currencies with their own exponents.
var mixProducts = []events.Product{
	{ID: "prod_ebook", Name: "The Field Guide (ebook)", Type: "digital", Price: events.Amount{Amount: 1900, Currency: "USD"},
		Files: []events.ProductFile{{Name: "field-guide.pdf", Size: 4_200_000, Type: "application/pdf", URL: "https://files.example.com/field-guide.pdf"}}},
	{ID: "prod_app", Name: "Pro Editor licence", Type: "software", Price: events.Amount{Amount: 25000, Currency: "XOF"},
		Files:   []events.ProductFile{{Name: "editor.dmg", Size: 88_000_000, Type: "application/octet-stream", URL: "https://files.example.com/editor.dmg"}},
		Licence: &events.LicenceTerms{MaxActivations: 3}},
	{ID: "prod_course", Name: "Bookkeeping course", Type: "course", Price: events.Amount{Amount: 4900, Currency: "EUR"},
		Files: []events.ProductFile{
			{Name: "lesson-1.mp4", Size: 120_000_000, Type: "video/mp4", URL: "https://files.example.com/lesson-1.mp4"},
			{Name: "workbook.pdf", Size: 1_300_000, Type: "application/pdf", URL: "https://files.example.com/workbook.pdf"}},
		Instructions: "Start with lesson 1; the workbook follows it chapter by chapter."},
}

// writeMix appends the mix through st as the ledger's handlers do: each request's events decided by the
// domain and appended with Store.AppendWrites (sealed personal data, CloudEvents headers, Nats-Msg-Id,
// expected subject sequences, atomic batches), in the batches and with the expectations the handler
// uses. Per sale: a checkout (with an idempotency key half the time; a first purchase claims the email
// and registers the customer), then a gateway delivery (webhook_received) and the processor's payment
// (completion with a licence for the app), or abandonment by the timer; downloads, a licence
// activation, an API refund (revoking the licence), a settlement by the timer, a customer update, an
// erasure (which releases the email claim).
func writeMix(ctx context.Context, st *jetstream.Store) (*mixLog, error) {
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	stores := make([]mixStore, mixStores)
	for i := range stores {
		cmd := domain.CreateStore{Name: fmt.Sprintf("Shop %d", i), Slug: fmt.Sprintf("shop-%d", i)}
		id := domain.NewID(domain.PrefixStore)
		slug, created, err := cmd.Decide(id, domain.NewStoreKeys())
		if err != nil {
			return nil, err
		}
		env := func(agg events.Aggregate, p events.Payload) events.Envelope {
			return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: t0, CorrelationID: domain.NewID("req_"), Payload: p}
		}
		if _, err := st.AppendWrites(ctx,
			events.Write{Event: env(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateSlug, ID: slug.Slug}, slug),
				Expect: 0, ExpectFilter: "ledger.platform.*.slug." + slug.Slug + ".*"},
			events.Write{Event: env(events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id}, created), Expect: 0},
		); err != nil {
			return nil, err
		}
		stores[i] = mixStore{id: id, terms: domain.StoreTerms{Store: events.StoreRef{ID: id, Name: created.Name, Slug: created.Slug},
			ServiceFeePercent: created.ServiceFeePercent, SettlementDelayDays: created.SettlementDelayDays,
			AbandonAfter: time.Duration(created.AbandonAfterMinutes) * time.Minute}}
	}
	workers := make([]*mixWriter, mixWorkers)
	var wg sync.WaitGroup
	errs := make(chan error, mixWorkers)
	for w := range workers {
		mw := &mixWriter{ctx: ctx, st: st, stores: stores, t0: t0, rng: rand.New(rand.NewPCG(uint64(w), 12)),
			pool: map[string][]*mixCustomer{}, log: &mixLog{byType: map[string]int{}, sales: map[string]*mixSale{}, customers: map[string]*mixCustomer{}}}
		workers[w] = mw
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *mixSales; i += mixWorkers {
				if err := mw.sale(i); err != nil {
					errs <- fmt.Errorf("sale %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	out := &mixLog{byType: map[string]int{events.TypeSlugReserved: mixStores, events.TypeStoreCreated: mixStores},
		sales: map[string]*mixSale{}, customers: map[string]*mixCustomer{}}
	for _, w := range workers {
		for t, n := range w.log.byType {
			out.byType[t] += n
		}
		for id, s := range w.log.sales {
			out.sales[id] = s
		}
		for id, c := range w.log.customers {
			out.customers[id] = c
		}
		out.licences += w.log.licences
	}
	last, err := st.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	out.last = last
	total := 0
	for _, n := range out.byType {
		total += n
	}
	if uint64(total) != last {
		return nil, fmt.Errorf("appended %d events, the stream ends at %d", total, last)
	}
	return out, nil
}

// mixWriter is one client of the mix: it writes its share of the sales one after the other, each
// decided on its own copy of the sale and customer (as a handler decides on the log's).
type mixWriter struct {
	ctx    context.Context
	st     *jetstream.Store
	stores []mixStore
	t0     time.Time
	rng    *rand.Rand
	pool   map[string][]*mixCustomer // returning buyers by store and mode
	log    *mixLog
}

// appendWrites appends one handler's batch and returns its events with their stream sequences (an
// atomic batch is stored contiguously, ending at the sequence the append returns).
func (w *mixWriter) appendWrites(ws ...events.Write) ([]events.Envelope, error) {
	last, err := w.st.AppendWrites(w.ctx, ws...)
	if err != nil {
		return nil, err
	}
	out := make([]events.Envelope, len(ws))
	for i, wr := range ws {
		out[i] = wr.Event
		out[i].Sequence = last - uint64(len(ws)-1-i)
		w.log.byType[wr.Event.Type()]++
	}
	return out, nil
}

// changeSale appends a decision about s (the sale's first event expecting its version, the others
// none, then extra) and folds the sale's own events into it.
func (w *mixWriter) changeSale(s *mixSale, at time.Time, corr, cause string, payloads []events.Payload, extra ...events.Write) ([]events.Envelope, error) {
	var ws []events.Write
	for i, p := range payloads {
		wr := events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: s.agg, Time: at, CorrelationID: corr, CausationID: cause, Payload: p},
			Expect: events.NoExpectation}
		if i == 0 {
			wr.Expect = s.sale.Version
		}
		ws = append(ws, wr)
	}
	evs, err := w.appendWrites(append(ws, extra...)...)
	if err != nil {
		return nil, err
	}
	for _, e := range evs[:len(payloads)] {
		s.sale = s.sale.Evolve(e)
	}
	return evs, nil
}

func (w *mixWriter) changeCustomer(c *mixCustomer, at time.Time, p events.Payload, extra ...events.Write) error {
	evs, err := w.appendWrites(append([]events.Write{{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: c.agg, Time: at,
		CorrelationID: domain.NewID("req_"), Payload: p}, Expect: c.c.Version}}, extra...)...)
	if err != nil {
		return err
	}
	c.c = c.c.Evolve(evs[0])
	return nil
}

// sale writes the whole life of sale i.
func (w *mixWriter) sale(i int) error {
	r := w.rng
	store := w.stores[i%len(w.stores)]
	mode := events.ModeLive
	if r.IntN(10) == 0 {
		mode = events.ModeTest
	}
	now := w.t0.Add(time.Duration(i) * 2 * time.Second)
	corr := domain.NewID("req_")
	env := func(agg events.Aggregate, p events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: corr, Payload: p}
	}
	agg := func(typ, id string) events.Aggregate {
		return events.Aggregate{Mode: mode, StoreID: store.id, Type: typ, ID: id}
	}

	// POST /v1/checkouts
	product := mixProducts[r.IntN(len(mixProducts))]
	scope := store.id + "/" + mode
	var cust *mixCustomer
	if pool := w.pool[scope]; len(pool) > 0 && r.IntN(10) < 3 {
		cust = pool[r.IntN(len(pool))]
	}
	cmd := domain.Checkout{Product: product, Channel: []string{"store", "widget", "api", "affiliate"}[r.IntN(4)],
		Context: &events.SaleContext{IPAddress: fmt.Sprintf("203.0.113.%d", i%250+1), Country: &events.Country{Code: "CI", Name: "Côte d'Ivoire"},
			DeviceType: "mobile", Locale: "fr-CI"}}
	if cust != nil {
		f := cust.c.Fields
		cmd.Customer = events.CustomerRef{Email: f.DisplayEmail(), FirstName: f.FirstName, LastName: f.LastName, Phone: f.Phone}
	} else {
		cmd.Customer = events.CustomerRef{Email: fmt.Sprintf("Buyer.%d@Example.com", i), FirstName: "Awa", LastName: fmt.Sprintf("Koné %d", i),
			Phone: fmt.Sprintf("+22507%08d", i)}
	}
	if r.IntN(5) == 0 {
		cmd.Discount = &events.Discount{Code: "SPRING", Type: "percentage", Value: "15"}
	}
	if r.IntN(4) == 0 {
		cmd.Metadata = json.RawMessage(fmt.Sprintf(`{"order_ref":"ord-%d","utm_source":"newsletter"}`, i))
	}
	saleID := domain.NewID(domain.PrefixSale)
	started, err := cmd.Decide(saleID, "", store.terms, domain.NewID, now)
	if err != nil {
		return err
	}
	var ws []events.Write
	if r.IntN(2) == 0 {
		sum := sha256.Sum256([]byte(saleID))
		ws = append(ws, events.Write{Event: env(agg(events.AggregateIdempotency, domain.HashID("idem-"+saleID)),
			events.IdempotencyKeyRecorded{RequestHash: hex.EncodeToString(sum[:]), ResourceID: saleID, Endpoint: "POST /v1/checkouts"}), Expect: 0})
	}
	if cust == nil {
		id := domain.NewID(domain.PrefixCustomer)
		mac := sha256.Sum256([]byte(mode + "|" + store.id + "|" + started.Customer.Email))
		cust = &mixCustomer{agg: agg(events.AggregateCustomer, id), claim: agg(events.AggregateEmail, hex.EncodeToString(mac[:16])), spent: map[string]int64{}}
		email := started.Customer.Email
		if started.Customer.EmailAsTyped != "" {
			email = started.Customer.EmailAsTyped
		}
		fields, err := domain.CustomerFields{}.Apply(domain.CustomerInput{Email: &email, FirstName: &started.Customer.FirstName,
			LastName: &started.Customer.LastName, Phone: &started.Customer.Phone}, true)
		if err != nil {
			return err
		}
		ws = append(ws,
			events.Write{Event: env(cust.claim, events.EmailClaimed{CustomerID: id}), Expect: 0},
			events.Write{Event: env(cust.agg, events.CustomerRegistered{CustomerID: id, Source: "checkout", CustomerData: events.CustomerData(fields)}), Expect: 0})
		w.pool[scope] = append(w.pool[scope], cust)
		w.log.customers[id] = cust
	}
	started.Customer.ID, started.CustomerID = cust.agg.ID, cust.agg.ID
	s := &mixSale{agg: agg(events.AggregateSale, saleID), cust: cust}
	ws = append(ws, events.Write{Event: env(s.agg, started), Expect: 0})
	evs, err := w.appendWrites(ws...)
	if err != nil {
		return err
	}
	for _, e := range evs {
		switch e.Payload.(type) {
		case events.EmailClaimed:
			cust.claimSeq = e.Sequence
		case events.CustomerRegistered:
			cust.c = cust.c.Evolve(e)
		case events.SaleStarted:
			s.sale = s.sale.Evolve(e)
		}
	}
	w.log.sales[saleID] = s

	outcome := r.IntN(100)
	if outcome < 7 { // never paid: the timer abandons it
		_, err := w.changeSale(s, s.sale.Started.AbandonAt.Add(time.Minute), "timer", "", s.sale.Abandon(s.sale.Started.AbandonAt.Add(time.Minute)))
		return err
	}

	// POST /v1/webhooks/standard, then the payment processor.
	now = now.Add(time.Duration(30+r.IntN(120)) * time.Second)
	d := events.WebhookReceived{Gateway: "standard", DeliveryID: domain.NewID("dlv_"), Kind: "payment.succeeded", SaleID: saleID, StoreID: store.id,
		TransactionID: "txn_" + domain.RandomString(18), Amount: &events.Amount{Amount: started.Amount.Amount, Currency: started.Amount.Currency},
		Method: &events.PaymentMethod{ID: "card", Name: "Card"}}
	report := events.PaymentRecorded{Status: "success", Gateway: d.Gateway, TransactionID: d.TransactionID, DeliveryID: d.DeliveryID, Method: d.Method,
		Amount: started.Amount}
	if outcome < 15 {
		d.Kind, report.Status = "payment.failed", "failed"
		report.FailureError = &events.FailureError{Code: "card_declined", Message: "The card was declined."}
		d.FailureError = report.FailureError
	}
	sum := sha256.Sum256([]byte(d.DeliveryID))
	d.BodySHA256 = hex.EncodeToString(sum[:])
	key := domain.HashID(d.Gateway + ":" + d.DeliveryID)
	delivery := events.Envelope{ID: domain.PrefixEvent + "wh" + key, Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: d.Gateway,
		Type: events.AggregateWebhook, ID: key}, Time: now, CorrelationID: d.DeliveryID, Payload: d}
	if _, err := w.appendWrites(events.Write{Event: delivery, Expect: 0}); err != nil {
		return err
	}
	g := domain.Grants{LinkTTL: 7 * 24 * time.Hour}
	var issued []events.LicenceIssued
	if s.sale.Started.Product.Licence != nil {
		l := domain.NewLicence(s.sale, now)
		g.Licences = append(g.Licences, domain.IssuedLicence{ID: l.LicenceID, Key: l.Key, MaxActivations: l.MaxActivations, ExpiresAt: l.ExpiresAt})
		issued = append(issued, l)
	}
	payloads, err := s.sale.RecordPayment(report, g, now)
	if err != nil {
		return err
	}
	var extra []events.Write
	if len(payloads) > 1 {
		for _, l := range issued {
			extra = append(extra, events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg(events.AggregateLicence, l.LicenceID),
				Time: now, CorrelationID: d.DeliveryID, CausationID: delivery.ID, Payload: l}, Expect: 0})
		}
	}
	evs, err = w.changeSale(s, now, d.DeliveryID, delivery.ID, payloads, extra...)
	if err != nil {
		return err
	}
	if s.sale.Status != domain.StatusCompleted {
		return nil
	}
	cust.sales++
	cust.spent[s.sale.Started.Amount.Currency] += s.sale.Started.Amount.Amount
	var lic *domain.Licence
	for _, e := range evs[len(payloads):] {
		l := domain.Licence{}.Evolve(e)
		lic = &l
		w.log.licences++
	}

	// GET /v1/downloads/{token}
	for n := r.IntN(4); n > 0; n-- {
		now = now.Add(time.Duration(r.IntN(3600)) * time.Second)
		p, err := s.sale.RecordDownload(s.sale.Completed.Files[r.IntN(len(s.sale.Completed.Files))].ID)
		if err != nil {
			return err
		}
		if _, err := w.changeSale(s, now, domain.NewID("req_"), "", p); err != nil {
			return err
		}
	}
	// POST /v1/licences/{key}/activate
	if lic != nil && r.IntN(2) == 0 {
		p, err := lic.Activate("machine-"+domain.RandomString(8), now)
		if err != nil {
			return err
		}
		if _, err := w.appendWrites(events.Write{Event: env(agg(events.AggregateLicence, lic.Issued.LicenceID), p[0]), Expect: lic.Version}); err != nil {
			return err
		}
	}
	switch roll := r.IntN(100); {
	case roll < 5: // POST /v1/sales/{id}/refunds, the whole amount: its licences are revoked with it
		p, err := s.sale.Refund(domain.RefundRequest{ID: domain.NewID(domain.PrefixRefund), Source: events.RefundSourceAPI, Reason: "requested_by_customer"})
		if err != nil {
			return err
		}
		var revoke []events.Write
		for _, id := range s.sale.Revocations(p) {
			revoke = append(revoke, events.Write{Event: env(agg(events.AggregateLicence, id), events.LicenceRevoked{Reason: "refunded"}), Expect: events.NoExpectation})
		}
		if _, err := w.changeSale(s, now, domain.NewID("req_"), "", p, revoke...); err != nil {
			return err
		}
		cust.spent[s.sale.Started.Amount.Currency] -= p[0].(events.RefundRecorded).Amount.Amount
	case roll < 35: // the settlement timer
		due := s.sale.Completed.SettlementDueAt.Add(time.Minute)
		p, err := s.sale.Settle(due, "schedule")
		if err != nil {
			return err
		}
		if _, err := w.changeSale(s, due, "timer", "", p); err != nil {
			return err
		}
	}
	// PATCH /v1/customers/{id}; DELETE /v1/customers/{id}
	switch roll := r.IntN(1000); {
	case roll < 70 && !cust.erased:
		city, country := "Abidjan", "CI"
		p, _, err := cust.c.Update(domain.CustomerInput{City: &city, Country: &country})
		if err != nil || p == nil {
			return err
		}
		return w.changeCustomer(cust, now, p)
	case roll < 80 && !cust.erased:
		cust.erased = true
		pool := w.pool[scope]
		for j, c := range pool {
			if c == cust {
				w.pool[scope] = append(pool[:j:j], pool[j+1:]...)
				break
			}
		}
		// The key is destroyed first: from then on the log cannot tell anything personal about them.
		keys, err := w.st.Keys(w.ctx)
		if err != nil {
			return err
		}
		if err := keys.Erase(w.ctx, cust.agg.ID); err != nil {
			return err
		}
		release := events.Write{Event: env(cust.claim, events.EmailReleased{CustomerID: cust.agg.ID}), Expect: cust.claimSeq}
		return w.changeCustomer(cust, now, events.CustomerErased{CustomerID: cust.agg.ID}, release)
	}
	return nil
}

// BenchmarkFoldMix measures the whole fold of a realistic mix — stores, checkouts with their customers,
// gateway deliveries, payments and completions with licences, downloads, activations, refunds,
// settlements, customer updates and erasures, about 300,000 events as writeMix appends them — beside a
// raw ordered consumer of the same stream, in the same run:
//
//   - raw-ordered: nats.go's OrderedConsumer with Consume, counting messages to the last one and
//     acknowledging nothing: what `nats bench js ordered` does, the ceiling of delivery alone.
//   - fold: a projections.Runner on a store freshly connected (its keyring cache empty, as in a new
//     process that rebuilds) folds into a fresh SQLite file, from sqlite.Open until WaitFor(last).
//     Reports events/s and x-raw, its rate over raw-ordered's in this run.
//
// The events are appended once, before any timed run. Outside the timer each fold is checked against
// what the writers folded themselves: the counts, and a sample of sales (field for field) and customers
// (completed sales and exact totals).
func BenchmarkFoldMix(b *testing.B) {
	srv := jstest.Start(b, "")
	ctx := context.Background()
	start := time.Now()
	mix, err := writeMix(ctx, srv.Store)
	if err != nil {
		b.Fatal(err)
	}
	info, err := srv.Store.JetStream().Stream(ctx, jetstream.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	state := info.CachedInfo().State
	b.Logf("setup: appended %d events (%d bytes with subjects and headers, %d per event) in %s: %v", mix.last, state.Bytes,
		state.Bytes/max(state.Msgs, 1), time.Since(start).Round(time.Millisecond), mix.byType)
	connect := func(b *testing.B) *nats.Conn {
		nc, err := nats.Connect("", nats.InProcessServer(srv.NATS))
		if err != nil {
			b.Fatal(err)
		}
		return nc
	}

	var raw float64
	b.Run(fmt.Sprintf("raw-ordered/events=%d", mix.last), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			nc := connect(b)
			js, err := natsjs.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := consumeOrdered(ctx, js, mix.last); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			nc.Close()
			b.StartTimer()
		}
		b.StopTimer()
		raw = float64(mix.last) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(raw, "events/s")
	})

	b.Run(fmt.Sprintf("fold/events=%d", mix.last), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			path := filepath.Join(b.TempDir(), "read.db")
			nc := connect(b)
			log, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()

			st, err := sqlite.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r := projections.NewRunner(log, st, benchLog, nil)
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- r.Run(rctx) }()
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
			err = r.WaitFor(wctx, mix.last)
			wcancel()

			b.StopTimer()
			cancel()
			if err != nil {
				b.Fatalf("fold reached %d of %d: %v; runner error: %v", r.Applied(), mix.last, err, r.Err())
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			checkMix(b, st, mix)
			st.Close()
			nc.Close()
			b.StartTimer()
		}
		b.StopTimer()
		rate := float64(mix.last) * float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "events/s")
		if raw > 0 {
			b.ReportMetric(rate/raw, "x-raw")
		}
	})
}

// consumeOrdered reads the LEDGER stream from its start to last with an ordered consumer and a Consume
// callback, acknowledging nothing, as `nats bench js ordered` does (its default buffer of 500).
func consumeOrdered(ctx context.Context, js natsjs.JetStream, last uint64) error {
	cons, err := js.OrderedConsumer(ctx, jetstream.StreamName, natsjs.OrderedConsumerConfig{InactiveThreshold: 10 * time.Second})
	if err != nil {
		return err
	}
	var n uint64
	done := make(chan struct{})
	cc, err := cons.Consume(func(natsjs.Msg) {
		if n++; n == last {
			close(done)
		}
	}, natsjs.PullMaxMessages(500))
	if err != nil {
		return err
	}
	defer cc.Stop()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("ordered consumer: %d of %d messages", n, last)
	}
}

// checkMix fails b unless st holds exactly what the mix's writers folded: the checkpoint at the last
// event; every sale, every customer not erased and every licence; and, for a sample, each sale as its
// writer folded it (an erased customer's anonymised) and each customer's completed sales and totals.
func checkMix(b *testing.B, st *sqlite.Store, mix *mixLog) {
	b.Helper()
	ctx := context.Background()
	if cp, err := st.Checkpoint(ctx); err != nil || cp != mix.last {
		b.Fatalf("checkpoint %d (%v), want %d", cp, err, mix.last)
	}
	db, err := sql.Open("sqlite", "file:"+st.Path()+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	live := 0
	for _, c := range mix.customers {
		if !c.erased {
			live++
		}
	}
	for table, want := range map[string]int{"sales": len(mix.sales), "customers": live, "licences": mix.licences, "stores": mixStores} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != want {
			b.Fatalf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	checked := 0
	for id, want := range mix.sales { // map order: a different sample each run
		if checked++; checked > 500 {
			break
		}
		got, storeID, mode, err := st.SaleByID(ctx, id)
		if err != nil || storeID != want.agg.StoreID || mode != want.agg.Mode {
			b.Fatalf("sale %s: %s/%s, %v", id, storeID, mode, err)
		}
		exp := want.sale
		if want.cust.erased {
			exp.Started = domain.ErasePersonal(exp.Started)
		}
		gj, _ := json.Marshal(got)
		ej, _ := json.Marshal(exp)
		if string(gj) != string(ej) {
			b.Fatalf("sale %s folded\n%s\nits writer folded\n%s", id, gj, ej)
		}
		c := want.cust
		if c.erased {
			continue
		}
		row, err := st.Customer(ctx, c.agg.StoreID, c.agg.Mode, c.agg.ID)
		if err != nil {
			b.Fatalf("customer %s: %v", c.agg.ID, err)
		}
		spent := map[string]string{}
		for cur, t := range row.Spent {
			spent[cur] = t.AmountText()
		}
		gf, _ := json.Marshal(row.Fields)
		ef, _ := json.Marshal(c.c.Fields)
		if row.CompletedSales != c.sales || fmt.Sprint(spent) != fmt.Sprint(c.spent) || row.Version != c.c.Version || string(gf) != string(ef) {
			b.Fatalf("customer %s: %d sales, %v spent, version %d, %s; want %d, %v, %d, %s", c.agg.ID, row.CompletedSales, spent,
				row.Version, gf, c.sales, c.spent, c.c.Version, ef)
		}
	}
}
