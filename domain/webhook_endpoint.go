package domain

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/salesledger/ledger/events"
)

// WebhookEventTypes are the event types a webhook endpoint can subscribe to (DESIGN "Webhooks out");
// WebhookAllEvents subscribes to every one, including those added later.
var WebhookEventTypes = []string{
	"sale.created", "sale.completed", "sale.failed", "sale.abandoned", "sale.settled", "sale.refunded",
	"dispute.opened", "dispute.closed",
	"customer.created", "customer.updated", "customer.deleted",
	"licence.activated", "licence.deactivated", "licence.revoked",
}

// WebhookAllEvents is the wildcard subscription.
const WebhookAllEvents = "*"

// Limits of a webhook endpoint's fields.
const (
	// MaxWebhookDescriptionLen: an endpoint's description, in characters.
	MaxWebhookDescriptionLen = 500
	// MaxWebhookEndpoints caps a store's endpoints in one mode (Stripe allows 16 per account and mode):
	// every event is one delivery per endpoint, so the cap bounds an event's fan-out.
	MaxWebhookEndpoints = 16
	// SecretOverlap is how long a rotated-out secret keeps signing, as a second signature.
	SecretOverlap = 24 * time.Hour
	// WebhookSecretPrefix starts every signing secret (Standard Webhooks).
	WebhookSecretPrefix = "whsec_"
	webhookSecretBytes  = 32
)

// ErrWebhookEndpointDeleted is a command on an endpoint that was deleted: it no longer exists.
var ErrWebhookEndpointDeleted = errors.New("the webhook endpoint was deleted")

// WebhookEndpointInput is a create or a change of an endpoint; nil members are not given. Disabled is
// for changes only.
type WebhookEndpointInput struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Disabled    *bool     `json:"disabled"`
}

// WebhookEndpoint is the webhook endpoint aggregate, folded from its events. The secrets are never
// marshalled: nothing that serialises an endpoint (a read model, a log line) can carry them.
type WebhookEndpoint struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	Disabled    bool      `json:"disabled"`
	SecretLast4 string    `json:"secret_last4"`
	Deleted     bool      `json:"deleted"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// PreviousExpiresAt is when the secret replaced by the last rotation stops signing (zero: never rotated).
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	// Secret signs every delivery; PreviousSecret also signs them until PreviousExpiresAt. Both are empty
	// once the endpoint's key is destroyed (deleted).
	Secret         string `json:"-"`
	PreviousSecret string `json:"-"`
	// Version is the endpoint's last subject sequence: the expectation for the next append.
	Version uint64 `json:"version"`
}

// Evolve returns the endpoint with one more event applied.
func (w WebhookEndpoint) Evolve(e events.Envelope) WebhookEndpoint {
	switch p := e.Payload.(type) {
	case events.WebhookEndpointCreated:
		w = WebhookEndpoint{ID: p.EndpointID, URL: p.URL, Events: slices.Clone(p.Events), Description: p.Description,
			Secret: p.Secret, SecretLast4: p.SecretLast4, CreatedAt: e.Time, UpdatedAt: e.Time, Version: w.Version}
	case events.WebhookEndpointUpdated:
		if p.URL != nil {
			w.URL = *p.URL
		}
		if p.Events != nil {
			w.Events = slices.Clone(p.Events)
		}
		if p.Description != nil {
			w.Description = *p.Description
		}
		if p.Disabled != nil {
			w.Disabled = *p.Disabled
		}
		w.UpdatedAt = e.Time
	case events.WebhookEndpointSecretRotated:
		w.PreviousSecret, w.PreviousExpiresAt = w.Secret, p.PreviousExpiresAt
		w.Secret, w.SecretLast4, w.UpdatedAt = p.Secret, p.SecretLast4, e.Time
	case events.WebhookEndpointDeleted:
		w.Deleted, w.Secret, w.PreviousSecret, w.UpdatedAt = true, "", "", e.Time
	default:
		return w
	}
	if e.Sequence > w.Version {
		w.Version = e.Sequence
	}
	return w
}

// FoldWebhookEndpoint folds an endpoint from its events in order.
func FoldWebhookEndpoint(evs []events.Envelope) WebhookEndpoint {
	var w WebhookEndpoint
	for _, e := range evs {
		w = w.Evolve(e)
	}
	return w
}

// SigningSecrets are the secrets a delivery made at now is signed with: the current one, then the
// previous one while its 24 hours of overlap last.
func (w WebhookEndpoint) SigningSecrets(now time.Time) []string {
	if w.Secret == "" {
		return nil
	}
	out := []string{w.Secret}
	if w.PreviousSecret != "" && now.Before(w.PreviousExpiresAt) {
		out = append(out, w.PreviousSecret)
	}
	return out
}

// Subscribes tells whether the endpoint wants events of type t.
func (w WebhookEndpoint) Subscribes(t string) bool {
	return slices.Contains(w.Events, WebhookAllEvents) || slices.Contains(w.Events, t)
}

// NewWebhookSecret returns a new signing secret: "whsec_" and the base64 of 32 random bytes.
func NewWebhookSecret() string {
	b := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the OS entropy source is gone; nothing is safe
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

func last4(s string) string { return s[max(0, len(s)-4):] }

// NewWebhookEndpoint decides the creation of endpoint id with secret: url and events are required.
func NewWebhookEndpoint(id string, in WebhookEndpointInput, secret string) (events.WebhookEndpointCreated, error) {
	var v ValidationError
	if in.URL == nil {
		v.Add("url", "The url field is required.")
	}
	if in.Events == nil {
		v.Add("events", "The events field is required: a list of event types, or [\"*\"] for all of them.")
	}
	if in.Disabled != nil {
		v.Add("disabled", "An endpoint is created enabled; disable it with PATCH.")
	}
	next := checkWebhookInput(in, &v)
	if err := v.Err(); err != nil {
		return events.WebhookEndpointCreated{}, err
	}
	return events.WebhookEndpointCreated{EndpointID: id, URL: *next.URL, Events: *next.Events, Description: deref(next.Description),
		Secret: secret, SecretLast4: last4(secret)}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Update decides a change of the endpoint: WebhookEndpointUpdated naming what changes, or nothing (nil)
// when nothing does.
func (w WebhookEndpoint) Update(in WebhookEndpointInput) (events.Payload, error) {
	if w.Deleted {
		return nil, ErrWebhookEndpointDeleted
	}
	var v ValidationError
	next := checkWebhookInput(in, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	u := events.WebhookEndpointUpdated{EndpointID: w.ID}
	changed := false
	if next.URL != nil && *next.URL != w.URL {
		u.URL, changed = next.URL, true
	}
	if next.Events != nil && !slices.Equal(*next.Events, w.Events) {
		u.Events, changed = *next.Events, true
	}
	if next.Description != nil && *next.Description != w.Description {
		u.Description, changed = next.Description, true
	}
	if next.Disabled != nil && *next.Disabled != w.Disabled {
		u.Disabled, changed = next.Disabled, true
	}
	if !changed {
		return nil, nil
	}
	return u, nil
}

// RotateSecret decides a new signing secret at now; the current one keeps signing for SecretOverlap.
func (w WebhookEndpoint) RotateSecret(secret string, now time.Time) (events.Payload, error) {
	if w.Deleted {
		return nil, ErrWebhookEndpointDeleted
	}
	return events.WebhookEndpointSecretRotated{EndpointID: w.ID, Secret: secret, SecretLast4: last4(secret),
		PreviousExpiresAt: now.UTC().Add(SecretOverlap)}, nil
}

// Delete decides the deletion of the endpoint.
func (w WebhookEndpoint) Delete() (events.Payload, error) {
	if w.Deleted {
		return nil, ErrWebhookEndpointDeleted
	}
	return events.WebhookEndpointDeleted{EndpointID: w.ID}, nil
}

// checkWebhookInput validates the members in gives, recording problems in v, and returns them in their
// stored form (events de-duplicated, in the order given).
func checkWebhookInput(in WebhookEndpointInput, v *ValidationError) WebhookEndpointInput {
	out := in
	if in.URL != nil {
		if msg := WebhookURLProblem(*in.URL); msg != "" {
			v.Add("url", msg)
		}
	}
	if in.Events != nil {
		evs, msgs := checkWebhookEvents(*in.Events)
		for _, m := range msgs {
			v.Add("events", m)
		}
		out.Events = &evs
	}
	if in.Description != nil {
		tooLong(v, "description", *in.Description, MaxWebhookDescriptionLen)
	}
	return out
}

func checkWebhookEvents(in []string) ([]string, []string) {
	if len(in) == 0 {
		return nil, []string{"The events field must list at least one event type, or be [\"*\"] for all of them."}
	}
	var out, unknown []string
	for _, t := range in {
		switch {
		case slices.Contains(out, t):
		case t == WebhookAllEvents || slices.Contains(WebhookEventTypes, t):
			out = append(out, t)
		case len(unknown) < 5:
			unknown = append(unknown, fmt.Sprintf("%q", truncate(t, 64)))
		}
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("Unknown event type(s) %s; the types are %s, or \"*\" for all of them.",
			strings.Join(unknown, ", "), strings.Join(WebhookEventTypes, ", ")))
	}
	if slices.Contains(out, WebhookAllEvents) && len(out) > 1 {
		msgs = append(msgs, "\"*\" subscribes to every event type; give it alone.")
	}
	return out, msgs
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// WebhookURLProblem says what is wrong with raw as a webhook endpoint's URL, or "" if nothing is: it
// must be an absolute http or https URL of at most MaxURLLen characters, with a host and no user
// information. Which addresses a webhook may be sent to (not loopback, private, link-local or cloud
// metadata ones) is the delivery client's rule, applied to the URL at creation and to every address the
// host resolves to at connect time: handlers/webhooksout (ValidateURL, CheckAddr).
func WebhookURLProblem(raw string) string {
	if raw == "" {
		return "The url field is required."
	}
	if len(raw) > MaxURLLen {
		return fmt.Sprintf("The url field must be at most %d characters.", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "The url field must be an absolute URL, e.g. https://example.com/webhooks."
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "The url field must be an http or https URL."
	}
	if u.User != nil {
		return "The url field must not contain a user name or password."
	}
	if u.Hostname() == "" {
		return "The url field must name a host."
	}
	return ""
}
