package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/biter777/countries"
	"github.com/nyaruka/phonenumbers"
)

// MaxAddresses is the most addresses a customer may have.
const MaxAddresses = 3

// Limits on a customer's fields.
const (
	maxEmailLen     = 254
	maxNameLen      = 100   // first_name, last_name (runes)
	maxAddressLen   = 200   // address, line1, line2 (runes)
	maxCityLen      = 100   // city (runes)
	maxZipLen       = 20    // zip outside the US (runes)
	maxStateLen     = 100   // state outside the US and Canada (runes)
	maxMetadataSize = 10240 // metadata, bytes after compaction
)

// CustomerInput is what POST /v1/customers and PATCH /v1/customers/{id} accept. Pointer fields: nil =
// not given (PATCH leaves it unchanged); a pointer to "" = clear it (except email, which cannot be
// cleared).
type CustomerInput struct {
	Email     *string         `json:"email"`
	FirstName *string         `json:"first_name"`
	LastName  *string         `json:"last_name"`
	Phone     *string         `json:"phone"`
	Country   *string         `json:"country"` // ISO 3166-1 alpha-2
	Address   *string         `json:"address"`
	City      *string         `json:"city"`
	Zip       *string         `json:"zip"`
	State     *string         `json:"state"`
	IP        *string         `json:"ip"`
	Metadata  json.RawMessage `json:"metadata"` // nil = not given; JSON `null` = clear
}

// CustomerFields is a customer's personal data after validation and normalisation (what events carry).
type CustomerFields struct {
	Email        string          `json:"email"`                    // canonical: NormalizeEmail
	EmailAsTyped string          `json:"email_as_typed,omitempty"` // as typed, trimmed; "" when it is Email
	FirstName    string          `json:"first_name,omitempty"`
	LastName     string          `json:"last_name,omitempty"`
	Phone        string          `json:"phone,omitempty"`   // E.164, e.g. +12345678900
	Country      string          `json:"country,omitempty"` // alpha-2, upper case
	Address      string          `json:"address,omitempty"`
	City         string          `json:"city,omitempty"`
	Zip          string          `json:"zip,omitempty"`
	State        string          `json:"state,omitempty"`    // upper case for US and CA; free text elsewhere
	IP           string          `json:"ip,omitempty"`       // canonical form (netip)
	Metadata     json.RawMessage `json:"metadata,omitempty"` // a JSON object, compacted
}

// Apply validates in against the current fields (zero CustomerFields for a create) and returns the new
// fields. create=true requires email. Every failing field is reported at once in a *ValidationError
// (returned as error), with the JSON field name as key ("email", "phone", "country", "zip", "state",
// "ip", "metadata", "first_name", ...).
//
// Zip and state are checked against the resulting country whenever the customer is created or any of
// country, zip and state is given, so a PATCH that only moves a customer to the US fails unless the
// stored zip and state fit the US rules. Phone numbers without a leading + are read as national numbers
// of the resulting country.
func (cur CustomerFields) Apply(in CustomerInput, create bool) (CustomerFields, error) {
	var v ValidationError
	out := cur

	// email
	switch {
	case in.Email == nil && create:
		v.Add("email", "The email field is required.")
	case in.Email != nil:
		typed := strings.TrimSpace(*in.Email)
		e := NormalizeEmail(typed)
		switch {
		case e == "" && create:
			v.Add("email", "The email field is required.")
		case e == "":
			v.Add("email", "The email field cannot be cleared.")
		case len(e) > maxEmailLen || len(typed) > maxEmailLen:
			v.Add("email", fmt.Sprintf("The email field must be at most %d characters.", maxEmailLen))
		case !ValidEmail(e):
			v.Add("email", "The email field must be a valid email address.")
		default:
			out.Email, out.EmailAsTyped = e, typedEmail(typed, e)
		}
	}

	// free text
	setText(&v, "first_name", in.FirstName, maxNameLen, &out.FirstName)
	setText(&v, "last_name", in.LastName, maxNameLen, &out.LastName)
	setText(&v, "address", in.Address, maxAddressLen, &out.Address)
	setText(&v, "city", in.City, maxCityLen, &out.City)

	// country; countryOK says whether out.Country is one the zip/state rules can rely on.
	countryOK := true
	if in.Country != nil {
		if c := strings.TrimSpace(*in.Country); c == "" {
			out.Country = ""
		} else if code, ok := countryCode(c); ok {
			out.Country = code
		} else {
			v.Add("country", countryMessage(c))
			countryOK = false
		}
	}

	// zip and state, against the resulting country
	if in.Zip != nil {
		out.Zip = strings.TrimSpace(*in.Zip)
	}
	if in.State != nil {
		out.State = strings.TrimSpace(*in.State)
	}
	if countryOK && (create || in.Country != nil || in.Zip != nil) {
		checkZip(&v, "zip", out.Country, out.Zip)
	}
	if countryOK && (create || in.Country != nil || in.State != nil) {
		out.State = checkState(&v, "state", out.Country, out.State)
	}
	if !countryOK {
		// The country is wrong, so only the country-independent limits can be checked.
		if in.Zip != nil {
			checkZip(&v, "zip", "", out.Zip)
		}
		if in.State != nil {
			checkState(&v, "state", "", out.State)
		}
	}

	// phone, read in the resulting country when it has no leading +
	if in.Phone != nil {
		region := ""
		if countryOK {
			region = out.Country
		}
		if p := strings.TrimSpace(*in.Phone); p == "" {
			out.Phone = ""
		} else if !tooLong(&v, "phone", p, MaxPhoneLen) { // a long one is not worth parsing
			if e164, msg := normalizePhone(p, region); msg != "" {
				v.Add("phone", msg)
			} else {
				out.Phone = e164
			}
		}
	}

	// ip
	if in.IP != nil {
		if s := strings.TrimSpace(*in.IP); s == "" {
			out.IP = ""
		} else if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			v.Add("ip", "The ip field must be an IPv4 or IPv6 address.")
		} else {
			out.IP = a.Unmap().String()
		}
	}

	// metadata
	if in.Metadata != nil {
		out.Metadata = Metadata(&v, "metadata", in.Metadata)
	}

	if err := v.Err(); err != nil {
		return cur, err // cur unchanged
	}
	return out, nil
}

// DisplayEmail is the email as the customer typed it, or the canonical form when that is what they
// typed (or when the events predate keeping the typed form).
func (f CustomerFields) DisplayEmail() string {
	if f.EmailAsTyped != "" {
		return f.EmailAsTyped
	}
	return f.Email
}

// typedEmail is what is kept of a trimmed typed email beside its canonical form: nothing when they are
// the same.
func typedEmail(typed, canonical string) string {
	if typed == canonical {
		return ""
	}
	return typed
}

// setText trims a free-text field and stores it in dst if it is at most limit runes long.
func setText(v *ValidationError, field string, in *string, limit int, dst *string) {
	if in == nil {
		return
	}
	s := strings.TrimSpace(*in)
	if utf8.RuneCountInString(s) > limit {
		v.Add(field, fmt.Sprintf("The %s field must be at most %d characters.", field, limit))
		return
	}
	*dst = s
}

// requireText is setText for a field that must be given and not blank.
func requireText(v *ValidationError, field string, in *string, limit int, dst *string) {
	if in == nil || strings.TrimSpace(*in) == "" {
		v.Add(field, fmt.Sprintf("The %s field is required.", field))
		return
	}
	setText(v, field, in, limit, dst)
}

// Metadata is the one rule for the metadata a store attaches to what it creates (a customer, a
// checkout's sale): a JSON object of at most 10 KB once compacted, whose numbers are finite IEEE 754
// doubles (RFC 8259 §6: beyond them implementations disagree; 1e999 would come back as Infinity, which no
// JSON parser reads). It returns the object compacted; JSON null, or nothing, is no metadata (nil).
// Anything else is reported on v under field, and nil returned.
func Metadata(v *ValidationError, field string, raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	m, ok := compactObject(raw)
	if !ok {
		v.Add(field, fmt.Sprintf("The %s field must be a JSON object of at most %d KB.", field, maxMetadataSize/1024))
		return nil
	}
	if n, ok := infiniteNumber(m); ok {
		v.Add(field, fmt.Sprintf("The %s field holds the number %.40s, beyond what JSON parsers read (at most ±1.7976931348623157e308).", field, n))
		return nil
	}
	return m
}

// infiniteNumber returns the first number in the JSON value raw that overflows a float64.
func infiniteNumber(raw json.RawMessage) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n, ok := tok.(json.Number); ok {
			if _, err := strconv.ParseFloat(string(n), 64); err != nil {
				return string(n), true
			}
		}
	}
}

// compactObject returns raw compacted if it is JSON null (nil: clear) or a JSON object of at most
// maxMetadataSize bytes once compacted.
func compactObject(raw json.RawMessage) (json.RawMessage, bool) {
	t := bytes.TrimSpace(raw)
	if string(t) == "null" {
		return nil, true
	}
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil || b.Len() > maxMetadataSize {
		return nil, false
	}
	return json.RawMessage(b.Bytes()), true
}

// normalizePhone parses s as libphonenumber does — leading text such as "Tel:" skipped, full-width digits
// and plus sign, spaces, dashes, dots and brackets accepted, a national number read in region (the
// customer's country) — and returns its E.164 form, or a message saying what is wrong. A number is
// accepted when it is possible (its length fits its country's numbering plan), not only when it is
// assigned: the eComCharge reference's own example, +1-555-555-5555, is a possible number but no assigned
// one.
func normalizePhone(s, region string) (string, string) {
	num, err := phonenumbers.ParseAndKeepRawInput(s, region)
	if region == "" && err != nil {
		// Without a country, an international number written with an international call prefix instead
		// of "+" — "00" (most of the world) or "011" (North America): 0064 3 331 6005 — is read with the
		// prefix of a region that dials it, and kept only if libphonenumber read it as international.
		for _, idd := range []struct{ prefix, region string }{{"00", "GB"}, {"011", "US"}} {
			if !strings.HasPrefix(phonenumbers.NormalizeDigitsOnly(s), idd.prefix) {
				continue
			}
			// Valid, not merely possible: a UK national number such as 0117 925 0000 also starts with
			// 011, and read as international it is a possible, but unassigned, Russian number.
			if n, e := phonenumbers.ParseAndKeepRawInput(s, idd.region); e == nil && n.GetCountryCodeSource() == phonenumbers.PhoneNumber_FROM_NUMBER_WITH_IDD &&
				phonenumbers.IsValidNumber(n) {
				num, err = n, nil
				break
			}
		}
	}
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		if region != "" {
			return "", fmt.Sprintf("The phone field must be a possible phone number for %s or in international format.", region)
		}
		return "", "The phone field must be in international format, starting with + and the country calling code, unless a country is given."
	}
	if num.GetExtension() != "" {
		return "", "The phone field must not include an extension."
	}
	return phonenumbers.Format(num, phonenumbers.E164), ""
}

// unassigned are alpha-2 codes the countries package knows that ISO 3166-1 does not assign to a
// country: Netherlands Antilles (AN, deleted), Kosovo (XK, user-assigned) and Yugoslavia (YU, deleted).
var unassigned = map[string]bool{"AN": true, "XK": true, "YU": true}

// countryCode returns the upper-case ISO 3166-1 alpha-2 code s stands for, case-insensitively; only a
// code currently assigned to a country is accepted (not a name, a numeric or an alpha-3 code).
func countryCode(s string) (string, bool) {
	_, code, ok := lookupCountry(s)
	return code, ok
}

func lookupCountry(s string) (countries.CountryCode, string, bool) {
	code := strings.ToUpper(strings.TrimSpace(s))
	if len(code) != 2 || !isUpperAlpha(code[0]) || !isUpperAlpha(code[1]) || unassigned[code] {
		return countries.Unknown, "", false
	}
	// ByName matches codes and names loosely ("UK" is GB), so the alpha-2 it yields must be the input.
	c := countries.ByName(code)
	if !c.IsValid() || c.Alpha2() != code {
		return countries.Unknown, "", false
	}
	return c, code, true
}

func isUpperAlpha(b byte) bool { return 'A' <= b && b <= 'Z' }

func countryMessage(s string) string {
	if strings.EqualFold(strings.TrimSpace(s), "UK") {
		return `The country field must be an ISO 3166-1 alpha-2 code; the United Kingdom is "GB".`
	}
	return `The country field must be an ISO 3166-1 alpha-2 code, such as "US".`
}

var usZip = regexp.MustCompile(`^\d{5}(-\d{4})?$`)

// checkZip validates a zip (already trimmed; "" = none) for country.
func checkZip(v *ValidationError, field, country, zip string) {
	switch {
	case zip == "":
	case country == "US":
		if !usZip.MatchString(zip) {
			v.Add(field, fmt.Sprintf("The %s field must be NNNNN or NNNNN-NNNN for a US address.", field))
		}
	case utf8.RuneCountInString(zip) > maxZipLen:
		v.Add(field, fmt.Sprintf("The %s field must be at most %d characters.", field, maxZipLen))
	}
}

var (
	usStates = codeSet("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY " +
		"DC PR GU VI AS MP UM AA AE AP")
	caProvinces = codeSet("AB BC MB NB NL NS NT NU ON PE QC SK YT")
)

func codeSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(s) {
		m[c] = true
	}
	return m
}

// checkState validates a state (already trimmed; "" = none) for country and returns its stored form.
func checkState(v *ValidationError, field, country, state string) string {
	var known map[string]bool
	var what string
	switch country {
	case "US":
		known, what = usStates, "a US state or territory"
	case "CA":
		known, what = caProvinces, "a Canadian province or territory"
	default:
		if utf8.RuneCountInString(state) > maxStateLen {
			v.Add(field, fmt.Sprintf("The %s field must be at most %d characters.", field, maxStateLen))
		}
		return state
	}
	if state == "" {
		v.Add(field, fmt.Sprintf("The %s field is required when the country is %s.", field, country))
		return state
	}
	up := strings.ToUpper(state)
	if len(up) != 2 || !isUpperAlpha(up[0]) || !isUpperAlpha(up[1]) || !known[up] {
		v.Add(field, fmt.Sprintf("The %s field must be the two-letter code of %s.", field, what))
		return state
	}
	return up
}

// PhoneInfo is the phone object of the customer JSON (Chariow shape).
type PhoneInfo struct {
	Number  string      `json:"number"` // international format, e.g. "+1 234-567-8900"
	Country CountryInfo `json:"country"`
}

// CountryInfo describes a country in the customer JSON.
type CountryInfo struct {
	Name       string `json:"name"`
	Code       string `json:"code"` // alpha-2
	Alpha3Code string `json:"alpha_3_code"`
	DialCode   string `json:"dial_code"` // "+1"
	Currency   string `json:"currency"`  // ISO 4217 alpha code, "" if none
	Flag       string `json:"flag"`      // emoji flag
}

// Phone describes an E.164 number; ok=false if it cannot be parsed. The country is the one the number
// belongs to; for a number of no single country (such as +800) only the dial code is set.
func Phone(e164 string) (PhoneInfo, bool) {
	s := strings.TrimSpace(e164)
	if !strings.HasPrefix(s, "+") {
		return PhoneInfo{}, false
	}
	num, err := phonenumbers.Parse(s, "")
	if err != nil {
		return PhoneInfo{}, false
	}
	dial := "+" + strconv.Itoa(int(num.GetCountryCode()))
	info := PhoneInfo{Number: phonenumbers.Format(num, phonenumbers.INTERNATIONAL)}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if region == "" {
		region = phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
	}
	if c, ok := Country(region); ok {
		info.Country = c
	} else if region == "XK" {
		info.Country = kosovo
	}
	info.Country.DialCode = dial
	return info, true
}

// kosovo is the country of +383 numbers: libphonenumber's region XK, a code ISO 3166-1 leaves to user
// assignment (so Country does not take it as a customer's country) but that everyone uses for Kosovo
// (the European Commission, SWIFT, CLDR); alpha-3 XKX as the EU uses.
var kosovo = CountryInfo{Name: "Kosovo", Code: "XK", Alpha3Code: "XKX", DialCode: "+383", Currency: "EUR", Flag: flagOf("XK")}

// Country describes an alpha-2 code (case-insensitive); ok=false if unknown.
func Country(alpha2 string) (CountryInfo, bool) {
	c, code, ok := lookupCountry(alpha2)
	if !ok {
		return CountryInfo{}, false
	}
	info := CountryInfo{
		Name:       c.String(),
		Code:       code,
		Alpha3Code: c.Alpha3(),
	}
	// The country calling code proper (+1 for the Dominican Republic, not its +1809 area code), from
	// the phone number metadata; the countries package's first code where that has none.
	if cc := phonenumbers.GetCountryCodeForRegion(code); cc != 0 {
		info.DialCode = "+" + strconv.Itoa(cc)
	} else if ccs := c.CallCodes(); len(ccs) > 0 && ccs[0].IsValid() {
		info.DialCode = ccs[0].String()
	}
	if cur := c.Currency(); cur.IsValid() {
		info.Currency = cur.Alpha()
	}
	if f := c.Emoji(); utf8.ValidString(f) && utf8.RuneCountInString(f) == 2 {
		info.Flag = f
	} else {
		info.Flag = flagOf(code)
	}
	return info, true
}

// flagOf spells code with Unicode regional indicator symbols, which renders a two-letter code as its
// flag.
func flagOf(code string) string {
	var b strings.Builder
	for _, r := range code {
		b.WriteRune(0x1F1E6 + r - 'A')
	}
	return b.String()
}

// AddressInput is one of a customer's postal addresses as given.
type AddressInput struct {
	Line1   *string `json:"line1"`
	Line2   *string `json:"line2"`
	City    *string `json:"city"`
	Zip     *string `json:"zip"`
	State   *string `json:"state"`
	Country *string `json:"country"`
	Default *bool   `json:"default"`
}

// AddressFields is one of a customer's postal addresses after validation and normalisation.
type AddressFields struct {
	Line1   string `json:"line1"`
	Line2   string `json:"line2,omitempty"`
	City    string `json:"city"`
	Zip     string `json:"zip,omitempty"`
	State   string `json:"state,omitempty"`
	Country string `json:"country"`
}

// NewAddress validates an address: line1, city and country are required, and zip, state and country
// follow the customer's rules. Errors come as a *ValidationError with keys "line1", "line2", "city",
// "zip", "state" and "country". Default is the caller's business and is not looked at.
func NewAddress(in AddressInput) (AddressFields, error) {
	var v ValidationError
	var a AddressFields
	requireText(&v, "line1", in.Line1, maxAddressLen, &a.Line1)
	setText(&v, "line2", in.Line2, maxAddressLen, &a.Line2)
	requireText(&v, "city", in.City, maxCityLen, &a.City)
	countryOK := false
	switch {
	case in.Country == nil || strings.TrimSpace(*in.Country) == "":
		v.Add("country", "The country field is required.")
	default:
		if code, ok := countryCode(*in.Country); ok {
			a.Country, countryOK = code, true
		} else {
			v.Add("country", countryMessage(*in.Country))
		}
	}
	if in.Zip != nil {
		a.Zip = strings.TrimSpace(*in.Zip)
	}
	if in.State != nil {
		a.State = strings.TrimSpace(*in.State)
	}
	if countryOK {
		checkZip(&v, "zip", a.Country, a.Zip)
		a.State = checkState(&v, "state", a.Country, a.State)
	} else {
		checkZip(&v, "zip", "", a.Zip)
		checkState(&v, "state", "", a.State)
	}
	if err := v.Err(); err != nil {
		return AddressFields{}, err
	}
	return a, nil
}
