package events

import "time"

// AggregateWebhookEndpoint is one of a store's outgoing-webhook endpoints, in one mode:
// ledger.<mode>.<store>.webhook_endpoint.<we_…>.<type>.
const AggregateWebhookEndpoint = "webhook_endpoint"

// Webhook endpoint event types.
const (
	TypeWebhookEndpointCreated       = "webhook_endpoint_created"
	TypeWebhookEndpointUpdated       = "webhook_endpoint_updated"
	TypeWebhookEndpointSecretRotated = "webhook_endpoint_secret_rotated"
	TypeWebhookEndpointDeleted       = "webhook_endpoint_deleted"
)

// An endpoint's signing secret cannot be hashed (the dispatcher signs with it), so it travels as the
// Personal machinery carries personal data: sealed with a key of its own, whose data subject is the
// endpoint id. Deleting the endpoint destroys that key, and every secret it ever had becomes unreadable
// in the log and in every copy of it.
var webhookSecretMembers = []string{"secret"}

// WebhookEndpointCreated (v1) registers an endpoint. Secret is "whsec_" and the base64 of the random
// key, sealed on the wire; SecretLast4 is its last four characters, in the clear, for display.
type WebhookEndpointCreated struct {
	EndpointID  string   `json:"endpoint_id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
	Secret      string   `json:"secret,omitempty"`
	SecretLast4 string   `json:"secret_last4"`
	// PersonalErased is set by the codec when the endpoint's key was destroyed: Secret is gone.
	PersonalErased bool `json:"personal_erased,omitempty"`
}

func (WebhookEndpointCreated) EventType() string         { return TypeWebhookEndpointCreated }
func (WebhookEndpointCreated) EventVersion() int         { return 1 }
func (c WebhookEndpointCreated) DataSubject() string     { return c.EndpointID }
func (WebhookEndpointCreated) PersonalMembers() []string { return webhookSecretMembers }

// CredentialMembers are the members no reader shows, even one that may open sealed data (Credentials).
func (WebhookEndpointCreated) CredentialMembers() []string { return webhookSecretMembers }

// WebhookEndpointUpdated (v1) changes what it names and nothing else: an absent member keeps its value.
// Description may be set to "" (cleared); Events, when present, is never empty.
type WebhookEndpointUpdated struct {
	EndpointID  string   `json:"endpoint_id"`
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
	Disabled    *bool    `json:"disabled,omitempty"`
}

func (WebhookEndpointUpdated) EventType() string { return TypeWebhookEndpointUpdated }
func (WebhookEndpointUpdated) EventVersion() int { return 1 }

// WebhookEndpointSecretRotated (v1) replaces the signing secret. The secret it replaces keeps signing,
// as a second signature, until PreviousExpiresAt (24 hours later); a rotation within those 24 hours
// drops the older one.
type WebhookEndpointSecretRotated struct {
	EndpointID        string    `json:"endpoint_id"`
	Secret            string    `json:"secret,omitempty"`
	SecretLast4       string    `json:"secret_last4"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
	PersonalErased    bool      `json:"personal_erased,omitempty"`
}

func (WebhookEndpointSecretRotated) EventType() string         { return TypeWebhookEndpointSecretRotated }
func (WebhookEndpointSecretRotated) EventVersion() int         { return 1 }
func (r WebhookEndpointSecretRotated) DataSubject() string     { return r.EndpointID }
func (WebhookEndpointSecretRotated) PersonalMembers() []string { return webhookSecretMembers }

// CredentialMembers are the members no reader shows (Credentials).
func (WebhookEndpointSecretRotated) CredentialMembers() []string { return webhookSecretMembers }

// Credentials is a payload some of whose members are credentials (a signing secret): sealed like
// personal data on the wire, and never shown by a tool that reads the log, even one that holds the
// keyring (ledger tail shows "[credential]" in their place).
type Credentials interface {
	CredentialMembers() []string
}

// WebhookEndpointDeleted (v1): the endpoint is gone, and its key with it (its secrets are unreadable).
type WebhookEndpointDeleted struct {
	EndpointID string `json:"endpoint_id"`
}

func (WebhookEndpointDeleted) EventType() string { return TypeWebhookEndpointDeleted }
func (WebhookEndpointDeleted) EventVersion() int { return 1 }
