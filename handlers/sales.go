package handlers

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/projections/sqlite"
)

// getSale is GET /v1/sales/{id}: one sale of the key's store and mode (others are 404).
func (a *API) getSale(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	sale, err := a.cfg.Projection.Reads().Sale(r.Context(), sc.StoreID, sc.Mode, r.PathValue("sale_id"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	obj, err := a.saleData(r.Context(), sale, sc.Mode, a.cfg.Projection.Reads().LicencesOfSale)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, data{obj})
}

type pagination struct {
	NextCursor *string `json:"next_cursor"`
	PrevCursor *string `json:"prev_cursor"`
	HasMore    bool    `json:"has_more"`
}

type listBody struct {
	Data       any        `json:"data"`
	Pagination pagination `json:"pagination"`
}

var saleStatuses = map[string]bool{
	domain.StatusAwaitingPayment: true, domain.StatusCompleted: true, domain.StatusFailed: true,
	domain.StatusAbandoned: true, domain.StatusSettled: true, domain.StatusRefunded: true,
}

// maxSaleSearch bounds a sales search: a sale id or a customer's email (at most 254 characters).
const maxSaleSearch = 254

// listSales is GET /v1/sales: newest first, cursor-paginated, filtered by status, customer, search and
// an inclusive UTC date range.
func (a *API) listSales(w http.ResponseWriter, r *http.Request) {
	sc := scopeFrom(r.Context())
	q := r.URL.Query()
	f := sqlite.SaleFilter{StoreID: sc.StoreID, Mode: sc.Mode}
	page, err := parsePage(q)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	f = f.At(page.cursor)
	f.Limit = page.limit
	if s := q.Get("status"); s != "" {
		if !saleStatuses[s] {
			writeError(w, r, a.log, badRequest("The status parameter must be one of awaiting_payment, completed, failed, abandoned, settled, refunded."))
			return
		}
		f.Status = s
	}
	if id := q.Get("customer_id"); id != "" && !domain.ValidID(domain.PrefixCustomer, id) {
		writeError(w, r, a.log, badRequest("The customer_id parameter must be a customer id (cus_ and letters or digits)."))
		return
	}
	f.CustomerID = q.Get("customer_id")
	if q.Has("search") {
		if strings.TrimSpace(q.Get("search")) == "" {
			writeError(w, r, a.log, badRequest("The search query cannot be empty."))
			return
		}
		if utf8.RuneCountInString(q.Get("search")) > maxSaleSearch {
			writeError(w, r, a.log, badRequest(fmt.Sprintf("The search parameter must be at most %d characters.", maxSaleSearch)))
			return
		}
		f.Search = q.Get("search")
	}
	if f.From, f.To, err = parseDateRange(q); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	reads := a.cfg.Projection.Reads()
	sales, more, err := reads.ListSales(r.Context(), f)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	pos := make([]sqlite.Position, len(sales))
	out := make([]saleJSON, len(sales))
	for i, s := range sales {
		pos[i] = sqlite.Position{CreatedAt: s.CreatedAt.UTC().UnixMicro(), ID: s.ID}
		out[i] = saleObject(s, sc.Mode)
	}
	l, err := sqlite.ExactOlder(page.cursor, sqlite.PageLinks(page.cursor, pos, more), func(c sqlite.Cursor[sqlite.Position]) (bool, error) {
		return reads.HasSales(r.Context(), f.At(&c))
	})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, listBody{Data: out,
		Pagination: pagination{NextCursor: encodeCursor(l.Next), PrevCursor: encodeCursor(l.Prev), HasMore: l.HasMore}})
}

type pageRequest struct {
	limit  int
	cursor *sqlite.Cursor[sqlite.Position] // nil: the top of the list
}

// cursorJSON is the opaque cursor: a position and a direction, base64url-encoded JSON. Cursors issued
// before "e" existed decode as exclusive, which is what they meant.
type cursorJSON struct {
	T int64  `json:"t"`
	I string `json:"i"`
	D string `json:"d"`           // "n": older than the position; "p": newer
	E bool   `json:"e,omitempty"` // the position itself included (an empty page's turn)
}

func encodeCursor(c *sqlite.Cursor[sqlite.Position]) *string {
	if c == nil {
		return nil
	}
	b, _ := json.Marshal(cursorJSON{T: c.At.CreatedAt, I: c.At.ID, D: direction(c.Back), E: c.Inclusive})
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func direction(back bool) string {
	if back {
		return "p"
	}
	return "n"
}

func parsePage(q url.Values) (pageRequest, error) {
	p := pageRequest{limit: 15}
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return p, badRequest("The per_page parameter must be an integer from 1 to 100.")
		}
		p.limit = n
	}
	if s := q.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		var c cursorJSON
		if err != nil || json.Unmarshal(raw, &c) != nil || c.I == "" || (c.D != "n" && c.D != "p") {
			return p, errBadCursor
		}
		p.cursor = &sqlite.Cursor[sqlite.Position]{At: sqlite.Position{CreatedAt: c.T, ID: c.I}, Back: c.D == "p", Inclusive: c.E}
	}
	return p, nil
}

var errBadCursor = badRequest("The cursor parameter is not a cursor this API returned.")

// parseDateRange reads start_date and end_date (Y-m-d, UTC, both inclusive).
func parseDateRange(q url.Values) (from, to time.Time, err error) {
	if s := q.Get("start_date"); s != "" {
		if from, err = time.Parse(time.DateOnly, s); err != nil {
			return from, to, badRequest("The start_date parameter must be a date in Y-m-d format, e.g. 2025-01-31.")
		}
	}
	if s := q.Get("end_date"); s != "" {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return from, to, badRequest("The end_date parameter must be a date in Y-m-d format, e.g. 2025-01-31.")
		}
		to = d.Add(24*time.Hour - time.Microsecond)
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return from, to, badRequest("The start_date must be on or before the end_date.")
	}
	return from, to, nil
}
