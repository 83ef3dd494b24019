package events

import "time"

// Licence event types, on ledger.<mode>.<store>.licence.<lic_id>.*.
const (
	TypeLicenceIssued      = "licence_issued"
	TypeLicenceActivated   = "licence_activated"
	TypeLicenceDeactivated = "licence_deactivated"
	TypeLicenceRevoked     = "licence_revoked"
)

// LicenceIssued (v1): a completed sale issued a licence key.
type LicenceIssued struct {
	LicenceID      string     `json:"licence_id"`
	SaleID         string     `json:"sale_id"`
	CustomerID     string     `json:"customer_id"`
	ProductID      string     `json:"product_id"`
	Key            string     `json:"key"`
	MaxActivations int        `json:"max_activations"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
}

func (LicenceIssued) EventType() string { return TypeLicenceIssued }
func (LicenceIssued) EventVersion() int { return 1 }

// LicenceActivated (v1): one more instance (machine, seat) uses the licence.
type LicenceActivated struct {
	Instance string `json:"instance"`
}

func (LicenceActivated) EventType() string { return TypeLicenceActivated }
func (LicenceActivated) EventVersion() int { return 1 }

// LicenceDeactivated (v1): an instance released its activation.
type LicenceDeactivated struct {
	Instance string `json:"instance"`
}

func (LicenceDeactivated) EventType() string { return TypeLicenceDeactivated }
func (LicenceDeactivated) EventVersion() int { return 1 }

// LicenceRevoked (v1): the licence no longer activates anything.
type LicenceRevoked struct {
	Reason string `json:"reason,omitempty"`
}

func (LicenceRevoked) EventType() string { return TypeLicenceRevoked }
func (LicenceRevoked) EventVersion() int { return 1 }
