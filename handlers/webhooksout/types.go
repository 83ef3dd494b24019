package webhooksout

import (
	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Outgoing event types (DESIGN.md "Webhooks out (to stores)"); domain.WebhookEventTypes lists them for
// subscriptions.
const (
	SaleCreated        = "sale.created"
	SaleCompleted      = "sale.completed"
	SaleFailed         = "sale.failed"
	SaleAbandoned      = "sale.abandoned"
	SaleSettled        = "sale.settled"
	SaleRefunded       = "sale.refunded"
	DisputeOpened      = "dispute.opened"
	DisputeClosed      = "dispute.closed"
	CustomerCreated    = "customer.created"
	CustomerUpdated    = "customer.updated"
	CustomerDeleted    = "customer.deleted"
	LicenceActivated   = "licence.activated"
	LicenceDeactivated = "licence.deactivated"
	LicenceRevoked     = "licence.revoked"
)

// saleFailedIfFailed marks the payment events that are sale.failed only when they failed the sale.
const saleFailedIfFailed = "?sale.failed"

// outgoingOf is the decision for every ledger event type: the outgoing type it causes, "" for none.
// Every type events.Decode knows has an entry (a test enforces it), so a new ledger event cannot be
// added without deciding whether stores hear of it.
var outgoingOf = map[string]string{
	events.TypeSaleStarted:      SaleCreated,
	events.TypePaymentInitiated: "",
	events.TypePaymentPending:   "",
	events.TypePaymentSucceeded: "", // sale_completed, in the same batch, is the news
	events.TypePaymentFailed:    saleFailedIfFailed,
	events.TypePaymentCancelled: saleFailedIfFailed,
	events.TypeSaleCompleted:    SaleCompleted,
	events.TypeSaleAbandoned:    SaleAbandoned,
	events.TypeSaleSettled:      SaleSettled,
	events.TypeDownloadRecorded: "",
	events.TypeSaleRated:        "",
	events.TypeRefundRecorded:   SaleRefunded,
	events.TypeDisputeOpened:    DisputeOpened,
	events.TypeDisputeClosed:    DisputeClosed,

	events.TypeCustomerRegistered:    CustomerCreated,
	events.TypeCustomerUpdated:       CustomerUpdated,
	events.TypeCustomerAddressAdded:  CustomerUpdated,
	events.TypeCustomerAddressRemove: CustomerUpdated,
	events.TypeCustomerAddressDef:    CustomerUpdated,
	events.TypeCustomerPhotoSet:      CustomerUpdated,
	events.TypeCustomerErased:        CustomerDeleted,
	events.TypeEmailClaimed:          "",
	events.TypeEmailReleased:         "",

	events.TypeLicenceIssued:      "", // DESIGN has no licence.created; sale.completed names the licences
	events.TypeLicenceActivated:   LicenceActivated,
	events.TypeLicenceDeactivated: LicenceDeactivated,
	events.TypeLicenceRevoked:     LicenceRevoked,

	events.TypeStoreCreated:                  "",
	events.TypeSlugReserved:                  "",
	events.TypeIdempotencyKey:                "",
	events.TypeWebhookReceived:               "",
	events.TypeWebhookRejected:               "",
	events.TypeWebhookEndpointCreated:        "",
	events.TypeWebhookEndpointUpdated:        "",
	events.TypeWebhookEndpointSecretRotated:  "",
	events.TypeWebhookEndpointDeleted:        "",
	events.TypeWebhookDeliveryScheduled:      "",
	events.TypeWebhookDeliveryAttempted:      "",
	events.TypeWebhookDeliveryRetryRequested: "",
	events.TypeWebhookDeliveryCancelled:      "",
	events.TypeWebhookDeliveryClaimed:        "",
}

// Outgoing is what a ledger event tells the stores: an outgoing event of Type about the object Object
// (a sale, customer or licence id: what the body's data renders, as GET returns it at the event).
type Outgoing struct {
	Type   string
	Object string
}

// EventFor returns the outgoing event ledger event e causes, and false when it causes none. Each ledger
// event causes at most one, so the ledger event's id is the outgoing event's id (the body's "id" and the
// webhook-id header). saleStatus is the status of e's sale after e (domain.Sale.Status), consulted only
// for payment_failed and payment_cancelled: they are sale.failed when they left the sale failed. Events
// of the platform mode (stores, gateway deliveries) and types EventFor does not know cause none.
func EventFor(e events.Envelope, saleStatus string) (Outgoing, bool) {
	if e.Payload == nil || (e.Aggregate.Mode != events.ModeLive && e.Aggregate.Mode != events.ModeTest) {
		return Outgoing{}, false
	}
	t := outgoingOf[e.Type()]
	switch t {
	case "":
		return Outgoing{}, false
	case saleFailedIfFailed:
		if saleStatus != domain.StatusFailed {
			return Outgoing{}, false
		}
		t = SaleFailed
	}
	return Outgoing{Type: t, Object: e.Aggregate.ID}, true
}

// Decided reports whether ledger event type t has a decision in EventFor's table (whether it causes an
// outgoing event or not).
func Decided(t string) bool {
	_, ok := outgoingOf[t]
	return ok
}
