package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/salesledger/ledger/events"
)

// PrefixWebhookDelivery names one outgoing event's delivery to one endpoint.
const PrefixWebhookDelivery = "whd_"

// Statuses of a webhook delivery (DESIGN "Webhooks out").
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Errors of delivery decisions.
var (
	// ErrWebhookDeliveryUnknown is a decision on a delivery that was never scheduled.
	ErrWebhookDeliveryUnknown = errors.New("the webhook delivery does not exist")
	// ErrWebhookDeliveryNotPending is an attempt recorded on a delivery that is not pending (it
	// succeeded, failed or was cancelled in the meantime, e.g. by another replica).
	ErrWebhookDeliveryNotPending = errors.New("the webhook delivery is not pending")
	// ErrWebhookDeliveryNotClaimable is a claim of an attempt that is not due, or that another replica
	// owns, or of a delivery that is not pending.
	ErrWebhookDeliveryNotClaimable = errors.New("the webhook delivery's next attempt cannot be claimed")
)

// WebhookDeliveryID is the delivery of ledger event eventID to endpoint endpointID: "whd_" and 32 hex
// digits of HashID. Deterministic, so every replica that schedules the same delivery names the same
// aggregate, and appending its webhook_delivery_scheduled with expected sequence 0 lets exactly one win.
func WebhookDeliveryID(endpointID, eventID string) string {
	return PrefixWebhookDelivery + HashID(endpointID+"|"+eventID)
}

// WebhookDeliveryAggregate is the aggregate of delivery id in a store and mode.
func WebhookDeliveryAggregate(mode, storeID, id string) events.Aggregate {
	return events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateWebhookDelivery, ID: id}
}

// RetrySchedule gives when the attempt after attempt number attempt (counted from 1) is due, given that
// attempt started at lastAt; done when there is none. handlers/webhooksout.Schedule is one.
type RetrySchedule interface {
	NextAttempt(attempt int, lastAt time.Time) (next time.Time, done bool)
}

// DeliveryAttempt is one recorded attempt, as the delivery log shows it.
type DeliveryAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error"`
	Success    bool      `json:"success"`
}

// AttemptResult is the outcome of one attempt as the sender observed it (webhooksout.Attempt).
type AttemptResult struct {
	At         time.Time
	StatusCode int
	Duration   time.Duration
	Error      string
	Success    bool
}

// WebhookDelivery is the webhook delivery aggregate, folded from its events: one outgoing event sent to
// one endpoint until it succeeds or the schedule runs out.
type WebhookDelivery struct {
	ID            string            `json:"id"`
	EndpointID    string            `json:"endpoint_id"`
	EventID       string            `json:"event_id"`
	EventType     string            `json:"event_type"`
	Object        string            `json:"object,omitempty"`
	EventSequence uint64            `json:"event_sequence,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	Status        string            `json:"status"`
	Attempts      []DeliveryAttempt `json:"attempts"`
	// NextAttemptAt is when the next attempt is due; zero unless pending.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// ScheduledAttempts counts the attempts made on the retry schedule (a manual retry's is not one):
	// the position NextAttempt is asked about.
	ScheduledAttempts int `json:"scheduled_attempts"`
	// Manual is set while the one attempt a manual retry of a finished delivery asked for is pending:
	// its failure ends the delivery again, without retries.
	Manual bool `json:"manual,omitempty"`
	// CancelReason says why a cancelled delivery stopped (events.DeliveryCancel…); "" otherwise.
	CancelReason string `json:"cancel_reason,omitempty"`
	// LeaseUntil is until when the replica that scheduled or last claimed the delivery owns its next
	// attempt; zero once that attempt is recorded.
	LeaseUntil time.Time `json:"lease_until"`
	// Version is the delivery's last subject sequence: the expectation for the next append.
	Version uint64 `json:"version"`
}

// ScheduleWebhookDelivery decides the delivery of outgoing event eventType, caused by ledger event e,
// to endpoint endpointID; object is the id of the object the body's data renders (at e.Sequence). The
// scheduling replica owns the first attempt until leaseUntil.
func ScheduleWebhookDelivery(endpointID string, e events.Envelope, eventType, object string, leaseUntil time.Time) events.WebhookDeliveryScheduled {
	return events.WebhookDeliveryScheduled{DeliveryID: WebhookDeliveryID(endpointID, e.ID), EndpointID: endpointID,
		EventID: e.ID, Type: eventType, Object: object, EventSequence: e.Sequence, CreatedAt: e.Time.UTC(),
		LeaseUntil: leaseUntil.UTC()}
}

// Evolve returns the delivery with one more event applied.
func (d WebhookDelivery) Evolve(e events.Envelope) WebhookDelivery {
	switch p := e.Payload.(type) {
	case events.WebhookDeliveryScheduled:
		d = WebhookDelivery{ID: p.DeliveryID, EndpointID: p.EndpointID, EventID: p.EventID, EventType: p.Type,
			Object: p.Object, EventSequence: p.EventSequence, CreatedAt: p.CreatedAt, Status: DeliveryPending,
			NextAttemptAt: e.Time, LeaseUntil: p.LeaseUntil, Version: d.Version}
	case events.WebhookDeliveryAttempted:
		d.Attempts = append(d.Attempts[:len(d.Attempts):len(d.Attempts)], DeliveryAttempt{Attempt: p.Attempt, At: p.At,
			StatusCode: p.StatusCode, DurationMS: p.DurationMS, Error: p.Error, Success: p.Success})
		if !d.Manual {
			d.ScheduledAttempts++
		}
		d.Manual, d.NextAttemptAt, d.LeaseUntil = false, time.Time{}, time.Time{}
		switch {
		case p.Success:
			d.Status = DeliverySucceeded
		case p.NextAttemptAt != nil:
			d.Status, d.NextAttemptAt = DeliveryPending, *p.NextAttemptAt
		default:
			d.Status = DeliveryFailed
		}
	case events.WebhookDeliveryRetryRequested:
		if d.Status != DeliveryPending {
			d.Status, d.Manual, d.CancelReason = DeliveryPending, true, ""
		}
		d.NextAttemptAt = p.At
	case events.WebhookDeliveryCancelled:
		d.Status, d.NextAttemptAt, d.Manual, d.CancelReason, d.LeaseUntil = DeliveryFailed, time.Time{}, false, p.Reason, time.Time{}
	case events.WebhookDeliveryClaimed:
		d.LeaseUntil = p.Until
	default:
		return d
	}
	if e.Sequence > d.Version {
		d.Version = e.Sequence
	}
	return d
}

// FoldWebhookDelivery folds a delivery from its events in order.
func FoldWebhookDelivery(evs []events.Envelope) WebhookDelivery {
	var d WebhookDelivery
	for _, e := range evs {
		d = d.Evolve(e)
	}
	return d
}

// Due reports whether the delivery's next attempt is due at now.
func (d WebhookDelivery) Due(now time.Time) bool {
	return d.Status == DeliveryPending && !now.Before(d.NextAttemptAt)
}

// Claimable reports whether a replica may claim the delivery's next attempt at now: it is due and no
// replica owns it (the lease of whoever scheduled or last claimed it has run out).
func (d WebhookDelivery) Claimable(now time.Time) bool {
	return d.Due(now) && !now.Before(d.LeaseUntil)
}

// Claim decides that the caller makes the delivery's next attempt, owning it until until. Only a
// claimable delivery can be claimed: ErrWebhookDeliveryNotPending otherwise (finished, not due, or
// owned by another replica).
func (d WebhookDelivery) Claim(now, until time.Time) (events.WebhookDeliveryClaimed, error) {
	if d.ID == "" {
		return events.WebhookDeliveryClaimed{}, ErrWebhookDeliveryUnknown
	}
	if !d.Claimable(now) {
		return events.WebhookDeliveryClaimed{}, fmt.Errorf("%w: %s is %s, due %s, owned until %s", ErrWebhookDeliveryNotClaimable,
			d.ID, d.Status, d.NextAttemptAt.Format(time.RFC3339), d.LeaseUntil.Format(time.RFC3339))
	}
	return events.WebhookDeliveryClaimed{Attempt: len(d.Attempts) + 1, Until: until.UTC()}, nil
}

// Renew decides that the replica that owns the delivery's next attempt (it scheduled or claimed it, and
// appends with the version it holds as expectation, so that a claim by anyone else since fails the
// append) keeps owning it until until: an attempt that waited in its queue renews before it starts,
// rather than leave it to another replica mid-send. The attempt must be due.
func (d WebhookDelivery) Renew(now, until time.Time) (events.WebhookDeliveryClaimed, error) {
	if d.ID == "" {
		return events.WebhookDeliveryClaimed{}, ErrWebhookDeliveryUnknown
	}
	if !d.Due(now) {
		return events.WebhookDeliveryClaimed{}, fmt.Errorf("%w: %s is %s, due %s", ErrWebhookDeliveryNotClaimable,
			d.ID, d.Status, d.NextAttemptAt.Format(time.RFC3339))
	}
	return events.WebhookDeliveryClaimed{Attempt: len(d.Attempts) + 1, Until: until.UTC()}, nil
}

// RecordAttempt decides the record of an attempt that ended with r: attempt number len(Attempts)+1,
// and, after a failure, when the next one is due on sch (none after a manual retry's attempt, or when
// sch is exhausted: the delivery is then failed).
func (d WebhookDelivery) RecordAttempt(r AttemptResult, sch RetrySchedule) (events.WebhookDeliveryAttempted, error) {
	if d.ID == "" {
		return events.WebhookDeliveryAttempted{}, ErrWebhookDeliveryUnknown
	}
	if d.Status != DeliveryPending {
		return events.WebhookDeliveryAttempted{}, fmt.Errorf("%w: %s is %s", ErrWebhookDeliveryNotPending, d.ID, d.Status)
	}
	at := r.At.UTC()
	a := events.WebhookDeliveryAttempted{Attempt: len(d.Attempts) + 1, At: at, StatusCode: r.StatusCode,
		DurationMS: r.Duration.Milliseconds(), Error: r.Error, Success: r.Success}
	if !r.Success && !d.Manual {
		if next, done := sch.NextAttempt(d.ScheduledAttempts+1, at); !done {
			a.NextAttemptAt = &next
		}
	}
	return a, nil
}

// RequestRetry decides a manual retry at now (POST /v1/webhook_deliveries/{id}/retry): a pending
// delivery's next attempt moves to now; a failed or succeeded one is pending again for one attempt.
func (d WebhookDelivery) RequestRetry(now time.Time) (events.WebhookDeliveryRetryRequested, error) {
	if d.ID == "" {
		return events.WebhookDeliveryRetryRequested{}, ErrWebhookDeliveryUnknown
	}
	return events.WebhookDeliveryRetryRequested{At: now.UTC()}, nil
}

// Cancel decides that a pending delivery stops for reason (events.DeliveryCancel…); a delivery that is
// not pending has nothing to cancel (nil).
func (d WebhookDelivery) Cancel(reason string) (events.Payload, error) {
	if d.ID == "" {
		return nil, ErrWebhookDeliveryUnknown
	}
	if d.Status != DeliveryPending {
		return nil, nil
	}
	return events.WebhookDeliveryCancelled{Reason: reason}, nil
}
