package events_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

func TestWebhookDeliveryRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)
	next := at.Add(5 * time.Minute)
	for _, p := range []events.Payload{
		events.WebhookDeliveryScheduled{DeliveryID: "whd_0123456789abcdef0123456789abcdef", EndpointID: "we_1", EventID: "evt_1",
			Type: "sale.completed", Object: "sal_1", EventSequence: 42, CreatedAt: at, LeaseUntil: at.Add(45 * time.Second)},
		events.WebhookDeliveryAttempted{Attempt: 2, At: at, StatusCode: 503, DurationMS: 812, Error: "HTTP 503", NextAttemptAt: &next},
		events.WebhookDeliveryAttempted{Attempt: 3, At: next, StatusCode: 200, DurationMS: 12, Success: true},
		events.WebhookDeliveryRetryRequested{At: at},
		events.WebhookDeliveryCancelled{Reason: events.DeliveryCancelEndpointDisabled},
		events.WebhookDeliveryClaimed{Attempt: 4, Until: next.Add(45 * time.Second)},
	} {
		t.Run(p.EventType(), func(t *testing.T) {
			in := events.Envelope{ID: "evt_2", Time: at, Payload: p, Aggregate: events.Aggregate{Mode: events.ModeTest, StoreID: "str_1",
				Type: events.AggregateWebhookDelivery, ID: "whd_0123456789abcdef0123456789abcdef"}}
			subject, hdr, data, err := events.Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ledger.test.str_1.webhook_delivery.whd_0123456789abcdef0123456789abcdef." + p.EventType(); subject != want {
				t.Fatalf("subject %q, want %q", subject, want)
			}
			out, err := events.DecodeMessage(subject, func(k string) string { return hdr[k] }, data, 7)
			if err != nil {
				t.Fatal(err)
			}
			in.Sequence = 7
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}
