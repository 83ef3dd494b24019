package events

// Store events: the platform-level aggregates that create a store and reserve its slug.
const (
	TypeStoreCreated = "store_created"
	TypeSlugReserved = "slug_reserved"
)

// Aggregate types.
const (
	AggregateStore = "store"
	AggregateSlug  = "slug"
)

// StoreCreated (v1) opens a store. The API keys are recorded only as SHA-256 hashes; the keys themselves
// are shown once, in the response to the call that created the store.
type StoreCreated struct {
	StoreID             string   `json:"store_id"`
	Name                string   `json:"name"`
	Slug                string   `json:"slug"`
	ServiceFeePercent   string   `json:"service_fee_percent"` // decimal string, e.g. "5" or "2.5"
	SettlementDelayDays int      `json:"settlement_delay_days"`
	AbandonAfterMinutes int      `json:"abandon_after_minutes"`
	Keys                []APIKey `json:"keys"`
}

// APIKey is one secret key of a store, at rest: its mode, the hex SHA-256 of the key and the last four
// characters for display.
type APIKey struct {
	Mode   string `json:"mode"`
	Hash   string `json:"hash"`
	Last4  string `json:"last4"`
	Prefix string `json:"prefix"`
}

func (StoreCreated) EventType() string { return TypeStoreCreated }
func (StoreCreated) EventVersion() int { return 1 }

// SlugReserved (v1) claims a slug for a store. It lives on its own aggregate (ledger.platform.<store>.slug.<slug>)
// and is appended with an expected subject sequence of zero on ledger.platform.*.slug.<slug>.*, so that two
// stores can never hold one slug.
type SlugReserved struct {
	Slug    string `json:"slug"`
	StoreID string `json:"store_id"`
}

func (SlugReserved) EventType() string { return TypeSlugReserved }
func (SlugReserved) EventVersion() int { return 1 }
