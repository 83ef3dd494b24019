package domain

import (
	"bytes"
	"errors"
	"time"

	"github.com/salesledger/ledger/events"
)

// Customer errors.
var (
	ErrTooManyAddresses = errors.New("customer already has 3 addresses registered")
	ErrCustomerErased   = errors.New("the customer was erased")
)

// Customer is the customer aggregate, folded from its events.
type Customer struct {
	ID        string
	Fields    CustomerFields
	Addresses []Address
	Photo     *events.CustomerPhotoSet
	Source    string
	Erased    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the customer's last subject sequence: the expectation for the next append.
	Version uint64
}

// Address is one of a customer's addresses.
type Address struct {
	ID string `json:"id"`
	AddressFields
	Default   bool      `json:"default"`
	CreatedAt time.Time `json:"created_at"`
}

// Evolve returns the customer with one more event applied.
func (c Customer) Evolve(e events.Envelope) Customer {
	switch p := e.Payload.(type) {
	case events.CustomerRegistered:
		c.ID, c.Source, c.CreatedAt, c.UpdatedAt = p.CustomerID, p.Source, e.Time, e.Time
		c.Fields = CustomerFields(p.CustomerData)
	case events.CustomerUpdated:
		c.Fields, c.UpdatedAt = CustomerFields(p.CustomerData), e.Time
	case events.CustomerAddressAdded:
		addrs := make([]Address, 0, len(c.Addresses)+1)
		for _, a := range c.Addresses {
			a.Default = a.Default && !p.Default
			addrs = append(addrs, a)
		}
		c.Addresses = append(addrs, Address{ID: p.AddressID, AddressFields: AddressFields(p.AddressData), Default: p.Default || len(addrs) == 0, CreatedAt: e.Time})
		c.UpdatedAt = e.Time
	case events.CustomerAddressRemoved:
		var addrs []Address
		wasDefault := false
		for _, a := range c.Addresses {
			if a.ID == p.AddressID {
				wasDefault = a.Default
				continue
			}
			addrs = append(addrs, a)
		}
		if wasDefault && len(addrs) > 0 {
			addrs[0].Default = true // the oldest remaining one
		}
		c.Addresses, c.UpdatedAt = addrs, e.Time
	case events.CustomerDefaultAddressSet:
		addrs := make([]Address, len(c.Addresses))
		for i, a := range c.Addresses {
			a.Default = a.ID == p.AddressID
			addrs[i] = a
		}
		c.Addresses, c.UpdatedAt = addrs, e.Time
	case events.CustomerPhotoSet:
		pc := p
		c.Photo, c.UpdatedAt = &pc, e.Time
	case events.CustomerErased:
		c.Erased, c.Fields, c.Addresses, c.Photo, c.UpdatedAt = true, CustomerFields{}, nil, nil, e.Time
	default:
		return c
	}
	if e.Sequence > c.Version {
		c.Version = e.Sequence
	}
	return c
}

// FoldCustomer folds a customer from its events in order.
func FoldCustomer(evs []events.Envelope) Customer {
	var c Customer
	for _, e := range evs {
		c = c.Evolve(e)
	}
	return c
}

// Name is the full name: first and last, whichever are known.
func (c Customer) Name() string {
	switch {
	case c.Fields.FirstName == "":
		return c.Fields.LastName
	case c.Fields.LastName == "":
		return c.Fields.FirstName
	}
	return c.Fields.FirstName + " " + c.Fields.LastName
}

// Update decides a change of the customer's fields: CustomerUpdated with the whole new personal data, or
// nothing if nothing changes.
func (c Customer) Update(in CustomerInput) (events.Payload, CustomerFields, error) {
	if c.Erased {
		return nil, c.Fields, ErrCustomerErased
	}
	next, err := c.Fields.Apply(in, false)
	if err != nil {
		return nil, c.Fields, err
	}
	if sameFields(next, c.Fields) {
		return nil, next, nil
	}
	return events.CustomerUpdated{CustomerID: c.ID, CustomerData: events.CustomerData(next)}, next, nil
}

func sameFields(a, b CustomerFields) bool {
	return a.Email == b.Email && a.EmailAsTyped == b.EmailAsTyped && a.FirstName == b.FirstName && a.LastName == b.LastName && a.Phone == b.Phone &&
		a.Country == b.Country && a.Address == b.Address && a.City == b.City && a.Zip == b.Zip &&
		a.State == b.State && a.IP == b.IP && bytes.Equal(a.Metadata, b.Metadata)
}

// AddAddress decides a new address: at most MaxAddresses; the first one, or one asked to be, is the
// default.
func (c Customer) AddAddress(id string, in AddressInput) (events.Payload, error) {
	if c.Erased {
		return nil, ErrCustomerErased
	}
	a, err := NewAddress(in)
	if err != nil {
		return nil, err
	}
	if len(c.Addresses) >= MaxAddresses {
		return nil, ErrTooManyAddresses
	}
	def := len(c.Addresses) == 0 || (in.Default != nil && *in.Default)
	return events.CustomerAddressAdded{CustomerID: c.ID, AddressID: id, AddressData: events.AddressData(a), Default: def}, nil
}

// RemoveAddress decides removing an address; an unknown one is ErrNotFound.
func (c Customer) RemoveAddress(id string) (events.Payload, error) {
	if _, ok := c.address(id); !ok {
		return nil, ErrNotFound
	}
	return events.CustomerAddressRemoved{CustomerID: c.ID, AddressID: id}, nil
}

// SetDefaultAddress decides making an address the default; nothing if it already is.
func (c Customer) SetDefaultAddress(id string) (events.Payload, error) {
	a, ok := c.address(id)
	if !ok {
		return nil, ErrNotFound
	}
	if a.Default {
		return nil, nil
	}
	return events.CustomerDefaultAddressSet{CustomerID: c.ID, AddressID: id}, nil
}

func (c Customer) address(id string) (Address, bool) {
	for _, a := range c.Addresses {
		if a.ID == id {
			return a, true
		}
	}
	return Address{}, false
}
