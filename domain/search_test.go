package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// What the search index holds for a number: E.164, its digits, and the digits of its national format
// (libphonenumber's), trunk prefix included.
func TestPhoneSearchText(t *testing.T) {
	for _, tt := range []struct{ e164, want string }{
		{"+6433316005", "+6433316005 6433316005 033316005"},
		{"+15555555555", "+15555555555 15555555555 5555555555"},
		{"+442079460958", "+442079460958 442079460958 02079460958"},
		{"+390612345678", "+390612345678 390612345678 0612345678"}, // Italy keeps its 0 in the number itself
		{"", ""},
	} {
		if got := domain.PhoneSearchText(tt.e164); got != tt.want {
			t.Errorf("PhoneSearchText(%q) = %q, want %q", tt.e164, got, tt.want)
		}
	}
}

// A search term read as a phone number: its digits, and the E.164 digits of a whole international
// number, whatever prefix it was dialled with.
func TestPhoneSearchDigits(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"+64 3 331 6005", []string{"6433316005"}},
		{"(03) 331-6005", []string{"033316005"}},
		{"0064 3 331 6005", []string{"006433316005", "6433316005"}},
		{"011 64 3 331 6005", []string{"0116433316005", "6433316005"}},
		{"+64 (0)3 331 6005", []string{"64033316005", "6433316005"}},
		{"＋６４ ３ ３３１ ６００５", []string{"6433316005"}},
		{"1-555-555-5555", []string{"15555555555"}},
		{"3316005", []string{"3316005"}},
		{"00 12", []string{"0012"}}, // not a possible number: its digits only
		{"55", nil},                 // too short for the index
		{"john", nil},
		{"555@example.com", nil},
		{"ext. 5", nil},
	} {
		if got := domain.PhoneSearchDigits(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("PhoneSearchDigits(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

// The other forms an email search term is looked for in.
func TestEmailSearchForms(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"Ana@XN--BCHER-KVA.example", []string{"ana@bücher.example"}},
		{"xn--bcher-kva.example", []string{"bücher.example"}},
		{"zoe\u0308@example.com", nil}, // NFC and lower case are the term's own form already
		{"ana@bücher.example", nil},
		{"john", nil},
	} {
		if got := domain.EmailSearchForms(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("EmailSearchForms(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

// customer_registered and customer_updated written before the typed email was kept still decode, and
// fold to a customer who shows the canonical email they hold; newer ones show what was typed.
func TestCustomerEmailOldAndNewEvents(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, data                string
		canonical, typed, display string
	}{
		{"before email_as_typed", `{"customer_id":"cus_1","email":"zoë@bücher.example","source":"api"}`,
			"zoë@bücher.example", "", "zoë@bücher.example"},
		{"with email_as_typed", `{"customer_id":"cus_1","email":"zoë@bücher.example","email_as_typed":"Zoë@xn--bcher-kva.example","source":"api"}`,
			"zoë@bücher.example", "Zoë@xn--bcher-kva.example", "Zoë@xn--bcher-kva.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := events.Decode(events.TypeCustomerRegistered, 1, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			c := domain.FoldCustomer([]events.Envelope{{Sequence: 1, Time: at, Payload: p}})
			if c.Fields.Email != tt.canonical || c.Fields.EmailAsTyped != tt.typed || c.Fields.DisplayEmail() != tt.display {
				t.Errorf("folded %+v, display %q; want canonical %q, typed %q, display %q",
					c.Fields, c.Fields.DisplayEmail(), tt.canonical, tt.typed, tt.display)
			}
		})
	}
}

// A change of the email to another form of the same address is an update (what is shown changes), with
// the same canonical email, so no claim moves.
func TestCustomerUpdateEmailForm(t *testing.T) {
	c := domain.Customer{ID: "cus_1", Fields: domain.CustomerFields{Email: "john@example.com"}, Version: 1}
	p, next, err := c.Update(domain.CustomerInput{Email: cs("John@Example.COM")})
	if err != nil || p == nil {
		t.Fatalf("Update = %v, %v", p, err)
	}
	if next.Email != "john@example.com" || next.EmailAsTyped != "John@Example.COM" {
		t.Errorf("next = %+v", next)
	}
	c.Fields = next
	if p, _, err := c.Update(domain.CustomerInput{Email: cs(" John@Example.COM ")}); err != nil || p != nil {
		t.Errorf("the same typed form again = %v, %v; want nothing", p, err)
	}
}
