package domain

import (
	"net/mail"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// NormalizeEmail is the form an email is kept and compared in: trimmed, lower-cased, in Unicode
// normalisation form NFC (the same address typed with "ë" or with "e" and a combining diaeresis is one
// address; NFC is applied again after lower-casing, which can undo it: "J" + U+030C lower-cases to "j" +
// U+030C, whose NFC is "ǰ"), and with an internationalised domain in its Unicode form (IDNA 2008, UTS #46:
// "xn--bcher-kva.example" and "bücher.example" are one domain). A domain that is not a valid host name is
// left as it is, for ValidEmail to refuse.
func NormalizeEmail(email string) string {
	e := norm.NFC.String(strings.ToLower(norm.NFC.String(strings.TrimSpace(email))))
	at := strings.LastIndex(e, "@")
	if at < 0 {
		return e
	}
	if host, err := idna.Lookup.ToUnicode(e[at+1:]); err == nil {
		e = e[:at+1] + host
	}
	return e
}

// ValidEmail reports whether s is a bare email address a mail system would deliver to: RFC 5322 addr-spec
// (net/mail) whose domain is a host name with at least one dot, valid under IDNA 2008's lookup rules (no
// label beginning or ending with a hyphen, no address literal such as "[192.0.2.1]"), and whose local part
// holds no invisible character (see invisible), which would make an address that displays exactly like
// another customer's. The domain's own invisible characters are IDNA's to judge: its mapping drops some,
// and its CONTEXTJ rule (RFC 5892 A.1) allows a zero-width non-joiner where Persian needs one.
func ValidEmail(s string) bool {
	if local, _, ok := strings.Cut(s, "@"); !ok || strings.IndexFunc(local, invisible) >= 0 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	host := s[strings.LastIndex(s, "@")+1:]
	if !strings.Contains(host, ".") || strings.HasPrefix(host, "[") {
		return false
	}
	ascii, err := mailDomain.ToASCII(host)
	if err != nil {
		return false
	}
	// A top-level domain is never all digits (RFC 3696 §2): "a@123.123.123.123" is an IP address
	// written without the brackets of an address literal.
	tld := ascii[strings.LastIndex(ascii, ".")+1:]
	return strings.ContainsFunc(tld, func(r rune) bool { return r < '0' || r > '9' })
}

// mailDomain is IDNA 2008's lookup profile (UTS #46 mapping, the Bidi rule) plus the DNS's own limits
// (RFC 1035 §2.3.4: labels of 1 to 63 octets, a name of at most 253) and host-name letters, digits and
// hyphens (RFC 952, 1123) in the ASCII form: the domains a mail system can deliver to.
var mailDomain = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true), idna.StrictDomainName(true))

// invisible reports whether r shows nothing, or only blank space, where it stands: format characters
// (Unicode category Cf: zero-width space and joiners, word joiner, byte order mark, soft hyphen), space
// separators (Zs, the no-break space among them), variation selectors, the other default-ignorable code
// points (Hangul fillers, the combining grapheme joiner U+034F) and the blank Braille pattern U+2800.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zs, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
		r == 0x034F || r == 0x2800
}
