// Package payments is the payment processor: it applies the gateway deliveries the HTTP handler
// recorded in the log (webhook_received) to their sales — payments, settlements, refunds and disputes —
// behind the log, through a durable JetStream consumer and a watermill router, and sets aside with the
// reason (webhook_rejected, the poison queue) what can never apply.
package payments

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/internal/keyed"
	"github.com/salesledger/ledger/handlers/salecache"
)

// Log is what the processor needs of the event store (events/jetstream.Store).
type Log interface {
	// AppendWrites appends one atomic batch, each write with its own expectation.
	AppendWrites(ctx context.Context, ws ...events.Write) (uint64, error)
	// Load reads one aggregate's events and its last subject sequence.
	Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, uint64, error)
	// Last reads the last event matching a subject filter, straight from the log.
	Last(ctx context.Context, filter string) (events.Envelope, bool, error)
}

// Reads is what the processor needs of the read store (projections/sqlite.Store): a sale by its id,
// with its store and mode, and by the gateway transaction its payment completed (domain.ErrNotFound
// when unknown).
type Reads interface {
	SaleByID(ctx context.Context, id string) (sale domain.Sale, storeID, mode string, err error)
	SaleByTransaction(ctx context.Context, gateway, transactionID string) (sale domain.Sale, storeID, mode string, err error)
}

// Config configures the payment processor.
type Config struct {
	Log    *slog.Logger
	Events Log
	Reads  func() Reads
	// Decode reads the ledger event a subscriber message carries.
	Decode func(*wmmessage.Message) (events.Envelope, error)
	// Subscriber delivers webhook_received events in order, durably.
	Subscriber wmmessage.Subscriber
	// LinkTTL is how long signed download links stay valid.
	LinkTTL time.Duration
	// GiveUpAfter is the delivery attempt from which a delivery whose sale still does not exist goes to
	// the poison queue.
	GiveUpAfter int
	// Sales keeps sales as this process's last appends left them: the processor's hints before the read
	// store, shared with the API (handlers.Config.Sales) so a payment for a sale checked out by this
	// process decides without a read. Nil: a cache of the processor's own, of 16,384 sales.
	Sales *salecache.Cache
	Now   func() time.Time
}

// permanent marks an error retrying can never fix: the delivery goes to the poison queue.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

var (
	errSaleNotVisible = errors.New("the sale is not (yet) in the read model")
	errWrongStore     = errors.New("the delivery names another store than the sale's")
)

// NewRouter builds the watermill router that applies recorded deliveries to their sales. A
// delivery that can never apply (another store's or currency's sale, no sale id, a sale that never
// appeared) is recorded as webhook_rejected through the poison queue and acknowledged; one that fails
// for a passing reason (a concurrent change, a sale not yet projected) is retried, then redelivered later
// by JetStream.
func NewRouter(cfg Config) (*wmmessage.Router, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = 7 * 24 * time.Hour
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 12
	}
	r, err := wmmessage.NewRouter(wmmessage.RouterConfig{CloseTimeout: 10 * time.Second},
		watermill.NewSlogLoggerWithLevelMapping(cfg.Log.With("component", "payments"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, err
	}
	if cfg.Sales == nil {
		cfg.Sales = salecache.New(16384)
	}
	p := &processor{cfg: cfg, cache: cfg.Sales}
	poison, err := middleware.PoisonQueueWithFilter(p, events.TypeWebhookRejected, func(err error) bool {
		var perm permanent
		var panicked middleware.RecoveredPanicError
		return errors.As(err, &perm) || errors.As(err, &panicked)
	})
	if err != nil {
		return nil, err
	}
	r.AddMiddleware(
		poison,
		middleware.CorrelationID,
		middleware.Retry{
			MaxRetries:      5,
			InitialInterval: 20 * time.Millisecond,
			Multiplier:      2,
			ShouldRetry: func(params middleware.RetryParams) bool {
				var perm permanent
				return !errors.As(params.Err, &perm)
			},
		}.Middleware,
		middleware.Recoverer,
	)
	r.AddConsumerHandler("payments", events.TypeWebhookReceived, cfg.Subscriber, p.handle)
	return r, nil
}

type processor struct {
	cfg   Config
	sales keyed.Mutex      // one delivery at a time per sale
	cache *salecache.Cache // sales as this process's appends left them (Config.Sales)
}

// handle applies one delivery. It loads the sale from its own subject in the log (exact), decides with
// the pure domain, and appends with the sale's last sequence as expectation, together with any licence
// it issues, as one atomic batch. The new events carry the delivery's correlation id and the
// webhook_received event as their cause.
func (p *processor) handle(msg *wmmessage.Message) (err error) {
	defer func() {
		// The log refused the write: nothing is wrong with the delivery, so it comes back soon however
		// long the outage lasts (jetstream.MetaRedeliverSoon).
		if errors.Is(err, domain.ErrUnavailable) {
			msg.Metadata.Set("redeliver_soon", "1")
		}
	}()
	ctx := msg.Context()
	env, err := p.cfg.Decode(msg)
	if err != nil {
		return permanent{fmt.Errorf("undecodable delivery: %w", err)}
	}
	d, ok := env.Payload.(events.WebhookReceived)
	if !ok {
		return permanent{fmt.Errorf("unexpected %s on the webhook subject", env.Type())}
	}
	afterPayment := d.Kind == "refund.succeeded" || d.Kind == "dispute.opened" || d.Kind == "dispute.closed"
	if d.SaleID == "" && afterPayment && d.TransactionID != "" {
		// Stripe's and Paystack's refunds and disputes name the charge: find the sale its payment completed.
		found, _, _, err := p.cfg.Reads().SaleByTransaction(ctx, d.Gateway, d.TransactionID)
		if errors.Is(err, domain.ErrNotFound) {
			if n, _ := strconv.Atoi(msg.Metadata.Get("num_delivered")); n >= p.cfg.GiveUpAfter {
				return permanent{fmt.Errorf("no sale was paid with %s transaction %s after %d deliveries", d.Gateway, d.TransactionID, n)}
			}
			return errSaleNotVisible
		}
		if err != nil {
			return err
		}
		d.SaleID = found.ID
	}
	if !domain.ValidID(domain.PrefixSale, d.SaleID) {
		return permanent{fmt.Errorf("the delivery names no sale (sale_id %q)", d.SaleID)}
	}
	defer p.sales.Lock(d.SaleID)()
	// A redelivered or retried message reads the log: the read model may be what was stale.
	fromLog := msg.Metadata.Get("ledger_retry") == "1" || msg.Metadata.Get("num_delivered") != "1"
	sale, storeID, mode, err := p.load(ctx, d.SaleID, fromLog)
	if errors.Is(err, domain.ErrNotFound) {
		if n, _ := strconv.Atoi(msg.Metadata.Get("num_delivered")); n >= p.cfg.GiveUpAfter {
			return permanent{fmt.Errorf("sale %s never appeared after %d deliveries", d.SaleID, n)}
		}
		return errSaleNotVisible
	}
	if err != nil {
		return err
	}
	if d.Livemode != nil && *d.Livemode != (mode == events.ModeLive) {
		delivered := map[bool]string{true: "live", false: "test"}[*d.Livemode]
		what := "payment"
		if afterPayment {
			what = strings.SplitN(d.Kind, ".", 2)[0] // refund, dispute
		}
		return permanent{fmt.Errorf("%w: a %s-mode %s for a %s-mode sale", domain.ErrPaymentMismatch, delivered, what, mode)}
	}
	if d.StoreID != "" && d.StoreID != storeID {
		return permanent{fmt.Errorf("%w: delivery for store %s, sale %s belongs to another", errWrongStore, d.StoreID, d.SaleID)}
	}
	agg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateSale, ID: d.SaleID}
	// Currencies are compared in upper case; an amount or fee without one is in the sale's currency.
	for _, a := range []*events.Amount{d.Amount, d.Fee} {
		if a != nil {
			a.Currency = strings.ToUpper(a.Currency)
			if a.Currency == "" {
				a.Currency = sale.Started.Amount.Currency
			}
		}
	}
	if d.Fee != nil && d.Fee.Currency != sale.Started.Amount.Currency {
		return permanent{fmt.Errorf("%w: fee in %s, sale is in %s", domain.ErrPaymentMismatch, d.Fee.Currency, sale.Started.Amount.Currency)}
	}
	now := p.cfg.Now().UTC()
	var payloads []events.Payload
	var licences []events.Payload // licence_issued on completion, licence_revoked on a full refund
	var revoked []string          // the licence ids of the licence_revoked, in order
	switch d.Kind {
	case "refund.succeeded":
		req := domain.RefundRequest{ID: domain.NewID(domain.PrefixRefund), Reason: d.Reason, Source: d.Gateway,
			GatewayRefundID: d.RefundID, DeliveryID: d.DeliveryID, Cumulative: d.Cumulative}
		if d.Amount != nil {
			req.Amount, req.Currency = &d.Amount.Amount, d.Amount.Currency
		}
		payloads, err = sale.Refund(req)
	case "dispute.opened":
		var amount *int64
		if d.Amount != nil {
			if d.Amount.Currency != sale.Started.Amount.Currency {
				return permanent{fmt.Errorf("%w: dispute in %s, sale is in %s", domain.ErrPaymentMismatch, d.Amount.Currency, sale.Started.Amount.Currency)}
			}
			amount = &d.Amount.Amount
		}
		payloads, err = sale.OpenDispute(d.DisputeID, amount, d.Reason, d.Gateway, d.DeliveryID)
	case "dispute.closed":
		var lost *int64
		if d.Amount != nil {
			if d.Amount.Currency != sale.Started.Amount.Currency {
				return permanent{fmt.Errorf("%w: dispute in %s, sale is in %s", domain.ErrPaymentMismatch, d.Amount.Currency, sale.Started.Amount.Currency)}
			}
			lost = &d.Amount.Amount
		}
		payloads, err = sale.CloseDispute(d.DisputeID, d.DisputeStatus, d.Gateway, d.DeliveryID, domain.NewID(domain.PrefixRefund), lost)
	case "settlement.done":
		payloads, err = sale.Settle(now, d.Gateway)
		if errors.Is(err, domain.ErrNotCompleted) && sale.Status == domain.StatusAwaitingPayment {
			return err // the payment's own delivery may still be on its way
		}
	default:
		report := events.PaymentRecorded{
			Status: strings.TrimPrefix(d.Kind, "payment."), Gateway: d.Gateway, TransactionID: d.TransactionID,
			DeliveryID: d.DeliveryID, Method: d.Method, Fee: d.Fee, FailureError: d.FailureError,
		}
		if report.Status == "succeeded" {
			report.Status = "success"
		}
		report.Amount = sale.Started.Amount
		if d.Amount != nil {
			report.Amount = *d.Amount
		}
		grants, issued := p.grants(sale, now)
		payloads, err = sale.RecordPayment(report, grants, now)
		if len(payloads) > 1 { // completed: issue the licences with it
			licences = issued
		}
	}
	if afterPayment && (errors.Is(err, domain.ErrNotRefundable) || errors.Is(err, domain.ErrDisputeUnknown)) {
		// The payment's (or the dispute's opening) delivery may still be on its way: wait for it, then
		// give up with the reason.
		if n, _ := strconv.Atoi(msg.Metadata.Get("num_delivered")); n >= p.cfg.GiveUpAfter && fromLog {
			return permanent{fmt.Errorf("%s after %d deliveries: %w", d.Kind, n, err)}
		}
		msg.Metadata.Set("ledger_retry", "1")
		return fmt.Errorf("waiting: %w", err)
	}
	var invalid *domain.ValidationError
	if errors.Is(err, domain.ErrRefundExceedsAmount) || errors.As(err, &invalid) {
		return permanent{err} // a refund beyond the sale, or in another currency: for an operator
	}
	if errors.Is(err, domain.ErrPaymentMismatch) || errors.Is(err, domain.ErrNotCompleted) {
		if !fromLog {
			// Decided on the read model's copy, which may lag: confirm on the log before rejecting.
			msg.Metadata.Set("ledger_retry", "1")
			return fmt.Errorf("confirming on the log: %w", err)
		}
		return permanent{err}
	}
	if errors.Is(err, domain.ErrInvalidPercent) || errors.Is(err, domain.ErrOverflow) || errors.Is(err, domain.ErrUnknownCurrency) {
		// The sale's own terms cannot be applied: retrying never changes that, so the delivery goes to
		// the poison queue with the reason, for an operator, rather than round forever.
		return permanent{fmt.Errorf("the sale's terms cannot be applied: %w", err)}
	}
	if err != nil {
		return err
	}
	if len(payloads) == 0 {
		return nil // a duplicate or a report the payment already passed: nothing changes
	}
	for _, id := range sale.Revocations(payloads) { // refunded in full: its licences no longer activate
		licences = append(licences, events.LicenceRevoked{Reason: "refunded"})
		revoked = append(revoked, id)
	}
	writes := make([]events.Write, 0, len(payloads)+len(licences))
	saleEvents := make([]events.Envelope, len(payloads))
	for i, pl := range payloads {
		w := events.Write{Event: p.envelope(agg, env, pl, now), Expect: events.NoExpectation}
		if i == 0 {
			w.Expect = sale.Version
		}
		writes = append(writes, w)
		saleEvents[i] = w.Event
	}
	for i, l := range licences {
		switch l := l.(type) {
		case events.LicenceIssued:
			lagg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateLicence, ID: l.LicenceID}
			writes = append(writes, events.Write{Event: p.envelope(lagg, env, l, now), Expect: 0})
		case events.LicenceRevoked:
			lagg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateLicence, ID: revoked[i-(len(licences)-len(revoked))]}
			writes = append(writes, events.Write{Event: p.envelope(lagg, env, l, now), Expect: events.NoExpectation})
		}
	}
	seq, err := p.cfg.Events.AppendWrites(ctx, writes...)
	if err != nil {
		p.cache.Forget(d.SaleID)
		if errors.Is(err, domain.ErrConflict) {
			msg.Metadata.Set("ledger_retry", "1") // the Retry middleware runs us again: read the log then
		}
		return err
	}
	// The sale's events come first in the batch, its licences after.
	p.cache.Put(salecache.Entry{Sale: salecache.Applied(sale, saleEvents, seq-uint64(len(licences))), StoreID: storeID, Mode: mode})
	return nil
}

// load finds the sale a delivery names, and its store and mode. The first attempt takes this
// processor's own copy if it has one, else the read model's (one indexed read); fromLog, or when the
// read model does not have the sale, it folds the sale from its subject in the log, which is exact. So
// a replica whose read model lags (catching up after a failover) still applies deliveries at once, and
// only a sale the log does not have either waits for redelivery.
func (p *processor) load(ctx context.Context, id string, fromLog bool) (domain.Sale, string, string, error) {
	if !fromLog {
		if c, ok := p.cache.Get(id); ok {
			return c.Sale, c.StoreID, c.Mode, nil
		}
		sale, storeID, mode, err := p.cfg.Reads().SaleByID(ctx, id)
		if !errors.Is(err, domain.ErrNotFound) {
			return sale, storeID, mode, err
		}
	}
	// The sale's store and mode are in its subjects: the last event of any of them names them.
	last, found, err := p.cfg.Events.Last(ctx, strings.Join([]string{events.SubjectPrefix, "*", "*", events.AggregateSale, id, "*"}, "."))
	if err != nil {
		return domain.Sale{}, "", "", err
	}
	if !found {
		return domain.Sale{}, "", "", domain.ErrNotFound
	}
	agg := last.Aggregate
	evs, _, err := p.cfg.Events.Load(ctx, agg)
	if err != nil {
		return domain.Sale{}, "", "", err
	}
	return domain.FoldSale(evs), agg.StoreID, agg.Mode, nil
}

func (p *processor) envelope(agg events.Aggregate, cause events.Envelope, pl events.Payload, now time.Time) events.Envelope {
	return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now,
		CorrelationID: cause.CorrelationID, CausationID: cause.ID, Payload: pl}
}

// grants makes what a completion hands out: one licence per purchase when the product has licence terms.
func (p *processor) grants(sale domain.Sale, now time.Time) (domain.Grants, []events.Payload) {
	g := domain.Grants{LinkTTL: p.cfg.LinkTTL}
	terms := sale.Started.Product.Licence
	if terms == nil {
		return g, nil
	}
	l := domain.NewLicence(sale, now)
	g.Licences = append(g.Licences, domain.IssuedLicence{ID: l.LicenceID, Key: l.Key, MaxActivations: l.MaxActivations, ExpiresAt: l.ExpiresAt})
	return g, []events.Payload{l}
}

// Publish is the poison queue: it records each message as webhook_rejected with the reason, on the
// delivery's own subject, so an operator sees it next to the delivery and nothing applies it.
func (p *processor) Publish(_ string, msgs ...*wmmessage.Message) error {
	for _, m := range msgs {
		env, err := p.cfg.Decode(m)
		if err != nil {
			p.cfg.Log.Error("poisoned message is not a ledger event; dropped", "uuid", m.UUID, "err", err)
			continue
		}
		d, _ := env.Payload.(events.WebhookReceived)
		rej := events.Envelope{
			ID:            domain.PrefixEvent + "rj" + domain.HashID(env.ID),
			Aggregate:     env.Aggregate,
			Time:          p.cfg.Now().UTC(),
			CorrelationID: env.CorrelationID,
			CausationID:   env.ID,
			Payload:       events.WebhookRejected{DeliveryID: d.DeliveryID, Reason: m.Metadata.Get(middleware.ReasonForPoisonedKey)},
		}
		if _, err := p.cfg.Events.AppendWrites(context.Background(), events.Write{Event: rej, Expect: events.NoExpectation}); err != nil {
			return err
		}
		p.cfg.Log.Warn("webhook delivery rejected to the poison queue", "gateway", d.Gateway, "delivery_id", d.DeliveryID,
			"sale_id", d.SaleID, "reason", m.Metadata.Get(middleware.ReasonForPoisonedKey))
	}
	return nil
}

// Close is part of watermill's Publisher.
func (p *processor) Close() error { return nil }
