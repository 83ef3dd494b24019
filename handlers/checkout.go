package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/salecache"
)

type checkoutRequest struct {
	Product  *productIn          `json:"product"`
	Customer *customerIn         `json:"customer"`
	Discount *discountIn         `json:"discount"`
	Campaign *events.Campaign    `json:"campaign"`
	Channel  string              `json:"channel"`
	Shipping *events.Shipping    `json:"shipping"`
	Context  *events.SaleContext `json:"context"`
	Metadata json.RawMessage     `json:"metadata"`
}

type productIn struct {
	ID           string               `json:"id"`
	Name         string               `json:"name"`
	Type         string               `json:"type"`
	Price        *priceIn             `json:"price"`
	Files        []events.ProductFile `json:"files"`
	Licence      *events.LicenceTerms `json:"licence"`
	Instructions string               `json:"instructions"`
}

type priceIn struct {
	Amount   json.RawMessage `json:"amount"`
	Currency string          `json:"currency"`
}

// customerIn is the checkout's buyer as a client sends it; the sale records it as an events.CustomerRef,
// whose canonical and typed emails the ledger fills in.
type customerIn struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Phone     string `json:"phone"`
}

type discountIn struct {
	Code  string          `json:"code"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// command turns the request into the domain command, collecting the problems only the wire format can
// have (missing objects, amounts that are not integers).
func (req checkoutRequest) command() (domain.Checkout, *domain.ValidationError) {
	var v domain.ValidationError
	var c domain.Checkout
	if req.Product == nil {
		v.Add("product", "The product field is required.")
	} else {
		p := req.Product
		c.Product = events.Product{ID: p.ID, Name: p.Name, Type: p.Type, Files: p.Files, Licence: p.Licence, Instructions: p.Instructions}
		if p.Price == nil {
			v.Add("product.price", "The product price is required.")
		} else {
			c.Product.Price.Currency = p.Price.Currency
			if n, ok := integerLiteral(p.Price.Amount); !ok {
				msg := "The price amount must be an integer number of minor units (e.g. 9900 for $99.00)."
				if s := strings.TrimPrefix(strings.TrimSpace(string(p.Price.Amount)), "-"); s != "" && strings.Trim(s, "0123456789") == "" {
					msg = fmt.Sprintf("The price amount may be at most %d minor units.", domain.MaxAmount) // an integer beyond int64
				}
				v.Add("product.price.amount", msg)
			} else {
				c.Product.Price.Amount = n
			}
		}
	}
	if req.Customer == nil {
		v.Add("customer", "The customer field is required.")
	} else {
		b := req.Customer
		c.Customer = events.CustomerRef{ID: b.ID, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, Phone: b.Phone}
	}
	if d := req.Discount; d != nil {
		val, _ := percentText(d.Value)
		c.Discount = &events.Discount{Code: d.Code, Type: d.Type, Value: val}
	}
	c.Campaign, c.Channel, c.Shipping, c.Context, c.Metadata = req.Campaign, req.Channel, req.Shipping, req.Context, req.Metadata
	return c, &v
}

// integerLiteral accepts a JSON integer literal (no fraction, no exponent) that fits int64.
func integerLiteral(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// checkout is POST /v1/checkouts: it starts a sale in awaiting_payment and registers the customer on
// their first purchase. Everything it writes is one atomic batch: the idempotency key (if any), the
// customer's email claim and registration (if new), and the sale. Concurrent first purchases by one
// email resolve to one customer; the same Idempotency-Key and body answer the same sale, another body
// 409.
func (a *API) checkout(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	var req checkoutRequest
	raw, err := decodeBody(r, &req)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	cmd, v := req.command()
	idem, err := storeIdempotency(r, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	var (
		sale     domain.Sale
		seq      uint64
		replayed bool
	)
	// A conflict is a concurrent first purchase by the same email or the same key in flight: decide again
	// on what won.
	err = a.idempotent(r.Context(), idem, 3, func(prev *events.IdempotencyKeyRecorded) (err error) {
		if prev != nil {
			replayed = true
			sale, seq, err = a.loadSale(r.Context(), sc, prev.ResourceID)
			return err
		}
		sale, seq, err = a.startSale(r.Context(), sc, cmd, v, idem, requestID(r.Context()))
		return err
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if replayed {
		markReplayed(w)
	}
	a.awaitProjection(r.Context(), seq)
	positioned(w, seq, http.StatusCreated, data{saleObject(sale, sc.Mode)})
}

// startSale makes one attempt at a new sale, with the Idempotency-Key's record (if any) in its batch.
// It returns the sale and the stream position to wait for.
func (a *API) startSale(ctx context.Context, sc Scope, cmd domain.Checkout, v *domain.ValidationError, idem *idempotency, corr string) (domain.Sale, uint64, error) {
	store, err := a.cfg.Projection.Reads().Store(ctx, sc.StoreID)
	if err != nil {
		return domain.Sale{}, 0, err
	}
	now := a.cfg.Now().UTC()
	saleID := domain.NewID(domain.PrefixSale)
	started, err := cmd.Decide(saleID, "", domain.StoreTerms{
		Store:               events.StoreRef{ID: store.ID, Name: store.Name, Slug: store.Slug},
		ServiceFeePercent:   store.ServiceFeePercent,
		SettlementDelayDays: store.SettlementDelayDays,
		AbandonAfter:        time.Duration(store.AbandonAfterMinutes) * time.Minute,
	}, domain.NewID, now)
	var dv *domain.ValidationError
	if errors.As(err, &dv) {
		for f, msgs := range dv.Fields {
			if len(v.Fields[f]) == 0 { // the wire-level message is the more precise one
				for _, m := range msgs {
					v.Add(f, m)
				}
			}
		}
	} else if err != nil {
		return domain.Sale{}, 0, err
	}
	if err := v.Err(); err != nil {
		return domain.Sale{}, 0, err
	}
	envelope := func(agg events.Aggregate, p events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: corr, Payload: p}
	}
	writes := idem.writes(envelope, saleID)
	claimAgg, customerID, claimSeq, err := a.emailClaim(ctx, sc, started.Customer.Email)
	if err != nil {
		return domain.Sale{}, 0, err
	}
	register := func() {
		writes = append(writes, events.Write{Event: envelope(events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateCustomer, ID: customerID},
			events.CustomerRegistered{CustomerID: customerID, Source: "checkout", CustomerData: registration(started.Customer)}), Expect: 0})
	}
	switch {
	case customerID == "":
		customerID = domain.NewID(domain.PrefixCustomer)
		writes = append(writes, events.Write{Event: envelope(claimAgg, events.EmailClaimed{CustomerID: customerID}), Expect: claimSeq})
		register()
	default:
		// A claim whose registration never followed (see createCustomer) is adopted here.
		exists, err := a.customerExists(ctx, sc, customerID)
		if err != nil {
			return domain.Sale{}, 0, err
		}
		if !exists {
			register()
		}
	}
	started.Customer.ID, started.CustomerID = customerID, customerID
	saleEv := envelope(events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: saleID}, started)
	writes = append(writes, events.Write{Event: saleEv, Expect: 0})
	seq, err := a.cfg.Events.AppendWrites(ctx, writes...)
	if err != nil {
		return domain.Sale{}, 0, err
	}
	saleEv.Sequence = seq
	sale := domain.FoldSale([]events.Envelope{saleEv})
	// The payment's delivery decides on this copy if it reaches this process (the sale event is the
	// batch's last, so seq is its sequence).
	a.recent.Put(salecache.Entry{Sale: sale, StoreID: sc.StoreID, Mode: sc.Mode})
	return sale, seq, nil
}

// registration is what a checkout tells about a new customer, under the customer API's rules: the
// sale keeps the buyer as given, the customer keeps what validates (a phone that does not parse, or a
// name over the limit, is left out rather than failing the purchase).
func registration(c events.CustomerRef) events.CustomerData {
	email := c.Email
	if c.EmailAsTyped != "" {
		email = c.EmailAsTyped
	}
	in := domain.CustomerInput{Email: &email, FirstName: &c.FirstName, LastName: &c.LastName, Phone: &c.Phone}
	if f, err := (domain.CustomerFields{}).Apply(in, true); err == nil {
		return events.CustomerData(f)
	}
	// Something does not validate: keep the email (the checkout validated it) and each field that does.
	f := domain.CustomerFields{Email: c.Email, EmailAsTyped: c.EmailAsTyped}
	for _, field := range []domain.CustomerInput{{FirstName: &c.FirstName}, {LastName: &c.LastName}, {Phone: &c.Phone}} {
		if next, err := f.Apply(field, false); err == nil {
			f = next
		}
	}
	return events.CustomerData(f)
}

// emailClaim reads, from the log (exact even before the projection caught up), which customer of this
// store and mode holds an email: "" if none does (never claimed, or released by an erasure). A new
// claim is appended with last as its expected sequence, so concurrent claims of one email have one
// winner.
func (a *API) emailClaim(ctx context.Context, sc Scope, email string) (agg events.Aggregate, holder string, last uint64, err error) {
	agg = events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateEmail, ID: a.claimID(sc, email)}
	claim, found, err := a.cfg.Events.Last(ctx, agg.Filter())
	if err != nil || !found {
		return agg, "", 0, err
	}
	if c, ok := claim.Payload.(events.EmailClaimed); ok {
		return agg, c.CustomerID, claim.Sequence, nil
	}
	return agg, "", claim.Sequence, nil
}

// claimID is the subject token of an email's claim: a keyed hash (HMAC-SHA256 with the shared claim
// key), so the log holds no email, nor a hash anyone without the key could test guesses against.
func (a *API) claimID(sc Scope, email string) string {
	mac := hmac.New(sha256.New, a.cfg.ClaimKey)
	mac.Write([]byte(sc.Mode + "|" + sc.StoreID + "|" + email))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// loadSale reads a sale from its own subject in the log, so it is exact even while the projection lags.
func (a *API) loadSale(ctx context.Context, sc Scope, id string) (domain.Sale, uint64, error) {
	evs, last, err := a.cfg.Events.Load(ctx, events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateSale, ID: id})
	if err != nil {
		return domain.Sale{}, 0, err
	}
	if len(evs) == 0 {
		return domain.Sale{}, 0, domain.ErrNotFound
	}
	return domain.FoldSale(evs), last, nil
}

// awaitProjection waits, bounded, until the local read model has applied seq, so that a read right
// after a write sees it. The write is durable either way; a timeout only means a later read may lag.
func (a *API) awaitProjection(ctx context.Context, seq uint64) {
	wctx, cancel := context.WithTimeout(ctx, a.cfg.PositionWait)
	defer cancel()
	if err := a.cfg.Projection.WaitFor(wctx, seq); err != nil {
		a.log.WarnContext(ctx, "write not yet projected; reads may lag", "position", seq)
	}
}
