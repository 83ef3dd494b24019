package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

var (
	errEmailTaken       = &requestError{http.StatusConflict, "email_taken", "A customer with this email already exists in this store."}
	errTooManyAddresses = &requestError{http.StatusConflict, "too_many_addresses", "Customer already has 3 addresses registered."}
	errCustomerNotFound = &requestError{http.StatusNotFound, "not_found", "The customer could not be found, please check the id."}
)

// customerJSON is the customer object: Chariow's shape (name, first_name, last_name, email, avatar_url,
// phone with its country, store, created_at, updated_at) plus the fields the customer API accepts, the
// addresses, livemode/test, and what a support agent needs at a glance.
type customerJSON struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Name      *string         `json:"name"`
	FirstName *string         `json:"first_name"`
	LastName  *string         `json:"last_name"`
	Email     string          `json:"email"`
	AvatarURL *string         `json:"avatar_url"`
	Phone     *phoneJSON      `json:"phone"`
	Country   *string         `json:"country"`
	Address   *string         `json:"address"`
	City      *string         `json:"city"`
	Zip       *string         `json:"zip"`
	State     *string         `json:"state"`
	IP        *string         `json:"ip"`
	Metadata  json.RawMessage `json:"metadata"`
	Addresses []addressJSON   `json:"addresses"`
	Store     storeRefJSON    `json:"store"`
	Stats     statsJSON       `json:"stats"`
	Livemode  bool            `json:"livemode"`
	Test      bool            `json:"test"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

type phoneJSON struct {
	Number  string              `json:"number"`
	E164    string              `json:"e164"`
	Country *domain.CountryInfo `json:"country"`
}

type addressJSON struct {
	ID        string  `json:"id"`
	Line1     string  `json:"line1"`
	Line2     *string `json:"line2"`
	City      string  `json:"city"`
	Zip       *string `json:"zip"`
	State     *string `json:"state"`
	Country   string  `json:"country"`
	Default   bool    `json:"default"`
	CreatedAt string  `json:"created_at"`
}

type storeRefJSON struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	LogoURL *string `json:"logo_url"`
	URL     *string `json:"url"`
}

type statsJSON struct {
	CompletedSales  int            `json:"completed_sales"`
	TotalSpent      []domain.Total `json:"total_spent"`
	FirstPurchaseAt *string        `json:"first_purchase_at"`
	LastPurchaseAt  *string        `json:"last_purchase_at"`
}

func (a *API) customerObject(ctx context.Context, row sqlite.CustomerRow) (customerJSON, error) {
	c := row.Customer
	out := customerJSON{
		ID: c.ID, Object: "customer", Name: optString(c.Name()), FirstName: optString(c.Fields.FirstName), LastName: optString(c.Fields.LastName),
		Email: c.Fields.DisplayEmail(), Country: optString(c.Fields.Country), Address: optString(c.Fields.Address), City: optString(c.Fields.City),
		Zip: optString(c.Fields.Zip), State: optString(c.Fields.State), IP: optString(c.Fields.IP), Metadata: c.Fields.Metadata,
		Addresses: []addressJSON{}, Livemode: row.Mode == events.ModeLive, Test: row.Mode == events.ModeTest,
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt),
		Stats: statsJSON{CompletedSales: row.CompletedSales, TotalSpent: []domain.Total{},
			FirstPurchaseAt: optTime(row.FirstPurchaseAt), LastPurchaseAt: optTime(row.LastPurchaseAt)},
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage("null")
	}
	if c.Fields.Phone != "" {
		p := &phoneJSON{Number: c.Fields.Phone, E164: c.Fields.Phone}
		if info, ok := domain.Phone(c.Fields.Phone); ok {
			p.Number = info.Number
			if info.Country.Code != "" {
				p.Country = &info.Country
			}
		}
		out.Phone = p
	}
	for _, ad := range c.Addresses {
		out.Addresses = append(out.Addresses, addressObject(ad))
	}
	if c.Photo != nil {
		u := a.avatarURL(row.StoreID, row.Mode, c.ID, c.Photo.Object)
		out.AvatarURL = &u
	}
	currencies := make([]string, 0, len(row.Spent))
	for cur := range row.Spent {
		currencies = append(currencies, cur)
	}
	sort.Strings(currencies)
	for _, cur := range currencies {
		out.Stats.TotalSpent = append(out.Stats.TotalSpent, row.Spent[cur])
	}
	st, err := a.cfg.Projection.Reads().Store(ctx, row.StoreID)
	if err != nil {
		return out, err
	}
	out.Store = storeRefJSON{ID: st.ID, Name: st.Name}
	return out, nil
}

func addressObject(ad domain.Address) addressJSON {
	return addressJSON{ID: ad.ID, Line1: ad.Line1, Line2: optString(ad.Line2), City: ad.City, Zip: optString(ad.Zip),
		State: optString(ad.State), Country: ad.Country, Default: ad.Default, CreatedAt: rfc3339(ad.CreatedAt)}
}

// createCustomer is POST /v1/customers. The email is claimed (expected sequence on the claim's subject)
// and the customer registered, so of concurrent creates with one email exactly one succeeds; the others
// are 409. With an Idempotency-Key the key's record, the claim and the registration are one atomic batch,
// and a replay answers the customer as it is now.
func (a *API) createCustomer(w http.ResponseWriter, r *http.Request) {
	var in domain.CustomerInput
	raw, err := decodeBody(r, &in)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	idem, err := storeIdempotency(r, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	var (
		id       string
		seq      uint64
		replayed bool
	)
	err = a.idempotent(ctx, idem, 3, func(prev *events.IdempotencyKeyRecorded) (err error) {
		if prev != nil {
			replayed, id = true, prev.ResourceID
			_, seq, err = a.cfg.Events.Load(ctx, customerAgg(sc, id))
			return err
		}
		fields, err := domain.CustomerFields{}.Apply(in, true)
		if err != nil {
			return err
		}
		id, seq, err = a.registerCustomer(ctx, sc, fields, idem)
		return err
	})
	if errors.Is(err, domain.ErrConflict) {
		err = errEmailTaken
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if replayed {
		markReplayed(w)
	}
	a.respondCustomer(w, r, sc, id, seq, http.StatusCreated)
}

// registerCustomer claims fields.Email and registers a new customer with them. Without an
// Idempotency-Key the claim goes first, alone, then the registration: two single appends cost less than
// one atomic batch (which nats-server stages on disk). A claim whose registration never followed (a
// crash in between) names a customer that does not exist; the next create or checkout of the email
// adopts it. With a key, the key's record must commit with the registration, so all three are one batch,
// and a conflict (the same key or email in flight) is domain.ErrConflict, for idempotent to decide again.
func (a *API) registerCustomer(ctx context.Context, sc Scope, fields domain.CustomerFields, idem *idempotency) (string, uint64, error) {
	claimAgg, holder, claimSeq, err := a.emailClaim(ctx, sc, fields.Email)
	if err != nil {
		return "", 0, err
	}
	now := a.cfg.Now().UTC()
	envelope := func(agg events.Aggregate, p events.Payload) events.Envelope {
		return events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: requestID(ctx), Payload: p}
	}
	id := holder
	var writes []events.Write
	switch {
	case holder == "":
		id = domain.NewID(domain.PrefixCustomer)
		claim := envelope(claimAgg, events.EmailClaimed{CustomerID: id})
		if idem != nil {
			writes = append(writes, events.Write{Event: claim, Expect: claimSeq})
			break
		}
		if _, err := a.cfg.Events.Append(ctx, claimSeq, claim); err != nil {
			if errors.Is(err, domain.ErrConflict) {
				err = errEmailTaken // claimed meanwhile
			}
			return "", 0, err
		}
	default:
		if registered, err := a.customerExists(ctx, sc, holder); err != nil || registered {
			if err == nil {
				err = errEmailTaken
			}
			return "", 0, err
		}
	}
	writes = append(writes, idem.writes(envelope, id)...)
	writes = append(writes, events.Write{Event: envelope(customerAgg(sc, id), events.CustomerRegistered{CustomerID: id, CustomerData: events.CustomerData(fields), Source: "api"}), Expect: 0})
	seq, err := a.cfg.Events.AppendWrites(ctx, writes...)
	if errors.Is(err, domain.ErrConflict) && idem == nil {
		err = errEmailTaken // a concurrent create adopted the same dangling claim
	}
	return id, seq, err
}

// customerExists tells, from the log, whether a customer was ever registered.
func (a *API) customerExists(ctx context.Context, sc Scope, id string) (bool, error) {
	_, found, err := a.cfg.Events.Last(ctx, customerAgg(sc, id).Filter())
	return found, err
}

func customerAgg(sc Scope, id string) events.Aggregate {
	return events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateCustomer, ID: id}
}

// readCustomer reads a customer of the scope from the read model; one it does not hold is 404.
func (a *API) readCustomer(ctx context.Context, sc Scope, id string) (sqlite.CustomerRow, error) {
	row, err := a.cfg.Projection.Reads().Customer(ctx, sc.StoreID, sc.Mode, id)
	if errors.Is(err, domain.ErrNotFound) {
		err = errCustomerNotFound
	}
	return row, err
}

// respondCustomer answers with the customer object, after waiting (bounded) until the read model has
// applied seq when a write came first (seq > 0).
func (a *API) respondCustomer(w http.ResponseWriter, r *http.Request, sc Scope, id string, seq uint64, status int) {
	if seq > 0 {
		a.awaitProjection(r.Context(), seq)
		w.Header().Set("Ledger-Position", itoa(seq))
	}
	row, err := a.readCustomer(r.Context(), sc, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	obj, err := a.customerObject(r.Context(), row)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, status, data{obj})
}

// getCustomer is GET /v1/customers/{id}.
func (a *API) getCustomer(w http.ResponseWriter, r *http.Request) {
	a.respondCustomer(w, r, scopeFrom(r.Context()), r.PathValue("customer_id"), 0, http.StatusOK)
}

type customerPagination struct {
	NextCursor *string `json:"next_cursor"`
	PrevCursor *string `json:"prev_cursor"`
	HasMore    bool    `json:"has_more"`
	Page       *int    `json:"page,omitempty"`
	PageSize   *int    `json:"page_size,omitempty"`
}

// maxEmailParam bounds the email filter as the email field is bounded (RFC 5321's 254 characters).
const maxEmailParam = 254

// listCustomers is GET /v1/customers: newest first; per_page and cursor, or page and page_size; search
// on name, email and phone; email, an exact match on the canonical form (domain.NormalizeEmail), so
// that it finds the customer however the address is typed; start_date and end_date inclusive.
func (a *API) listCustomers(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	q := r.URL.Query()
	f := sqlite.CustomerFilter{StoreID: sc.StoreID, Mode: sc.Mode, Limit: 15}
	var pg customerPagination
	pageMode := q.Has("page") || q.Has("page_size")
	cur, err := a.parseCustomerPage(sc, q, &f, &pg, pageMode)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if q.Has("search") {
		if strings.TrimSpace(q.Get("search")) == "" {
			writeError(w, r, a.log, badRequest("The search query cannot be empty."))
			return
		}
		if utf8.RuneCountInString(q.Get("search")) > 100 {
			writeError(w, r, a.log, badRequest("The search parameter must be at most 100 characters."))
			return
		}
		f.Search = q.Get("search")
	}
	if q.Has("email") {
		e := domain.NormalizeEmail(q.Get("email"))
		switch {
		case e == "":
			writeError(w, r, a.log, badRequest("The email parameter cannot be empty."))
			return
		case len(e) > maxEmailParam || !domain.ValidEmail(e):
			writeError(w, r, a.log, badRequest("The email parameter must be an email address, e.g. customer@example.com."))
			return
		}
		f.Email = e
	}
	if f.From, f.To, err = parseDateRange(q); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	reads := a.cfg.Projection.Reads()
	rows, more, err := reads.ListCustomers(r.Context(), f)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := make([]customerJSON, len(rows))
	for i, row := range rows {
		if out[i], err = a.customerObject(r.Context(), row); err != nil {
			writeError(w, r, a.log, err)
			return
		}
	}
	if pageMode {
		pg.HasMore = more
	} else {
		seqs := make([]int64, len(rows))
		for i, row := range rows {
			seqs[i] = row.Seq
		}
		l, err := sqlite.ExactOlder(cur, sqlite.PageLinks(cur, seqs, more), func(c sqlite.Cursor[int64]) (bool, error) {
			return reads.HasCustomers(r.Context(), f.At(&c))
		})
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		pg.NextCursor, pg.PrevCursor, pg.HasMore = a.cursors.seal(sc, l.Next), a.cursors.seal(sc, l.Prev), l.HasMore
	}
	writeJSON(w, http.StatusOK, struct {
		Data       []customerJSON     `json:"data"`
		Pagination customerPagination `json:"pagination"`
	}{out, pg})
}

// parseCustomerPage sets f's paging from the request: page and page_size, or per_page and a cursor,
// which it returns (nil: the top of the list).
func (a *API) parseCustomerPage(sc Scope, q url.Values, f *sqlite.CustomerFilter, pg *customerPagination, pageMode bool) (*sqlite.Cursor[int64], error) {
	if pageMode {
		if q.Has("cursor") || q.Has("per_page") {
			return nil, badRequest("Use per_page and cursor, or page and page_size, not both.")
		}
		page, size := 1, 15
		if s := q.Get("page"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 100000 {
				return nil, badRequest("The page parameter must be an integer from 1.")
			}
			page = n
		}
		if s := q.Get("page_size"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 100 {
				return nil, badRequest("The page_size parameter must be an integer from 1 to 100.")
			}
			size = n
		}
		f.Limit, f.Offset = size, (page-1)*size
		pg.Page, pg.PageSize = &page, &size
		return nil, nil
	}
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return nil, badRequest("The per_page parameter must be an integer from 1 to 100.")
		}
		f.Limit = n
	}
	if !q.Has("cursor") {
		return nil, nil
	}
	c, err := a.cursors.open(sc, q.Get("cursor"))
	if err != nil {
		return nil, err
	}
	*f = f.At(&c)
	return &c, nil
}

// changeCustomer loads a customer of the caller's scope (read model first, the log on a retry), decides,
// and appends with the customer's last sequence as expectation, deciding again on a concurrent change.
// extra writes (email claims) are appended in the same atomic batch.
func (a *API) changeCustomer(ctx context.Context, id string, decide func(domain.Customer) ([]events.Write, error)) (uint64, error) {
	sc := scopeFrom(ctx)
	agg := customerAgg(sc, id)
	for attempt := 0; ; attempt++ {
		c, err := a.currentCustomer(ctx, sc, id, attempt > 0)
		if err != nil {
			return 0, err
		}
		writes, err := decide(c)
		if err != nil || len(writes) == 0 {
			return c.Version, err
		}
		now := a.cfg.Now().UTC()
		for i := range writes {
			if writes[i].Event.Aggregate == (events.Aggregate{}) {
				writes[i].Event.Aggregate = agg
			}
			writes[i].Event.ID, writes[i].Event.Time, writes[i].Event.CorrelationID = domain.NewID(domain.PrefixEvent), now, requestID(ctx)
		}
		seq, err := a.cfg.Events.AppendWrites(ctx, writes...)
		if errors.Is(err, domain.ErrConflict) && attempt < 5 {
			continue
		}
		return seq, err
	}
}

// own is a write to the customer itself, conditional on the version the decision was made on.
func own(c domain.Customer, p events.Payload) events.Write {
	return events.Write{Event: events.Envelope{Payload: p}, Expect: c.Version}
}

func (a *API) currentCustomer(ctx context.Context, sc Scope, id string, fromLog bool) (domain.Customer, error) {
	if !fromLog {
		row, err := a.cfg.Projection.Reads().Customer(ctx, sc.StoreID, sc.Mode, id)
		if err == nil {
			return row.Customer, nil
		}
		if !errors.Is(err, domain.ErrNotFound) {
			return domain.Customer{}, err
		}
	}
	evs, _, err := a.cfg.Events.Load(ctx, customerAgg(sc, id))
	if err != nil {
		return domain.Customer{}, err
	}
	c := domain.FoldCustomer(evs)
	if c.ID == "" || c.Erased {
		return domain.Customer{}, errCustomerNotFound
	}
	return c, nil
}

// updateCustomer is PATCH /v1/customers/{id}. A new email is claimed and the old one released in the
// same atomic append as the change.
func (a *API) updateCustomer(w http.ResponseWriter, r *http.Request) {
	var in domain.CustomerInput
	if _, err := decodeBody(r, &in); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id := r.PathValue("customer_id")
	seq, err := a.changeCustomer(ctx, id, func(c domain.Customer) ([]events.Write, error) {
		p, next, err := c.Update(in)
		if err != nil || p == nil {
			return nil, err
		}
		writes := []events.Write{own(c, p)}
		if next.Email != c.Fields.Email {
			newAgg, holder, newSeq, err := a.emailClaim(ctx, sc, next.Email)
			if err != nil {
				return nil, err
			}
			if holder != "" {
				return nil, errEmailTaken
			}
			oldAgg, oldHolder, oldSeq, err := a.emailClaim(ctx, sc, c.Fields.Email)
			if err != nil {
				return nil, err
			}
			writes = append(writes, events.Write{Event: events.Envelope{Aggregate: newAgg, Payload: events.EmailClaimed{CustomerID: c.ID}}, Expect: newSeq})
			if oldHolder == c.ID {
				writes = append(writes, events.Write{Event: events.Envelope{Aggregate: oldAgg, Payload: events.EmailReleased{CustomerID: c.ID}}, Expect: oldSeq})
			}
		}
		return writes, nil
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.respondCustomer(w, r, sc, id, seq, http.StatusOK)
}

// deleteCustomer is DELETE /v1/customers/{id}: the customer's personal data is erased. Their key is
// destroyed first — from then on nothing about them in the log can be read, by this ledger, a replica,
// a rebuild or any consumer — then their photo is deleted, their email released and customer_erased
// recorded; the read models drop them and anonymise their sales. A repeated DELETE after a failure
// finishes the job; once done, the customer is 404.
func (a *API) deleteCustomer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id := r.PathValue("customer_id")
	c, err := a.currentCustomer(ctx, sc, id, true)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if c.Fields.Email == "" {
		// A previous DELETE destroyed the key and stopped: the log can no longer tell the email or the
		// photo, the read model still can.
		if rm, err := a.currentCustomer(ctx, sc, id, false); err == nil {
			c.Fields, c.Photo = rm.Fields, rm.Photo
		}
	}
	if err := a.cfg.Keys.Erase(ctx, id); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if c.Photo != nil && a.cfg.Photos != nil {
		if err := a.cfg.Photos.Delete(ctx, c.Photo.Object); err != nil {
			writeError(w, r, a.log, err)
			return
		}
	}
	email := c.Fields.Email
	seq, err := a.changeCustomer(ctx, id, func(c domain.Customer) ([]events.Write, error) {
		writes := []events.Write{own(c, events.CustomerErased{CustomerID: c.ID})}
		if email == "" {
			return writes, nil
		}
		claimAgg, holder, claimSeq, err := a.emailClaim(ctx, sc, email)
		if err != nil {
			return nil, err
		}
		if holder == c.ID {
			writes = append(writes, events.Write{Event: events.Envelope{Aggregate: claimAgg, Payload: events.EmailReleased{CustomerID: c.ID}}, Expect: claimSeq})
		}
		return writes, nil
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.awaitProjection(ctx, seq)
	positioned(w, seq, http.StatusOK, data{deletedCustomer(id)})
}
