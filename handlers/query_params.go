package handlers

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// anyQuery marks a route that takes whatever query string it is sent and reads none of it.
var anyQuery = []string{"*"}

// queryParams are the query parameters each GET route accepts; any other is 400 naming it, as Stripe
// answers "Received unknown parameter": a misspelt filter (?email= before it existed, ?limit=1) must
// not quietly answer the unfiltered list. wellFormed panics at start-up on a GET route without an
// entry, and TestQueryParamsMatchOpenAPI keeps this table and the OpenAPI document the same.
//
// Routes that are not the store API take anything: download and avatar links are capabilities handed
// to buyers' browsers, mail clients and <img> tags, which add their own parameters (utm_source, a
// cache-buster) that the signature in the path does not cover; probes and scrapers are configured by
// operators' tools.
var queryParams = map[string][]string{
	"GET /v1/store":                                              nil,
	"GET /v1/sales":                                              {"per_page", "cursor", "status", "customer_id", "search", "start_date", "end_date"},
	"GET /v1/sales/{sale_id}":                                    nil,
	"GET /v1/sales/{sale_id}/events":                             nil,
	"GET /v1/licences/{licence_key}":                             nil,
	"GET /v1/customers":                                          {"per_page", "cursor", "page", "page_size", "search", "email", "start_date", "end_date"},
	"GET /v1/customers/{customer_id}":                            nil,
	"GET /v1/customers/{customer_id}/addresses":                  nil,
	"GET /v1/webhook_endpoints":                                  {"per_page", "cursor"},
	"GET /v1/webhook_endpoints/{webhook_endpoint_id}":            nil,
	"GET /v1/webhook_endpoints/{webhook_endpoint_id}/deliveries": {"per_page", "cursor"},
	"GET /v1/downloads/{download_token}":                         anyQuery,
	"GET /v1/avatars/{avatar_token}":                             anyQuery,
	"GET /healthz":                                               anyQuery,
	"GET /readyz":                                                anyQuery,
	"GET /metrics":                                               anyQuery,
	"GET /openapi.json":                                          anyQuery,
}

// queryAliases are what integrators coming from other APIs send for a parameter the ledger names
// otherwise; the 400 suggests the ledger's name when the route accepts it.
var queryAliases = map[string][]string{
	"limit":          {"per_page", "page_size"},
	"page_size":      {"per_page"},
	"pagesize":       {"per_page", "page_size"},
	"per-page":       {"per_page"},
	"perpage":        {"per_page"},
	"size":           {"per_page", "page_size"},
	"count":          {"per_page", "page_size"},
	"page":           {"cursor"},
	"starting_after": {"cursor"},
	"ending_before":  {"cursor"},
	"after":          {"cursor"},
	"before":         {"cursor"},
	"next_cursor":    {"cursor"},
	"prev_cursor":    {"cursor"},
	"q":              {"search"},
	"query":          {"search"},
	"customer":       {"customer_id"},
	"from":           {"start_date"},
	"since":          {"start_date"},
	"date_from":      {"start_date"},
	"created_after":  {"start_date"},
	"to":             {"end_date"},
	"until":          {"end_date"},
	"date_to":        {"end_date"},
	"created_before": {"end_date"},
}

// maxNamedParams bounds how many unknown parameters a 400 names: a query of thousands of names would
// otherwise come back as an error body as large as itself.
const maxNamedParams = 10

// checkQueryParams answers 400 to a query the route cannot read as sent: a parameter it does not accept
// (named, at most maxNamedParams of them, with the route's own parameters and, for a well-known alias,
// the name it likely meant), a parameter given twice (the handlers read one value, and which one the
// client meant is a guess: status=completed&status=failed is not a list), or one given empty (status=
// used to answer the unfiltered list, as if the filter had not been sent).
func checkQueryParams(route string, allowed []string, q url.Values) error {
	if slices.Equal(allowed, anyQuery) {
		return nil
	}
	if err := checkQueryNames(route, allowed, q); err != nil {
		return err
	}
	for _, name := range allowed {
		switch values := q[name]; {
		case len(values) == 2:
			return badRequest(fmt.Sprintf("The %s parameter is given twice; send it once.", name))
		case len(values) > 2:
			return badRequest(fmt.Sprintf("The %s parameter is given %d times; send it once.", name, len(values)))
		case len(values) == 1 && values[0] == "":
			if msg, ok := emptyParamMessages[name]; ok {
				return badRequest(msg)
			}
			return badRequest(fmt.Sprintf("The %s parameter cannot be empty; leave it out to not filter.", name))
		}
	}
	return nil
}

// emptyParamMessages keeps the wording an empty parameter was answered with before every parameter was
// checked (clients may match it).
var emptyParamMessages = map[string]string{"search": "The search query cannot be empty."}

// checkQueryNames answers 400 naming the parameters of q that the route does not accept.
func checkQueryNames(route string, allowed []string, q url.Values) error {
	if _, nameless := q[""]; nameless {
		return badRequest("The query string has a parameter without a name (such as ?=x).")
	}
	var unknown []string
	for name := range q {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	named, more := unknown, 0
	if len(named) > maxNamedParams {
		named, more = unknown[:maxNamedParams], len(unknown)-maxNamedParams
	}
	var b strings.Builder
	switch {
	case len(unknown) == 1:
		fmt.Fprintf(&b, "The %s parameter is not one this endpoint accepts", unknown[0])
	case more > 0:
		fmt.Fprintf(&b, "The %s and %d more parameters are not ones this endpoint accepts", strings.Join(named, ", "), more)
	default:
		fmt.Fprintf(&b, "The %s and %s parameters are not ones this endpoint accepts", strings.Join(named[:len(named)-1], ", "), named[len(named)-1])
	}
	var hints []string
	for _, name := range named {
		for _, alias := range queryAliases[strings.ToLower(name)] {
			if slices.Contains(allowed, alias) && alias != name {
				if len(unknown) == 1 {
					hints = append(hints, "did you mean "+alias+"?")
				} else {
					hints = append(hints, "for "+name+", did you mean "+alias+"?")
				}
				break
			}
		}
	}
	if len(hints) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(hints, "; "))
	}
	if len(allowed) == 0 {
		fmt.Fprintf(&b, "; %s takes no query parameters.", route)
	} else {
		fmt.Fprintf(&b, "; %s accepts %s.", route, strings.Join(allowed, ", "))
	}
	return badRequest(b.String())
}
