package jetstream

import (
	"context"
	"errors"
	"fmt"
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
)

// SubscriberConfig configures a durable consumer feeding a watermill router.
type SubscriberConfig struct {
	// Durable names the consumer; it survives restarts, so nothing is skipped or handled twice by
	// design (a message is redelivered only if it was not acknowledged).
	Durable string
	// Filter selects the subjects, e.g. ledger.platform.*.webhook.*.webhook_received.
	Filter string
	// AckWait is how long a message may stay unacknowledged before JetStream redelivers it.
	AckWait time.Duration
	// Redelivery is the delay before a nacked message comes back, by delivery attempt (the last entry
	// repeats).
	Redelivery []time.Duration
	// InFlight is how many messages may be handed out before earlier ones are acknowledged. Handlers
	// must then tolerate concurrent messages for one aggregate (they do: appends carry an expected
	// sequence, and a conflict is retried on fresh state).
	InFlight int
}

// Subscriber is a watermill wmmessage.Subscriber over a durable JetStream pull consumer of LEDGER.
// Acked messages are acknowledged to JetStream; nacked ones are redelivered after a delay, forever:
// giving up is the handler's decision (the poison queue), never the transport's.
type Subscriber struct {
	store *Store
	cfg   SubscriberConfig

	mu      sync.Mutex
	closed  bool
	stopFns []func()
}

var _ wmmessage.Subscriber = (*Subscriber)(nil)

// NewSubscriber makes a subscriber; topics passed to Subscribe are informational (the filter decides).
func (s *Store) NewSubscriber(cfg SubscriberConfig) *Subscriber {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 1
	}
	if len(cfg.Redelivery) == 0 {
		cfg.Redelivery = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	return &Subscriber{store: s, cfg: cfg}
}

// Subscribe starts consuming. Messages are handed to the returned channel in stream order, with up to
// InFlight of them awaiting their ack or nack at once.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *wmmessage.Message, error) {
	cons, err := s.store.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       s.cfg.Durable,
		FilterSubject: s.cfg.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: s.cfg.InFlight,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", s.cfg.Durable, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		it.Stop()
		return nil, errors.New("subscriber closed")
	}
	s.stopFns = append(s.stopFns, it.Stop)
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, it.Stop)

	out := make(chan *wmmessage.Message)
	slots := make(chan struct{}, s.cfg.InFlight)
	go func() {
		var pending sync.WaitGroup
		defer func() {
			pending.Wait()
			close(out)
		}()
		defer stop()
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			m, err := it.Next()
			if err != nil {
				return // stopped
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
				select {
				case <-wm.Acked():
					_ = m.DoubleAck(ctx)
				case <-wm.Nacked():
					_ = m.NakWithDelay(s.delay(wm))
				case <-ctx.Done():
				}
			}()
		}
	}()
	return out, nil
}

func (s *Subscriber) delay(wm *wmmessage.Message) time.Duration {
	n, _ := strconv.Atoi(wm.Metadata.Get(MetaNumDelivered))
	if n < 1 {
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
	for _, f := range s.stopFns {
		f()
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
