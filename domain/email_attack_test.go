package domain

import "testing"

// Found by the second attack review: the IDD reading without a country must only keep
// a valid number; these are UK national numbers that it turns into numbers of other countries.
func TestIDDReadingKeepsOnlyValidNumbers(t *testing.T) {
	for _, p := range []string{"0117 925 0000", "0116 252 2522", "0115 951 5151", "0114 496 0000"} {
		if got, msg := normalizePhone(p, ""); msg == "" {
			t.Errorf("normalizePhone(%q, \"\") = %q, want refused (a UK national number read as international)", p, got)
		}
	}
	// The cases 0ae9931 meant to accept still are.
	for p, want := range map[string]string{"0064 3 331 6005": "+6433316005", "011 64 3 331 6005": "+6433316005", "00 1 212 555 0100": "+12125550100"} {
		if got, msg := normalizePhone(p, ""); got != want {
			t.Errorf("normalizePhone(%q, \"\") = %q %q, want %q", p, got, msg, want)
		}
	}
}

// Found by the second attack review: invisible characters outside Cf in the local part.
func TestEmailRefusesDefaultIgnorables(t *testing.T) {
	for _, e := range []string{"jo\u034fhn@example.com", "jo\ufe0fhn@example.com", "john\u3164@example.com", "john\u2800@example.com", "jo\u00a0hn@example.com", "jo\u115fhn@example.com"} {
		if ValidEmail(NormalizeEmail(e)) {
			t.Errorf("%+q accepted: displays as john@example.com", e)
		}
	}
}

// Found by the second attack review: a Persian domain whose label holds ZERO WIDTH NON-JOINER where IDNA 2008's CONTEXTJ
// rule allows it (RFC 5892 appendix A.1; "نامه‌ای") is refused by the blanket Cf rule, in either form.
func TestEmailZWNJValidInIDNADomain(t *testing.T) {
	for _, e := range []string{"user@xn--mgba3gch31f060k.ir", "user@نامه\u200cای.ir"} {
		if !ValidEmail(NormalizeEmail(e)) {
			t.Errorf("%q refused; IDNA 2008 (CONTEXTJ) allows this ZWNJ and such domains are registered", e)
		}
	}
}
