package domain

import "testing"

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
