package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/handlers/gateways"
)

// pathParam is the shape a route wildcard's value must have, and what a value of another shape is
// answered: the endpoint's own "no such thing".
type pathParam struct {
	valid func(string) bool
	err   error
}

// pathParams covers every wildcard of every route (wellFormed panics at start-up on one it lacks), so
// no path value reaches a NATS subject, a key-value key or a SQL query without its shape checked: an id
// of the wrong shape is 404 (DESIGN §6). A sale id "*" used to list every sale's events of the store
// through a subject wildcard.
var pathParams = map[string]pathParam{
	"sale_id":             {idOf(domain.PrefixSale), domain.ErrNotFound},
	"customer_id":         {idOf(domain.PrefixCustomer), errCustomerNotFound},
	"address_id":          {idOf(domain.PrefixAddress), errAddressNotFound},
	"webhook_endpoint_id": {idOf(domain.PrefixWebhookEndpoint), errWebhookEndpointNotFound},
	"webhook_delivery_id": {idOf(domain.PrefixWebhookDelivery), errWebhookDeliveryNotFound},
	"licence_key":         {domain.ValidLicenceKey, domain.ErrNotFound},
	"download_token":      {validLinkToken, errLinkForged},
	"avatar_token":        {validLinkToken, errAvatarLink},
	"gateway":             {func(s string) bool { _, ok := gateways.Lookup(s); return ok }, errUnknownGateway},
}

func idOf(prefix string) func(string) bool {
	return func(s string) bool { return domain.ValidID(prefix, s) }
}

// maxLinkToken bounds a signed link's token; the ledger's own are under 300 characters.
const maxLinkToken = 512

// validLinkToken is the shape of a signed link's token: base64url payload, ".", base64url signature.
func validLinkToken(s string) bool {
	payload, sig, ok := strings.Cut(s, ".")
	return ok && len(s) <= maxLinkToken && payload != "" && sig != "" && isBase64URL(payload) && isBase64URL(sig)
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var wildcard = regexp.MustCompile(`\{([a-z_]+)\}`)

// wellFormed checks what a route receives before anything else reads it: every path wildcard against
// its shape (pathParams), the query string (parseable; every value UTF-8 text without control
// characters: a NUL in a search used to match every customer), and, on a GET route, every query
// parameter against the route's own (queryParams): known, given once, not empty.
func (a *API) wellFormed(pattern string, next http.Handler) http.Handler {
	var names []string
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		if _, ok := pathParams[m[1]]; !ok {
			panic(fmt.Sprintf("route %q: wildcard {%s} has no shape in pathParams", pattern, m[1]))
		}
		names = append(names, m[1])
	}
	allowed, checkNames := queryParams[pattern]
	if strings.HasPrefix(pattern, http.MethodGet+" ") && !checkNames {
		panic(fmt.Sprintf("route %q: no entry in queryParams", pattern))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range names {
			if p := pathParams[name]; !p.valid(r.PathValue(name)) {
				writeError(w, r, a.log, p.err)
				return
			}
		}
		if err := checkQuery(r.URL.RawQuery); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if checkNames {
			if err := checkQueryParams(pattern, allowed, r.URL.Query()); err != nil {
				writeError(w, r, a.log, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// checkQuery accepts a query string whose every name and value decodes to UTF-8 text without control
// characters; otherwise it names the parameter (400).
func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return badRequest("The query string is malformed; escape reserved characters as %XX and separate parameters with &.")
	}
	for name, values := range q {
		if !plainText(name) || len(name) > 64 {
			return badRequest("The query string has a parameter name that is not plain text.")
		}
		for _, v := range values {
			if !plainText(v) {
				return badRequest(fmt.Sprintf("The %s parameter must be UTF-8 text without control characters (such as NUL).", name))
			}
		}
	}
	return nil
}

func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}
