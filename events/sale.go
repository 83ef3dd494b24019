package events

import (
	"encoding/json"
	"time"
)

// Aggregates of the sale side.
const (
	AggregateSale    = "sale"
	AggregateLicence = "licence"
	// AggregateEmail holds the claims of one email, per store and mode: the id is a keyed hash (HMAC) of
	// the email, and a claim is appended with the subject's last sequence as expectation, so one email
	// maps to one customer even under concurrent first purchases; an erasure releases it.
	AggregateEmail = "customer_email"
	// AggregateIdempotency holds one idempotency_key_recorded per Idempotency-Key of a store and mode.
	AggregateIdempotency = "idempotency"
)

// Sale event types.
const (
	TypeSaleStarted      = "sale_started"
	TypePaymentInitiated = "payment_initiated"
	TypePaymentPending   = "payment_pending"
	TypePaymentSucceeded = "payment_succeeded"
	TypePaymentFailed    = "payment_failed"
	TypePaymentCancelled = "payment_cancelled"
	TypeSaleCompleted    = "sale_completed"
	TypeSaleAbandoned    = "sale_abandoned"
	TypeSaleSettled      = "sale_settled"
	TypeDownloadRecorded = "download_recorded"
	TypeSaleRated        = "sale_rated"
	TypeEmailClaimed     = "customer_email_claimed"
	TypeEmailReleased    = "customer_email_released"
	TypeIdempotencyKey   = "idempotency_key_recorded"
)

// Amount is money on the wire: integer minor units of an ISO 4217 currency, in ISO 4217's own exponent
// (list_one.xml CcyMnrUnts) from event version 2 on; version 1 events are upcast when read.
type Amount struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// StoreRef is the store as a sale shows it.
type StoreRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

// ProductFile is a downloadable file of a product snapshot. URL is the file's origin; buyers only ever
// see signed, expiring links to it.
type ProductFile struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size,omitempty"`
	Type string `json:"type,omitempty"`
	URL  string `json:"url"`
}

// LicenceTerms says how many licences a purchase issues and their limits.
type LicenceTerms struct {
	MaxActivations int  `json:"max_activations"`
	ExpiresInDays  *int `json:"expires_in_days,omitempty"`
}

// Product is the snapshot of the product at checkout; the ledger keeps no catalogue.
type Product struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Type         string        `json:"type"`
	Price        Amount        `json:"price"`
	Files        []ProductFile `json:"files,omitempty"`
	Licence      *LicenceTerms `json:"licence,omitempty"`
	Instructions string        `json:"instructions,omitempty"`
}

// CustomerRef is the buyer as a sale records it.
type CustomerRef struct {
	ID    string `json:"id"`
	Email string `json:"email"` // canonical (domain.NormalizeEmail)
	// EmailAsTyped is the email as the checkout sent it (trimmed), only when it differs from Email.
	EmailAsTyped string `json:"email_as_typed,omitempty"`
	FirstName    string `json:"first_name,omitempty"`
	LastName     string `json:"last_name,omitempty"`
	Phone        string `json:"phone,omitempty"`
}

// Discount applied at checkout: percentage (Value is a decimal percent) or fixed (Value is minor units).
type Discount struct {
	ID    string `json:"id,omitempty"`
	Code  string `json:"code"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Campaign the sale is attributed to.
type Campaign struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// Country is an ISO 3166-1 alpha-2 code and its English name.
type Country struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
}

// Shipping address of a sale.
type Shipping struct {
	Address string   `json:"address,omitempty"`
	City    string   `json:"city,omitempty"`
	State   string   `json:"state,omitempty"`
	Country *Country `json:"country,omitempty"`
	Zip     string   `json:"zip,omitempty"`
}

// SaleContext is where the checkout came from.
type SaleContext struct {
	IPAddress  string   `json:"ip_address,omitempty"`
	Country    *Country `json:"country,omitempty"`
	DeviceType string   `json:"device_type,omitempty"`
	Locale     string   `json:"locale,omitempty"`
}

// SaleStarted (v2; v1 is upcast, see legacyMinorUnitShift) opens a sale in awaiting_payment: everything the checkout decided, including the
// amounts and the store's terms at that moment, so later rules changes never rewrite history.
//
// The buyer's details, the shipping address, the checkout context (IP address) and the metadata (free
// form: it may name the buyer) are personal data, sealed with the customer's key on the wire (see
// Personal).
type SaleStarted struct {
	SaleID     string       `json:"sale_id"`
	Store      StoreRef     `json:"store"`
	Product    Product      `json:"product"`
	CustomerID string       `json:"customer_id"`
	Customer   CustomerRef  `json:"customer"`
	Discount   *Discount    `json:"discount,omitempty"`
	Campaign   *Campaign    `json:"campaign,omitempty"`
	Channel    string       `json:"channel"`
	Shipping   *Shipping    `json:"shipping,omitempty"`
	Context    *SaleContext `json:"context,omitempty"`
	// Metadata is the store's own JSON object (at most 10 KB), absent when none was given and in
	// events written before checkouts took metadata.
	Metadata            json.RawMessage `json:"metadata,omitempty"`
	OriginalAmount      Amount          `json:"original_amount"`
	DiscountAmount      Amount          `json:"discount_amount"`
	Amount              Amount          `json:"amount"`
	ServiceFeePercent   string          `json:"service_fee_percent"`
	SettlementDelayDays int             `json:"settlement_delay_days"`
	AbandonAt           time.Time       `json:"abandon_at"`
	// PersonalErased: the customer was erased; Customer (but its id), Shipping, Context and Metadata
	// are gone.
	PersonalErased bool `json:"personal_erased,omitempty"`
}

func (SaleStarted) EventType() string { return TypeSaleStarted }
func (SaleStarted) EventVersion() int { return 2 }

func (s SaleStarted) DataSubject() string { return s.CustomerID }

// BuyerID is the customer's id: CustomerID, or for a sale opened before CustomerID existed, Customer.ID.
func (s SaleStarted) BuyerID() string {
	if s.CustomerID != "" {
		return s.CustomerID
	}
	return s.Customer.ID
}
func (SaleStarted) PersonalMembers() []string {
	return []string{"customer", "shipping", "context", "metadata"}
}

// PaymentMethod as the gateway names it.
type PaymentMethod struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// FailureError explains a failed payment.
type FailureError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PaymentRecorded (v2; v1 is upcast, see legacyMinorUnitShift) is one payment status reported by a gateway. Its event type follows its status:
// payment_initiated, payment_pending, payment_succeeded, payment_failed, payment_cancelled.
type PaymentRecorded struct {
	Status        string         `json:"status"` // initiated, pending, success, failed, cancelled
	Gateway       string         `json:"gateway"`
	TransactionID string         `json:"transaction_id,omitempty"`
	DeliveryID    string         `json:"delivery_id,omitempty"` // the gateway's event id
	Method        *PaymentMethod `json:"method,omitempty"`
	Amount        Amount         `json:"amount"`
	Fee           *Amount        `json:"fee,omitempty"`
	ExchangeRate  string         `json:"exchange_rate,omitempty"`
	FailureError  *FailureError  `json:"failure_error,omitempty"`
}

// PaymentTypes maps payment statuses to their event types.
var PaymentTypes = map[string]string{
	"initiated": TypePaymentInitiated,
	"pending":   TypePaymentPending,
	"success":   TypePaymentSucceeded,
	"failed":    TypePaymentFailed,
	"cancelled": TypePaymentCancelled,
}

func (p PaymentRecorded) EventType() string { return PaymentTypes[p.Status] }
func (PaymentRecorded) EventVersion() int   { return 2 }

// IssuedFile is a file the buyer gets access to.
type IssuedFile struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Size      int64     `json:"size,omitempty"`
	Type      string    `json:"type,omitempty"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SaleCompleted (v2; v1 is upcast, see legacyMinorUnitShift) grants access after a successful payment and schedules the settlement.
type SaleCompleted struct {
	Files           []IssuedFile `json:"files,omitempty"`
	LicenceIDs      []string     `json:"licence_ids,omitempty"`
	Instructions    string       `json:"instructions,omitempty"`
	ServiceFee      Amount       `json:"service_fee"`
	SettlementTotal Amount       `json:"settlement_amount"`
	SettlementDueAt time.Time    `json:"settlement_due_at"`
}

func (SaleCompleted) EventType() string { return TypeSaleCompleted }
func (SaleCompleted) EventVersion() int { return 2 }

// SaleAbandoned (v1): no payment arrived before the store's abandon deadline.
type SaleAbandoned struct{}

func (SaleAbandoned) EventType() string { return TypeSaleAbandoned }
func (SaleAbandoned) EventVersion() int { return 1 }

// SaleSettled (v1): the settlement was paid out to the store.
type SaleSettled struct {
	Source string `json:"source"` // "schedule" or the gateway whose settlement.done settled it
}

func (SaleSettled) EventType() string { return TypeSaleSettled }
func (SaleSettled) EventVersion() int { return 1 }

// DownloadRecorded (v1): a buyer followed a download link.
type DownloadRecorded struct {
	FileID string `json:"file_id"`
}

func (DownloadRecorded) EventType() string { return TypeDownloadRecorded }
func (DownloadRecorded) EventVersion() int { return 1 }

// SaleRated (v1): the buyer's rating; a later rating replaces an earlier one.
type SaleRated struct {
	RatingID string `json:"rating_id"`
	Value    int    `json:"value"`
	Comment  string `json:"comment,omitempty"`
}

func (SaleRated) EventType() string { return TypeSaleRated }
func (SaleRated) EventVersion() int { return 1 }

// EmailClaimed (v1) binds an email to one customer of a store and mode.
type EmailClaimed struct {
	CustomerID string `json:"customer_id"`
}

func (EmailClaimed) EventType() string { return TypeEmailClaimed }
func (EmailClaimed) EventVersion() int { return 1 }

// EmailReleased (v1) frees an email when its customer is erased: the next purchase with it registers a
// new customer.
type EmailReleased struct {
	CustomerID string `json:"customer_id"`
}

func (EmailReleased) EventType() string { return TypeEmailReleased }
func (EmailReleased) EventVersion() int { return 1 }

// IdempotencyKeyRecorded (v1) binds an Idempotency-Key to the request it first came with (endpoint and
// body hash) and the resource that request created.
type IdempotencyKeyRecorded struct {
	RequestHash string `json:"request_hash"`
	ResourceID  string `json:"resource_id"`
	// Endpoint is the method and path the key was first sent to ("POST /v1/customers"); absent in
	// records written before keys were honoured beyond checkouts, which were all "POST /v1/checkouts".
	Endpoint string `json:"endpoint,omitempty"`
}

func (IdempotencyKeyRecorded) EventType() string { return TypeIdempotencyKey }
func (IdempotencyKeyRecorded) EventVersion() int { return 1 }

// UsedOn is the endpoint the key was first sent to, for old records too.
func (r IdempotencyKeyRecorded) UsedOn() string {
	if r.Endpoint == "" {
		return "POST /v1/checkouts"
	}
	return r.Endpoint
}
