package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits of the text fields commands accept, in characters (Unicode code points). Every string
// that enters the ledger has one (DESIGN §6), so no request can make an event, a read-model row or an
// answer larger than these allow; docs/api.md lists them field by field. Fields with a format of their
// own (emails, slugs, countries, zips, states, names of customers) keep their own, stricter rules.
const (
	// MaxIDLen: ids the client chooses or names (product.id, files[].id, campaign.id, customer.id,
	// discount.id) and every ledger id.
	MaxIDLen = 64
	// MaxNameLen: names (product, file, campaign, store; a buyer's names on a sale).
	MaxNameLen = 200
	// MaxTextLen: free text (product instructions).
	MaxTextLen = 5000
	// MaxURLLen: URLs (a file's origin).
	MaxURLLen = 2048
	// MaxKeywordLen: short labels (product.type, a file's MIME type, discount.code, a device type, a
	// country's name, a shipping city or state).
	MaxKeywordLen = 100
	// MaxPhoneLen: a phone number as typed, before it is parsed.
	MaxPhoneLen = 64
	// MaxDecimalLen: a decimal number written as text (a percentage, a fixed discount).
	MaxDecimalLen = 32
	// MaxReasonLen: a short explanation (a licence revocation's reason).
	MaxReasonLen = 500
	// MaxInstanceLen: a licence instance (machine or seat id).
	MaxInstanceLen = 200
)

// CheckLength reports, and records in v under field, whether s is longer than limit characters (for
// fields outside the domain's own commands, such as a refund's reason).
func CheckLength(v *ValidationError, field, s string, limit int) bool {
	return tooLong(v, field, s, limit)
}

// tooLong reports, and records in v under field, whether s is longer than limit characters.
func tooLong(v *ValidationError, field, s string, limit int) bool {
	// A string of at most limit bytes has at most limit characters: the count is only needed above it.
	if len(s) <= limit || utf8.RuneCountInString(s) <= limit {
		return false
	}
	v.Add(field, fmt.Sprintf("The %s field must be at most %d characters.", field, limit))
	return true
}

// MultilineFields are the free-text fields that may hold line breaks and tabs (by JSON name): product
// instructions, a rating's comment, a revocation's reason. Every other text field is one line.
var MultilineFields = map[string]bool{"instructions": true, "comment": true, "reason": true}

// CheckText records in v under field whether s holds a character no text field may: a control character
// (U+0000–U+001F, U+007F–U+009F; in a multi-line field line feed, carriage return and tab are allowed),
// a bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069: they make a name display as
// something else), or, in a one-line field, a line or paragraph separator (U+2028, U+2029).
func CheckText(v *ValidationError, field, s string, multiline bool) bool {
	bad := strings.ContainsFunc(s, func(r rune) bool {
		switch {
		case multiline && (r == '\n' || r == '\r' || r == '\t'):
			return false
		case unicode.IsControl(r), r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return true
		case !multiline && (r == 0x2028 || r == 0x2029):
			return true
		}
		return false
	})
	switch {
	case bad && multiline:
		v.Add(field, fmt.Sprintf("The %s field must not contain control characters other than line breaks and tabs (such as NUL), or bidirectional overrides.", field))
	case bad:
		v.Add(field, fmt.Sprintf("The %s field must not contain control characters (such as NUL or a line break) or bidirectional overrides.", field))
	}
	return bad
}
