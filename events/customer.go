package events

import "encoding/json"

// AggregateCustomer is a customer of a store and mode: ledger.<mode>.<store>.customer.<cus_…>.<type>.
const AggregateCustomer = "customer"

// Customer event types.
const (
	TypeCustomerRegistered    = "customer_registered"
	TypeCustomerUpdated       = "customer_updated"
	TypeCustomerAddressAdded  = "customer_address_added"
	TypeCustomerAddressRemove = "customer_address_removed"
	TypeCustomerAddressDef    = "customer_default_address_set"
	TypeCustomerPhotoSet      = "customer_photo_set"
	TypeCustomerErased        = "customer_erased"
)

// CustomerData is a customer's personal data, as the customer events carry it (sealed on the wire).
type CustomerData struct {
	// Email is the canonical form (domain.NormalizeEmail), the one uniqueness and search use;
	// EmailAsTyped is what the customer typed (trimmed), present only when it differs from Email.
	// Events written before EmailAsTyped existed hold only the canonical form.
	Email        string          `json:"email"`
	EmailAsTyped string          `json:"email_as_typed,omitempty"`
	FirstName    string          `json:"first_name,omitempty"`
	LastName     string          `json:"last_name,omitempty"`
	Phone        string          `json:"phone,omitempty"` // E.164
	Country      string          `json:"country,omitempty"`
	Address      string          `json:"address,omitempty"`
	City         string          `json:"city,omitempty"`
	Zip          string          `json:"zip,omitempty"`
	State        string          `json:"state,omitempty"`
	IP           string          `json:"ip,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
}

var customerDataMembers = []string{"email", "email_as_typed", "first_name", "last_name", "phone", "country", "address", "city", "zip", "state", "ip", "metadata"}

// CustomerRegistered (v1): a customer's first appearance, by checkout or by the customer API. Everything
// but the id and the source is personal.
type CustomerRegistered struct {
	CustomerID string `json:"customer_id"`
	CustomerData
	Source         string `json:"source"` // checkout or api
	PersonalErased bool   `json:"personal_erased,omitempty"`
}

func (CustomerRegistered) EventType() string         { return TypeCustomerRegistered }
func (CustomerRegistered) EventVersion() int         { return 1 }
func (c CustomerRegistered) DataSubject() string     { return c.CustomerID }
func (CustomerRegistered) PersonalMembers() []string { return customerDataMembers }

// CustomerUpdated (v1) carries the customer's personal data as it stands after an update, whole.
type CustomerUpdated struct {
	CustomerID string `json:"customer_id"`
	CustomerData
	PersonalErased bool `json:"personal_erased,omitempty"`
}

func (CustomerUpdated) EventType() string         { return TypeCustomerUpdated }
func (CustomerUpdated) EventVersion() int         { return 1 }
func (c CustomerUpdated) DataSubject() string     { return c.CustomerID }
func (CustomerUpdated) PersonalMembers() []string { return customerDataMembers }

// AddressData is one postal address of a customer.
type AddressData struct {
	Line1   string `json:"line1"`
	Line2   string `json:"line2,omitempty"`
	City    string `json:"city"`
	Zip     string `json:"zip,omitempty"`
	State   string `json:"state,omitempty"`
	Country string `json:"country"`
}

// CustomerAddressAdded (v1) adds an address; Default makes it the default one.
type CustomerAddressAdded struct {
	CustomerID string `json:"customer_id"`
	AddressID  string `json:"address_id"`
	AddressData
	Default        bool `json:"default"`
	PersonalErased bool `json:"personal_erased,omitempty"`
}

func (CustomerAddressAdded) EventType() string     { return TypeCustomerAddressAdded }
func (CustomerAddressAdded) EventVersion() int     { return 1 }
func (c CustomerAddressAdded) DataSubject() string { return c.CustomerID }
func (CustomerAddressAdded) PersonalMembers() []string {
	return []string{"line1", "line2", "city", "zip", "state", "country"}
}

// CustomerAddressRemoved (v1) removes an address. If it was the default, the oldest remaining one
// becomes the default.
type CustomerAddressRemoved struct {
	CustomerID string `json:"customer_id"`
	AddressID  string `json:"address_id"`
}

func (CustomerAddressRemoved) EventType() string { return TypeCustomerAddressRemove }
func (CustomerAddressRemoved) EventVersion() int { return 1 }

// CustomerDefaultAddressSet (v1) makes one address the default.
type CustomerDefaultAddressSet struct {
	CustomerID string `json:"customer_id"`
	AddressID  string `json:"address_id"`
}

func (CustomerDefaultAddressSet) EventType() string { return TypeCustomerAddressDef }
func (CustomerDefaultAddressSet) EventVersion() int { return 1 }

// CustomerPhotoSet (v1): a new photo, stored as Object in the customer photo object store.
type CustomerPhotoSet struct {
	CustomerID  string `json:"customer_id"`
	Object      string `json:"object"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

func (CustomerPhotoSet) EventType() string { return TypeCustomerPhotoSet }
func (CustomerPhotoSet) EventVersion() int { return 1 }

// CustomerErased (v1): the customer's personal data was erased — their key destroyed, their photo
// deleted, their email released. Their sales stay, anonymised.
type CustomerErased struct {
	CustomerID string `json:"customer_id"`
}

func (CustomerErased) EventType() string { return TypeCustomerErased }
func (CustomerErased) EventVersion() int { return 1 }
