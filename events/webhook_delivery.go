package events

import "time"

// AggregateWebhookDelivery is one outgoing webhook event sent to one endpoint, with its attempts:
// ledger.<mode>.<store>.webhook_delivery.<whd_…>.<type>. The id is derived from the endpoint id and the
// ledger event id (domain.WebhookDeliveryID), so two replicas scheduling the same delivery append to the
// same subject with expected sequence 0 and exactly one of them wins.
const AggregateWebhookDelivery = "webhook_delivery"

// Webhook delivery event types.
const (
	TypeWebhookDeliveryScheduled      = "webhook_delivery_scheduled"
	TypeWebhookDeliveryAttempted      = "webhook_delivery_attempted"
	TypeWebhookDeliveryRetryRequested = "webhook_delivery_retry_requested"
	TypeWebhookDeliveryCancelled      = "webhook_delivery_cancelled"
	TypeWebhookDeliveryClaimed        = "webhook_delivery_claimed"
)

// WebhookDeliveryScheduled (v1) opens a delivery: the outgoing event EventID (the ledger event's own id,
// which is the body's "id" and the webhook-id header on every attempt) of type Type is to be sent
// to EndpointID, first at once. Object names what the body's data is (a sale, customer or licence id)
// and EventSequence the ledger event's stream sequence, at which that object is rendered. The replica
// that schedules a delivery makes its first attempt: until LeaseUntil no other replica may (a delivery
// whose scheduler died is taken over after it, with webhook_delivery_claimed).
type WebhookDeliveryScheduled struct {
	DeliveryID    string    `json:"delivery_id"` // whd_…
	EndpointID    string    `json:"endpoint_id"`
	EventID       string    `json:"event_id"`
	Type          string    `json:"event_type"` // the outgoing type: sale.completed, …
	Object        string    `json:"object,omitempty"`
	EventSequence uint64    `json:"event_sequence,omitempty"`
	CreatedAt     time.Time `json:"created_at"` // when the ledger event happened: the body's created_at
	LeaseUntil    time.Time `json:"lease_until"`
}

func (WebhookDeliveryScheduled) EventType() string { return TypeWebhookDeliveryScheduled }
func (WebhookDeliveryScheduled) EventVersion() int { return 1 }

// WebhookDeliveryAttempted (v1) is one attempt and its outcome. Attempt numbers count from 1 and never
// repeat (the attempt is appended with the delivery's last sequence as expectation). Success is a 2xx
// within the timeout; StatusCode is 0 when no response arrived (Error says why). NextAttemptAt is when
// the next attempt is due after a failure; absent after a success, and after the last failure the
// schedule allows (the delivery is then failed).
type WebhookDeliveryAttempted struct {
	Attempt       int        `json:"attempt"`
	At            time.Time  `json:"at"`
	StatusCode    int        `json:"status_code,omitempty"`
	DurationMS    int64      `json:"duration_ms"`
	Error         string     `json:"error,omitempty"`
	Success       bool       `json:"success"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

func (WebhookDeliveryAttempted) EventType() string { return TypeWebhookDeliveryAttempted }
func (WebhookDeliveryAttempted) EventVersion() int { return 1 }

// WebhookDeliveryRetryRequested (v1): POST /v1/webhook_deliveries/{id}/retry asked for an attempt now.
// A finished (failed or succeeded) delivery is pending again for one more attempt, whose failure ends it
// again without further retries; a pending one has its next attempt moved to At.
type WebhookDeliveryRetryRequested struct {
	At time.Time `json:"at"`
}

func (WebhookDeliveryRetryRequested) EventType() string { return TypeWebhookDeliveryRetryRequested }
func (WebhookDeliveryRetryRequested) EventVersion() int { return 1 }

// Reasons a pending delivery is cancelled.
const (
	DeliveryCancelEndpointDeleted  = "endpoint_deleted"
	DeliveryCancelEndpointDisabled = "endpoint_disabled"
)

// WebhookDeliveryCancelled (v1): a pending delivery will not be attempted again (its endpoint was
// deleted or disabled); the delivery is failed.
type WebhookDeliveryCancelled struct {
	Reason string `json:"reason"`
}

func (WebhookDeliveryCancelled) EventType() string { return TypeWebhookDeliveryCancelled }
func (WebhookDeliveryCancelled) EventVersion() int { return 1 }

// WebhookDeliveryClaimed (v1): a replica takes the attempt numbered Attempt of a pending delivery that is
// due, and no other replica may make it until Until (the send's timeout and a margin). It is appended
// with the delivery's last sequence as expectation, so of two replicas claiming one attempt exactly one
// wins; a claimant that dies leaves the attempt to whoever claims it after Until, so an attempt is never
// forgotten (at least once) and, while its claimant lives, made by one replica only.
type WebhookDeliveryClaimed struct {
	Attempt int       `json:"attempt"`
	Until   time.Time `json:"until"`
}

func (WebhookDeliveryClaimed) EventType() string { return TypeWebhookDeliveryClaimed }
func (WebhookDeliveryClaimed) EventVersion() int { return 1 }
