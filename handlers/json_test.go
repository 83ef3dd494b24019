package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// depthOf is the oracle for tooDeep: the nesting depth of valid JSON as encoding/json's tokenizer sees it.
func depthOf(raw []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	depth, most := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return most, true
		}
		if err != nil {
			return 0, false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			most = max(most, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

func TestTooDeep(t *testing.T) {
	for _, tt := range []struct {
		body  string
		depth int
	}{
		{`{}`, 1},
		{`{"a":[1,{"b":[]}]}`, 4},
		{`{"s":"[[[[{{{{"}`, 1},
		{`{"s":"\"[[[","t":["\\",[]]}`, 3},
		{`"just a string"`, 0},
		{strings.Repeat("[", 32) + strings.Repeat("]", 32), 32},
	} {
		if got, _ := depthOf([]byte(tt.body)); got != tt.depth {
			t.Fatalf("oracle: depth of %s = %d, want %d", tt.body, got, tt.depth)
		}
		for _, limit := range []int{max(tt.depth-1, 0), tt.depth, tt.depth + 1} {
			if got, want := tooDeep([]byte(tt.body), limit), tt.depth > limit; got != want {
				t.Errorf("tooDeep(%s, %d) = %v, want %v", tt.body, limit, got, want)
			}
		}
	}
}

func FuzzTooDeep(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"]]\"["}]}`, `[[[["x"]]]]`, `{"\\":{"\\\"":[]}}`} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, raw []byte, limit int) {
		depth, valid := depthOf(raw)
		if !valid || limit < 0 {
			return // malformed JSON is the parser's to report; tooDeep only must not panic
		}
		if got, want := tooDeep(raw, limit), depth > limit; got != want {
			t.Fatalf("tooDeep(%q, %d) = %v, oracle depth %d", raw, limit, got, depth)
		}
	})
}

func TestListNamesIsBounded(t *testing.T) {
	var names []string
	for i := range 1000 {
		names = append(names, strings.Repeat("n", 1000)+string(rune('a'+i%26)))
	}
	got := listNames(names)
	if len(got) > 1000 || !strings.HasSuffix(got, "and 990 more") {
		t.Fatalf("listNames of 1,000 long names: %d bytes, %q…", len(got), got[:80])
	}
	if got := listNames([]string{"b", "a"}); got != "a, b" {
		t.Fatalf("listNames = %q", got)
	}
}
