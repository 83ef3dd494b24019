package events_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

func sample() events.Envelope {
	return events.Envelope{
		ID:            "evt_1",
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: "str_1", Type: events.AggregateStore, ID: "str_1"},
		Time:          time.Date(2026, 1, 15, 10, 30, 0, 123456789, time.UTC),
		CorrelationID: "req_1",
		CausationID:   "evt_0",
		Payload: events.StoreCreated{StoreID: "str_1", Name: "My Digital Store", Slug: "my-digital-store", ServiceFeePercent: "5",
			SettlementDelayDays: 7, AbandonAfterMinutes: 60, Keys: []events.APIKey{{Mode: "live", Hash: "ab", Prefix: "sk_live_", Last4: "wxyz"}}},
	}
}

func TestRoundTrip(t *testing.T) {
	payloads := []events.Payload{
		sample().Payload,
		events.SlugReserved{Slug: "my-digital-store", StoreID: "str_1"},
	}
	for _, p := range payloads {
		t.Run(p.EventType(), func(t *testing.T) {
			in := sample()
			in.Payload = p
			subject, hdr, data, err := events.Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ledger.platform.str_1.store.str_1." + p.EventType(); subject != want {
				t.Fatalf("subject %q, want %q", subject, want)
			}
			for k, want := range map[string]string{
				"ce-specversion": "1.0", "ce-id": "evt_1", "ce-type": p.EventType(), "ce-source": "/ledger/platform/str_1",
				"ce-subject": "str_1", "ce-time": "2026-01-15T10:30:00.123456789Z", "ce-dataversion": "1",
				"ce-correlationid": "req_1", "ce-causationid": "evt_0", "Content-Type": "application/json",
			} {
				if hdr[k] != want {
					t.Errorf("header %s = %q, want %q", k, hdr[k], want)
				}
			}
			out, err := events.DecodeMessage(subject, func(k string) string { return hdr[k] }, data, 42)
			if err != nil {
				t.Fatal(err)
			}
			in.Sequence = 42
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}

func TestDecodeIsClosed(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		version int
		data    string
		want    error
	}{
		{"unknown type", "payment_teleported", 1, `{}`, events.ErrUnknownEvent},
		{"unknown version", events.TypeStoreCreated, 2, `{}`, events.ErrUnknownEvent},
		{"version zero", events.TypeStoreCreated, 0, `{}`, events.ErrUnknownEvent},
		{"body not JSON", events.TypeStoreCreated, 1, `{`, events.ErrMalformed},
		{"field of the wrong type", events.TypeStoreCreated, 1, `{"name": 5}`, events.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := events.Decode(tt.typ, tt.version, []byte(tt.data)); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeMessageRejectsInconsistentMessages(t *testing.T) {
	subject, hdr, data, err := events.Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		subject string
		header  map[string]string
	}{
		{"not a ledger subject", "orders.created", nil},
		{"wildcard token", "ledger.platform.*.store.str_1.store_created", nil},
		{"unknown mode", "ledger.prod.str_1.store.str_1.store_created", nil},
		{"type differs from subject", subject, map[string]string{"ce-type": "slug_reserved"}},
		{"missing specversion", subject, map[string]string{"ce-specversion": ""}},
		{"bad time", subject, map[string]string{"ce-time": "yesterday"}},
		{"no id", subject, map[string]string{"ce-id": ""}},
		{"no version", subject, map[string]string{"ce-dataversion": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range hdr {
				h[k] = v
			}
			for k, v := range tt.header {
				h[k] = v
			}
			_, err := events.DecodeMessage(tt.subject, func(k string) string { return h[k] }, data, 1)
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestEncodeRejectsBadEnvelopes(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*events.Envelope)
	}{
		{"no payload", func(e *events.Envelope) { e.Payload = nil }},
		{"no id", func(e *events.Envelope) { e.ID = "" }},
		{"no time", func(e *events.Envelope) { e.Time = time.Time{} }},
		{"dot in an id", func(e *events.Envelope) { e.Aggregate.ID = "a.b" }},
		{"bad mode", func(e *events.Envelope) { e.Aggregate.Mode = "prod" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sample()
			tt.mutate(&e)
			if _, _, _, err := events.Encode(e); !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzDecodeEvent feeds arbitrary messages to the decoder: it must never panic, and whatever it accepts
// must encode back to a message that decodes to the same envelope.
func FuzzDecodeEvent(f *testing.F) {
	subject, hdr, data, _ := events.Encode(sample())
	f.Add(subject, hdr["ce-type"], hdr["ce-dataversion"], hdr["ce-time"], string(data))
	f.Add("ledger.platform.str_1.slug.shop.slug_reserved", "slug_reserved", "1", "2026-01-01T00:00:00Z", `{"slug":"shop","store_id":"str_1"}`)
	f.Fuzz(func(t *testing.T, subject, typ, version, at, body string) {
		h := map[string]string{"ce-specversion": "1.0", "ce-id": "evt_f", "ce-type": typ, "ce-dataversion": version, "ce-time": at}
		e, err := events.DecodeMessage(subject, func(k string) string { return h[k] }, []byte(body), 7)
		if err != nil {
			return
		}
		s2, h2, d2, err := events.Encode(e)
		if err != nil {
			t.Fatalf("accepted envelope does not encode: %v", err)
		}
		e2, err := events.DecodeMessage(s2, func(k string) string { return h2[k] }, d2, 7)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(e.Payload, e2.Payload) || e.Aggregate != e2.Aggregate || !e.Time.Equal(e2.Time) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, e2)
		}
	})
}
