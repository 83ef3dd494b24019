package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
)

// Subscription delivers the log in stream order from a starting sequence, exactly in order and without
// holes. It reads through an ephemeral consumer of its own (in memory, one replica, no acks: no state to
// clean up) and, whenever that consumer fails it, makes a new one from where it left off: a gap in the
// consumer's delivery sequence, heartbeats missing for 2 s (its server went away, the stream's leader
// failed over), the consumer gone. A new consumer is tried every few hundred milliseconds with a short
// timeout, so delivery resumes within about a second of the stream having a leader again.
//
// nats.go's ordered consumer does the same, but a try lost in a stream leader election holds it for
// 10 s, then it backs off: after a stream leader crashed, projections stood still for about 13 s
// although the stream took writes again after 5.
type Subscription struct {
	store  *Store
	ctx    context.Context
	filter string
	keys   events.Keyring
	stop   func() bool

	mu     sync.Mutex
	closed bool
	it     jetstream.MessagesContext // nil until (re)opened
	cons   string                    // the consumer it reads
	next   uint64                    // stream sequence of the next event to deliver
	dseq   uint64                    // consumer sequence of the last message taken from it
}

// Delivery is one event of a subscription and how many more the stream held when it was delivered.
type Delivery struct {
	Event   events.Envelope
	Pending uint64
}

// Subscribe starts delivering events with stream sequence >= from, matching filter (empty: all). The
// first consumer is made by the first Next, which waits for the stream to answer.
func (s *Store) Subscribe(ctx context.Context, from uint64, filter string) (*Subscription, error) {
	if from == 0 {
		from = 1
	}
	sub := &Subscription{store: s, ctx: ctx, filter: filter, keys: s.codecKeys(), next: from}
	// Next blocks inside the client library; stopping the iterator is how a cancelled context wakes it.
	stop := context.AfterFunc(ctx, sub.Close)
	sub.mu.Lock()
	sub.stop = stop
	sub.mu.Unlock()
	return sub, nil
}

// ErrSubscriptionClosed is returned by Next after Close or once the context is done.
var ErrSubscriptionClosed = errors.New("subscription closed")

// Subscription timing: each try to make a consumer, the pause between tries, and the pulls' expiry and
// heartbeat (two missed heartbeats end a consumer).
const (
	subscribeTry     = 2 * time.Second
	subscribeBackoff = 250 * time.Millisecond
	pullExpiry       = 5 * time.Second
	pullHeartbeat    = time.Second
)

// Next blocks for the next event. A message that does not decode is an error: a projection must not
// skip an event it does not understand. The connection closed for good is an error too; anything else
// that stops the consumer is repaired here.
func (s *Subscription) Next() (Delivery, error) {
	for {
		it, err := s.current()
		if err != nil {
			return Delivery{}, err
		}
		m, err := it.Next()
		if err != nil {
			if s.isClosed() {
				return Delivery{}, ErrSubscriptionClosed
			}
			if s.store.nc.IsClosed() {
				return Delivery{}, fmt.Errorf("subscription: %w", err)
			}
			s.reset(it)
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			return Delivery{}, fmt.Errorf("event metadata: %w", err)
		}
		s.mu.Lock()
		inOrder := s.it == it && md.Sequence.Consumer == s.dseq+1
		if inOrder {
			s.dseq = md.Sequence.Consumer
		}
		s.mu.Unlock()
		if !inOrder {
			// A message lost between the server and here (or one from a consumer already replaced):
			// start again after the last one delivered.
			s.reset(it)
			continue
		}
		e, err := events.DecodeMessageWith(s.ctx, s.keys, m.Subject(), m.Headers().Get, m.Data(), md.Sequence.Stream)
		if err != nil {
			return Delivery{}, err
		}
		s.mu.Lock()
		s.next = md.Sequence.Stream + 1
		s.mu.Unlock()
		return Delivery{Event: e, Pending: md.NumPending}, nil
	}
}

// current is the iterator to read, making a consumer first if there is none, as often as it takes.
func (s *Subscription) current() (jetstream.MessagesContext, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrSubscriptionClosed
		}
		if s.it != nil {
			it := s.it
			s.mu.Unlock()
			return it, nil
		}
		from := s.next
		s.mu.Unlock()
		if s.store.nc.IsClosed() {
			return nil, fmt.Errorf("subscribe from %d: connection closed", from)
		}
		if err := s.open(from); err == nil || s.isClosed() {
			continue
		}
		select {
		case <-s.ctx.Done():
			return nil, ErrSubscriptionClosed
		case <-time.After(subscribeBackoff):
		}
	}
}

// open makes a consumer that starts at stream sequence from and starts pulling from it.
func (s *Subscription) open(from uint64) error {
	ctx, cancel := context.WithTimeout(s.ctx, subscribeTry)
	defer cancel()
	cfg := jetstream.ConsumerConfig{
		// Named at random by the ledger, not by the client library (whose names follow from a counter a
		// reader can observe): a reader that could name it could pull its events away (reservedConsumer).
		Name:              cmp.Or(s.store.ConsumerPrefix, OwnConsumerPrefix) + randomToken(),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 5 * time.Minute,
		FilterSubject:     s.filter,
	}
	cons, err := s.store.js.CreateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048), jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		s.drop(cons.CachedInfo().Name)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		it.Stop()
		s.drop(cons.CachedInfo().Name)
		return ErrSubscriptionClosed
	}
	s.it, s.cons, s.dseq = it, cons.CachedInfo().Name, 0
	return nil
}

// reset gives up the consumer behind it (if it is still the current one); the next read makes another
// from the sequence after the last one delivered.
func (s *Subscription) reset(it jetstream.MessagesContext) {
	s.mu.Lock()
	if s.it != it {
		s.mu.Unlock()
		return
	}
	s.it = nil
	name := s.cons
	s.mu.Unlock()
	it.Stop()
	s.drop(name)
}

// drop deletes a consumer no longer read, in the background: if its server is gone, the consumer's
// inactivity threshold removes it.
func (s *Subscription) drop(name string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.store.js.DeleteConsumer(ctx, StreamName, name)
	}()
}

func (s *Subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the subscription and deletes its consumer.
func (s *Subscription) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	it, name, stop := s.it, s.cons, s.stop
	s.it = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if it != nil {
		it.Stop()
		s.drop(name)
	}
}
