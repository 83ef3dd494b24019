// Package handlers is the ledger's HTTP surface: command handlers that load, decide and append, the
// read endpoints served from the projection, authentication, errors, health and metrics.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/internal/keyed"
	"github.com/salesledger/ledger/handlers/salecache"
	"github.com/salesledger/ledger/projections/sqlite"
)

// EventStore is what command handlers need of the event log. Appends return once JetStream has
// acknowledged them (durably, with SyncAlways); a wrong expectation is domain.ErrConflict.
type EventStore interface {
	Append(ctx context.Context, expect uint64, evs ...events.Envelope) (uint64, error)
	AppendWrites(ctx context.Context, ws ...events.Write) (uint64, error)
	// Load reads one aggregate's events and its last subject sequence.
	Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, uint64, error)
	// Last reads the last event matching a subject filter, straight from the log.
	Last(ctx context.Context, filter string) (events.Envelope, bool, error)
	// LoadFilter reads every event matching a subject filter and the last sequence among them.
	LoadFilter(ctx context.Context, filter string) ([]events.Envelope, uint64, error)
	// LastSequence is the log's last stream sequence.
	LastSequence(ctx context.Context) (uint64, error)
}

// ReadStore is the read model the API serves from.
type ReadStore interface {
	KeyScope(ctx context.Context, hash string) (sqlite.KeyScope, error)
	Store(ctx context.Context, id string) (sqlite.StoreRow, error)
	Sale(ctx context.Context, storeID, mode, id string) (domain.Sale, error)
	ListSales(ctx context.Context, f sqlite.SaleFilter) ([]domain.Sale, bool, error)
	// HasSales tells whether any sale matches f at its position: whether a cursor leads anywhere.
	HasSales(ctx context.Context, f sqlite.SaleFilter) (bool, error)
	// SaleScope tells the store and mode a sale belongs to, whoever asks (webhooks carry no key).
	SaleScope(ctx context.Context, id string) (storeID, mode string, err error)
	Customer(ctx context.Context, storeID, mode, id string) (sqlite.CustomerRow, error)
	ListCustomers(ctx context.Context, f sqlite.CustomerFilter) ([]sqlite.CustomerRow, bool, error)
	HasCustomers(ctx context.Context, f sqlite.CustomerFilter) (bool, error)
	// SaleByID reads a sale with its store and mode, whoever asks.
	SaleByID(ctx context.Context, id string) (sale domain.Sale, storeID, mode string, err error)
	DueSales(ctx context.Context, now time.Time, limit int) ([]sqlite.SaleRef, error)
	LicenceByKey(ctx context.Context, storeID, mode, key string) (sqlite.LicenceRow, error)
	LicencesOfSale(ctx context.Context, saleID string) ([]sqlite.LicenceRow, error)
	// WebhookEndpoint reads one webhook endpoint of a store and mode (without its secrets).
	WebhookEndpoint(ctx context.Context, storeID, mode, id string) (sqlite.WebhookEndpointRow, error)
	ListWebhookEndpoints(ctx context.Context, f sqlite.WebhookEndpointFilter) ([]sqlite.WebhookEndpointRow, bool, error)
	HasWebhookEndpoints(ctx context.Context, f sqlite.WebhookEndpointFilter) (bool, error)
	WebhookDelivery(ctx context.Context, storeID, mode, id string) (sqlite.WebhookDeliveryRow, error)
	ListWebhookDeliveries(ctx context.Context, f sqlite.WebhookDeliveryFilter) ([]sqlite.WebhookDeliveryRow, bool, error)
	HasWebhookDeliveries(ctx context.Context, f sqlite.WebhookDeliveryFilter) (bool, error)
}

// Projection reports how far the read model has folded the log.
type Projection interface {
	Reads() ReadStore
	WaitFor(ctx context.Context, seq uint64) error
	// Applied is the last stream sequence the read model has applied.
	Applied() uint64
	Lag() uint64
	Err() error
}

// Config holds the API's collaborators and limits.
type Config struct {
	Log        *slog.Logger
	Events     EventStore
	Projection Projection
	// DownloadKey signs download links; every replica must share it.
	DownloadKey []byte
	// Keys destroys a data subject's key when a customer is erased.
	Keys Eraser
	// Photos keeps customer photos; nil disables the photo endpoints.
	Photos PhotoStore
	// ClaimKey keys the hash that names an email's claim subject; every replica must share it.
	ClaimKey []byte
	// CursorKey seals the customer list's cursors (customerCursors); every replica must share it, or a
	// cursor from one is refused by another. Empty: a random key, for this process only.
	CursorKey []byte
	// DownloadTTL is how long a download link minted again for an expired one stays valid.
	DownloadTTL time.Duration
	// PublicURL is the base of the links the API hands out (download links).
	PublicURL string
	// GatewaySecrets holds each enabled gateway's webhook signing secret.
	GatewaySecrets map[string]string
	// AllowPrivateWebhooks lets webhook endpoints name loopback, private and link-local addresses
	// (LEDGER_WEBHOOK_ALLOW_PRIVATE: for development and tests).
	AllowPrivateWebhooks bool
	// WakeWebhooks, if set, tells the webhook dispatcher that an attempt was asked for now (a manual
	// retry), so it looks for it at once rather than at its next pass.
	WakeWebhooks func()
	// AdminTokenHash is the hex SHA-256 of the admin token.
	AdminTokenHash string
	// Registry collects the API's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// ReadyMaxLag is the projection lag (in events) above which /readyz answers 503; 0 means ready only
	// when fully caught up.
	ReadyMaxLag uint64
	// ReadyChecks are further conditions of readiness besides the projection's (the payment processor is
	// consuming, ...): /readyz answers 503 with the first failing check's name and error.
	ReadyChecks []ReadyCheck
	// WriteHealth, if set, says why writes to the event log fail right now (nil while they work);
	// /readyz answers 503 while it is not nil.
	WriteHealth func() error
	// RequestTimeout bounds each request's work.
	RequestTimeout time.Duration
	// WebhookBodyTimeout, if set, is how long a gateway webhook's body may take to arrive after its
	// headers (shorter than the server's read timeout: gateways send small bodies at once).
	WebhookBodyTimeout time.Duration
	// PositionWait bounds how long a read waits for Ledger-Min-Position.
	PositionWait time.Duration
	// RateLimits are the request rates per key and per client address; zero values turn them off.
	RateLimits RateLimits
	// Sales keeps the sales this process's commands left, as hints for the next decision on each; the
	// payment processor shares it (payments.Config.Sales), so a payment for a sale checked out here
	// finds it without a read. Nil: a cache of this API's own, of 16,384 sales.
	Sales *salecache.Cache
	Now   func() time.Time
}

// ReadyCheck is one named condition of readiness; Err is nil while it holds.
type ReadyCheck struct {
	Name string
	Err  func() error
}

// API serves the HTTP contract.
type API struct {
	cfg     Config
	log     *slog.Logger
	metrics *httpMetrics
	rates   *rateLimiter
	// deliveries serialises concurrent copies of one webhook delivery.
	deliveries keyed.Mutex
	// endpointCreates serialises this replica's webhook endpoint creates per store and mode.
	endpointCreates keyed.Mutex
	// sales serialises this replica's commands on one sale (changeSale), and recent keeps each sale as
	// this replica's last command left it, so the next command on it does not decide on a read store
	// that has not folded that one yet (and conflict, and decide again from the log).
	sales  keyed.Mutex
	recent *salecache.Cache
	// cursors seals and opens the customer list's cursors.
	cursors *customerCursors
	// endpointCursors seals the webhook endpoint list's cursors, with keys of their own.
	endpointCursors *customerCursors
	// deliveryCursors seals the webhook delivery log's cursors.
	deliveryCursors *customerCursors
	// unknownKeyWaits holds a token per request with a key not known here waiting for its position.
	unknownKeyWaits chan struct{}
}

// New builds the API. Zero limits get defaults.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.PositionWait <= 0 {
		cfg.PositionWait = 5 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Sales == nil {
		cfg.Sales = salecache.New(16384)
	}
	return &API{cfg: cfg, log: cfg.Log, metrics: newHTTPMetrics(cfg.Registry), rates: newRateLimiter(cfg.RateLimits, cfg.Registry),
		cursors: newCustomerCursors(cfg.CursorKey, "customer"), endpointCursors: newCustomerCursors(cfg.CursorKey, "webhook endpoint"),
		deliveryCursors: newCustomerCursors(cfg.CursorKey, "webhook delivery"), unknownKeyWaits: make(chan struct{}, maxUnknownKeyWaits), recent: cfg.Sales}
}

// Handler is the complete HTTP handler with its middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, a.instrument(pattern, a.limit(a.wellFormed(pattern, h), MaxBodyBytes)))
	}
	// Probes are not rate-limited: a load balancer probes every replica from one address.
	handle("GET /healthz", http.HandlerFunc(a.healthz))
	handle("GET /readyz", http.HandlerFunc(a.readyz))
	handle("GET /metrics", a.anonymous(promhttp.HandlerFor(a.cfg.Registry, promhttp.HandlerOpts{})))
	handle("GET /openapi.json", a.anonymous(http.HandlerFunc(serveOpenAPI)))

	handle("POST /v1/admin/stores", a.admin(a.createStore))
	handle("GET /v1/store", a.store(a.getStore))
	handle("POST /v1/checkouts", a.store(a.checkout))
	handle("GET /v1/sales", a.store(a.listSales))
	handle("GET /v1/sales/{sale_id}", a.store(a.getSale))
	handle("GET /v1/sales/{sale_id}/events", a.store(a.saleEvents))
	handle("POST /v1/sales/{sale_id}/rating", a.store(a.rateSale))
	handle("POST /v1/sales/{sale_id}/refunds", a.store(a.createRefund))
	// Test keys only: a live key is answered 404, as if these routes did not exist.
	handle("POST /v1/test_helpers/sales/{sale_id}/pay", a.store(a.testHelper(testPay)))
	handle("POST /v1/test_helpers/sales/{sale_id}/fail", a.store(a.testHelper(testFail)))
	handle("POST /v1/test_helpers/sales/{sale_id}/refund", a.store(a.testHelper(testRefund)))
	// Gateways carry no key and send from few addresses: no rate limit.
	handle("POST /v1/webhooks/{gateway}", http.HandlerFunc(a.webhook))
	handle("GET /v1/downloads/{download_token}", a.anonymous(http.HandlerFunc(a.download)))
	handle("GET /v1/licences/{licence_key}", a.store(a.getLicence))
	handle("POST /v1/licences/{licence_key}/activate", a.store(a.activateLicence()))
	handle("POST /v1/licences/{licence_key}/deactivate", a.store(a.deactivateLicence()))
	handle("POST /v1/licences/{licence_key}/revoke", a.store(a.revokeLicence()))

	handle("POST /v1/customers", a.store(a.createCustomer))
	handle("GET /v1/customers", a.store(a.listCustomers))
	handle("GET /v1/customers/{customer_id}", a.store(a.getCustomer))
	handle("PATCH /v1/customers/{customer_id}", a.store(a.updateCustomer))
	handle("DELETE /v1/customers/{customer_id}", a.store(a.deleteCustomer))
	handle("POST /v1/customers/{customer_id}/addresses", a.store(a.addAddress))
	handle("GET /v1/customers/{customer_id}/addresses", a.store(a.listAddresses))
	handle("DELETE /v1/customers/{customer_id}/addresses/{address_id}", a.store(a.deleteAddress))
	handle("POST /v1/customers/{customer_id}/addresses/{address_id}/default", a.store(a.setDefaultAddress))
	// A photo may be up to 5 MB, with room for a multipart envelope around it.
	const photo = "PUT /v1/customers/{customer_id}/photo"
	mux.Handle(photo, a.instrument(photo, a.limit(a.wellFormed(photo, a.store(a.putPhoto)), MaxPhotoBytes+64<<10)))
	handle("GET /v1/avatars/{avatar_token}", a.anonymous(http.HandlerFunc(a.avatar)))

	handle("POST /v1/webhook_endpoints", a.store(a.createWebhookEndpoint))
	handle("GET /v1/webhook_endpoints", a.store(a.listWebhookEndpoints))
	handle("GET /v1/webhook_endpoints/{webhook_endpoint_id}", a.store(a.getWebhookEndpoint))
	handle("PATCH /v1/webhook_endpoints/{webhook_endpoint_id}", a.store(a.updateWebhookEndpoint))
	handle("DELETE /v1/webhook_endpoints/{webhook_endpoint_id}", a.store(a.deleteWebhookEndpoint))
	handle("POST /v1/webhook_endpoints/{webhook_endpoint_id}/rotate_secret", a.store(a.rotateWebhookSecret))
	handle("GET /v1/webhook_endpoints/{webhook_endpoint_id}/deliveries", a.store(a.listWebhookDeliveries))
	handle("POST /v1/webhook_deliveries/{webhook_delivery_id}/retry", a.store(a.retryWebhookDelivery))

	handle("/", a.anonymous(a.unrouted(mux)))
	// A trailing slash names the same resource (4Geeks-style URLs: /v1/customers/?page=2).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimRight(p, "/")
			r2.URL.RawPath = ""
			mux.ServeHTTP(w, r2)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// implementedMethods are the methods some route serves, in the order Allow lists them. A request with
// any other method is 501 whatever its path; metrics label such methods "other".
var implementedMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut}

// unrouted answers what no route serves: 501 for a method no route implements, 405 with Allow for a known
// path asked with another method, 404 otherwise. The methods a path allows are found by asking the mux
// itself, so Allow can never disagree with the routes.
func (a *API) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(implementedMethods, r.Method) {
			writeError(w, r, a.log, errMethodNotImplemented)
			return
		}
		var allow []string
		for _, m := range implementedMethods {
			probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, a.log, errMethodNotAllowed)
			return
		}
		writeError(w, r, a.log, errNotFoundRoute)
	})
}

// methodLabel is the method as metrics and logs name it: one of implementedMethods, or "other", so that
// no client can add a label value (or a log field of any size) by inventing methods.
func methodLabel(m string) string {
	if slices.Contains(implementedMethods, m) {
		return m
	}
	return "other"
}

// limit caps the body and the time of every request.
func (a *API) limit(next http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

var timeZero time.Time

// positioned answers a write: the event's stream sequence in Ledger-Position, then the body.
func positioned(w http.ResponseWriter, seq uint64, status int, body any) {
	w.Header().Set("Ledger-Position", strconv.FormatUint(seq, 10))
	writeJSON(w, status, body)
}

// awaitPosition honours Ledger-Min-Position: it waits, bounded, until the projection applied it.
func (a *API) awaitPosition(r *http.Request) error {
	h := r.Header.Get("Ledger-Min-Position")
	if h == "" {
		return nil
	}
	seq, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return badRequest("The Ledger-Min-Position header must be a stream sequence (a non-negative integer).")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PositionWait)
	defer cancel()
	if err := a.cfg.Projection.WaitFor(ctx, seq); err != nil {
		return errLagging
	}
	return nil
}
