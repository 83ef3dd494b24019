package webhooksout

import (
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Endpoint is a webhook endpoint with the store and mode it belongs to (as the read model lists them).
type Endpoint struct {
	StoreID string
	Mode    string
	domain.WebhookEndpoint
}

// Recipients returns the endpoints of eps that receive an outgoing event of type eventType caused by a
// ledger event of aggregate agg at time at: those of agg's store and mode, subscribed to eventType or to
// "*", neither disabled nor deleted, and created no later than the event (an endpoint hears of what
// happens after it exists, not of the past a lagging dispatcher is still reading). The order of eps is
// kept.
func Recipients(eps []Endpoint, agg events.Aggregate, eventType string, at time.Time) []Endpoint {
	var out []Endpoint
	for _, ep := range eps {
		if ep.StoreID != agg.StoreID || ep.Mode != agg.Mode || ep.Disabled || ep.Deleted || ep.ID == "" {
			continue
		}
		if !ep.CreatedAt.IsZero() && ep.CreatedAt.After(at) {
			continue
		}
		if ep.Subscribes(eventType) {
			out = append(out, ep)
		}
	}
	return out
}
