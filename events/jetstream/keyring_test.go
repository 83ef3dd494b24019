package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
	"github.com/salesledger/ledger/events/jetstream/jstest"
)

func registered(customer, email string) events.Envelope {
	return events.Envelope{
		ID:        "evt_reg_" + customer,
		Aggregate: events.Aggregate{Mode: events.ModeLive, StoreID: "str_k", Type: events.AggregateCustomer, ID: customer},
		Time:      t0,
		Payload: events.CustomerRegistered{CustomerID: customer, Source: "api",
			CustomerData: events.CustomerData{Email: email, FirstName: "Ada", Phone: "+12025550143"}},
	}
}

// rawBody is the stored message of the aggregate's first event, as any NATS client reads it.
func rawBody(t *testing.T, s *jetstream.Store, agg events.Aggregate) []byte {
	t.Helper()
	st, err := s.JetStream().Stream(context.Background(), jetstream.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), agg.Filter())
	if err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// Personal data is sealed in the log, readable through the store, and gone for every reader once the
// data subject's key is erased.
func TestPersonalDataIsSealedAndShredded(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	s := srv.Store
	e := registered("cus_ada", "ada@example.com")
	if _, err := s.Append(ctx, 0, e); err != nil {
		t.Fatal(err)
	}
	body := rawBody(t, s, e.Aggregate)
	for _, secret := range []string{"ada@example.com", "Ada", "+12025550143"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Fatalf("the stored event shows %q in the clear: %s", secret, body)
		}
	}
	if !bytes.Contains(body, []byte(`"customer_id":"cus_ada"`)) || !bytes.Contains(body, []byte(`"sealed":"v1.`)) {
		t.Fatalf("stored body: %s", body)
	}
	got, _, err := s.Load(ctx, e.Aggregate)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if p := got[0].Payload.(events.CustomerRegistered); p.Email != "ada@example.com" || p.FirstName != "Ada" || p.PersonalErased {
		t.Fatalf("loaded %+v", p)
	}
	// A consumer without the keyring (an analytics client) sees the event without the personal data.
	plain, err := events.DecodeMessage(e.Subject(), func(k string) string {
		_, hdr, _, _ := events.Encode(e)
		return hdr[k]
	}, body, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := plain.Payload.(events.CustomerRegistered); p.Email != "" || !p.PersonalErased || p.CustomerID != "cus_ada" {
		t.Fatalf("without keys: %+v", p)
	}

	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Erase(ctx, "cus_ada"); err != nil {
		t.Fatal(err)
	}
	// Every reader — this store, a fresh connection's store, a subscription from the start — now reads
	// the event without the personal data.
	nc, err := nats.Connect(srv.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	other, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*jetstream.Store{"same store": s, "other connection": other} {
		got, _, err := st.Load(ctx, e.Aggregate)
		if err != nil || len(got) != 1 {
			t.Fatal(name, got, err)
		}
		if p := got[0].Payload.(events.CustomerRegistered); p.Email != "" || p.FirstName != "" || !p.PersonalErased {
			t.Fatalf("%s after erasure: %+v", name, p)
		}
	}
	sub, err := other.Subscribe(ctx, 1, e.Aggregate.Filter())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, err := sub.Next()
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Event.Payload.(events.CustomerRegistered); p.Email != "" || !p.PersonalErased {
		t.Fatalf("subscription after erasure: %+v", p)
	}
	// An erased subject stays erased: nothing new can be sealed for it.
	if _, err := s.Append(ctx, events.NoExpectation, registered("cus_ada", "again@example.com")); err == nil {
		t.Fatal("sealed new personal data for an erased subject")
	}
}

// Concurrent first uses of one subject agree on one key.
func TestKeyringConcurrentFirstUse(t *testing.T) {
	ctx := context.Background()
	srv := jstest.Start(t, "")
	// Twenty keyrings on their own connections, so no cache is shared.
	rings := make([]*jetstream.Keyring, 20)
	for i := range rings {
		nc, err := nats.Connect(srv.NATS.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		st, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if rings[i], err = st.Keys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sealed := make([]string, len(rings))
	var wg sync.WaitGroup
	for i := range sealed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if sealed[i], err = rings[i].Seal(ctx, "cus_race", []byte(fmt.Sprint(i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// One keyring opens every one of them: they were all sealed with the one stored key.
	keys := rings[0]
	for i, sd := range sealed {
		plain, err := keys.Open(ctx, "cus_race", sd)
		if err != nil || string(plain) != fmt.Sprint(i) {
			t.Fatalf("sealed %d opens to %q, %v", i, plain, err)
		}
	}
	if _, err := keys.Open(ctx, "cus_other", sealed[0]); err == nil {
		t.Fatal("data sealed for one subject opened as another's")
	}
}

// A keys bucket that does not answer (JetStream unavailable, a failover) is a passing failure: callers
// answer 503, not 500.
func TestKeyringUnavailableIsTransient(t *testing.T) {
	ctx := context.Background()
	js := jstest.Start(t, "")
	keys, err := js.Store.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.NATS.GlobalAccount().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Seal(ctx, "cus_unavailable", []byte("ada@example.com")); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("seal without JetStream: %v, want domain.ErrUnavailable", err)
	}
	if err := keys.Erase(ctx, "cus_unavailable"); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("erase without JetStream: %v, want domain.ErrUnavailable", err)
	}
}
