package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// CloudEvents binary-mode headers (NATS protocol binding): attributes travel as ce-* headers, the JSON data
// is the message body. dataversion, correlationid and causationid are extension attributes.
const (
	HeaderSpecVersion   = "ce-specversion"
	HeaderID            = "ce-id"
	HeaderType          = "ce-type"
	HeaderSource        = "ce-source"
	HeaderSubject       = "ce-subject"
	HeaderTime          = "ce-time"
	HeaderDataVersion   = "ce-dataversion"
	HeaderCorrelationID = "ce-correlationid"
	HeaderCausationID   = "ce-causationid"
	HeaderContentType   = "Content-Type"

	SpecVersion = "1.0"
	ContentType = "application/json"
)

// ErrUnknownEvent is returned for an event type or version the codec does not know. The decoder is closed:
// an unknown event is an error, never silently skipped.
var ErrUnknownEvent = errors.New("unknown event type or version")

// ErrMalformed is returned for a message that is not a well-formed ledger event.
var ErrMalformed = errors.New("malformed event")

// Encode returns the subject, headers and body of the envelope's message.
func Encode(e Envelope) (subject string, header map[string]string, data []byte, err error) {
	if e.Payload == nil {
		return "", nil, nil, fmt.Errorf("%w: envelope %s has no payload", ErrMalformed, e.ID)
	}
	if err := e.Aggregate.Validate(); err != nil {
		return "", nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.ID == "" || e.Time.IsZero() {
		return "", nil, nil, fmt.Errorf("%w: envelope needs an id and a time", ErrMalformed)
	}
	data, err = json.Marshal(e.Payload)
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode %s: %w", e.Type(), err)
	}
	header = map[string]string{
		HeaderSpecVersion: SpecVersion,
		HeaderID:          e.ID,
		HeaderType:        e.Type(),
		HeaderSource:      e.Source(),
		HeaderSubject:     e.Aggregate.ID,
		HeaderTime:        e.Time.UTC().Format(time.RFC3339Nano),
		HeaderDataVersion: strconv.Itoa(e.Payload.EventVersion()),
		HeaderContentType: ContentType,
	}
	if e.CorrelationID != "" {
		header[HeaderCorrelationID] = e.CorrelationID
	}
	if e.CausationID != "" {
		header[HeaderCausationID] = e.CausationID
	}
	return e.Subject(), header, data, nil
}

// DecodeMessage rebuilds an envelope from a stored message. header returns one header's value.
func DecodeMessage(subject string, header func(string) string, data []byte, seq uint64) (Envelope, error) {
	agg, typ, err := ParseSubject(subject)
	if err != nil {
		return Envelope{}, err
	}
	if v := header(HeaderSpecVersion); v != SpecVersion {
		return Envelope{}, fmt.Errorf("%w: seq %d: ce-specversion %q", ErrMalformed, seq, v)
	}
	if h := header(HeaderType); h != typ {
		return Envelope{}, fmt.Errorf("%w: seq %d: ce-type %q does not match subject type %q", ErrMalformed, seq, h, typ)
	}
	version, err := strconv.Atoi(header(HeaderDataVersion))
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: seq %d: ce-dataversion %q", ErrMalformed, seq, header(HeaderDataVersion))
	}
	at, err := time.Parse(time.RFC3339Nano, header(HeaderTime))
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: seq %d: ce-time: %v", ErrMalformed, seq, err)
	}
	id := header(HeaderID)
	if id == "" {
		return Envelope{}, fmt.Errorf("%w: seq %d: missing ce-id", ErrMalformed, seq)
	}
	p, err := Decode(typ, version, data)
	if err != nil {
		return Envelope{}, fmt.Errorf("seq %d: %w", seq, err)
	}
	return Envelope{
		ID:            id,
		Aggregate:     agg,
		Time:          at,
		CorrelationID: header(HeaderCorrelationID),
		CausationID:   header(HeaderCausationID),
		Payload:       p,
		Sequence:      seq,
	}, nil
}

// Decode turns an event body into its current payload struct, upcasting old versions. Unknown types and
// versions are errors.
func Decode(eventType string, version int, data []byte) (Payload, error) {
	switch {
	case eventType == TypeStoreCreated && version == 1:
		return decodeInto[StoreCreated](data)
	case eventType == TypeSlugReserved && version == 1:
		return decodeInto[SlugReserved](data)
	case eventType == TypeSaleStarted && version == 1:
		return decodeInto[SaleStarted](data)
	case isPaymentType(eventType) && version == 1:
		p, err := decodeInto[PaymentRecorded](data)
		if err == nil && p.EventType() != eventType {
			return nil, fmt.Errorf("%w: %s carries payment status %q", ErrMalformed, eventType, p.(PaymentRecorded).Status)
		}
		return p, err
	case eventType == TypeSaleCompleted && version == 1:
		return decodeInto[SaleCompleted](data)
	case eventType == TypeSaleAbandoned && version == 1:
		return decodeInto[SaleAbandoned](data)
	case eventType == TypeSaleSettled && version == 1:
		return decodeInto[SaleSettled](data)
	case eventType == TypeDownloadRecorded && version == 1:
		return decodeInto[DownloadRecorded](data)
	case eventType == TypeSaleRated && version == 1:
		return decodeInto[SaleRated](data)
	case eventType == TypeCustomerRegistered && version == 1:
		return decodeInto[CustomerRegistered](data)
	case eventType == TypeEmailClaimed && version == 1:
		return decodeInto[EmailClaimed](data)
	case eventType == TypeIdempotencyKey && version == 1:
		return decodeInto[IdempotencyKeyRecorded](data)
	case eventType == TypeWebhookReceived && version == 1:
		return decodeInto[WebhookReceived](data)
	case eventType == TypeWebhookRejected && version == 1:
		return decodeInto[WebhookRejected](data)
	case eventType == TypeLicenceIssued && version == 1:
		return decodeInto[LicenceIssued](data)
	case eventType == TypeLicenceActivated && version == 1:
		return decodeInto[LicenceActivated](data)
	case eventType == TypeLicenceDeactivated && version == 1:
		return decodeInto[LicenceDeactivated](data)
	case eventType == TypeLicenceRevoked && version == 1:
		return decodeInto[LicenceRevoked](data)
	}
	return nil, fmt.Errorf("%w: %s v%d", ErrUnknownEvent, eventType, version)
}

// decodeInto decodes one payload. Unknown fields are ignored so that a reader tolerates additive
// changes; anything that changes meaning gets a new version instead.
func decodeInto[T Payload](data []byte) (Payload, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, v.EventType(), err)
	}
	return v, nil
}

func isPaymentType(t string) bool {
	for _, pt := range PaymentTypes {
		if pt == t {
			return true
		}
	}
	return false
}
