package domain

import (
	"strings"
	"testing"
)

// Emails as people type them: one address in two Unicode forms, or with its domain in Unicode or
// Punycode, is one address; domains no mail system would deliver to are refused.
func TestEmailForms(t *testing.T) {
	same := [][2]string{
		{"zoë@example.com", "zoe\u0308@example.com"},        // precomposed and combining diaeresis
		{"Ana@Bücher.Example", "ana@xn--bcher-kva.example"}, // Unicode and Punycode domain, case
		{" ana@example.com ", "ANA@EXAMPLE.COM"},
	}
	for _, p := range same {
		if a, b := NormalizeEmail(p[0]), NormalizeEmail(p[1]); a != b {
			t.Errorf("%q and %q normalise to %q and %q", p[0], p[1], a, b)
		}
	}
	for _, tc := range []struct {
		email string
		valid bool
	}{
		{"ana@example.com", true},
		{NormalizeEmail("ana@xn--bcher-kva.example"), true},
		{NormalizeEmail("zoe\u0308@example.com"), true},
		{"user@-example.com", false},
		{"user@example-.com", false},
		{"user@[192.0.2.1]", false},
		{"user@localhost", false},
		{"user@exa mple.com", false},
		{"user@@example.com", false},
	} {
		if got := ValidEmail(tc.email); got != tc.valid {
			t.Errorf("ValidEmail(%q) = %v, want %v", tc.email, got, tc.valid)
		}
	}
}

// A Kosovo number (+383, libphonenumber's region XK) has its country.
func TestPhoneCountryKosovo(t *testing.T) {
	info, ok := Phone("+38344123456")
	if !ok || info.Country.Code != "XK" || info.Country.Name != "Kosovo" || info.Country.DialCode != "+383" {
		t.Fatalf("Phone(+38344123456) = %+v, %v", info, ok)
	}
}

// TestEmailCanonicalFormIsNFCAfterLowerCasing: lower-casing can undo NFC (J + U+030C lower-cases to
// j + U+030C, whose NFC is ǰ U+01F0), which made one address two customers (found by an attack review).
func TestEmailCanonicalFormIsNFCAfterLowerCasing(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"\u01f0ohn@example.com", "J\u030cohn@example.com"},
		{"\u01f0ohn@example.com", "j\u030cohn@example.com"},
		{"ZOË@example.com", "zoe\u0308@EXAMPLE.COM"},
	} {
		if NormalizeEmail(c.a) != NormalizeEmail(c.b) {
			t.Errorf("NormalizeEmail(%q) = %q, NormalizeEmail(%q) = %q: one address, two canonical forms",
				c.a, NormalizeEmail(c.a), c.b, NormalizeEmail(c.b))
		}
	}
}

// TestEmailRefusesInvisibleCharacters: format characters pass the control-character rule and made an
// address that displays exactly like another customer's.
func TestEmailRefusesInvisibleCharacters(t *testing.T) {
	for _, e := range []string{"jo\u200bhn@example.com", "jo\u200dhn@example.com", "jo\u2060hn@example.com",
		"jo\ufeffhn@example.com", "jo\u00adhn@example.com", "john@exa\u200bmple.com", "\u202ejohn@example.com"} {
		// Refused, or (in the domain, where IDNA's mapping drops them) read as the address it imitates.
		if n := NormalizeEmail(e); ValidEmail(n) && n != "john@example.com" {
			t.Errorf("%q is valid as %q: a second customer that looks like john@example.com", e, n)
		}
	}
}

// TestEmailDomainsAMailSystemDelivers: a label over 63 octets and an IP address without brackets were
// accepted (found by a new-user review).
func TestEmailDomainsAMailSystemDelivers(t *testing.T) {
	for _, e := range []string{
		"a@" + strings.Repeat("x", 64) + ".com", "a@123.123.123.123", "a@example.123", "a@under_score.example",
		"a@" + strings.Repeat("abcdefghi.", 26) + "com",
	} {
		if ValidEmail(NormalizeEmail(e)) {
			t.Errorf("ValidEmail(%q) = true; want false", e)
		}
	}
	for _, e := range []string{"a@" + strings.Repeat("x", 63) + ".com", "a@123.example", "a@bücher.example", "a@xn--bcher-kva.example", "a@example.co.uk", "a@1.example.io"} {
		if !ValidEmail(NormalizeEmail(e)) {
			t.Errorf("ValidEmail(%q) = false; want true", e)
		}
	}
}
