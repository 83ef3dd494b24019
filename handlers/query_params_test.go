package handlers

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestQueryParamsMatchOpenAPI: the query parameters each GET route accepts are exactly those its
// OpenAPI operation declares, so the document never promises a filter the API refuses, nor hides one
// it takes.
func TestQueryParamsMatchOpenAPI(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	wild := regexp.MustCompile(`\{[a-z_]+\}`)
	byShape := map[string]string{} // "/v1/sales/{}" → the document's path
	for p := range doc.Paths {
		byShape[wild.ReplaceAllString(p, "{}")] = p
	}
	for route, allowed := range queryParams {
		if slices.Equal(allowed, anyQuery) {
			continue
		}
		path, ok := byShape[wild.ReplaceAllString(strings.TrimPrefix(route, "GET "), "{}")]
		if !ok {
			t.Errorf("%s: not in openapi.json", route)
			continue
		}
		var op struct {
			Parameters []struct {
				Ref  string `json:"$ref"`
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		}
		if err := json.Unmarshal(doc.Paths[path]["get"], &op); err != nil {
			t.Fatalf("%s: %v", route, err)
		}
		declared := []string{}
		for _, p := range op.Parameters {
			if p.Ref != "" {
				c := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				p.Name, p.In = c.Name, c.In
			}
			if p.In == "query" {
				declared = append(declared, p.Name)
			}
		}
		want := slices.Clone(allowed)
		slices.Sort(want)
		slices.Sort(declared)
		if !slices.Equal(declared, want) {
			t.Errorf("%s: openapi.json declares query parameters %v, the route accepts %v", route, declared, want)
		}
	}
}

// TestUnknownQueryParameterMessages: the 400 names every unknown parameter, suggests the ledger's name
// for a well-known alias the route takes, and lists what the route accepts.
func TestUnknownQueryParameterMessages(t *testing.T) {
	for _, tt := range []struct {
		route, query string
		want         []string
		not          []string
	}{
		{"GET /v1/sales", "limit=1", []string{"The limit parameter", "did you mean per_page?", "GET /v1/sales accepts per_page, cursor"}, nil},
		{"GET /v1/customers", "limit=1", []string{"The limit parameter", "did you mean per_page?", "email"}, nil},
		{"GET /v1/sales", "page_size=5", []string{"The page_size parameter", "did you mean per_page?"}, nil},
		{"GET /v1/sales", "page=2", []string{"The page parameter", "did you mean cursor?"}, nil},
		{"GET /v1/sales", "q=ada&zz=1", []string{"The q and zz parameters", "for q, did you mean search?"}, []string{"for zz"}},
		{"GET /v1/customers", "email=a@example.com&Email=b", []string{"The Email parameter"}, nil},
		{"GET /v1/customers/{customer_id}", "expand=addresses", []string{"The expand parameter", "takes no query parameters"}, []string{"did you mean"}},
		{"GET /v1/store", "limit=1", []string{"The limit parameter", "takes no query parameters"}, []string{"did you mean"}},
		{"GET /v1/sales", "=x", []string{"a parameter without a name"}, []string{"The  parameter"}},
	} {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		err = checkQueryParams(tt.route, queryParams[tt.route], q)
		status, body := describe(err)
		msg := body.Error.Message
		if status != 400 {
			t.Errorf("%s?%s: %d %q, want 400", tt.route, tt.query, status, msg)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s?%s: %q lacks %q", tt.route, tt.query, msg, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(msg, n) {
				t.Errorf("%s?%s: %q has %q", tt.route, tt.query, msg, n)
			}
		}
	}
	for _, tt := range []struct{ route, query string }{
		{"GET /v1/customers", "page=2&page_size=5&search=john&email=a@example.com"},
		{"GET /v1/sales", "status=completed&start_date=2025-01-01&end_date=2025-01-31&cursor=x&per_page=3&customer_id=c&search=s"},
		{"GET /v1/downloads/{download_token}", "utm_source=newsletter"},
		{"GET /healthz", "probe=1"},
	} {
		q, _ := url.ParseQuery(tt.query)
		if err := checkQueryParams(tt.route, queryParams[tt.route], q); err != nil {
			t.Errorf("%s?%s: %v", tt.route, tt.query, err)
		}
	}
}
