package webhooksout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// Log is what the dispatcher needs of the event store (events/jetstream.Store).
type Log interface {
	// AppendWrites appends one atomic batch, each write with its own expectation, and returns the
	// sequence of its last event (its events are stored one after another).
	AppendWrites(ctx context.Context, ws ...events.Write) (uint64, error)
	// Load reads one aggregate's events and its last subject sequence.
	Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, uint64, error)
}

// Reads is what the dispatcher needs of the read store (projections/sqlite.Store).
type Reads interface {
	WebhookEndpointsOf(ctx context.Context, storeID, mode string) ([]sqlite.WebhookEndpointRow, error)
	WebhookEndpoint(ctx context.Context, storeID, mode, id string) (sqlite.WebhookEndpointRow, error)
	ClaimableWebhookDeliveries(ctx context.Context, now time.Time, limit, perEndpoint int, skipEndpoints []string) ([]sqlite.WebhookDeliveryRow, error)
}

// DispatcherConfig configures a Dispatcher. Log, Events, Reads, WaitFor, Render, Decode, Subscriber and
// Sender are required.
type DispatcherConfig struct {
	Log    *slog.Logger
	Events Log
	Reads  func() Reads
	// WaitFor returns once the read store has applied the log up to seq (projections.Live.WaitFor).
	WaitFor func(ctx context.Context, seq uint64) error
	// Render is the object an outgoing event's data carries, as GET shows it at stream sequence seq
	// (handlers.API.ObjectAt).
	Render func(ctx context.Context, agg events.Aggregate, seq uint64) (json.RawMessage, error)
	// Erased, if set, tells whether a data subject (a customer id) was erased since (the keyring). With
	// it, an event's data rendered for one endpoint is reused for its others for a few seconds, as long as
	// the customer in it is not erased; without it every attempt renders.
	Erased func(ctx context.Context, subject string) (bool, error)
	// Decode reads the ledger event a subscriber message carries; Peek, if set, only its aggregate,
	// type and stream sequence, without decoding the payload (jetstream.PeekMessage).
	Decode func(*wmmessage.Message) (events.Envelope, error)
	Peek   func(*wmmessage.Message) (agg events.Aggregate, eventType string, seq uint64, err error)
	// Subscriber delivers the events of sales, customers and licences in order, durably, shared by
	// every replica (one durable consumer), so each event is scheduled by one replica.
	Subscriber wmmessage.Subscriber
	Sender     *Sender
	// Timeout is the Sender's attempt timeout (default DefaultTimeout): leases are made of it.
	Timeout time.Duration
	// Schedule is when failed attempts are retried (default DefaultSchedule).
	Schedule Schedule
	// PerEndpoint is how many attempts to one endpoint may be in flight at once (default 4); QueueLen
	// how many more may wait in memory for it (default 1,000). Attempts beyond those wait in the log
	// and are claimed when there is room.
	PerEndpoint, QueueLen int
	// PollEvery is how often the read store is asked for attempts that came due (default 1 s).
	PollEvery time.Duration
	// Registry, if set, gets the dispatcher's metrics.
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Dispatcher sends the outgoing webhooks of DESIGN.md "Webhooks out". Every delivery follows from the
// log, and every step of it is an event on the delivery's own subject:
//
//   - Scheduling. A shared durable consumer hands each sale, customer and licence event to one replica,
//     which decides the outgoing event (EventFor), waits for the read store to have applied the event
//     (so an endpoint created before it is known), picks the recipients, and appends one
//     webhook_delivery_scheduled per endpoint, each expecting an empty subject: a redelivered event
//     schedules nothing twice. The scheduling replica owns each first attempt for a lease.
//   - Attempts. Each endpoint has its own queue and at most PerEndpoint attempts in flight, so an
//     endpoint that hangs or fails holds up only itself. The body is rendered when the attempt is made
//     (Render: an erased customer's data is never sent), signed with the endpoint's secrets read from
//     the log, and the outcome appended as webhook_delivery_attempted with the delivery's last sequence
//     as expectation, with when to retry on Schedule.
//   - Retries and take-overs. Every replica asks the read store each PollEvery for attempts that are due
//     and owned by no one (a retry's time came, a manual retry asked for one, a replica died holding
//     one), claims each with webhook_delivery_claimed (compare-and-set: one replica wins) and makes it.
//     A kill -9 at any point leaves an owned attempt that is claimed again once its lease ends: an
//     attempt is made at least once, and by one replica at a time.
//   - An endpoint whose attempts all failed for DisableAfter is disabled (webhook_endpoint_updated); an
//     attempt that comes due for a disabled or deleted endpoint is cancelled instead.
type Dispatcher struct {
	cfg    DispatcherConfig
	router *wmmessage.Router
	wake   chan struct{}

	mu sync.Mutex
	// queues are the endpoints' attempt queues, by endpoint id, while they have work.
	queues map[string]*endpointQueue
	// held are the deliveries queued or being attempted here.
	held map[string]struct{}
	// endpoints caches endpoints folded from the log (with their secrets), by id.
	endpoints map[string]domain.WebhookEndpoint
	// renders keeps the data rendered for recent outgoing events, by event id (Erased).
	renders map[string]rendered
	// backlog marks the endpoints whose last look may have left due attempts behind (it took all their
	// places): the poller is woken when their queue drains.
	backlog map[string]bool

	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
	wg       sync.WaitGroup
	// base ends with Run's context: attempts in flight are cut (and made again after their lease).
	base context.Context
	// recording bounds the outcomes being appended at once (maxRecording).
	recording chan struct{}
}

// rendered is an outgoing event's data as rendered for one attempt, kept for the event's other endpoints:
// at is when (the process's clock), subject the customer whose personal data it may carry ("" none).
type rendered struct {
	data    json.RawMessage
	subject string
	at      time.Time
}

// maxRecording bounds the attempts whose outcome is being appended at once, across endpoints.
const maxRecording = 256

// Render reuse: how long rendered data serves other attempts, and how many events are kept.
const (
	renderTTL     = 5 * time.Second
	maxRenderKeep = 4096
)

type endpointQueue struct {
	jobs    chan job
	workers int
}

// job is one attempt to make: the delivery as this replica knows it, and whether it owns the attempt
// (scheduled it, or claimed it) or has yet to claim it.
type job struct {
	d             domain.WebhookDelivery
	storeID, mode string
	owned         bool
	// first marks the attempt its scheduler starts at once; eventAppended is then when the ledger event
	// that caused it happened (for the first-attempt delay metric).
	first         bool
	eventAppended time.Time
}

// NewDispatcher builds a dispatcher; Run starts it.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1000
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	d := &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1), queues: map[string]*endpointQueue{},
		held: map[string]struct{}{}, endpoints: map[string]domain.WebhookEndpoint{}, renders: map[string]rendered{}, backlog: map[string]bool{},
		recording: make(chan struct{}, maxRecording)}
	d.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_webhook_attempts_total", Help: "Outgoing webhook attempts by outcome (succeeded, failed).",
	}, []string{"outcome"})
	d.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ledger_webhook_first_attempt_delay_seconds",
		Help:    "Time from a ledger event to the start of the first attempt to deliver it to an endpoint.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 5, 30},
	})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(d.attempts); err != nil {
			return nil, err
		}
		if err := cfg.Registry.Register(d.latency); err != nil {
			return nil, err
		}
	}
	r, err := wmmessage.NewRouter(wmmessage.RouterConfig{CloseTimeout: 10 * time.Second},
		watermill.NewSlogLoggerWithLevelMapping(cfg.Log.With("component", "webhooks"), map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return nil, err
	}
	r.AddMiddleware(
		middleware.CorrelationID,
		middleware.Retry{MaxRetries: 5, InitialInterval: 20 * time.Millisecond, Multiplier: 2}.Middleware,
		middleware.Recoverer,
	)
	r.AddConsumerHandler("webhooks", "ledger events", cfg.Subscriber, d.schedule)
	d.router = r
	return d, nil
}

// Lease is how long the replica that scheduled or claimed an attempt owns it: three timeouts (45 s). An
// attempt starts only with two timeouts of its lease left (renewing it otherwise), so it is sent and
// recorded inside its lease however long the receiver takes.
func (d *Dispatcher) Lease() time.Duration { return 3 * d.cfg.Timeout }

// Run schedules and sends until ctx ends; it returns once the router stopped and in-flight attempts
// ended (they are bounded by the timeout).
func (d *Dispatcher) Run(ctx context.Context) error {
	d.base = ctx
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.poll(ctx)
	}()
	err := d.router.Run(ctx)
	d.wg.Wait()
	return err
}

// Running is closed once the router runs.
func (d *Dispatcher) Running() chan struct{} { return d.router.Running() }

// IsRunning tells whether the router runs (readiness).
func (d *Dispatcher) IsRunning() bool { return d.router.IsRunning() }

// Wake makes the next look for due attempts now (a manual retry was recorded).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// schedule handles one ledger event: it schedules the deliveries it causes and starts their first
// attempts.
func (d *Dispatcher) schedule(msg *wmmessage.Message) error {
	ctx := msg.Context()
	// Most events go to no endpoint (their type tells no store, or their store has none): decided from
	// the subject, before the payload is decoded and its personal data opened.
	var rows []sqlite.WebhookEndpointRow
	if d.cfg.Peek != nil {
		agg, typ, seq, err := d.cfg.Peek(msg)
		if err == nil {
			if outgoingOf[typ] == "" || (agg.Mode != events.ModeLive && agg.Mode != events.ModeTest) {
				return nil
			}
			if rows, err = d.endpointsAt(ctx, agg, seq); err != nil {
				return err
			}
			if len(rows) == 0 {
				return nil
			}
		}
	}
	e, err := d.cfg.Decode(msg)
	if err != nil {
		return fmt.Errorf("undecodable event: %w", err)
	}
	status := ""
	if t := e.Type(); t == events.TypePaymentFailed || t == events.TypePaymentCancelled {
		evs, _, err := d.cfg.Events.Load(ctx, e.Aggregate)
		if err != nil {
			return err
		}
		var upTo []events.Envelope
		for _, x := range evs {
			if x.Sequence <= e.Sequence {
				upTo = append(upTo, x)
			}
		}
		status = domain.FoldSale(upTo).Status
	}
	out, ok := EventFor(e, status)
	if !ok {
		return nil
	}
	if rows == nil {
		if rows, err = d.endpointsAt(ctx, e.Aggregate, e.Sequence); err != nil {
			return err
		}
	}
	eps := make([]Endpoint, len(rows))
	for i, r := range rows {
		eps[i] = Endpoint{StoreID: r.StoreID, Mode: r.Mode, WebhookEndpoint: r.WebhookEndpoint}
	}
	to := Recipients(eps, e.Aggregate, out.Type, e.Time)
	if len(to) == 0 {
		return nil
	}
	now := d.cfg.Now()
	ws := make([]events.Write, len(to))
	for i, ep := range to {
		// This replica makes the first attempt if the endpoint's queue has room; otherwise no one owns
		// it, and the first replica with room claims it.
		lease := now
		if d.hasRoom(ep.ID) {
			lease = now.Add(d.Lease())
		}
		p := domain.ScheduleWebhookDelivery(ep.ID, e, out.Type, out.Object, lease)
		ws[i] = events.Write{Event: events.Envelope{ID: domain.NewID(domain.PrefixEvent),
			Aggregate: domain.WebhookDeliveryAggregate(e.Aggregate.Mode, e.Aggregate.StoreID, p.DeliveryID),
			Time:      now, CorrelationID: e.CorrelationID, CausationID: e.ID, Payload: p}, Expect: 0}
	}
	last, err := d.cfg.Events.AppendWrites(ctx, ws...)
	switch {
	case err == nil:
		for i, w := range ws {
			w.Event.Sequence = last - uint64(len(ws)-1-i)
			d.start(w.Event, e)
		}
		return nil
	case !errors.Is(err, domain.ErrConflict):
		return err
	}
	// Some were scheduled before (this event was delivered again after a crash): schedule the others one
	// by one; the attempts of those scheduled before are their scheduler's, or the poller's once its
	// lease ends.
	for _, w := range ws {
		seq, err := d.cfg.Events.AppendWrites(ctx, w)
		switch {
		case err == nil:
			w.Event.Sequence = seq
			d.start(w.Event, e)
		case errors.Is(err, domain.ErrConflict):
		default:
			return err
		}
	}
	return nil
}

// endpointsAt is agg's store and mode's endpoints once the read store has applied stream sequence seq
// (so an endpoint created before the event is among them).
func (d *Dispatcher) endpointsAt(ctx context.Context, agg events.Aggregate, seq uint64) ([]sqlite.WebhookEndpointRow, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := d.cfg.WaitFor(wctx, seq)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read store behind event %d: %w", seq, err)
	}
	return d.cfg.Reads().WebhookEndpointsOf(ctx, agg.StoreID, agg.Mode)
}

// start queues the first attempt of a delivery this replica just scheduled, if it owns it.
func (d *Dispatcher) start(sched events.Envelope, cause events.Envelope) {
	del := domain.WebhookDelivery{}.Evolve(sched)
	if !del.LeaseUntil.After(sched.Time) {
		d.Wake() // scheduled for whoever has room
		return
	}
	if !d.enqueue(job{d: del, storeID: sched.Aggregate.StoreID, mode: sched.Aggregate.Mode, owned: true, first: true, eventAppended: cause.Time}) {
		// The queue filled since the schedule was decided: give the lease up at once rather than let
		// the attempt wait it out.
		if c, err := del.Renew(sched.Time, sched.Time); err == nil {
			env := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: sched.Aggregate, Time: sched.Time, CorrelationID: del.EventID, Payload: c}
			if _, err := d.cfg.Events.AppendWrites(d.base, events.Write{Event: env, Expect: del.Version}); err == nil {
				d.Wake()
			}
		}
	}
}

// enqueue hands a job to its endpoint's queue, starting a worker if fewer than PerEndpoint run. A job
// already held here is not queued twice; one that finds the queue full is left to the log (false).
func (d *Dispatcher) enqueue(j job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.held[j.d.ID]; ok {
		return false
	}
	q := d.queues[j.d.EndpointID]
	if q == nil {
		q = &endpointQueue{jobs: make(chan job, d.cfg.QueueLen)}
		d.queues[j.d.EndpointID] = q
	}
	select {
	case q.jobs <- j:
	default:
		return false
	}
	d.held[j.d.ID] = struct{}{}
	if q.workers < d.cfg.PerEndpoint {
		q.workers++
		d.wg.Add(1)
		go d.work(j.d.EndpointID, q)
	}
	return true
}

// work makes the attempts of one endpoint's queue until it is empty.
func (d *Dispatcher) work(endpointID string, q *endpointQueue) {
	defer d.wg.Done()
	for {
		var j job
		select {
		case j = <-q.jobs:
		default:
			d.mu.Lock()
			if len(q.jobs) > 0 {
				d.mu.Unlock()
				continue
			}
			q.workers--
			if q.workers == 0 && d.queues[endpointID] == q {
				delete(d.queues, endpointID)
			}
			more := d.backlog[endpointID]
			delete(d.backlog, endpointID)
			d.mu.Unlock()
			if more {
				d.Wake()
			}
			return
		}
		finish := d.attempt(j)
		if finish == nil {
			d.release(j.d.ID)
			continue
		}
		// The outcome is recorded beside the next attempt: the endpoint's slots bound its requests in
		// flight, not the appends behind them (bounded on their own, maxRecording).
		d.recording <- struct{}{}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			finish()
			<-d.recording
			d.release(j.d.ID)
		}()
	}
}

// release forgets a delivery held here: its attempt is made and recorded (or given up).
func (d *Dispatcher) release(id string) {
	d.mu.Lock()
	delete(d.held, id)
	d.mu.Unlock()
}

// hasRoom tells whether the endpoint's queue can take another attempt.
func (d *Dispatcher) hasRoom(endpointID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[endpointID]
	return q == nil || len(q.jobs) < cap(q.jobs)
}

// full lists the endpoints whose queues cannot take more: the poller leaves their due attempts in the
// log rather than crowd out other endpoints'.
func (d *Dispatcher) full() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, q := range d.queues {
		if len(q.jobs) >= cap(q.jobs) {
			out = append(out, id)
		}
	}
	return out
}

// pollBatch caps the attempts one look at the read store picks up, pollPerEndpoint those of one
// endpoint: attempts waiting in an endpoint's queue here stay claimable in the read store until they are
// made (their lease ends while they wait), and must not fill every look.
const (
	pollBatch       = 500
	pollPerEndpoint = 16
	// pollGap is the least time between two looks when woken.
	pollGap = 20 * time.Millisecond
)

// poll looks for attempts that came due and no one owns, every PollEvery or when woken, and queues them
// to be claimed.
func (d *Dispatcher) poll(ctx context.Context) {
	tick := time.NewTicker(d.cfg.PollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.wake:
			// Woken (a manual retry, a drained backlog): look now, but not more often than pollGap.
			select {
			case <-ctx.Done():
				return
			case <-time.After(pollGap):
			}
		}
		rows, err := d.cfg.Reads().ClaimableWebhookDeliveries(ctx, d.cfg.Now(), pollBatch, pollPerEndpoint, d.full())
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Log.Warn("webhooks: looking for due attempts failed", "err", err)
			}
			continue
		}
		per := map[string]int{}
		for _, r := range rows {
			per[r.EndpointID]++
			d.enqueue(job{d: r.WebhookDelivery, storeID: r.StoreID, mode: r.Mode})
		}
		// An endpoint that filled its places may have more due: look again as soon as its queue drains,
		// rather than a poll interval later.
		d.mu.Lock()
		for id, n := range per {
			if n >= pollPerEndpoint {
				d.backlog[id] = true
			}
		}
		d.mu.Unlock()
	}
}

// attemptCtx bounds everything an attempt does besides the send (loads, appends, rendering).
const attemptCtx = 30 * time.Second

// attempt makes one attempt of a job: it makes sure this replica owns it (claiming or renewing with
// compare-and-set), checks the endpoint, renders, signs and sends. It returns what records the outcome
// (nil when there is nothing to record).
func (d *Dispatcher) attempt(j job) (finish func()) {
	ctx, cancel := context.WithTimeout(d.base, attemptCtx+d.cfg.Timeout)
	defer cancel()
	log := d.cfg.Log.With("delivery", j.d.ID, "endpoint", j.d.EndpointID)
	agg := domain.WebhookDeliveryAggregate(j.mode, j.storeID, j.d.ID)
	del, ok := d.own(ctx, agg, j)
	if !ok {
		return nil
	}
	ep, err := d.endpoint(ctx, j.storeID, j.mode, del.EndpointID)
	switch {
	case errors.Is(err, domain.ErrNotFound), err == nil && (ep.Deleted || ep.Secret == ""):
		// No secret: a DELETE destroyed the endpoint's key (and may have stopped before recording the
		// deletion). Nothing is ever sent unsigned, nor to an endpoint being deleted.
		d.cancel(ctx, agg, del, events.DeliveryCancelEndpointDeleted)
		return nil
	case err != nil:
		log.Warn("webhooks: reading the endpoint failed; the attempt is taken up again when its lease ends", "err", err)
		return nil
	case ep.Disabled:
		d.cancel(ctx, agg, del, events.DeliveryCancelEndpointDisabled)
		return nil
	}
	now := d.cfg.Now()
	var (
		result domain.AttemptResult
		a      Attempt
	)
	data, err := d.render(ctx, j.mode, j.storeID, del)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		// Cannot happen for an event the log holds; record it rather than retry in silence.
		log.Error("webhooks: the event's object is not in the log", "object", del.Object, "seq", del.EventSequence)
		a = Attempt{At: now, Error: "ledger: the event's object could not be rendered"}
	case err != nil:
		log.Warn("webhooks: rendering failed; the attempt is taken up again when its lease ends", "err", err)
		return nil
	default:
		body := Body(del.EventID, del.EventType, del.CreatedAt, j.mode == events.ModeLive, data)
		var keys [][]byte
		for _, s := range ep.SigningSecrets(now) {
			k, err := ParseSecret(s)
			if err != nil {
				log.Error("webhooks: the endpoint's secret does not parse", "err", err)
				continue
			}
			keys = append(keys, k)
		}
		if j.first && !j.eventAppended.IsZero() {
			d.latency.Observe(now.Sub(j.eventAppended).Seconds())
		}
		if len(keys) == 0 {
			a = Attempt{At: now, Error: "ledger: the endpoint has no usable signing secret; nothing was sent"}
		} else {
			a = d.cfg.Sender.Send(ctx, ep.URL, Sign(del.EventID, now, body, keys...), body)
		}
	}
	result = domain.AttemptResult{At: now, StatusCode: a.StatusCode, Duration: time.Duration(a.DurationMS) * time.Millisecond,
		Error: a.Error, Success: a.Success}
	if a.Success {
		d.attempts.WithLabelValues("succeeded").Inc()
	} else {
		d.attempts.WithLabelValues("failed").Inc()
	}
	return func() {
		ctx, cancel := context.WithTimeout(d.base, attemptCtx)
		defer cancel()
		// Disabling is considered when a delivery ends failed (its schedule ran out, or a manual retry
		// failed), not on every failure: one transient failure after a quiet week must not disable anything.
		if rec, ok := d.record(ctx, agg, del, result, log); ok && !rec.Success && rec.NextAttemptAt == nil {
			d.disableIfFailing(ctx, j.storeID, j.mode, del.EndpointID, log)
		}
	}
}

// render is the data of the delivery's outgoing event: rendered for an attempt to another endpoint a
// moment ago, if the customer in it is not erased since, else rendered now.
func (d *Dispatcher) render(ctx context.Context, mode, storeID string, del domain.WebhookDelivery) (json.RawMessage, error) {
	if d.cfg.Erased != nil {
		d.mu.Lock()
		r, ok := d.renders[del.EventID]
		d.mu.Unlock()
		if ok && time.Since(r.at) < renderTTL {
			erased := false
			if r.subject != "" {
				var err error
				if erased, err = d.cfg.Erased(ctx, r.subject); err != nil {
					return nil, err
				}
			}
			if !erased {
				return r.data, nil
			}
		}
	}
	data, err := d.cfg.Render(ctx, objectAggregate(mode, storeID, del), del.EventSequence)
	if err != nil || d.cfg.Erased == nil {
		return data, err
	}
	r := rendered{data: data, at: time.Now()}
	switch {
	case strings.HasPrefix(del.EventType, "customer."):
		r.subject = del.Object
	case strings.HasPrefix(del.EventType, "sale."), strings.HasPrefix(del.EventType, "dispute."):
		var sale struct {
			Customer *struct {
				ID string `json:"id"`
			} `json:"customer"`
		}
		if json.Unmarshal(data, &sale) == nil && sale.Customer != nil {
			r.subject = sale.Customer.ID
		}
	}
	d.mu.Lock()
	if len(d.renders) >= maxRenderKeep {
		for id, old := range d.renders {
			if time.Since(old.at) >= renderTTL || len(d.renders) >= maxRenderKeep {
				delete(d.renders, id)
			}
		}
	}
	d.renders[del.EventID] = r
	d.mu.Unlock()
	return data, nil
}

// own makes sure this replica owns the job's attempt for at least two timeouts from now: it
// keeps a lease it holds with that much left, renews one it holds with less, and claims one it does not
// hold. Each append expects the delivery's version as this replica knows it; a conflict (the read store
// was behind, another replica claimed) is settled by reading the delivery from the log and deciding
// again. It returns the delivery as owned, or false when the attempt is not this replica's to make.
func (d *Dispatcher) own(ctx context.Context, agg events.Aggregate, j job) (domain.WebhookDelivery, bool) {
	del := j.d
	for try := 0; try < 3; try++ {
		now := d.cfg.Now()
		var (
			c   events.WebhookDeliveryClaimed
			err error
		)
		switch {
		case j.owned && !now.Add(2*d.cfg.Timeout).After(del.LeaseUntil):
			return del, true
		case j.owned:
			c, err = del.Renew(now, now.Add(d.Lease()))
		default:
			c, err = del.Claim(now, now.Add(d.Lease()))
		}
		if err != nil {
			return del, false // not due, finished, or another's
		}
		env := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: del.EventID, Payload: c}
		seq, err := d.cfg.Events.AppendWrites(ctx, events.Write{Event: env, Expect: del.Version})
		switch {
		case err == nil:
			env.Sequence = seq
			return del.Evolve(env), true
		case errors.Is(err, domain.ErrConflict):
			fresh, err := d.load(ctx, agg)
			if err != nil {
				return del, false
			}
			// Fresh from the log, it is claimable only if no one holds it now.
			del, j.owned = fresh, false
		default:
			if ctx.Err() == nil {
				d.cfg.Log.Warn("webhooks: claiming an attempt failed", "delivery", del.ID, "err", err)
			}
			return del, false
		}
	}
	return del, false
}

// record appends an attempt's outcome, expecting the delivery's version; on a conflict (a manual retry
// arrived meanwhile) it reads the delivery again and records on that. A delivery that is no longer
// pending (cancelled meanwhile) takes no record. It returns the recorded attempt, and false when none was.
func (d *Dispatcher) record(ctx context.Context, agg events.Aggregate, del domain.WebhookDelivery, r domain.AttemptResult, log *slog.Logger) (events.WebhookDeliveryAttempted, bool) {
	for try := 0; try < 5; try++ {
		a, err := del.RecordAttempt(r, d.cfg.Schedule)
		if err != nil {
			log.Info("webhooks: attempt made on a delivery no longer pending; not recorded", "err", err)
			return a, false
		}
		env := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: d.cfg.Now(), CorrelationID: del.EventID, Payload: a}
		_, err = d.cfg.Events.AppendWrites(ctx, events.Write{Event: env, Expect: del.Version})
		if err == nil {
			return a, true
		}
		if errors.Is(err, domain.ErrConflict) {
			del, err = d.load(ctx, agg)
		}
		if err != nil {
			level := slog.LevelError
			if ctx.Err() != nil {
				level = slog.LevelInfo // the ledger is stopping: expected
			}
			log.Log(ctx, level, "webhooks: recording an attempt failed; it is made again when its lease ends", "err", err)
			return a, false
		}
	}
	return events.WebhookDeliveryAttempted{}, false
}

// cancel records that a pending delivery stops (its endpoint was deleted or disabled).
func (d *Dispatcher) cancel(ctx context.Context, agg events.Aggregate, del domain.WebhookDelivery, reason string) {
	p, err := del.Cancel(reason)
	if err != nil || p == nil {
		return
	}
	env := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: d.cfg.Now(), CorrelationID: del.EventID, Payload: p}
	if _, err := d.cfg.Events.AppendWrites(ctx, events.Write{Event: env, Expect: del.Version}); err != nil && !errors.Is(err, domain.ErrConflict) {
		d.cfg.Log.Warn("webhooks: cancelling a delivery failed", "delivery", del.ID, "err", err)
	}
}

// disableIfFailing disables an endpoint all of whose attempts failed for DisableAfter, by the read
// store's record of when its failures began.
func (d *Dispatcher) disableIfFailing(ctx context.Context, storeID, mode, endpointID string, log *slog.Logger) {
	row, err := d.cfg.Reads().WebhookEndpoint(ctx, storeID, mode, endpointID)
	if err != nil || row.Disabled || !ShouldDisable(row.FailingSince, d.cfg.Now(), false) {
		return
	}
	agg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateWebhookEndpoint, ID: endpointID}
	evs, last, err := d.cfg.Events.Load(ctx, agg)
	if err != nil {
		return
	}
	disabled := true
	p, err := domain.FoldWebhookEndpoint(evs).Update(domain.WebhookEndpointInput{Disabled: &disabled})
	if err != nil || p == nil {
		return
	}
	env := events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: d.cfg.Now(), Payload: p}
	if _, err := d.cfg.Events.AppendWrites(ctx, events.Write{Event: env, Expect: last}); err == nil {
		log.Warn("webhooks: endpoint disabled: every attempt failed since", "failing_since", row.FailingSince.Format(time.RFC3339))
	}
}

// endpoint is the endpoint with its secrets: the read store says which version is current; the log,
// folded once per version, gives the secrets (they are never in the read store).
func (d *Dispatcher) endpoint(ctx context.Context, storeID, mode, id string) (domain.WebhookEndpoint, error) {
	row, err := d.cfg.Reads().WebhookEndpoint(ctx, storeID, mode, id)
	if errors.Is(err, domain.ErrNotFound) {
		d.mu.Lock()
		delete(d.endpoints, id) // deleted: its secrets leave memory too
		d.mu.Unlock()
	}
	if err != nil {
		return domain.WebhookEndpoint{}, err
	}
	d.mu.Lock()
	ep, ok := d.endpoints[id]
	d.mu.Unlock()
	if ok && ep.Version >= row.Version {
		if d.cfg.Erased != nil {
			// Its key destroyed (a DELETE under way, or stopped half done): its secrets are gone.
			if erased, err := d.cfg.Erased(ctx, id); err != nil {
				return domain.WebhookEndpoint{}, err
			} else if erased {
				ep.Secret, ep.PreviousSecret = "", ""
			}
		}
		return ep, nil
	}
	evs, _, err := d.cfg.Events.Load(ctx, events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateWebhookEndpoint, ID: id})
	if err != nil {
		return domain.WebhookEndpoint{}, err
	}
	if len(evs) == 0 {
		return domain.WebhookEndpoint{}, domain.ErrNotFound
	}
	ep = domain.FoldWebhookEndpoint(evs)
	d.mu.Lock()
	if ep.Deleted {
		delete(d.endpoints, id)
	} else {
		d.endpoints[id] = ep
	}
	d.mu.Unlock()
	return ep, nil
}

// load folds a delivery from the log.
func (d *Dispatcher) load(ctx context.Context, agg events.Aggregate) (domain.WebhookDelivery, error) {
	evs, _, err := d.cfg.Events.Load(ctx, agg)
	if err != nil {
		return domain.WebhookDelivery{}, err
	}
	return domain.FoldWebhookDelivery(evs), nil
}

// objectAggregate is the aggregate a delivery's body renders: a sale (sale.* and dispute.*), a customer
// or a licence, by the outgoing type.
func objectAggregate(mode, storeID string, del domain.WebhookDelivery) events.Aggregate {
	t := events.AggregateSale
	switch {
	case strings.HasPrefix(del.EventType, "customer."):
		t = events.AggregateCustomer
	case strings.HasPrefix(del.EventType, "licence."):
		t = events.AggregateLicence
	}
	return events.Aggregate{Mode: mode, StoreID: storeID, Type: t, ID: del.Object}
}
