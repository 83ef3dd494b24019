package domain_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

func endpointOf(t *testing.T, payloads ...events.Payload) domain.WebhookEndpoint {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var evs []events.Envelope
	for i, p := range payloads {
		evs = append(evs, events.Envelope{Payload: p, Time: at.Add(time.Duration(i) * time.Minute), Sequence: uint64(10 + i)})
	}
	return domain.FoldWebhookEndpoint(evs)
}

const secretA, secretB, secretC = "whsec_AAAAaaaa", "whsec_BBBBbbbb", "whsec_CCCCcccc"

func created() events.WebhookEndpointCreated {
	return events.WebhookEndpointCreated{EndpointID: "we_1", URL: "https://example.com/hooks", Events: []string{"sale.completed"},
		Secret: secretA, SecretLast4: "aaaa"}
}

func TestNewWebhookEndpoint(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", domain.MaxURLLen)
	tests := []struct {
		name   string
		in     domain.WebhookEndpointInput
		want   events.WebhookEndpointCreated
		fields []string // the fields a 422 names; nil: valid
	}{
		{"minimal", domain.WebhookEndpointInput{URL: ptr("https://example.com/hooks"), Events: &[]string{"sale.completed"}},
			events.WebhookEndpointCreated{EndpointID: "we_1", URL: "https://example.com/hooks", Events: []string{"sale.completed"}, Secret: secretA, SecretLast4: "aaaa"}, nil},
		{"all events, description, duplicates dropped", domain.WebhookEndpointInput{URL: ptr("http://203.0.113.9:8080/x"), Events: &[]string{"sale.created", "sale.created", "customer.deleted"}, Description: ptr("CRM")},
			events.WebhookEndpointCreated{EndpointID: "we_1", URL: "http://203.0.113.9:8080/x", Events: []string{"sale.created", "customer.deleted"}, Description: "CRM", Secret: secretA, SecretLast4: "aaaa"}, nil},
		{"wildcard", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{"*"}},
			events.WebhookEndpointCreated{EndpointID: "we_1", URL: "https://example.com", Events: []string{"*"}, Secret: secretA, SecretLast4: "aaaa"}, nil},
		{"nothing", domain.WebhookEndpointInput{}, events.WebhookEndpointCreated{}, []string{"events", "url"}},
		{"disabled at creation", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{"*"}, Disabled: ptr(true)}, events.WebhookEndpointCreated{}, []string{"disabled"}},
		{"unknown event type", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{"sale.completed", "sale.exploded"}}, events.WebhookEndpointCreated{}, []string{"events"}},
		{"no event types", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{}}, events.WebhookEndpointCreated{}, []string{"events"}},
		{"wildcard and more", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{"*", "sale.created"}}, events.WebhookEndpointCreated{}, []string{"events"}},
		{"description too long", domain.WebhookEndpointInput{URL: ptr("https://example.com"), Events: &[]string{"*"}, Description: ptr(strings.Repeat("é", 501))}, events.WebhookEndpointCreated{}, []string{"description"}},
		{"url too long", domain.WebhookEndpointInput{URL: &long, Events: &[]string{"*"}}, events.WebhookEndpointCreated{}, []string{"url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.NewWebhookEndpoint("we_1", tt.in, secretA)
			if tt.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			var names []string
			for f := range ve.Fields {
				names = append(names, f)
			}
			if strings.Join(sorted(names), ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields %v, want %v (%v)", names, tt.fields, err)
			}
		})
	}
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestWebhookURLProblem is the URL's syntax; which addresses a webhook may go to is
// handlers/webhooksout's rule (its ValidateURL and CheckAddr tests).
func TestWebhookURLProblem(t *testing.T) {
	tests := []struct {
		url     string
		refused bool
	}{
		{"https://example.com/hooks", false},
		{"http://example.com:8080/a?b=c", false},
		{"https://8.8.8.8/x", false},
		{"https://[2001:4860:4860::8888]/x", false},
		{"http://127.0.0.1/x", false}, // a syntactically good URL; the address rule is not the domain's
		{"", true},
		{"example.com/hooks", true},
		{"/hooks", true},
		{"ftp://example.com/x", true},
		{"javascript:alert(1)", true},
		{"mailto:a@example.com", true},
		{"https://user:pw@example.com/x", true},
		{"https://user@example.com/x", true},
		{"https:///x", true},
	}
	for _, tt := range tests {
		msg := domain.WebhookURLProblem(tt.url)
		if (msg != "") != tt.refused {
			t.Errorf("WebhookURLProblem(%q) = %q, want refused %v", tt.url, msg, tt.refused)
		}
	}
}

func TestWebhookEndpointUpdate(t *testing.T) {
	w := endpointOf(t, created())
	tests := []struct {
		name string
		in   domain.WebhookEndpointInput
		want events.Payload
		err  bool
	}{
		{"nothing given", domain.WebhookEndpointInput{}, nil, false},
		{"nothing changes", domain.WebhookEndpointInput{URL: ptr("https://example.com/hooks"), Events: &[]string{"sale.completed"}}, nil, false},
		{"url", domain.WebhookEndpointInput{URL: ptr("https://example.org/h")}, events.WebhookEndpointUpdated{EndpointID: "we_1", URL: ptr("https://example.org/h")}, false},
		{"events and disabled", domain.WebhookEndpointInput{Events: &[]string{"*"}, Disabled: ptr(true)}, events.WebhookEndpointUpdated{EndpointID: "we_1", Events: []string{"*"}, Disabled: ptr(true)}, false},
		{"description cleared stays unchanged", domain.WebhookEndpointInput{Description: ptr("")}, nil, false},
		{"bad url", domain.WebhookEndpointInput{URL: ptr("ftp://example.com/")}, nil, true},
		{"empty events", domain.WebhookEndpointInput{Events: &[]string{}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.Update(tt.in)
			var ve *domain.ValidationError
			if tt.err != errors.As(err, &ve) || (!tt.err && err != nil) {
				t.Fatalf("err = %v, want a validation error: %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	w = endpointOf(t, created(), events.WebhookEndpointUpdated{EndpointID: "we_1", Description: ptr("CRM"), Disabled: ptr(true)})
	if w.Description != "CRM" || !w.Disabled || w.URL != "https://example.com/hooks" {
		t.Fatalf("after update: %+v", w)
	}
	if p, _ := w.Update(domain.WebhookEndpointInput{Description: ptr("")}); !reflect.DeepEqual(p, events.WebhookEndpointUpdated{EndpointID: "we_1", Description: ptr("")}) {
		t.Fatalf("clearing the description: %#v", p)
	}
}

func TestWebhookEndpointRotateSecret(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	w := endpointOf(t, created())
	p, err := w.RotateSecret(secretB, now)
	if err != nil {
		t.Fatal(err)
	}
	want := events.WebhookEndpointSecretRotated{EndpointID: "we_1", Secret: secretB, SecretLast4: "bbbb", PreviousExpiresAt: now.Add(24 * time.Hour)}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	w = endpointOf(t, created(), p)
	if w.Secret != secretB || w.PreviousSecret != secretA || w.SecretLast4 != "bbbb" {
		t.Fatalf("after rotation: %+v", w)
	}
	if got := w.SigningSecrets(now.Add(23 * time.Hour)); !reflect.DeepEqual(got, []string{secretB, secretA}) {
		t.Errorf("within 24 h signs with %v", got)
	}
	if got := w.SigningSecrets(now.Add(24 * time.Hour)); !reflect.DeepEqual(got, []string{secretB}) {
		t.Errorf("after 24 h signs with %v", got)
	}
	// A second rotation within the overlap drops the oldest secret.
	p2, _ := w.RotateSecret(secretC, now.Add(time.Hour))
	w = endpointOf(t, created(), p, p2)
	if got := w.SigningSecrets(now.Add(2 * time.Hour)); !reflect.DeepEqual(got, []string{secretC, secretB}) {
		t.Errorf("after two rotations signs with %v", got)
	}
}

func TestWebhookEndpointDelete(t *testing.T) {
	w := endpointOf(t, created())
	p, err := w.Delete()
	if err != nil || !reflect.DeepEqual(p, events.WebhookEndpointDeleted{EndpointID: "we_1"}) {
		t.Fatalf("delete: %#v %v", p, err)
	}
	w = endpointOf(t, created(), p)
	if !w.Deleted || w.SigningSecrets(time.Now()) != nil || w.Version != 11 {
		t.Fatalf("after delete: %+v", w)
	}
	for name, err := range map[string]error{
		"delete": func() error { _, err := w.Delete(); return err }(),
		"update": func() error { _, err := w.Update(domain.WebhookEndpointInput{Disabled: ptr(true)}); return err }(),
		"rotate": func() error { _, err := w.RotateSecret(secretB, time.Now()); return err }(),
	} {
		if !errors.Is(err, domain.ErrWebhookEndpointDeleted) {
			t.Errorf("%s a deleted endpoint: %v", name, err)
		}
	}
}

// The secrets never leave an endpoint through JSON: the read model and logs marshal it.
func TestWebhookEndpointJSONHasNoSecret(t *testing.T) {
	rot, _ := endpointOf(t, created()).RotateSecret(secretB, time.Now())
	b, err := json.Marshal(endpointOf(t, created(), rot))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "whsec_") {
		t.Fatalf("marshalled endpoint holds a secret: %s", b)
	}
}

func TestNewWebhookSecret(t *testing.T) {
	a, b := domain.NewWebhookSecret(), domain.NewWebhookSecret()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(raw) < 24 || len(raw) > 32 || a == b {
		t.Fatalf("secrets %q %q: %v", a, b, err)
	}
}
