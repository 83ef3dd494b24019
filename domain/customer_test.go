package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
)

// cs returns a pointer to s (a given string field).
func cs(s string) *string { return &s }

// custInput is a valid create input (reference: customers-ecomcharge.txt); edit builds a variant of it.
func custInput(edit func(in *domain.CustomerInput)) domain.CustomerInput {
	in := domain.CustomerInput{
		Email:     cs("Customer@Example.com"),
		FirstName: cs(" John "),
		LastName:  cs("Doe"),
		Phone:     cs("+1 202-555-0143"),
		Country:   cs("us"),
		Address:   cs("1st Street"),
		City:      cs("Denver"),
		Zip:       cs("92006"),
		State:     cs("co"),
		IP:        cs("127.0.0.1"),
		Metadata:  json.RawMessage(`{ "crm_id" : 42, "tags": ["vip"] }`),
	}
	if edit != nil {
		edit(&in)
	}
	return in
}

// custFields is what custInput() normalises to.
func custFields() domain.CustomerFields {
	return domain.CustomerFields{
		Email:        "customer@example.com",
		EmailAsTyped: "Customer@Example.com", // what custInput types
		FirstName:    "John",
		LastName:     "Doe",
		Phone:        "+12025550143",
		Country:      "US",
		Address:      "1st Street",
		City:         "Denver",
		Zip:          "92006",
		State:        "CO",
		IP:           "127.0.0.1",
		Metadata:     json.RawMessage(`{"crm_id":42,"tags":["vip"]}`),
	}
}

// validationFields returns the failing fields of err, failing the test if err is not a *ValidationError.
// Every message must be a full sentence naming its field.
func validationFields(t *testing.T, err error) map[string][]string {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want *domain.ValidationError", err, err)
	}
	for f, msgs := range ve.Fields {
		for _, m := range msgs {
			if !strings.HasPrefix(m, "The ") || !strings.HasSuffix(m, ".") || !strings.Contains(m, f) {
				t.Errorf("message for %s is not a sentence naming the field: %q", f, m)
			}
		}
	}
	return ve.Fields
}

func fieldKeys(fields map[string][]string) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sameCustomer compares fields, metadata byte for byte.
func sameCustomer(t *testing.T, got, want domain.CustomerFields) {
	t.Helper()
	gm, wm := string(got.Metadata), string(want.Metadata)
	got.Metadata, want.Metadata = nil, nil
	if !reflect.DeepEqual(got, want) || gm != wm {
		t.Errorf("got  %+v metadata %s\nwant %+v metadata %s", got, gm, want, wm)
	}
}

func TestCustomerApplyCreate(t *testing.T) {
	got, err := domain.CustomerFields{}.Apply(custInput(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	sameCustomer(t, got, custFields())

	// Only the email is required.
	got, err = domain.CustomerFields{}.Apply(domain.CustomerInput{Email: cs("  A@B.example ")}, true)
	if err != nil {
		t.Fatal(err)
	}
	sameCustomer(t, got, domain.CustomerFields{Email: "a@b.example", EmailAsTyped: "A@B.example"})

	// Given-but-empty optional fields stay empty on a create.
	got, err = domain.CustomerFields{}.Apply(domain.CustomerInput{
		Email: cs("a@b.example"), FirstName: cs(""), Phone: cs(" "), Country: cs(""), Zip: cs(""),
		State: cs(""), IP: cs(""), Metadata: json.RawMessage("null"),
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	sameCustomer(t, got, domain.CustomerFields{Email: "a@b.example"})
}

func TestCustomerApplyValid(t *testing.T) {
	tests := []struct {
		name string
		edit func(in *domain.CustomerInput)
		want func(f *domain.CustomerFields)
	}{
		{"names at 100 runes", func(in *domain.CustomerInput) {
			in.FirstName, in.LastName = cs(strings.Repeat("é", 100)), cs(" "+strings.Repeat("ß", 100)+" ")
		}, func(f *domain.CustomerFields) {
			f.FirstName, f.LastName = strings.Repeat("é", 100), strings.Repeat("ß", 100)
		}},
		{"address at 200 runes, city at 100", func(in *domain.CustomerInput) {
			in.Address, in.City = cs(strings.Repeat("a", 200)), cs(strings.Repeat("ü", 100))
		}, func(f *domain.CustomerFields) {
			f.Address, f.City = strings.Repeat("a", 200), strings.Repeat("ü", 100)
		}},
		{"email at 254 chars", func(in *domain.CustomerInput) {
			in.Email = cs(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("b", 63) + ".com")
		}, func(f *domain.CustomerFields) {
			f.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("b", 63) + ".com"
			f.EmailAsTyped = "" // typed in its canonical form
		}},
		{"US zip+4", func(in *domain.CustomerInput) { in.Zip = cs("92006-1234") },
			func(f *domain.CustomerFields) { f.Zip = "92006-1234" }},
		{"US zip trimmed", func(in *domain.CustomerInput) { in.Zip = cs(" 92006 ") },
			func(f *domain.CustomerFields) { f.Zip = "92006" }},
		{"US without zip", func(in *domain.CustomerInput) { in.Zip = nil },
			func(f *domain.CustomerFields) { f.Zip = "" }},
		{"US territory PR", func(in *domain.CustomerInput) { in.State = cs("pr") },
			func(f *domain.CustomerFields) { f.State = "PR" }},
		{"US DC", func(in *domain.CustomerInput) { in.State = cs("Dc") },
			func(f *domain.CustomerFields) { f.State = "DC" }},
		{"US military AE", func(in *domain.CustomerInput) { in.State = cs(" ae ") },
			func(f *domain.CustomerFields) { f.State = "AE" }},
		{"CA province", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip, in.Phone = cs("CA"), cs("qc"), cs("H2X 1Y4"), cs("+1 514-555-0199")
		}, func(f *domain.CustomerFields) {
			f.Country, f.State, f.Zip, f.Phone = "CA", "QC", "H2X 1Y4", "+15145550199"
		}},
		{"GB free zip, no state", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip = cs("gb"), nil, cs("SW1A 1AA")
		}, func(f *domain.CustomerFields) {
			f.Country, f.State, f.Zip = "GB", "", "SW1A 1AA"
		}},
		{"free state kept as written outside US and CA", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip = cs("FR"), cs("Île-de-France"), cs(strings.Repeat("9", 20))
		}, func(f *domain.CustomerFields) {
			f.Country, f.State, f.Zip = "FR", "Île-de-France", strings.Repeat("9", 20)
		}},
		{"state at 100 runes outside US and CA", func(in *domain.CustomerInput) {
			in.Country, in.State = cs("DE"), cs(strings.Repeat("ö", 100))
		}, func(f *domain.CustomerFields) {
			f.Country, f.State = "DE", strings.Repeat("ö", 100)
		}},
		{"no country: zip and state are free", func(in *domain.CustomerInput) {
			in.Country, in.Zip, in.State, in.Phone = nil, cs("abc"), cs("Somewhere"), nil
		}, func(f *domain.CustomerFields) {
			f.Country, f.Zip, f.State, f.Phone = "", "abc", "Somewhere", ""
		}},
		{"Costa Rica phone", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip, in.Phone = cs("CR"), nil, nil, cs("+506 8323 6988")
		}, func(f *domain.CustomerFields) {
			f.Country, f.State, f.Zip, f.Phone = "CR", "", "", "+50683236988"
		}},
		{"ip v6 canonical", func(in *domain.CustomerInput) { in.IP = cs("2001:DB8:0:0::1") },
			func(f *domain.CustomerFields) { f.IP = "2001:db8::1" }},
		{"ip v4-mapped v6 unmapped", func(in *domain.CustomerInput) { in.IP = cs("::ffff:192.0.2.1") },
			func(f *domain.CustomerFields) { f.IP = "192.0.2.1" }},
		{"metadata nested, compacted", func(in *domain.CustomerInput) {
			in.Metadata = json.RawMessage("{\n  \"a\": {\"b\": [1, 2, {\"c\": null}]},\n  \"d\": \"x y\"\n}")
		}, func(f *domain.CustomerFields) {
			f.Metadata = json.RawMessage(`{"a":{"b":[1,2,{"c":null}]},"d":"x y"}`)
		}},
		{"metadata empty object", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(` {} `) },
			func(f *domain.CustomerFields) { f.Metadata = json.RawMessage(`{}`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.CustomerFields{}.Apply(custInput(tt.edit), true)
			if err != nil {
				t.Fatal(err)
			}
			want := custFields()
			tt.want(&want)
			sameCustomer(t, got, want)
		})
	}
}

func TestCustomerApplyInvalidField(t *testing.T) {
	tests := []struct {
		name  string
		field string
		edit  func(in *domain.CustomerInput)
	}{
		{"email missing", "email", func(in *domain.CustomerInput) { in.Email = nil }},
		{"email empty", "email", func(in *domain.CustomerInput) { in.Email = cs("") }},
		{"email blank", "email", func(in *domain.CustomerInput) { in.Email = cs("   ") }},
		{"email not an address", "email", func(in *domain.CustomerInput) { in.Email = cs("not-an-email") }},
		{"email without dot in domain", "email", func(in *domain.CustomerInput) { in.Email = cs("a@localhost") }},
		{"email with display name", "email", func(in *domain.CustomerInput) { in.Email = cs("John <j@example.com>") }},
		{"email 255 chars", "email", func(in *domain.CustomerInput) {
			in.Email = cs(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com")
		}},
		{"first_name 101 runes", "first_name", func(in *domain.CustomerInput) { in.FirstName = cs(strings.Repeat("é", 101)) }},
		{"last_name 101 runes", "last_name", func(in *domain.CustomerInput) { in.LastName = cs(strings.Repeat("x", 101)) }},
		{"address 201 runes", "address", func(in *domain.CustomerInput) { in.Address = cs(strings.Repeat("x", 201)) }},
		{"city 101 runes", "city", func(in *domain.CustomerInput) { in.City = cs(strings.Repeat("x", 101)) }},
		{"phone national without country", "phone", func(in *domain.CustomerInput) {
			in.Country, in.Zip, in.State, in.Phone = nil, nil, nil, cs("2025550143")
		}},
		{"phone too long to be possible", "phone", func(in *domain.CustomerInput) { in.Phone = cs("+1 202 555 0143 999") }},
		{"phone letters", "phone", func(in *domain.CustomerInput) { in.Phone = cs("call me") }},
		{"phone unknown country code", "phone", func(in *domain.CustomerInput) { in.Phone = cs("+999 12345") }},
		{"phone too short", "phone", func(in *domain.CustomerInput) { in.Phone = cs("+1 202") }},
		{"phone zeros for AR", "phone", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip, in.Phone = cs("AR"), nil, nil, cs("000000000")
		}},
		{"phone with extension", "phone", func(in *domain.CustomerInput) { in.Phone = cs("+1 202-555-0143 ext. 12") }},
		{"country ZZ", "country", func(in *domain.CustomerInput) { in.Country = cs("ZZ") }},
		{"country XX", "country", func(in *domain.CustomerInput) { in.Country = cs("XX") }},
		{"country UK", "country", func(in *domain.CustomerInput) { in.Country = cs("uk") }},
		{"country XK", "country", func(in *domain.CustomerInput) { in.Country = cs("XK") }},
		{"country AN (deleted)", "country", func(in *domain.CustomerInput) { in.Country = cs("AN") }},
		{"country numeric", "country", func(in *domain.CustomerInput) { in.Country = cs("840") }},
		{"country alpha-3", "country", func(in *domain.CustomerInput) { in.Country = cs("USA") }},
		{"country name", "country", func(in *domain.CustomerInput) { in.Country = cs("United States") }},
		{"country one letter", "country", func(in *domain.CustomerInput) { in.Country = cs("U") }},
		{"country digits", "country", func(in *domain.CustomerInput) { in.Country = cs("12") }},
		{"US zip 4 digits", "zip", func(in *domain.CustomerInput) { in.Zip = cs("1234") }},
		{"US zip 6 digits", "zip", func(in *domain.CustomerInput) { in.Zip = cs("123456") }},
		{"US zip+3", "zip", func(in *domain.CustomerInput) { in.Zip = cs("12345-678") }},
		{"US zip with space", "zip", func(in *domain.CustomerInput) { in.Zip = cs("12345 6789") }},
		{"US zip letters", "zip", func(in *domain.CustomerInput) { in.Zip = cs("SW1A 1AA") }},
		{"US zip non-ASCII digits", "zip", func(in *domain.CustomerInput) { in.Zip = cs("١٢٣٤٥") }},
		{"non-US zip 21 chars", "zip", func(in *domain.CustomerInput) {
			in.Country, in.State, in.Zip = cs("GB"), nil, cs(strings.Repeat("x", 21))
		}},
		{"US state missing", "state", func(in *domain.CustomerInput) { in.State = nil }},
		{"US state empty", "state", func(in *domain.CustomerInput) { in.State = cs(" ") }},
		{"US state unknown", "state", func(in *domain.CustomerInput) { in.State = cs("XX") }},
		{"US state name", "state", func(in *domain.CustomerInput) { in.State = cs("Colorado") }},
		{"US state digit", "state", func(in *domain.CustomerInput) { in.State = cs("C1") }},
		{"US state Canadian", "state", func(in *domain.CustomerInput) { in.State = cs("QC") }},
		{"CA state missing", "state", func(in *domain.CustomerInput) {
			in.Country, in.Zip, in.State, in.Phone = cs("CA"), nil, nil, nil
		}},
		{"CA state American", "state", func(in *domain.CustomerInput) {
			in.Country, in.Zip, in.State, in.Phone = cs("ca"), nil, cs("NY"), nil
		}},
		{"non-US state 101 runes", "state", func(in *domain.CustomerInput) {
			in.Country, in.Zip, in.State = cs("FR"), nil, cs(strings.Repeat("é", 101))
		}},
		{"ip out of range", "ip", func(in *domain.CustomerInput) { in.IP = cs("256.1.1.1") }},
		{"ip three octets", "ip", func(in *domain.CustomerInput) { in.IP = cs("1.2.3") }},
		{"ip hostname", "ip", func(in *domain.CustomerInput) { in.IP = cs("localhost") }},
		{"ip with zone", "ip", func(in *domain.CustomerInput) { in.IP = cs("fe80::1%eth0") }},
		{"ip with port", "ip", func(in *domain.CustomerInput) { in.IP = cs("127.0.0.1:80") }},
		{"metadata array", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`[{"a":1}]`) }},
		{"metadata string", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`"x"`) }},
		{"metadata number", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`1`) }},
		{"metadata bool", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`true`) }},
		{"metadata broken", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`{"a":`) }},
		{"metadata trailing data", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage(`{} {}`) }},
		{"metadata empty bytes", "metadata", func(in *domain.CustomerInput) { in.Metadata = json.RawMessage{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.CustomerFields{}.Apply(custInput(tt.edit), true)
			fields := validationFields(t, err)
			if keys := fieldKeys(fields); !reflect.DeepEqual(keys, []string{tt.field}) {
				t.Errorf("failing fields = %v, want [%s]: %v", keys, tt.field, fields)
			}
			sameCustomer(t, got, domain.CustomerFields{})
		})
	}
}

func TestCustomerApplyAllAtOnce(t *testing.T) {
	long := func(n int) *string { return cs(strings.Repeat("x", n)) }
	tests := []struct {
		name string
		in   domain.CustomerInput
		want []string
	}{
		{"unknown country", domain.CustomerInput{
			Email: cs("nope"), FirstName: long(101), LastName: long(101), Phone: cs("12345"),
			Country: cs("ZZ"), Address: long(201), City: long(101), Zip: long(21), State: long(101),
			IP: cs("1.2.3.4.5"), Metadata: json.RawMessage(`[]`),
		}, []string{"address", "city", "country", "email", "first_name", "ip", "last_name", "metadata", "phone", "state", "zip"}},
		{"US", domain.CustomerInput{
			Email: cs(""), FirstName: long(101), LastName: long(101), Phone: cs("+1 23"),
			Country: cs("US"), Address: long(201), City: long(101), Zip: cs("ABCDE"), State: cs("ZZ"),
			IP: cs("::g"), Metadata: json.RawMessage(`"meta"`),
		}, []string{"address", "city", "email", "first_name", "ip", "last_name", "metadata", "phone", "state", "zip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.CustomerFields{}.Apply(tt.in, true)
			fields := validationFields(t, err)
			if keys := fieldKeys(fields); !reflect.DeepEqual(keys, tt.want) {
				t.Errorf("failing fields = %v, want %v", keys, tt.want)
			}
			for _, f := range tt.want {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("Error() = %q does not name %s", err.Error(), f)
				}
			}
		})
	}
}

func TestCustomerApplyPatch(t *testing.T) {
	us := custFields()
	gb := domain.CustomerFields{Email: "uk@example.com", Country: "GB", Zip: "SW1A 1AA", City: "London"}
	tests := []struct {
		name   string
		cur    domain.CustomerFields
		in     domain.CustomerInput
		want   func(f *domain.CustomerFields) // nil: unchanged
		failed []string
	}{
		{name: "nothing given leaves all", cur: us},
		{name: "nil fields leave, given ones change", cur: us,
			in:   domain.CustomerInput{LastName: cs(" Smith "), City: cs("Boulder")},
			want: func(f *domain.CustomerFields) { f.LastName, f.City = "Smith", "Boulder" }},
		{name: "empty strings clear", cur: us,
			in: domain.CustomerInput{
				FirstName: cs(""), LastName: cs(""), Phone: cs(""), Address: cs(""), City: cs(" "),
				Zip: cs(""), IP: cs(""),
			},
			want: func(f *domain.CustomerFields) {
				f.FirstName, f.LastName, f.Phone, f.Address, f.City, f.Zip, f.IP = "", "", "", "", "", "", ""
			}},
		{name: "metadata null clears", cur: us, in: domain.CustomerInput{Metadata: json.RawMessage(" null ")},
			want: func(f *domain.CustomerFields) { f.Metadata = nil }},
		{name: "metadata replaced whole", cur: us, in: domain.CustomerInput{Metadata: json.RawMessage(`{"b": 2}`)},
			want: func(f *domain.CustomerFields) { f.Metadata = json.RawMessage(`{"b":2}`) }},
		{name: "email changed and normalised", cur: us, in: domain.CustomerInput{Email: cs(" New@Example.COM")},
			want: func(f *domain.CustomerFields) { f.Email, f.EmailAsTyped = "new@example.com", "New@Example.COM" }},
		{name: "email cannot be cleared", cur: us, in: domain.CustomerInput{Email: cs("")}, failed: []string{"email"}},
		{name: "email not required on patch", cur: us, in: domain.CustomerInput{FirstName: cs("Jo")},
			want: func(f *domain.CustomerFields) { f.FirstName = "Jo" }},
		{name: "US state cannot be cleared", cur: us, in: domain.CustomerInput{State: cs("")}, failed: []string{"state"}},
		{name: "US state changed", cur: us, in: domain.CustomerInput{State: cs("ny")},
			want: func(f *domain.CustomerFields) { f.State = "NY" }},
		{name: "US zip checked", cur: us, in: domain.CustomerInput{Zip: cs("SW1A")}, failed: []string{"zip"}},
		{name: "country to US checks stored zip and state", cur: gb, in: domain.CustomerInput{Country: cs("US")},
			failed: []string{"state", "zip"}},
		{name: "country to US with fitting zip and state", cur: gb,
			in:   domain.CustomerInput{Country: cs("us"), Zip: cs("10001"), State: cs("ny")},
			want: func(f *domain.CustomerFields) { f.Country, f.Zip, f.State = "US", "10001", "NY" }},
		{name: "country to US normalises stored state", cur: domain.CustomerFields{Email: "a@b.example", State: "ca", Zip: "90210"},
			in:   domain.CustomerInput{Country: cs("US")},
			want: func(f *domain.CustomerFields) { f.Country, f.State = "US", "CA" }},
		{name: "country to CA requires state", cur: gb, in: domain.CustomerInput{Country: cs("CA")}, failed: []string{"state"}},
		{name: "country from US to GB frees zip and state", cur: us, in: domain.CustomerInput{Country: cs("GB")},
			want: func(f *domain.CustomerFields) { f.Country = "GB" }},
		{name: "country cleared frees state", cur: us, in: domain.CustomerInput{Country: cs(""), State: cs("")},
			want: func(f *domain.CustomerFields) { f.Country, f.State = "", "" }},
		{name: "unknown country: zip and state not judged by country", cur: gb,
			in: domain.CustomerInput{Country: cs("ZZ"), Zip: cs("abc")}, failed: []string{"country"}},
		{name: "state only, GB customer", cur: gb, in: domain.CustomerInput{State: cs("Greater London")},
			want: func(f *domain.CustomerFields) { f.State = "Greater London" }},
		{name: "untouched stale US state not rejudged", cur: domain.CustomerFields{Email: "a@b.example", Country: "US"},
			in: domain.CustomerInput{FirstName: cs("Ann")}, want: func(f *domain.CustomerFields) { f.FirstName = "Ann" }},
		{name: "national phone read in stored country", cur: gb, in: domain.CustomerInput{Phone: cs("020 7946 0958")},
			want: func(f *domain.CustomerFields) { f.Phone = "+442079460958" }},
		{name: "national phone read in new country", cur: gb,
			in:   domain.CustomerInput{Country: cs("CR"), Phone: cs("8323 6988")},
			want: func(f *domain.CustomerFields) { f.Country, f.Phone = "CR", "+50683236988" }},
		{name: "national phone with no country", cur: domain.CustomerFields{Email: "a@b.example"},
			in: domain.CustomerInput{Phone: cs("020 7946 0958")}, failed: []string{"phone"}},
		{name: "failure leaves everything", cur: us,
			in: domain.CustomerInput{FirstName: cs("Changed"), IP: cs("nope")}, failed: []string{"ip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cur.Apply(tt.in, false)
			if tt.failed != nil {
				fields := validationFields(t, err)
				if keys := fieldKeys(fields); !reflect.DeepEqual(keys, tt.failed) {
					t.Errorf("failing fields = %v, want %v: %v", keys, tt.failed, fields)
				}
				sameCustomer(t, got, tt.cur)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.cur
			if tt.want != nil {
				tt.want(&want)
			}
			sameCustomer(t, got, want)
		})
	}
}

func TestCustomerApplyEmailRequiredOnCreateOnly(t *testing.T) {
	_, err := domain.CustomerFields{}.Apply(domain.CustomerInput{FirstName: cs("Ann")}, true)
	if keys := fieldKeys(validationFields(t, err)); !reflect.DeepEqual(keys, []string{"email"}) {
		t.Errorf("create without email: failing fields = %v", keys)
	}
	cur := domain.CustomerFields{Email: "ann@example.com"}
	got, err := cur.Apply(domain.CustomerInput{FirstName: cs("Ann")}, false)
	if err != nil {
		t.Fatal(err)
	}
	sameCustomer(t, got, domain.CustomerFields{Email: "ann@example.com", FirstName: "Ann"})
}

func TestCustomerPhoneNormalisation(t *testing.T) {
	tests := []struct {
		phone, country string
		want           string // "" = invalid
	}{
		{"+1 202-555-0143", "", "+12025550143"},
		{"+1 (202) 555-0143", "", "+12025550143"},
		{"+12345678900", "", "+12345678900"},
		{"+506 8323 6988", "", "+50683236988"},
		{"+50683236988", "US", "+50683236988"}, // a leading + wins over the country
		{"020 7946 0958", "GB", "+442079460958"},
		{"020 7946 0958", "gb", "+442079460958"},
		{"(202) 555-0143", "US", "+12025550143"},
		{"8323-6988", "CR", "+50683236988"},
		{"+44 20 7946 0958", "", "+442079460958"},
		{"+33 1 23 45 67 89", "", "+33123456789"},
		{"020 7946 0958", "", ""},               // national, no country
		{"2025550143", "", ""},                  // national, no country
		{"+1 555 555 5555", "", "+15555555555"}, // possible, though not assigned
		{"+1-555-555-5555", "", "+15555555555"}, // the eComCharge reference's example
		{"＋64 3 331 6005", "", "+6433316005"},   // full-width plus
		{"Tel: +64 3 331 6005", "", "+6433316005"},
		{"0064 3 331 6005", "", "+6433316005"},   // an international call prefix instead of +
		{"011 64 3 331 6005", "", "+6433316005"}, // North America's
		{"00 44 20 7946 0958", "", "+442079460958"},
		{"0064 3 331 6005", "NZ", "+6433316005"}, // with a country, its own plan reads the prefix (NZ dials 00 out)
		{"00123", "", ""},                        // no such country code
		{"03-331 6005", "NZ", "+6433316005"},
		{"+383 44 123 456", "", "+38344123456"}, // Kosovo
		{"+1 23", "", ""},                       // too short to be possible
		{"000000000", "AR", ""},
		{"+0 123", "", ""},
		{"+", "", ""},
		{"phone", "US", ""},
	}
	for _, tt := range tests {
		t.Run(tt.phone+"/"+tt.country, func(t *testing.T) {
			in := domain.CustomerInput{Email: cs("a@b.example"), Phone: cs(tt.phone)}
			if tt.country != "" {
				in.Country = cs(tt.country)
			}
			if tt.country == "US" {
				in.State = cs("NY")
			}
			got, err := domain.CustomerFields{}.Apply(in, true)
			if tt.want == "" {
				if keys := fieldKeys(validationFields(t, err)); !reflect.DeepEqual(keys, []string{"phone"}) {
					t.Errorf("failing fields = %v, want [phone]", keys)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Phone != tt.want {
				t.Errorf("phone = %q, want %q", got.Phone, tt.want)
			}
		})
	}

	// The message of a national number without a country points at the international format.
	_, err := domain.CustomerFields{}.Apply(domain.CustomerInput{Email: cs("a@b.example"), Phone: cs("2025550143")}, true)
	if msg := validationFields(t, err)["phone"]; len(msg) != 1 || !strings.Contains(msg[0], "international format") {
		t.Errorf("phone message = %q, want one naming the international format", msg)
	}
}

// metadataOfSize is a compact JSON object of exactly n bytes (n >= 8).
func metadataOfSize(n int) string {
	return `{"k":"` + strings.Repeat("x", n-8) + `"}`
}

func TestCustomerMetadata(t *testing.T) {
	if len(metadataOfSize(10240)) != 10240 {
		t.Fatal("metadataOfSize is off")
	}
	tests := []struct {
		name string
		raw  string
		want string // "-" = rejected; "" = cleared
	}{
		{"object", `{"a":1}`, `{"a":1}`},
		{"nested", `{"a":{"b":{"c":[{"d":[]}]}}}`, `{"a":{"b":{"c":[{"d":[]}]}}}`},
		{"compacted", "{ \"a\" :\t1 ,\n \"b\": [ 1, 2 ] }", `{"a":1,"b":[1,2]}`},
		{"null clears", `null`, ""},
		{"10240 bytes", metadataOfSize(10240), metadataOfSize(10240)},
		{"over 10240 before compaction only", strings.Replace(metadataOfSize(10240), `"k":`, `"k" :     `, 1), metadataOfSize(10240)},
		{"10241 bytes", metadataOfSize(10241), "-"},
		{"array", `[]`, "-"},
		{"string", `"{}"`, "-"},
		{"number", `42`, "-"},
		{"invalid JSON", `{a:1}`, "-"},
		{"a number beyond float64", `{"x":1e999}`, "-"},
		{"a negative number beyond float64", `{"a":[{"b":-2e308}]}`, "-"},
		{"large but finite numbers", `{"x":1.7976931348623157e308,"y":12345678901234567890,"z":1e-999}`, `{"x":1.7976931348623157e308,"y":12345678901234567890,"z":1e-999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := domain.CustomerFields{Email: "a@b.example", Metadata: json.RawMessage(`{"old":true}`)}
			got, err := cur.Apply(domain.CustomerInput{Metadata: json.RawMessage(tt.raw)}, false)
			if tt.want == "-" {
				fields := validationFields(t, err)
				if keys := fieldKeys(fields); !reflect.DeepEqual(keys, []string{"metadata"}) {
					t.Fatalf("failing fields = %v, want [metadata]", keys)
				}
				if msg := fields["metadata"][0]; msg != "The metadata field must be a JSON object of at most 10 KB." && !strings.Contains(msg, "beyond what JSON parsers read") {
					t.Errorf("message = %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Metadata) != tt.want {
				t.Errorf("metadata = %.80s (len %d), want %.80s (len %d)", got.Metadata, len(got.Metadata), tt.want, len(tt.want))
			}
			if tt.want == "" && got.Metadata != nil {
				t.Errorf("cleared metadata = %q, want nil", got.Metadata)
			}
		})
	}

	// The stored metadata does not alias the input.
	raw := json.RawMessage(`{"a":1}`)
	got, err := domain.CustomerFields{}.Apply(domain.CustomerInput{Email: cs("a@b.example"), Metadata: raw}, true)
	if err != nil {
		t.Fatal(err)
	}
	raw[2] = 'z'
	if string(got.Metadata) != `{"a":1}` {
		t.Errorf("metadata aliases the input: %s", got.Metadata)
	}
}

func TestCustomerIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{" 10.0.0.4 ", "10.0.0.4"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
		{"::1", "::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::ffff:c000:201", "192.0.2.1"},
		{"01.2.3.4", ""},
		{"1.2.3.4/24", ""},
		{"[::1]", ""},
		{"fe80::1%eth0", ""},
		{"not an ip", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := domain.CustomerFields{}.Apply(domain.CustomerInput{Email: cs("a@b.example"), IP: cs(tt.in)}, true)
			if tt.want == "" {
				if keys := fieldKeys(validationFields(t, err)); !reflect.DeepEqual(keys, []string{"ip"}) {
					t.Errorf("failing fields = %v, want [ip]", keys)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.IP != tt.want {
				t.Errorf("ip = %q, want %q", got.IP, tt.want)
			}
		})
	}
}

func TestCustomerFieldsJSON(t *testing.T) {
	b, err := json.Marshal(domain.CustomerFields{Email: "a@b.example"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"email":"a@b.example"}` {
		t.Errorf("minimal = %s", b)
	}
	b, err = json.Marshal(custFields())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"email":"customer@example.com","email_as_typed":"Customer@Example.com","first_name":"John","last_name":"Doe","phone":"+12025550143",` +
		`"country":"US","address":"1st Street","city":"Denver","zip":"92006","state":"CO","ip":"127.0.0.1",` +
		`"metadata":{"crm_id":42,"tags":["vip"]}}`
	if string(b) != want {
		t.Errorf("full = %s\nwant   %s", b, want)
	}

	// CustomerInput decodes straight from a request body: absent = nil, "" = clear, metadata null kept.
	var in domain.CustomerInput
	if err := json.Unmarshal([]byte(`{"email":"a@b.example","first_name":"","metadata":null}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Email == nil || *in.Email != "a@b.example" || in.FirstName == nil || *in.FirstName != "" ||
		in.Phone != nil || string(in.Metadata) != "null" {
		t.Errorf("decoded input = %+v", in)
	}
}

func TestCountry(t *testing.T) {
	tests := []struct {
		in   string
		want domain.CountryInfo
	}{
		{"us", domain.CountryInfo{Name: "United States", Code: "US", Alpha3Code: "USA", DialCode: "+1", Currency: "USD", Flag: "🇺🇸"}},
		{"CR", domain.CountryInfo{Name: "Costa Rica", Code: "CR", Alpha3Code: "CRI", DialCode: "+506", Currency: "CRC", Flag: "🇨🇷"}},
		{" gb ", domain.CountryInfo{Name: "United Kingdom", Code: "GB", Alpha3Code: "GBR", DialCode: "+44", Currency: "GBP", Flag: "🇬🇧"}},
		{"DO", domain.CountryInfo{Name: "Dominican Republic", Code: "DO", Alpha3Code: "DOM", DialCode: "+1", Currency: "DOP", Flag: "🇩🇴"}},
		{"AQ", domain.CountryInfo{Name: "Antarctica", Code: "AQ", Alpha3Code: "ATA", DialCode: "+672", Currency: "", Flag: "🇦🇶"}},
	}
	for _, tt := range tests {
		got, ok := domain.Country(tt.in)
		if !ok || got != tt.want {
			t.Errorf("Country(%q) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{"", "ZZ", "XX", "UK", "XK", "AN", "YU", "EU", "USA", "840", "U", "United States", "1A"} {
		if got, ok := domain.Country(in); ok || got != (domain.CountryInfo{}) {
			t.Errorf("Country(%q) = %+v, %v; want unknown", in, got, ok)
		}
	}

	// Every accepted code is fully described; ISO 3166-1 assigns 249 codes.
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			code := string([]rune{a, b})
			c, ok := domain.Country(code)
			if !ok {
				continue
			}
			n++
			flag := string([]rune{0x1F1E6 + a - 'A', 0x1F1E6 + b - 'A'})
			if c.Code != code || c.Name == "" || len(c.Alpha3Code) != 3 || !strings.HasPrefix(c.DialCode, "+") ||
				len(c.DialCode) < 2 || c.Flag != flag || (c.Currency != "" && len(c.Currency) != 3) {
				t.Errorf("Country(%q) = %+v", code, c)
			}
		}
	}
	if n != 249 {
		t.Errorf("%d codes accepted, want 249", n)
	}
}

func TestPhone(t *testing.T) {
	us, _ := domain.Country("US")
	cr, _ := domain.Country("CR")
	gb, _ := domain.Country("GB")
	tests := []struct {
		in   string
		want domain.PhoneInfo
	}{
		{"+12345678900", domain.PhoneInfo{Number: "+1 234-567-8900", Country: us}},
		{"+50683236988", domain.PhoneInfo{Number: "+506 8323 6988", Country: cr}},
		{"+442079460958", domain.PhoneInfo{Number: "+44 20 7946 0958", Country: gb}},
		{"+80012345678", domain.PhoneInfo{Number: "+800 1234 5678", Country: domain.CountryInfo{DialCode: "+800"}}},
	}
	for _, tt := range tests {
		got, ok := domain.Phone(tt.in)
		if !ok || got != tt.want {
			t.Errorf("Phone(%q) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{"", "+", "2025550143", "phone", "+999 12345"} {
		if got, ok := domain.Phone(in); ok {
			t.Errorf("Phone(%q) = %+v, true; want false", in, got)
		}
	}

	// The JSON shape of Chariow's phone object.
	p, _ := domain.Phone("+12345678900")
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"number":"+1 234-567-8900","country":{"name":"United States","code":"US","alpha_3_code":"USA",` +
		`"dial_code":"+1","currency":"USD","flag":"🇺🇸"}}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}

func TestNewAddress(t *testing.T) {
	yes := true
	valid := []struct {
		name string
		in   domain.AddressInput
		want domain.AddressFields
	}{
		{"US", domain.AddressInput{Line1: cs(" 1st Street "), Line2: cs("Apt 4"), City: cs("Denver"), Zip: cs("80202-1234"),
			State: cs("co"), Country: cs("us"), Default: &yes},
			domain.AddressFields{Line1: "1st Street", Line2: "Apt 4", City: "Denver", Zip: "80202-1234", State: "CO", Country: "US"}},
		{"US without zip", domain.AddressInput{Line1: cs("1st Street"), City: cs("Denver"), State: cs("CO"), Country: cs("US")},
			domain.AddressFields{Line1: "1st Street", City: "Denver", State: "CO", Country: "US"}},
		{"CA", domain.AddressInput{Line1: cs("1 Rue"), City: cs("Montréal"), Zip: cs("H2X 1Y4"), State: cs("QC"), Country: cs("CA")},
			domain.AddressFields{Line1: "1 Rue", City: "Montréal", Zip: "H2X 1Y4", State: "QC", Country: "CA"}},
		{"GB minimal", domain.AddressInput{Line1: cs("10 Downing St"), Line2: cs(""), City: cs("London"), Country: cs("GB")},
			domain.AddressFields{Line1: "10 Downing St", City: "London", Country: "GB"}},
		{"limits", domain.AddressInput{Line1: cs(strings.Repeat("l", 200)), Line2: cs(strings.Repeat("m", 200)),
			City: cs(strings.Repeat("c", 100)), Zip: cs(strings.Repeat("z", 20)), State: cs(strings.Repeat("s", 100)), Country: cs("DE")},
			domain.AddressFields{Line1: strings.Repeat("l", 200), Line2: strings.Repeat("m", 200), City: strings.Repeat("c", 100),
				Zip: strings.Repeat("z", 20), State: strings.Repeat("s", 100), Country: "DE"}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.NewAddress(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	base := func(edit func(in *domain.AddressInput)) domain.AddressInput {
		in := domain.AddressInput{Line1: cs("1st Street"), City: cs("Denver"), Zip: cs("80202"), State: cs("CO"), Country: cs("US")}
		edit(&in)
		return in
	}
	invalid := []struct {
		name   string
		in     domain.AddressInput
		failed []string
	}{
		{"line1 missing", base(func(in *domain.AddressInput) { in.Line1 = nil }), []string{"line1"}},
		{"line1 blank", base(func(in *domain.AddressInput) { in.Line1 = cs("  ") }), []string{"line1"}},
		{"line1 too long", base(func(in *domain.AddressInput) { in.Line1 = cs(strings.Repeat("x", 201)) }), []string{"line1"}},
		{"line2 too long", base(func(in *domain.AddressInput) { in.Line2 = cs(strings.Repeat("x", 201)) }), []string{"line2"}},
		{"city missing", base(func(in *domain.AddressInput) { in.City = cs("") }), []string{"city"}},
		{"city too long", base(func(in *domain.AddressInput) { in.City = cs(strings.Repeat("x", 101)) }), []string{"city"}},
		{"country missing", base(func(in *domain.AddressInput) { in.Country, in.State, in.Zip = nil, nil, nil }), []string{"country"}},
		{"country unknown", base(func(in *domain.AddressInput) { in.Country, in.State, in.Zip = cs("UK"), nil, nil }), []string{"country"}},
		{"US zip", base(func(in *domain.AddressInput) { in.Zip = cs("8020") }), []string{"zip"}},
		{"US state missing", base(func(in *domain.AddressInput) { in.State = nil }), []string{"state"}},
		{"US state unknown", base(func(in *domain.AddressInput) { in.State = cs("ZZ") }), []string{"state"}},
		{"CA state missing", base(func(in *domain.AddressInput) { in.Country, in.State, in.Zip = cs("CA"), nil, nil }), []string{"state"}},
		{"non-US zip too long", base(func(in *domain.AddressInput) {
			in.Country, in.State, in.Zip = cs("FR"), nil, cs(strings.Repeat("1", 21))
		}), []string{"zip"}},
		{"all at once", domain.AddressInput{Line2: cs(strings.Repeat("x", 201)), Zip: cs(strings.Repeat("1", 21)),
			State: cs(strings.Repeat("s", 101)), Country: cs("ZZ")},
			[]string{"city", "country", "line1", "line2", "state", "zip"}},
		{"all at once, US", domain.AddressInput{Line1: cs(""), City: cs(" "), Zip: cs("ABCDE"), State: cs("California"), Country: cs("US")},
			[]string{"city", "line1", "state", "zip"}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.NewAddress(tt.in)
			if keys := fieldKeys(validationFields(t, err)); !reflect.DeepEqual(keys, tt.failed) {
				t.Errorf("failing fields = %v, want %v", keys, tt.failed)
			}
			if got != (domain.AddressFields{}) {
				t.Errorf("got %+v on failure", got)
			}
		})
	}

	if domain.MaxAddresses != 3 {
		t.Errorf("MaxAddresses = %d", domain.MaxAddresses)
	}
}
