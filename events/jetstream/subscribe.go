package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
)

// Subscription delivers the log in stream order from a starting sequence. It is backed by an ordered
// consumer: no server-side state to clean up, gaps are detected and the consumer is recreated by the
// client library, so delivery is exactly in order and without holes.
type Subscription struct {
	it   jetstream.MessagesContext
	stop func() bool
	ctx  context.Context
	keys events.Keyring
}

// Delivery is one event of a subscription and how many more the stream held when it was delivered.
type Delivery struct {
	Event   events.Envelope
	Pending uint64
}

// Subscribe starts delivering events with stream sequence >= from, matching filter (empty: all).
func (s *Store) Subscribe(ctx context.Context, from uint64, filter string) (*Subscription, error) {
	if from == 0 {
		from = 1
	}
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := s.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("subscribe from %d: %w", from, err)
	}
	// Short pull expiry and heartbeats: after a stream leader fails over, a silent pull is noticed (and
	// the ordered consumer recreated) within seconds rather than the library's default 30 s.
	it, err := cons.Messages(jetstream.PullMaxMessages(2048), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return nil, fmt.Errorf("subscribe from %d: %w", from, err)
	}
	sub := &Subscription{it: it, ctx: ctx, keys: s.codecKeys()}
	// Next blocks inside the client library; stopping the iterator is how a cancelled context wakes it.
	sub.stop = context.AfterFunc(ctx, it.Stop)
	return sub, nil
}

// ErrSubscriptionClosed is returned by Next after Close or once the context is done.
var ErrSubscriptionClosed = errors.New("subscription closed")

// Next blocks for the next event. A message that does not decode is an error: a projection must not
// skip an event it does not understand.
func (s *Subscription) Next() (Delivery, error) {
	m, err := s.it.Next()
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return Delivery{}, ErrSubscriptionClosed
		}
		return Delivery{}, err
	}
	md, err := m.Metadata()
	if err != nil {
		return Delivery{}, fmt.Errorf("event metadata: %w", err)
	}
	e, err := events.DecodeMessageWith(s.ctx, s.keys, m.Subject(), m.Headers().Get, m.Data(), md.Sequence.Stream)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Event: e, Pending: md.NumPending}, nil
}

// Close stops the subscription.
func (s *Subscription) Close() {
	s.stop()
	s.it.Stop()
}
