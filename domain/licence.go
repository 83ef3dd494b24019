package domain

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/salesledger/ledger/events"
)

// ErrActivationLimit is an activation beyond the licence's max_activations.
type ErrActivationLimit struct{ Max int }

func (e ErrActivationLimit) Error() string {
	return fmt.Sprintf("the licence is already active on its maximum of %d instances", e.Max)
}

// Licence errors.
var (
	ErrLicenceRevoked = fmt.Errorf("the licence is revoked")
	ErrLicenceExpired = fmt.Errorf("the licence has expired")
)

// NewLicence issues a licence for a completed sale of a product with licence terms. The key is four
// groups of five characters from an alphabet without look-alikes (about 98 bits).
func NewLicence(s Sale, now time.Time) events.LicenceIssued {
	t := s.Started.Product.Licence
	l := events.LicenceIssued{
		LicenceID: NewID(PrefixLicence), SaleID: s.ID, CustomerID: s.Started.Customer.ID, ProductID: s.Started.Product.ID,
		Key: licenceKey(), MaxActivations: t.MaxActivations,
	}
	if t.ExpiresInDays != nil {
		at := now.Add(time.Duration(*t.ExpiresInDays) * 24 * time.Hour).UTC()
		l.ExpiresAt = &at
	}
	return l
}

const keyAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// ValidLicenceKey reports whether key has the shape of a licence key: groups of the key alphabet
// separated by single hyphens, at most MaxIDLen characters. Any other string names no licence.
func ValidLicenceKey(key string) bool {
	if key == "" || len(key) > MaxIDLen {
		return false
	}
	for _, group := range strings.Split(key, "-") {
		if group == "" || strings.Trim(group, keyAlphabet) != "" {
			return false
		}
	}
	return true
}

func licenceKey() string {
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	var b strings.Builder
	for i, r := range raw {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(keyAlphabet[int(r)&(len(keyAlphabet)-1)]) // 32 symbols: uniform
	}
	return b.String()
}

// Licence is the licence aggregate.
type Licence struct {
	Issued    events.LicenceIssued
	Instances map[string]bool
	Revoked   bool
	Version   uint64
}

// Evolve applies one event.
func (l Licence) Evolve(e events.Envelope) Licence {
	switch p := e.Payload.(type) {
	case events.LicenceIssued:
		l.Issued, l.Instances = p, map[string]bool{}
	case events.LicenceActivated:
		l.Instances = cloneSet(l.Instances)
		l.Instances[p.Instance] = true
	case events.LicenceDeactivated:
		l.Instances = cloneSet(l.Instances)
		delete(l.Instances, p.Instance)
	case events.LicenceRevoked:
		l.Revoked = true
	default:
		return l
	}
	if e.Sequence > l.Version {
		l.Version = e.Sequence
	}
	return l
}

func cloneSet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Status is active, inactive (no activation yet), revoked or expired.
func (l Licence) Status(now time.Time) string {
	return LicenceStatus(l.Revoked, l.Issued.ExpiresAt, len(l.Instances), now)
}

// LicenceStatus is the status rule shared by the aggregate and read-model views of a licence.
func LicenceStatus(revoked bool, expiresAt *time.Time, activations int, now time.Time) string {
	switch {
	case revoked:
		return "revoked"
	case expiresAt != nil && !now.Before(*expiresAt):
		return "expired"
	case activations == 0:
		return "inactive"
	}
	return "active"
}

// Activate adds an instance. An instance already active changes nothing; one beyond max_activations is
// ErrActivationLimit. The caller appends with the licence's Version as expectation, so concurrent
// activations cannot both pass this check.
func (l Licence) Activate(instance string, now time.Time) ([]events.Payload, error) {
	if err := l.usable(instance, now); err != nil {
		return nil, err
	}
	if l.Instances[instance] {
		return nil, nil
	}
	if len(l.Instances) >= l.Issued.MaxActivations {
		return nil, ErrActivationLimit{Max: l.Issued.MaxActivations}
	}
	return []events.Payload{events.LicenceActivated{Instance: instance}}, nil
}

// Deactivate releases an instance; an instance that is not active changes nothing.
func (l Licence) Deactivate(instance string) ([]events.Payload, error) {
	if err := validInstance(instance); err != nil {
		return nil, err
	}
	if !l.Instances[instance] {
		return nil, nil
	}
	return []events.Payload{events.LicenceDeactivated{Instance: instance}}, nil
}

// Revoke ends the licence; revoking twice changes nothing. The reason is at most MaxReasonLen
// characters.
func (l Licence) Revoke(reason string) ([]events.Payload, error) {
	var v ValidationError
	if tooLong(&v, "reason", reason, MaxReasonLen) {
		return nil, v.Err()
	}
	if l.Revoked {
		return nil, nil
	}
	return []events.Payload{events.LicenceRevoked{Reason: reason}}, nil
}

func (l Licence) usable(instance string, now time.Time) error {
	if err := validInstance(instance); err != nil {
		return err
	}
	switch l.Status(now) {
	case "revoked":
		return ErrLicenceRevoked
	case "expired":
		return ErrLicenceExpired
	}
	return nil
}

func validInstance(instance string) error {
	var v ValidationError
	if s := strings.TrimSpace(instance); s == "" || len(s) > MaxInstanceLen {
		v.Add("instance", fmt.Sprintf("The instance must be 1 to %d characters identifying the machine or seat.", MaxInstanceLen))
	}
	return v.Err()
}
