package jetstream_test

import (
	"context"
	"testing"
	"time"

	wmmessage "github.com/ThreeDotsLabs/watermill/message"

	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
)

// next waits for the subscriber's next message; a closed channel or the hang guard fails the test.
func next(t *testing.T, msgs <-chan *wmmessage.Message, what string) *wmmessage.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatalf("%s: the subscriber closed its channel", what)
		}
		return m
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: nothing delivered within 60s", what)
	}
	return nil
}

// The embedded server's JetStream restarting (what Health does once a full disk has space again) takes
// the durable consumer away under the subscriber for a moment: it goes on delivering, it does not close.
func TestSubscriberSurvivesJetStreamRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := jstest.Start(t, "")
	sub := js.Store.NewSubscriber(jetstream.SubscriberConfig{Durable: "test", Filter: "ledger.>"})
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Store.Append(ctx, 0, created("str_a", 1)); err != nil {
		t.Fatal(err)
	}
	next(t, msgs, "before the restart").Ack()
	// The ack reaches JetStream asynchronously; restart only once it has.
	for deadline := time.Now().Add(30 * time.Second); ; {
		ci, err := js.Store.JetStream().Consumer(ctx, jetstream.StreamName, "test")
		if err == nil {
			if info, err := ci.Info(ctx); err == nil && info.AckFloor.Stream == 1 && info.NumAckPending == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the ack never reached JetStream")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	// As Health restarts it: the account's JetStream, reloaded from disk.
	acc := js.NATS.GlobalAccount()
	if err := acc.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	if err := acc.EnableJetStream(nil, nil); err != nil {
		t.Fatal(err)
	}
	// The append retries until JetStream answers again.
	if _, err := js.Store.Append(ctx, 0, created("str_b", 1)); err != nil {
		t.Fatal(err)
	}
	t.Logf("appended %s after the restart", time.Since(start))
	m := next(t, msgs, "after the restart")
	t.Logf("delivered %s after the restart", time.Since(start))
	if got := m.Metadata.Get(jetstream.MetaSubject); got != created("str_b", 1).Subject() {
		t.Fatalf("after the restart got %s, want str_b's event (str_a's was acknowledged)", got)
	}
	m.Ack()
}

// A message nacked for a reason outside it (MetaRedeliverSoon) comes back after the first redelivery
// delay however often it was delivered; one without it waits out the schedule (here an hour).
func TestSubscriberRedeliversSoonWhenAsked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := jstest.Start(t, "")
	sub := js.Store.NewSubscriber(jetstream.SubscriberConfig{Durable: "test", Filter: "ledger.>",
		Redelivery: []time.Duration{10 * time.Millisecond, time.Hour}})
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Store.Append(ctx, 0, created("str_a", 1)); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 4; n++ {
		m := next(t, msgs, "a redelivery")
		if got := m.Metadata.Get(jetstream.MetaNumDelivered); got != string(rune('0'+n)) {
			t.Fatalf("delivery %s, want %d", got, n)
		}
		m.Metadata.Set(jetstream.MetaRedeliverSoon, "1")
		m.Nack()
	}
	next(t, msgs, "the fifth delivery").Ack()
}

// A message a handler is still working on is not redelivered when its AckWait runs out: the subscriber
// keeps telling JetStream it is in progress. (A message whose subscriber is gone is redelivered after
// AckWait, to another subscriber of the same consumer.)
func TestSubscriberKeepsTheMessageItWorksOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := jstest.Start(t, "")
	const ackWait = 1500 * time.Millisecond
	sub := js.Store.NewSubscriber(jetstream.SubscriberConfig{Durable: "test", Filter: "ledger.>", AckWait: ackWait, InFlight: 2})
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Store.Append(ctx, 0, created("str_a", 1)); err != nil {
		t.Fatal(err)
	}
	m := next(t, msgs, "the message")
	// Work on it for three times its AckWait; a redelivery would come in on the free second slot.
	select {
	case again := <-msgs:
		t.Fatalf("redelivered while still being worked on (delivery %s)", again.Metadata.Get(jetstream.MetaNumDelivered))
	case <-time.After(3 * ackWait):
	}
	m.Ack()
}
