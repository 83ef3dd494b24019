package handlers

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/salesledger/ledger/domain"
)

// errNotUTF8 is a body with bytes that are not UTF-8, or a \u escape naming half of a surrogate pair:
// either would be stored as U+FFFD, silently changing what was sent.
var errNotUTF8 = badRequest("The request body is not valid UTF-8 text (or escapes half of a UTF-16 surrogate pair); send every string as UTF-8.")

// checkEncoding accepts a body that is UTF-8 and whose \u escapes all name characters.
func checkEncoding(raw []byte) error {
	if !utf8.Valid(raw) || loneSurrogate(raw) {
		return errNotUTF8
	}
	return nil
}

// loneSurrogate reports whether a JSON string in raw escapes a surrogate that is not part of a pair.
func loneSurrogate(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		switch {
		case !inString:
			inString = b == '"'
		case b == '"':
			inString = false
		case b == '\\' && i+1 < len(raw):
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(raw, i+2)
			if !ok {
				return false // malformed: the parser reports it
			}
			i += 5
			if !utf16.IsSurrogate(r) {
				continue
			}
			if r >= 0xDC00 { // a low surrogate first
				return true
			}
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(raw, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// duplicateKey finds a key given twice in one object of raw and returns its path (customer.email):
// parsers disagree on which of the two counts, so such a body means different things to different
// readers. Keys are compared without case, as encoding/json matches them to fields: "sale_id" and
// "Sale_ID" are one field to the ledger. Malformed JSON is left for the parser to report. Call it after
// tooDeep: it recurses.
func duplicateKey(raw []byte) (string, bool) {
	path, found, _ := duplicateIn(json.NewDecoder(bytes.NewReader(raw)), "")
	return path, found
}

func duplicateIn(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			key, _ := tok.(string)
			folded := strings.ToUpper(strings.ToLower(key))
			if keys[folded] {
				return join(key), true, nil
			}
			keys[folded] = true
			if p, found, err := duplicateIn(dec, join(key)); found || err != nil {
				return p, found, err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, found, err := duplicateIn(dec, join(strconv.Itoa(i))); found || err != nil {
				return p, found, err
			}
		}
		_, err = dec.Token()
	}
	return "", false, err
}

// checkTexts walks a decoded request body and records every string field that holds a character text
// may not (domain.CheckText), by its JSON path (product.files.0.name). Free-form JSON (metadata) is the
// client's own and is not walked.
func checkTexts(v reflect.Value, path, name string, out *domain.ValidationError) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkTexts(v.Elem(), path, name, out)
		}
	case reflect.String:
		domain.CheckText(out, path, v.String(), domain.MultilineFields[name])
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && tag == "" {
				checkTexts(v.Field(i), path, name, out)
				continue
			}
			if !f.IsExported() || tag == "-" {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			checkTexts(v.Field(i), joinPath(path, tag), tag, out)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // json.RawMessage, bytes
		}
		for i := 0; i < v.Len(); i++ {
			checkTexts(v.Index(i), joinPath(path, strconv.Itoa(i)), name, out)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			checkTexts(v.MapIndex(k), joinPath(path, k.String()), k.String(), out)
		}
	}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
