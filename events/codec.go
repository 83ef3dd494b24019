package events

import (
	"context"
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

// Encode returns the subject, headers and body of the envelope's message, with personal data in the
// clear: for tests and tools. The event store encodes with EncodeWith and its keyring.
func Encode(e Envelope) (subject string, header map[string]string, data []byte, err error) {
	return EncodeWith(context.Background(), nil, e)
}

// EncodeWith returns the subject, headers and body of the envelope's message, the payload's personal
// data sealed with keys (see Personal).
func EncodeWith(ctx context.Context, keys Keyring, e Envelope) (subject string, header map[string]string, data []byte, err error) {
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
	if data, err = seal(ctx, keys, e.Payload, data); err != nil {
		return "", nil, nil, err
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

// DecodeMessage rebuilds an envelope from a stored message. header returns one header's value. Sealed
// personal data is left unread (the payload says personal_erased); the event store decodes with
// DecodeMessageWith and its keyring.
func DecodeMessage(subject string, header func(string) string, data []byte, seq uint64) (Envelope, error) {
	return DecodeMessageWith(context.Background(), nil, subject, header, data, seq)
}

// DecodeMessageWith is DecodeMessage that opens sealed personal data with keys.
func DecodeMessageWith(ctx context.Context, keys Keyring, subject string, header func(string) string, data []byte, seq uint64) (Envelope, error) {
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
	p, err := decodeOpen(ctx, keys, typ, version, data)
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
	return decode(eventType, version, data, nil)
}

// decode is Decode with personal, when not nil, a JSON object of members decoded over the body's own
// (the opened personal data of a sealed body; see decodeOpen).
func decode(eventType string, version int, data, personal []byte) (Payload, error) {
	switch {
	case eventType == TypeStoreCreated && version == 1:
		return decodeInto[StoreCreated](data, personal)
	case eventType == TypeSlugReserved && version == 1:
		return decodeInto[SlugReserved](data, personal)
	case eventType == TypeSaleStarted && version == 2:
		return decodeInto[SaleStarted](data, personal)
	case eventType == TypeSaleStarted && version == 1:
		return decodeV1(data, personal, upcastSaleStarted)
	case isPaymentType(eventType) && (version == 1 || version == 2):
		p, err := decodeInto[PaymentRecorded](data, personal)
		if err == nil && version == 1 {
			p, err = upcastPayment(p.(PaymentRecorded))
		}
		if err == nil && p.EventType() != eventType {
			return nil, fmt.Errorf("%w: %s carries payment status %q", ErrMalformed, eventType, p.(PaymentRecorded).Status)
		}
		return p, err
	case eventType == TypeSaleCompleted && version == 2:
		return decodeInto[SaleCompleted](data, personal)
	case eventType == TypeSaleCompleted && version == 1:
		return decodeV1(data, personal, upcastSaleCompleted)
	case eventType == TypeSaleAbandoned && version == 1:
		return decodeInto[SaleAbandoned](data, personal)
	case eventType == TypeSaleSettled && version == 1:
		return decodeInto[SaleSettled](data, personal)
	case eventType == TypeDownloadRecorded && version == 1:
		return decodeInto[DownloadRecorded](data, personal)
	case eventType == TypeSaleRated && version == 1:
		return decodeInto[SaleRated](data, personal)
	case eventType == TypeCustomerRegistered && version == 1:
		return decodeInto[CustomerRegistered](data, personal)
	case eventType == TypeEmailClaimed && version == 1:
		return decodeInto[EmailClaimed](data, personal)
	case eventType == TypeEmailReleased && version == 1:
		return decodeInto[EmailReleased](data, personal)
	case eventType == TypeCustomerUpdated && version == 1:
		return decodeInto[CustomerUpdated](data, personal)
	case eventType == TypeCustomerAddressAdded && version == 1:
		return decodeInto[CustomerAddressAdded](data, personal)
	case eventType == TypeCustomerAddressRemove && version == 1:
		return decodeInto[CustomerAddressRemoved](data, personal)
	case eventType == TypeCustomerAddressDef && version == 1:
		return decodeInto[CustomerDefaultAddressSet](data, personal)
	case eventType == TypeCustomerPhotoSet && version == 1:
		return decodeInto[CustomerPhotoSet](data, personal)
	case eventType == TypeCustomerErased && version == 1:
		return decodeInto[CustomerErased](data, personal)
	case eventType == TypeIdempotencyKey && version == 1:
		return decodeInto[IdempotencyKeyRecorded](data, personal)
	case eventType == TypeWebhookReceived && version == 2:
		return decodeInto[WebhookReceived](data, personal)
	case eventType == TypeWebhookReceived && version == 1:
		return decodeV1(data, personal, upcastWebhookReceived)
	case eventType == TypeWebhookRejected && version == 1:
		return decodeInto[WebhookRejected](data, personal)
	case eventType == TypeRefundRecorded && version == 1:
		return decodeInto[RefundRecorded](data, personal)
	case eventType == TypeDisputeOpened && version == 1:
		return decodeInto[DisputeOpened](data, personal)
	case eventType == TypeDisputeClosed && version == 1:
		return decodeInto[DisputeClosed](data, personal)
	case eventType == TypeWebhookEndpointCreated && version == 1:
		return decodeInto[WebhookEndpointCreated](data, personal)
	case eventType == TypeWebhookEndpointUpdated && version == 1:
		return decodeInto[WebhookEndpointUpdated](data, personal)
	case eventType == TypeWebhookEndpointSecretRotated && version == 1:
		return decodeInto[WebhookEndpointSecretRotated](data, personal)
	case eventType == TypeWebhookEndpointDeleted && version == 1:
		return decodeInto[WebhookEndpointDeleted](data, personal)
	case eventType == TypeWebhookDeliveryScheduled && version == 1:
		return decodeInto[WebhookDeliveryScheduled](data, personal)
	case eventType == TypeWebhookDeliveryAttempted && version == 1:
		return decodeInto[WebhookDeliveryAttempted](data, personal)
	case eventType == TypeWebhookDeliveryRetryRequested && version == 1:
		return decodeInto[WebhookDeliveryRetryRequested](data, personal)
	case eventType == TypeWebhookDeliveryCancelled && version == 1:
		return decodeInto[WebhookDeliveryCancelled](data, personal)
	case eventType == TypeWebhookDeliveryClaimed && version == 1:
		return decodeInto[WebhookDeliveryClaimed](data, personal)
	case eventType == TypeLicenceIssued && version == 1:
		return decodeInto[LicenceIssued](data, personal)
	case eventType == TypeLicenceActivated && version == 1:
		return decodeInto[LicenceActivated](data, personal)
	case eventType == TypeLicenceDeactivated && version == 1:
		return decodeInto[LicenceDeactivated](data, personal)
	case eventType == TypeLicenceRevoked && version == 1:
		return decodeInto[LicenceRevoked](data, personal)
	}
	return nil, fmt.Errorf("%w: %s v%d", ErrUnknownEvent, eventType, version)
}

// decodeInto decodes one payload, and personal (if not nil) over it. Unknown fields are ignored so that
// a reader tolerates additive changes; anything that changes meaning gets a new version instead.
func decodeInto[T Payload](data, personal []byte) (Payload, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, v.EventType(), err)
	}
	if personal != nil {
		if err := json.Unmarshal(personal, &v); err != nil {
			return nil, fmt.Errorf("%w: %s: sealed personal data: %v", ErrMalformed, v.EventType(), err)
		}
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
