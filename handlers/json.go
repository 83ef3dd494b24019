package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// decodeBody reads one JSON object into v. It rejects a body that is not JSON (400), a field the object
// does not have (400, naming it), a field of the wrong type (422, naming it) and trailing data (400).
// The body is read whole first, so it is also available to the caller as raw bytes.
func decodeBody(r *http.Request, v any) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err // *http.MaxBytesError → 413
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, badRequest("The request body is empty; send a JSON object.")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, badRequest("The request body must be a JSON object.")
		}
		return nil, badRequest("The request body is not valid JSON: " + err.Error())
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	var unknown []string
	for name := range fields {
		if _, ok := known[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, badRequest(fmt.Sprintf("Unknown field(s) in the request body: %s.", strings.Join(unknown, ", ")))
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
	return raw, nil
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

var fieldCache sync.Map // reflect.Type → map[string]struct{}

// jsonFields lists the top-level JSON names a struct type accepts.
func jsonFields(t reflect.Type) map[string]struct{} {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]struct{})
	}
	m := map[string]struct{}{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = struct{}{}
	}
	fieldCache.Store(t, m)
	return m
}
