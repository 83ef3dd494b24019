package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/webhooksout"
)

var _ domain.RetrySchedule = webhooksout.Schedule{}

func TestWebhookDeliveryID(t *testing.T) {
	a := domain.WebhookDeliveryID("we_1", "evt_1")
	if a != domain.WebhookDeliveryID("we_1", "evt_1") {
		t.Fatal("not deterministic")
	}
	if !domain.ValidID(domain.PrefixWebhookDelivery, a) || len(a) != 4+32 {
		t.Fatalf("id %q has not the shape whd_<32 hex>", a)
	}
	for _, other := range []string{domain.WebhookDeliveryID("we_2", "evt_1"), domain.WebhookDeliveryID("we_1", "evt_2"),
		domain.WebhookDeliveryID("we_1|evt", "1"), domain.WebhookDeliveryID("we_", "1|evt_1")} {
		if other == a {
			t.Fatalf("%q collides with another endpoint or event", other)
		}
	}
	agg := domain.WebhookDeliveryAggregate(events.ModeLive, "str_1", a)
	if err := agg.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := "ledger.live.str_1.webhook_delivery." + a + ".webhook_delivery_scheduled"; agg.Subject(events.TypeWebhookDeliveryScheduled) != want {
		t.Fatalf("subject %q, want %q", agg.Subject(events.TypeWebhookDeliveryScheduled), want)
	}
}

// step is one decision on a delivery and what the delivery looks like after it.
type step struct {
	at      time.Duration // after the schedule
	attempt *domain.AttemptResult
	retry   bool
	cancel  string

	wantStatus string
	wantNext   time.Duration // -1: none (zero time)
	wantN      int           // attempts recorded
}

func ok(code int) *domain.AttemptResult {
	return &domain.AttemptResult{StatusCode: code, Success: true}
}
func fail(code int) *domain.AttemptResult {
	return &domain.AttemptResult{StatusCode: code, Error: "HTTP status"}
}

func TestWebhookDeliveryLifecycle(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sch := webhooksout.Schedule{5 * time.Second, 5 * time.Minute}
	s, m := time.Second, time.Minute
	tests := []struct {
		name  string
		steps []step
	}{
		{"first attempt succeeds", []step{
			{at: 0, attempt: ok(200), wantStatus: domain.DeliverySucceeded, wantNext: -1, wantN: 1},
		}},
		{"retries on the schedule, then succeeds", []step{
			{at: 0, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 5 * s, wantN: 1},
			{at: 6 * s, attempt: ok(204), wantStatus: domain.DeliverySucceeded, wantNext: -1, wantN: 2},
		}},
		{"the schedule runs out: failed", []step{
			{at: 0, attempt: fail(0), wantStatus: domain.DeliveryPending, wantNext: 5 * s, wantN: 1},
			{at: 5 * s, attempt: fail(302), wantStatus: domain.DeliveryPending, wantNext: 5*s + 5*m, wantN: 2},
			{at: 5*s + 5*m, attempt: fail(500), wantStatus: domain.DeliveryFailed, wantNext: -1, wantN: 3},
		}},
		{"a manual retry of a failed delivery is one attempt", []step{
			{at: 0, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 5 * s, wantN: 1},
			{at: 5 * s, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 5*s + 5*m, wantN: 2},
			{at: 5*s + 5*m, attempt: fail(500), wantStatus: domain.DeliveryFailed, wantNext: -1, wantN: 3},
			{at: time.Hour, retry: true, wantStatus: domain.DeliveryPending, wantNext: time.Hour, wantN: 3},
			{at: time.Hour, attempt: fail(503), wantStatus: domain.DeliveryFailed, wantNext: -1, wantN: 4},
			{at: 2 * time.Hour, retry: true, wantStatus: domain.DeliveryPending, wantNext: 2 * time.Hour, wantN: 4},
			{at: 2 * time.Hour, attempt: ok(200), wantStatus: domain.DeliverySucceeded, wantNext: -1, wantN: 5},
		}},
		{"a manual retry of a pending delivery brings its next attempt forward and keeps the schedule", []step{
			{at: 0, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 5 * s, wantN: 1},
			{at: 2 * s, retry: true, wantStatus: domain.DeliveryPending, wantNext: 2 * s, wantN: 1},
			{at: 2 * s, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 2*s + 5*m, wantN: 2},
			{at: 2*s + 5*m, attempt: fail(500), wantStatus: domain.DeliveryFailed, wantNext: -1, wantN: 3},
		}},
		{"a succeeded delivery can be sent again", []step{
			{at: 0, attempt: ok(200), wantStatus: domain.DeliverySucceeded, wantNext: -1, wantN: 1},
			{at: m, retry: true, wantStatus: domain.DeliveryPending, wantNext: m, wantN: 1},
			{at: m, attempt: ok(200), wantStatus: domain.DeliverySucceeded, wantNext: -1, wantN: 2},
		}},
		{"cancelled when the endpoint goes", []step{
			{at: 0, attempt: fail(500), wantStatus: domain.DeliveryPending, wantNext: 5 * s, wantN: 1},
			{at: s, cancel: events.DeliveryCancelEndpointDeleted, wantStatus: domain.DeliveryFailed, wantNext: -1, wantN: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := events.Envelope{ID: "evt_9", Aggregate: events.Aggregate{Mode: "live", StoreID: "str_1", Type: "sale", ID: "sal_1"},
				Time: t0.Add(-time.Second), Sequence: 77, Payload: events.SaleCompleted{}}
			sched := domain.ScheduleWebhookDelivery("we_1", e, "sale.completed", "sal_1", t0)
			if sched.DeliveryID != domain.WebhookDeliveryID("we_1", "evt_9") || sched.EventID != "evt_9" || sched.EventSequence != 77 ||
				sched.Type != "sale.completed" || sched.Object != "sal_1" || !sched.CreatedAt.Equal(e.Time) {
				t.Fatalf("scheduled %+v", sched)
			}
			seq := uint64(1)
			d := domain.WebhookDelivery{}.Evolve(events.Envelope{Payload: sched, Time: t0, Sequence: seq})
			if d.Status != domain.DeliveryPending || !d.NextAttemptAt.Equal(t0) || !d.Due(t0) || d.Due(t0.Add(-time.Nanosecond)) {
				t.Fatalf("after scheduling: %+v", d)
			}
			for i, st := range tt.steps {
				now := t0.Add(st.at)
				var p events.Payload
				switch {
				case st.attempt != nil:
					r := *st.attempt
					r.At, r.Duration = now, 120*time.Millisecond
					a, err := d.RecordAttempt(r, sch)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					if a.Attempt != len(d.Attempts)+1 || a.DurationMS != 120 || a.StatusCode != r.StatusCode || a.Success != r.Success {
						t.Fatalf("step %d: attempt %+v", i, a)
					}
					p = a
				case st.retry:
					r, err := d.RequestRetry(now)
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					p = r
				default:
					c, err := d.Cancel(st.cancel)
					if err != nil || c == nil {
						t.Fatalf("step %d: %v, %v", i, c, err)
					}
					p = c
				}
				seq++
				d = d.Evolve(events.Envelope{Payload: p, Time: now, Sequence: seq})
				wantNext := time.Time{}
				if st.wantNext >= 0 {
					wantNext = t0.Add(st.wantNext)
				}
				if d.Status != st.wantStatus || !d.NextAttemptAt.Equal(wantNext) || len(d.Attempts) != st.wantN || d.Version != seq {
					t.Fatalf("step %d: status %s next %v attempts %d version %d; want %s %v %d %d", i, d.Status, d.NextAttemptAt,
						len(d.Attempts), d.Version, st.wantStatus, wantNext, st.wantN, seq)
				}
				for j, a := range d.Attempts {
					if a.Attempt != j+1 {
						t.Fatalf("step %d: attempt %d numbered %d", i, j, a.Attempt)
					}
				}
				if d.Status != domain.DeliveryPending {
					if _, err := d.RecordAttempt(domain.AttemptResult{At: now}, sch); !errors.Is(err, domain.ErrWebhookDeliveryNotPending) {
						t.Fatalf("step %d: attempt on a %s delivery: %v", i, d.Status, err)
					}
					if c, err := d.Cancel(events.DeliveryCancelEndpointDisabled); c != nil || err != nil {
						t.Fatalf("step %d: cancel of a %s delivery: %v, %v", i, d.Status, c, err)
					}
				}
			}
		})
	}
}

func TestWebhookDeliveryDefaultSchedule(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := domain.WebhookDelivery{}.Evolve(events.Envelope{Payload: events.WebhookDeliveryScheduled{DeliveryID: "whd_1"}, Time: t0, Sequence: 1})
	now := t0
	for i, wait := range webhooksout.DefaultSchedule {
		a, err := d.RecordAttempt(domain.AttemptResult{At: now, Error: "timeout"}, webhooksout.DefaultSchedule)
		if err != nil || a.NextAttemptAt == nil || !a.NextAttemptAt.Equal(now.Add(wait)) {
			t.Fatalf("attempt %d: %+v, %v", i+1, a, err)
		}
		d = d.Evolve(events.Envelope{Payload: a, Time: now, Sequence: uint64(i + 2)})
		now = *a.NextAttemptAt
	}
	a, _ := d.RecordAttempt(domain.AttemptResult{At: now, StatusCode: 500}, webhooksout.DefaultSchedule)
	if a.Attempt != 8 || a.NextAttemptAt != nil {
		t.Fatalf("last attempt %+v", a)
	}
	if d = d.Evolve(events.Envelope{Payload: a, Time: now, Sequence: 99}); d.Status != domain.DeliveryFailed {
		t.Fatalf("after 8 attempts: %s", d.Status)
	}
}

func TestWebhookDeliveryUnknown(t *testing.T) {
	var d domain.WebhookDelivery
	if _, err := d.RecordAttempt(domain.AttemptResult{}, webhooksout.DefaultSchedule); !errors.Is(err, domain.ErrWebhookDeliveryUnknown) {
		t.Fatal(err)
	}
	if _, err := d.RequestRetry(time.Now()); !errors.Is(err, domain.ErrWebhookDeliveryUnknown) {
		t.Fatal(err)
	}
	if _, err := d.Cancel("x"); !errors.Is(err, domain.ErrWebhookDeliveryUnknown) {
		t.Fatal(err)
	}
	if d.Due(time.Now()) {
		t.Fatal("an unknown delivery is due")
	}
}

// TestWebhookDeliveryClaims: the scheduler owns the first attempt until its lease ends; afterwards, and
// after every recorded attempt once the next is due, exactly the claimable attempt can be claimed, and a
// claim owns it until its own end.
func TestWebhookDeliveryClaims(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lease := 45 * time.Second
	e := events.Envelope{ID: "evt_9", Aggregate: events.Aggregate{Mode: "live", StoreID: "str_1", Type: "sale", ID: "sal_1"},
		Time: t0, Sequence: 77, Payload: events.SaleCompleted{}}
	d := domain.WebhookDelivery{}.Evolve(events.Envelope{Payload: domain.ScheduleWebhookDelivery("we_1", e, "sale.completed", "sal_1", t0.Add(lease)), Time: t0, Sequence: 1})
	if !d.Due(t0) || d.Claimable(t0) || d.Claimable(t0.Add(lease-time.Nanosecond)) || !d.Claimable(t0.Add(lease)) {
		t.Fatalf("the scheduler's lease: %+v", d)
	}
	if _, err := d.Claim(t0.Add(time.Second), t0.Add(time.Minute)); !errors.Is(err, domain.ErrWebhookDeliveryNotClaimable) {
		t.Fatalf("claim inside the scheduler's lease: %v", err)
	}
	// The scheduler died: another replica claims after the lease.
	at := t0.Add(lease)
	c, err := d.Claim(at, at.Add(lease))
	if err != nil || c.Attempt != 1 || !c.Until.Equal(at.Add(lease)) {
		t.Fatalf("claim %+v, %v", c, err)
	}
	d = d.Evolve(events.Envelope{Payload: c, Time: at, Sequence: 2})
	if d.Claimable(at.Add(lease-time.Nanosecond)) || !d.Claimable(at.Add(lease)) {
		t.Fatalf("the claim's lease: %+v", d)
	}
	a, _ := d.RecordAttempt(domain.AttemptResult{At: at.Add(time.Second), StatusCode: 500}, webhooksout.Schedule{5 * time.Second})
	d = d.Evolve(events.Envelope{Payload: a, Time: at.Add(time.Second), Sequence: 3})
	next := at.Add(6 * time.Second)
	if !d.LeaseUntil.IsZero() || d.Claimable(next.Add(-time.Nanosecond)) || !d.Claimable(next) {
		t.Fatalf("after a failed attempt: %+v", d)
	}
	c, err = d.Claim(next, next.Add(lease))
	if err != nil || c.Attempt != 2 {
		t.Fatalf("second claim %+v, %v", c, err)
	}
	d = d.Evolve(events.Envelope{Payload: c, Time: next, Sequence: 4})
	a, _ = d.RecordAttempt(domain.AttemptResult{At: next, StatusCode: 200, Success: true}, webhooksout.Schedule{5 * time.Second})
	d = d.Evolve(events.Envelope{Payload: a, Time: next, Sequence: 5})
	if d.Claimable(next.Add(time.Hour)) {
		t.Fatalf("a succeeded delivery is claimable: %+v", d)
	}
	if _, err := d.Claim(next.Add(time.Hour), next.Add(2*time.Hour)); !errors.Is(err, domain.ErrWebhookDeliveryNotClaimable) {
		t.Fatalf("claim of a succeeded delivery: %v", err)
	}
	if _, err := (domain.WebhookDelivery{}).Claim(t0, t0); !errors.Is(err, domain.ErrWebhookDeliveryUnknown) {
		t.Fatalf("claim of an unknown delivery: %v", err)
	}
}
