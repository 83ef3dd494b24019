// Package events is the ledger's wire contract: the envelope every event travels in, the typed payloads,
// their versions, and the closed codec that turns them into CloudEvents binary-mode messages and back.
//
// Event type names and versions never change once released. A payload that must change gets a new
// version; the old version stays decodable forever and is upcast to the current struct on read.
package events

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Modes of a subject. Live and test are the two sides of every store; platform holds what belongs to no
// mode (stores themselves, slug reservations).
const (
	ModeLive     = "live"
	ModeTest     = "test"
	ModePlatform = "platform"
)

// SubjectPrefix is the first token of every ledger subject; the LEDGER stream captures "ledger.>".
const SubjectPrefix = "ledger"

// Payload is the body of one event. EventType and EventVersion identify its schema on the wire.
type Payload interface {
	EventType() string
	EventVersion() int
}

// Aggregate names one aggregate instance: the subject tokens that every event of it shares.
type Aggregate struct {
	Mode    string // live, test or platform
	StoreID string // str_…
	Type    string // store, slug, sale, customer, licence …
	ID      string
}

// Filter is the subject filter matching every event of the aggregate, used for loading it and as the
// Nats-Expected-Last-Subject-Sequence-Subject of optimistic concurrency.
func (a Aggregate) Filter() string {
	return strings.Join([]string{SubjectPrefix, a.Mode, a.StoreID, a.Type, a.ID, "*"}, ".")
}

// Subject is the subject of one event of the aggregate.
func (a Aggregate) Subject(eventType string) string {
	return strings.Join([]string{SubjectPrefix, a.Mode, a.StoreID, a.Type, a.ID, eventType}, ".")
}

// Validate checks that every token is a legal, non-wildcard subject token.
func (a Aggregate) Validate() error {
	var errs []error
	if a.Mode != ModeLive && a.Mode != ModeTest && a.Mode != ModePlatform {
		errs = append(errs, fmt.Errorf("mode %q: must be live, test or platform", a.Mode))
	}
	for _, tok := range []struct{ name, v string }{{"store id", a.StoreID}, {"aggregate type", a.Type}, {"aggregate id", a.ID}} {
		if !validToken(tok.v) {
			errs = append(errs, fmt.Errorf("%s %q: not a valid subject token", tok.name, tok.v))
		}
	}
	return errors.Join(errs...)
}

func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// ParseSubject splits a ledger subject into its aggregate and event type.
func ParseSubject(subject string) (Aggregate, string, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 6 || parts[0] != SubjectPrefix {
		return Aggregate{}, "", fmt.Errorf("%w: subject %q is not ledger.<mode>.<store>.<aggregate>.<id>.<type>", ErrMalformed, subject)
	}
	a := Aggregate{Mode: parts[1], StoreID: parts[2], Type: parts[3], ID: parts[4]}
	if err := a.Validate(); err != nil {
		return Aggregate{}, "", fmt.Errorf("%w: subject %q: %v", ErrMalformed, subject, err)
	}
	return a, parts[5], nil
}

// Envelope is one event with its CloudEvents attributes. ID doubles as the JetStream Nats-Msg-Id, so
// re-sending the same envelope is absorbed by the stream's de-duplication.
type Envelope struct {
	ID            string // evt_…, unique per event; the de-duplication key
	Aggregate     Aggregate
	Time          time.Time
	CorrelationID string // the request or delivery that caused this event, carried to everything it causes
	CausationID   string // the event or command that directly caused this one
	Payload       Payload

	// Sequence is the event's stream sequence; set when the event was read from or appended to the log.
	Sequence uint64
}

// Type is the event type name, e.g. "store_created".
func (e Envelope) Type() string { return e.Payload.EventType() }

// Subject is the subject the event is stored under.
func (e Envelope) Subject() string { return e.Aggregate.Subject(e.Payload.EventType()) }

// Source is the CloudEvents source attribute: the store and mode that own the event.
func (e Envelope) Source() string {
	return "/ledger/" + e.Aggregate.Mode + "/" + e.Aggregate.StoreID
}

// NoExpectation appends without an optimistic-concurrency check.
const NoExpectation uint64 = math.MaxUint64

// Write is one event to append with the optimistic-concurrency condition it must meet.
type Write struct {
	Event Envelope
	// Expect is the last subject sequence the filter must have (0: no event yet); NoExpectation skips the check.
	Expect uint64
	// ExpectFilter is the subject filter Expect applies to; empty means the event's own aggregate.
	ExpectFilter string
}
