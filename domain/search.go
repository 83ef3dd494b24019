package domain

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// PhoneSearchText is what a customer search indexes for a stored E.164 number: the number itself, its
// digits without the +, and the digits of its national format as libphonenumber formats it (with the
// trunk prefix where the country dials one: +64 3 331 6005 is "03 331 6005" in New Zealand, so
// "033316005"; +1 555-555-5555 is "(555) 555-5555", so "5555555555"). A search's digits are matched
// against these as fragments, so the national significant number, the last digits and the country code
// with the number are found too. "" for no number.
func PhoneSearchText(e164 string) string {
	if e164 == "" {
		return ""
	}
	parts := []string{e164, strings.TrimPrefix(e164, "+")}
	if num, err := phonenumbers.Parse(e164, ""); err == nil {
		if national := phonenumbers.NormalizeDigitsOnly(phonenumbers.Format(num, phonenumbers.NATIONAL)); national != parts[1] {
			parts = append(parts, national)
		}
	}
	return strings.Join(parts, " ")
}

// PhoneSearchDigits reads a search term as a phone number, or a fragment of one, the way a person types
// it: digits in any script (libphonenumber's NormalizeDigitsOnly), with spaces, dashes, dots, slashes and
// brackets between them, a leading + (or full-width ＋), or an international call prefix (00, or the
// North American 011) before the country code. It returns the digit strings to look for among
// PhoneSearchText's fragments: the term's own digits, and — when the term is a whole international
// number libphonenumber can parse — that number's E.164 digits, which takes "+64 (0)3 331 6005" and
// "0064 3 331 6005" to "6433316005". It returns nil for a term that is not phone-like (letters, an @)
// or has fewer than 3 digits, the shortest fragment the search index can look up.
func PhoneSearchDigits(q string) []string {
	q = strings.TrimSpace(q)
	for _, r := range q {
		if !unicode.IsDigit(r) && !strings.ContainsRune(" +＋-‐‑‒–—−.()[]/", r) {
			return nil
		}
	}
	digits := phonenumbers.NormalizeDigitsOnly(q)
	if len(digits) < 3 {
		return nil
	}
	out := []string{digits}
	international := ""
	switch {
	case strings.HasPrefix(q, "+") || strings.HasPrefix(q, "＋"):
		international = q
	case strings.HasPrefix(digits, "00"):
		international = "+" + digits[2:]
	case strings.HasPrefix(digits, "011"):
		international = "+" + digits[3:]
	}
	if international != "" {
		if num, err := phonenumbers.Parse(international, ""); err == nil && phonenumbers.IsPossibleNumber(num) {
			if e := strings.TrimPrefix(phonenumbers.Format(num, phonenumbers.E164), "+"); e != digits {
				out = append(out, e)
			}
		}
	}
	return out
}

// EmailSearchText is what a customer search indexes for an email: its canonical form (NormalizeEmail)
// and, when the customer typed it otherwise, the typed form lower-cased and in NFC, so that both an
// internationalised domain's Unicode and its Punycode are found.
func EmailSearchText(canonical, typed string) string {
	t := strings.ToLower(norm.NFC.String(typed))
	if typed == "" || t == canonical {
		return canonical
	}
	return canonical + " " + t
}

// EmailSearchForms are the forms a search term is looked for in, besides itself lower-cased and in NFC:
// for an email (or part of one, from the @) its canonical form, and for a domain in Punycode
// ("xn--bcher-kva.example", RFC 3492) its Unicode form, so that a search matches however the address
// was typed.
func EmailSearchForms(q string) []string {
	q = strings.ToLower(norm.NFC.String(strings.TrimSpace(q)))
	var out []string
	if c := NormalizeEmail(q); c != q {
		out = append(out, c)
	}
	if !strings.Contains(q, "@") && strings.Contains(q, "xn--") {
		if u, err := idna.Lookup.ToUnicode(q); err == nil && u != q {
			out = append(out, u)
		}
	}
	return out
}
