package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/salesledger/ledger/domain"
)

// MaxBodyBytes caps every request body; larger bodies are answered 413.
const MaxBodyBytes = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// data wraps a single object: {"data": {...}}.
type data struct {
	Data any `json:"data"`
}

// errBodyTimeout is a body that did not arrive within the server's read timeout.
var errBodyTimeout = &requestError{http.StatusRequestTimeout, "request_timeout",
	"The request body did not arrive in time; send the whole body without pausing."}

// readBody reads the whole request body. Failing to read it is the client's doing, never a 500: a body
// over the limit is 413 (*http.MaxBytesError), one that stalls past the read timeout 408, one cut short
// 400.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError classifies an error reading a request body (see readBody).
func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		ne  net.Error
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errBodyTimeout
	}
	return badRequest("The request body could not be read to its end (" + err.Error() + ").")
}

// decodeBody reads one JSON object into v. It rejects a body that is not UTF-8 (400), not JSON (400), a
// key given twice in one object (400, naming it), a field the object does not have (400, naming it), a
// field of the wrong type (422, naming it), trailing data (400), and a text field holding a control
// character or a bidirectional override (422, naming it; see domain.CheckText).
// The body is read whole first, so it is also available to the caller as raw bytes.
func decodeBody(r *http.Request, v any) ([]byte, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, badRequest("The request body is empty; send a JSON object.")
	}
	if err := checkEncoding(raw); err != nil {
		return nil, err
	}
	if tooDeep(raw, MaxJSONDepth) {
		return nil, errTooDeep
	}
	if bytes.TrimSpace(raw)[0] != '{' {
		// null, a string, a number, an array: not an object, whatever json.Unmarshal would make of it
		// (it reads null into an object as if it were {}).
		return nil, errNotObject
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, badRequest("The request body is not valid JSON: " + err.Error())
	}
	if key, found := duplicateKey(raw); found {
		return nil, badRequest(fmt.Sprintf("The request body gives the key %s twice in one object; give each key once.", listNames([]string{key})))
	}
	var unknown []string
	unknownFields(raw, reflect.TypeOf(v), "", &unknown)
	if len(unknown) > 0 {
		return nil, badRequest("Unknown field(s) in the request body: " + listNames(unknown) + ".")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			var ve domain.ValidationError
			ve.Add(typ.Field, fmt.Sprintf("The %s field must be %s.", typ.Field, article(typ.Type.Kind())))
			return nil, &ve
		}
		return nil, badRequest("The request body is not valid JSON: " + err.Error())
	}
	var ve domain.ValidationError
	checkTexts(reflect.ValueOf(v), "", "", &ve)
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return raw, nil
}

// MaxJSONDepth is how deep a request body may nest objects and arrays; deeper is 400. Nothing the API
// accepts needs more, and stored JSON (metadata) must stay readable by every consumer's parser.
const MaxJSONDepth = 32

var errNotObject = badRequest("The request body must be a JSON object.")

var errTooDeep = badRequest(fmt.Sprintf("The request body nests objects and arrays deeper than %d levels.", MaxJSONDepth))

// tooDeep reports whether raw nests objects and arrays deeper than limit. It counts brackets outside
// strings in one pass, without parsing, so it can run before any parser sees the body. Malformed JSON
// is left for the parser to report.
func tooDeep(raw []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, b := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			if depth++; depth > limit {
				return true
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return false
}

// listNames lists names for a message: sorted, at most 10 (then how many more), each cut to 64
// characters, so that a body of invented names cannot make the answer as large as itself.
func listNames(names []string) string {
	sort.Strings(names)
	const most, width = 10, 64
	out := make([]string, 0, most+1)
	for i, n := range names {
		if i == most {
			out = append(out, fmt.Sprintf("and %d more", len(names)-most))
			break
		}
		if r := []rune(n); len(r) > width {
			n = string(r[:width]) + "…"
		}
		out = append(out, n)
	}
	return strings.Join(out, ", ")
}

func article(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// unknownFields lists, as dotted paths (customer.emial, product.files[0].nme), the object keys in raw
// that t does not have, at any depth. Names match exactly. Types that decode themselves, maps and
// free-form values (any, json.RawMessage) accept whatever they are given; a value of the wrong kind is
// left for json.Unmarshal to report.
func unknownFields(raw json.RawMessage, t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return
		}
		fields := jsonFields(t)
		for name, v := range obj {
			ft, ok := fields[name]
			if !ok {
				*out = append(*out, path+name)
				continue
			}
			unknownFields(v, ft, path+name+".", out)
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return
		}
		for i, v := range items {
			unknownFields(v, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i), out)
		}
	}
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the JSON names a struct type accepts to their types, embedded structs included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					m[k] = v
				}
				continue
			}
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
