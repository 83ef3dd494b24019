package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Personal data never travels in the clear. A payload that carries some names its data subject (the
// customer it is about) and the JSON members that are personal; the codec moves those members into one
// "sealed" member, encrypted with the subject's own key (Keyring). Erasing a customer destroys the key:
// every event about them stays in the log, in order, but what it said about them can no longer be read
// by anyone — crypto-shredding. Readers then see the payload without its personal members and with
// "personal_erased": true.
//
// In memory payloads always hold their personal data in the clear; sealing is the codec's business only.

// Personal is a payload with personal data.
type Personal interface {
	Payload
	// DataSubject is the id of the customer the personal data is about (whose key seals it), or of the
	// webhook endpoint whose signing secret it is.
	DataSubject() string
	// PersonalMembers are the JSON members of the payload that are personal.
	PersonalMembers() []string
}

// Keyring seals and opens personal data with each data subject's key.
type Keyring interface {
	// Seal encrypts plaintext with the subject's key, creating the key on first use.
	Seal(ctx context.Context, subject string, plaintext []byte) (string, error)
	// Open decrypts what Seal returned. A subject whose key was erased is ErrErased.
	Open(ctx context.Context, subject string, sealed string) ([]byte, error)
}

// ErrErased is a data subject whose key was destroyed: their personal data is gone.
var ErrErased = errors.New("the data subject was erased")

const (
	memberSealed = "sealed"
	memberErased = "personal_erased"
)

// seal rewrites data, the JSON of p, with p's personal members sealed. Without a keyring, or for a
// payload with no personal data, data is returned unchanged.
func seal(ctx context.Context, keys Keyring, p Payload, data []byte) ([]byte, error) {
	pp, ok := p.(Personal)
	if !ok || keys == nil {
		return data, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	personal := make(map[string]json.RawMessage)
	for _, name := range pp.PersonalMembers() {
		if v, ok := members[name]; ok {
			personal[name] = v
			delete(members, name)
		}
	}
	if len(personal) == 0 {
		return data, nil
	}
	plain, err := json.Marshal(personal)
	if err != nil {
		return nil, err
	}
	sealed, err := keys.Seal(ctx, pp.DataSubject(), plain)
	if err != nil {
		return nil, fmt.Errorf("seal %s personal data: %w", p.EventType(), err)
	}
	members[memberSealed], _ = json.Marshal(sealed)
	return json.Marshal(members)
}

// open reverses seal: the sealed member is decrypted and its members put back. A subject that was
// erased, or a reader without a keyring, gets the payload without them and "personal_erased": true.
func open(ctx context.Context, keys Keyring, data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte(`"`+memberSealed+`":`)) {
		return data, nil // the common case, and cheap
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	raw, ok := members[memberSealed]
	if !ok {
		return data, nil
	}
	delete(members, memberSealed)
	var sealed string
	if err := json.Unmarshal(raw, &sealed); err != nil {
		return nil, fmt.Errorf("%w: sealed member: %v", ErrMalformed, err)
	}
	var plain []byte
	var err error
	if keys == nil {
		err = ErrErased
	} else {
		plain, err = keys.Open(ctx, subjectOf(members), sealed)
	}
	switch {
	case errors.Is(err, ErrErased):
		members[memberErased] = json.RawMessage("true")
	case err != nil:
		return nil, err
	default:
		var personal map[string]json.RawMessage
		if err := json.Unmarshal(plain, &personal); err != nil {
			return nil, fmt.Errorf("%w: sealed personal data: %v", ErrMalformed, err)
		}
		for k, v := range personal {
			members[k] = v
		}
	}
	return json.Marshal(members)
}

// subjectOf finds the data subject in a payload's clear members: every personal payload carries its
// customer's id as customer_id, or, for a webhook endpoint's secret, the endpoint's as endpoint_id.
func subjectOf(members map[string]json.RawMessage) string {
	var id string
	if raw, ok := members["customer_id"]; ok {
		_ = json.Unmarshal(raw, &id)
		return id
	}
	_ = json.Unmarshal(members["endpoint_id"], &id)
	return id
}

// erasedMembers is what a reader gets in place of personal data it cannot open.
var erasedMembers = []byte(`{"` + memberErased + `":true}`)

// decodeOpen decodes a stored body whose personal members may be sealed: the clear members into the
// payload, then the opened personal members over them. Seal moved the personal members out of the clear
// ones, so the two sets are disjoint and this is what open followed by Decode gives, without decoding
// the body into a map and encoding it again.
func decodeOpen(ctx context.Context, keys Keyring, eventType string, version int, data []byte) (Payload, error) {
	if !bytes.Contains(data, []byte(`"`+memberSealed+`":`)) {
		return Decode(eventType, version, data) // the common case, and cheap
	}
	var outer struct {
		Sealed     json.RawMessage `json:"sealed"`
		CustomerID *string         `json:"customer_id"`
		EndpointID string          `json:"endpoint_id"`
	}
	if err := json.Unmarshal(data, &outer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if outer.Sealed == nil {
		return Decode(eventType, version, data)
	}
	var sealed string
	if err := json.Unmarshal(outer.Sealed, &sealed); err != nil {
		return nil, fmt.Errorf("%w: sealed member: %v", ErrMalformed, err)
	}
	subject := outer.EndpointID // as subjectOf: customer_id if the payload has one, else endpoint_id
	if outer.CustomerID != nil {
		subject = *outer.CustomerID
	}
	var plain []byte
	var err error
	if keys == nil {
		err = ErrErased
	} else {
		plain, err = keys.Open(ctx, subject, sealed)
	}
	switch {
	case errors.Is(err, ErrErased):
		plain = erasedMembers
	case err != nil:
		return nil, err
	}
	return decode(eventType, version, data, plain)
}
