package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	wmmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
)

// Metadata keys the Subscriber sets on every watermill message besides the ce-* headers.
const (
	MetaSubject      = "subject"
	MetaSequence     = "sequence"
	MetaNumDelivered = "num_delivered"
	// MetaRedeliverSoon, set to "1" by a handler on a message it fails for a passing reason outside the
	// message (the log refused the write), brings the message back after the first redelivery delay
	// however often it was delivered: a long outage must not leave it waiting out the longest delay
	// once the log is back.
	MetaRedeliverSoon = "redeliver_soon"
)

// SubscriberConfig configures a durable consumer feeding a watermill router.
type SubscriberConfig struct {
	// Durable names the consumer; it survives restarts, so nothing is skipped or handled twice by
	// design (a message is redelivered only if it was not acknowledged).
	Durable string
	// Label names the consumer in errors and logs (default Durable): a durable whose name must stay
	// unknown (Store.PaymentsConsumer) is shown by its well-known name.
	Label string
	// Filter selects the subjects, e.g. ledger.platform.*.webhook.*.webhook_received; Filters, if set
	// instead, several (JetStream's FilterSubjects).
	Filter  string
	Filters []string
	// AckWait is how long a message may stay unacknowledged before JetStream redelivers it (default
	// 10 s). While a handler works on a message the subscriber tells JetStream so every AckWait/3, so
	// only a message whose subscriber is gone (a crashed replica) waits it out — and then goes to
	// another subscriber of the same durable consumer.
	AckWait time.Duration
	// Redelivery is the delay before a nacked message comes back, by delivery attempt (the last entry
	// repeats).
	Redelivery []time.Duration
	// InFlight is how many messages may be handed out before earlier ones are acknowledged. Handlers
	// must then tolerate concurrent messages for one aggregate (they do: appends carry an expected
	// sequence, and a conflict is retried on fresh state).
	InFlight int
	// CheckEvery is how often the consumer's state (missing, paused) is looked at for Err; default 5 s.
	CheckEvery time.Duration
	// Log hears when the consumer stops delivering and is made again; nil discards.
	Log *slog.Logger
}

// Subscriber is a watermill wmmessage.Subscriber over a durable JetStream pull consumer of LEDGER.
// Acked messages are acknowledged to JetStream; nacked ones are redelivered after a delay, forever:
// giving up is the handler's decision (the poison queue), never the transport's. Nor does the transport
// give up when the consumer goes away under it (deleted by an operator, the embedded server's JetStream
// restarted, a cluster lost the consumer's leader): it makes the consumer again, from where it was
// acknowledged, and goes on until Close or the context ends. While it is missing or paused, Err says so
// (readiness).
type Subscriber struct {
	store *Store
	cfg   SubscriberConfig

	mu      sync.Mutex
	closed  bool
	cancels []context.CancelFunc
	// err is why the subscriber is not consuming right now; nil while it is.
	err error
	// checked is what the last look at the consumer found wrong (missing, unreadable); nil if nothing.
	checked error
	// pausedUntil is set while the consumer is paused.
	pausedUntil time.Time
}

var _ wmmessage.Subscriber = (*Subscriber)(nil)

// NewSubscriber makes a subscriber; topics passed to Subscribe are informational (the filter decides).
func (s *Store) NewSubscriber(cfg SubscriberConfig) *Subscriber {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 10 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
	if cfg.Label == "" {
		cfg.Label = cfg.Durable
	}
	if len(cfg.Redelivery) == 0 {
		cfg.Redelivery = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{store: s, cfg: cfg, err: errors.New("not subscribed yet")}
}

// Err is nil while the subscriber consumes; otherwise it says why not (the consumer is missing, paused,
// or its pull failed and is being retried).
func (s *Subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.checked != nil {
		return s.checked
	}
	if !s.pausedUntil.IsZero() {
		return fmt.Errorf("consumer %s is paused until %s", s.cfg.Label, s.pausedUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Subscriber) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// consume creates (or finds) the durable consumer and starts pulling from it.
func (s *Subscriber) consume(ctx context.Context) (jetstream.MessagesContext, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        s.cfg.Durable,
		FilterSubject:  s.cfg.Filter,
		FilterSubjects: s.cfg.Filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  s.cfg.InFlight,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	// A consumer that exists keeps where it starts (MigrateDurable makes one that starts mid-stream);
	// JetStream refuses to change that anyway.
	if c, err := s.store.js.Consumer(ctx, StreamName, s.cfg.Durable); err == nil {
		cur := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq = cur.DeliverPolicy, cur.OptStartSeq
	}
	cons, err := s.store.js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Label, err)
	}
	// Short pull expiry and heartbeats, as for projections: a pull left on a server that lost the
	// consumer is noticed and replaced within seconds rather than the library's default 30 s.
	it, err := cons.Messages(jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Label, err)
	}
	return it, nil
}

// Subscribe starts consuming. Messages are handed to the returned channel in stream order, with up to
// InFlight of them awaiting their ack or nack at once.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *wmmessage.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, errors.New("subscriber closed")
	}
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()
	it, err := s.consume(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s.setErr(nil)
	var (
		curMu sync.Mutex
		cur   = it
	)
	context.AfterFunc(ctx, func() {
		curMu.Lock()
		cur.Stop()
		curMu.Unlock()
	})
	go s.watch(ctx, func() {
		curMu.Lock()
		cur.Stop()
		curMu.Unlock()
	})

	out := make(chan *wmmessage.Message)
	slots := make(chan struct{}, s.cfg.InFlight)
	go func() {
		var pending sync.WaitGroup
		defer func() {
			pending.Wait()
			close(out)
		}()
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			m, err := it.Next()
			if err != nil {
				<-slots
				if ctx.Err() != nil {
					return
				}
				// The consumer was deleted, or the pull failed for good: make it again, from where it
				// was acknowledged, until that works.
				s.setErr(fmt.Errorf("consumer %s: %w", s.cfg.Label, err))
				s.cfg.Log.Warn("consumer stopped delivering; making it again", "consumer", s.cfg.Label, "err", err)
				it.Stop()
				if it = s.reconsume(ctx); it == nil {
					return
				}
				curMu.Lock()
				cur = it
				curMu.Unlock()
				continue
			}
			wm, err := toWatermill(m)
			if err != nil {
				_ = m.Term() // not a ledger event: redelivering it would never help
				<-slots
				continue
			}
			wm.SetContext(ctx)
			select {
			case out <- wm:
			case <-ctx.Done():
				return
			}
			pending.Add(1)
			go func() {
				defer pending.Done()
				defer func() { <-slots }()
				alive := time.NewTicker(s.cfg.AckWait / 3)
				defer alive.Stop()
				for {
					select {
					case <-wm.Acked():
						_ = m.DoubleAck(ctx)
						return
					case <-wm.Nacked():
						_ = m.NakWithDelay(s.delay(wm))
						return
					case <-alive.C:
						_ = m.InProgress() // still working on it: not yet for another subscriber
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}()
	return out, nil
}

// reconsume makes the consumer again, with a growing pause, until that works (the new iterator) or ctx
// ends (nil). Messages handed out before stay valid: their acks go to the same durable consumer, and an
// unacknowledged one comes back.
func (s *Subscriber) reconsume(ctx context.Context) jetstream.MessagesContext {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		it, err := s.consume(cctx)
		cancel()
		if err == nil {
			s.setErr(nil)
			s.cfg.Log.Info("consumer delivering again", "consumer", s.cfg.Label)
			return it
		}
		if ctx.Err() != nil {
			return nil
		}
		s.setErr(err)
		s.cfg.Log.Warn("making the consumer again failed; retrying", "consumer", s.cfg.Label, "err", err, "backoff", wait)
	}
}

// watch looks at the consumer every CheckEvery: a pause is not an error of the pull (it just waits), so
// only the consumer's own state shows it. When a pause ends, restart makes the pull start again at once
// rather than when its current request expires.
func (s *Subscriber) watch(ctx context.Context, restart func()) {
	t := time.NewTicker(s.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ictx, cancel := context.WithTimeout(ctx, s.cfg.CheckEvery)
		info, err := s.store.js.Consumer(ictx, StreamName, s.cfg.Durable)
		var ci *jetstream.ConsumerInfo
		if err == nil {
			ci, err = info.Info(ictx)
		}
		cancel()
		var until time.Time
		if err == nil && ci.Paused {
			until = time.Now().Add(ci.PauseRemaining)
		}
		if err != nil {
			err = fmt.Errorf("consumer %s: %w", s.cfg.Label, err)
		}
		s.mu.Lock()
		resumed := !s.pausedUntil.IsZero() && until.IsZero() && err == nil
		s.pausedUntil, s.checked = until, err
		s.mu.Unlock()
		if resumed {
			restart()
		}
	}
}

// MigrateDurable moves the durable consumer from to the name to, if from exists and to does not: to is made
// with from's configuration, starting after from's acknowledgement floor, and from is deleted. A message
// from had acknowledged above its floor (out of order) is delivered once more; handlers are idempotent
// (a redelivery after a crash is the same). Without from, nothing happens.
func (s *Store) MigrateDurable(ctx context.Context, from, to string) error {
	old, err := s.js.Consumer(ctx, StreamName, from)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("consumer %s: %w", from, err)
	}
	info, err := old.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", from, err)
	}
	if _, err := s.js.Consumer(ctx, StreamName, to); errors.Is(err, jetstream.ErrConsumerNotFound) {
		cfg := info.Config
		cfg.Durable, cfg.Name = to, ""
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		if _, err := s.js.CreateConsumer(ctx, StreamName, cfg); err != nil {
			return fmt.Errorf("consumer %s: %w", to, err)
		}
	} else if err != nil {
		return fmt.Errorf("consumer %s: %w", to, err)
	}
	if err := s.js.DeleteConsumer(ctx, StreamName, from); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s: %w", from, err)
	}
	return nil
}

func (s *Subscriber) delay(wm *wmmessage.Message) time.Duration {
	n, _ := strconv.Atoi(wm.Metadata.Get(MetaNumDelivered))
	if n < 1 || wm.Metadata.Get(MetaRedeliverSoon) == "1" {
		n = 1
	}
	if n > len(s.cfg.Redelivery) {
		n = len(s.cfg.Redelivery)
	}
	return s.cfg.Redelivery[n-1]
}

// Close stops every subscription.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, cancel := range s.cancels {
		cancel()
	}
	return nil
}

func toWatermill(m jetstream.Msg) (*wmmessage.Message, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	h := m.Headers()
	id := h.Get(events.HeaderID)
	if id == "" {
		return nil, errors.New("message without ce-id")
	}
	wm := wmmessage.NewMessage(id, m.Data())
	for k, vs := range h {
		if len(vs) > 0 {
			wm.Metadata.Set(k, vs[0])
		}
	}
	wm.Metadata.Set(MetaSubject, m.Subject())
	wm.Metadata.Set(MetaSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	wm.Metadata.Set(MetaNumDelivered, strconv.FormatUint(md.NumDelivered, 10))
	middleware.SetCorrelationID(h.Get(events.HeaderCorrelationID), wm)
	return wm, nil
}

// EnvelopeOf decodes the ledger event a Subscriber message carries.
func EnvelopeOf(wm *wmmessage.Message) (events.Envelope, error) {
	seq, _ := strconv.ParseUint(wm.Metadata.Get(MetaSequence), 10, 64)
	return events.DecodeMessage(wm.Metadata.Get(MetaSubject), wm.Metadata.Get, wm.Payload, seq)
}

// PeekMessage reads a subscriber message's aggregate, event type and stream sequence from its subject
// and metadata, without decoding (or opening) its payload: a handler that acts on few events decides
// from them which ones to decode.
func PeekMessage(wm *wmmessage.Message) (events.Aggregate, string, uint64, error) {
	agg, typ, err := events.ParseSubject(wm.Metadata.Get(MetaSubject))
	if err != nil {
		return events.Aggregate{}, "", 0, err
	}
	seq, err := strconv.ParseUint(wm.Metadata.Get(MetaSequence), 10, 64)
	return agg, typ, seq, err
}
