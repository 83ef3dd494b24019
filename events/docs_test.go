package events_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/salesledger/ledger/events"
)

// eventTypeConstants reads this package's source and returns the value of every string constant named
// Type…: every event type the package defines. Reading the source, not a list kept by hand, is what
// makes a new event type fail the documentation tests below until it is documented.
func eventTypeConstants(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Type") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, v)
				}
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("found only %d event types: %v", len(out), out)
	}
	return out
}

// TestDocsEventsMDHasEveryEventType: docs/events.md lists every event type in its table of types and
// gives each a section of its own (a "#### " heading naming it).
func TestDocsEventsMDHasEveryEventType(t *testing.T) {
	b, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	table := doc[:strings.Index(doc, "\n## ")]
	var headings []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#### ") {
			headings = append(headings, line)
		}
	}
	for _, typ := range eventTypeConstants(t) {
		word := regexp.MustCompile(`(^|[^a-z_])` + typ + `([^a-z_]|$)`)
		if !strings.Contains(table, "`"+typ+"`") {
			t.Errorf("docs/events.md: %s is not in the table of event types", typ)
		}
		if !slices.ContainsFunc(headings, word.MatchString) {
			t.Errorf("docs/events.md: %s has no section (#### heading)", typ)
		}
	}
}

// TestDocsAsyncAPIHasEveryEventType: docs/asyncapi.yaml has a message for every event type, lists the
// type among the event types (the eventType parameter, which the ce-type header shares), and carries the
// message on the all-events channel and its operation.
func TestDocsAsyncAPIHasEveryEventType(t *testing.T) {
	doc := asyncAPI(t)
	enum := doc.Components.Parameters["eventType"].Enum
	msgByName := map[string]string{}
	for key, m := range doc.Components.Messages {
		msgByName[m.Name] = key
	}
	var onOperation []string
	for _, r := range doc.Operations["publishLedgerEvent"].Messages {
		onOperation = append(onOperation, strings.TrimPrefix(r.Ref, "#/channels/ledger/messages/"))
	}
	for _, typ := range eventTypeConstants(t) {
		if !slices.Contains(enum, typ) {
			t.Errorf("docs/asyncapi.yaml: %s is not in components.parameters.eventType.enum", typ)
		}
		key, ok := msgByName[typ]
		if !ok {
			t.Errorf("docs/asyncapi.yaml: no message named %s in components.messages", typ)
			continue
		}
		if _, ok := doc.Channels["ledger"].Messages[key]; !ok {
			t.Errorf("docs/asyncapi.yaml: message %s (%s) is not on channel ledger", key, typ)
		}
		if !slices.Contains(onOperation, key) {
			t.Errorf("docs/asyncapi.yaml: message %s (%s) is not in operation publishLedgerEvent", key, typ)
		}
	}
}

// TestDocsWebhookDeliverySchemasMatchPayloads: the webhook delivery events' schemas, in docs/events.md
// and docs/asyncapi.yaml, have exactly the payload structs' JSON members, required unless omitempty,
// and the version the payload has.
func TestDocsWebhookDeliverySchemasMatchPayloads(t *testing.T) {
	md, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := asyncAPI(t)
	for _, p := range []events.Payload{
		events.WebhookDeliveryScheduled{}, events.WebhookDeliveryAttempted{}, events.WebhookDeliveryRetryRequested{},
		events.WebhookDeliveryCancelled{}, events.WebhookDeliveryClaimed{},
	} {
		typ, version := p.EventType(), p.EventVersion()
		props, required := jsonMembers(reflect.TypeOf(p))

		// docs/events.md: the JSON Schema under "#### <type> (v<version>)".
		heading := fmt.Sprintf("\n#### %s (v%d)\n", typ, version)
		i := strings.Index(string(md), heading)
		if i < 0 {
			t.Errorf("docs/events.md: no heading %q", strings.TrimSpace(heading))
		} else {
			section := string(md[i+len(heading):])
			start := strings.Index(section, "```json\n")
			end := strings.Index(section[start+8:], "\n```")
			if start < 0 || end < 0 {
				t.Errorf("docs/events.md: %s has no JSON Schema", typ)
			} else {
				var s struct {
					Title      string                     `json:"title"`
					Required   []string                   `json:"required"`
					Properties map[string]json.RawMessage `json:"properties"`
				}
				if err := json.Unmarshal([]byte(section[start+8:start+8+end]), &s); err != nil {
					t.Errorf("docs/events.md: %s's schema: %v", typ, err)
				}
				checkMembers(t, "docs/events.md "+typ, keys(s.Properties), s.Required, props, required)
				if want := fmt.Sprintf("%s v%d", typ, version); s.Title != want {
					t.Errorf("docs/events.md: %s's schema title %q, want %q", typ, s.Title, want)
				}
			}
		}

		// docs/asyncapi.yaml: the message named <type> and the schema its payload refers to.
		var msg asyncMessage
		for _, m := range doc.Components.Messages {
			if m.Name == typ {
				msg = m
			}
		}
		if msg.Name == "" {
			t.Errorf("docs/asyncapi.yaml: no message %s", typ)
			continue
		}
		if want := fmt.Sprintf("%s v%d", typ, version); msg.Title != want {
			t.Errorf("docs/asyncapi.yaml: message %s is titled %q, want %q", typ, msg.Title, want)
		}
		s, ok := doc.Components.Schemas[strings.TrimPrefix(msg.Payload.Ref, "#/components/schemas/")]
		if !ok {
			t.Errorf("docs/asyncapi.yaml: %s's payload %q is not a schema", typ, msg.Payload.Ref)
			continue
		}
		checkMembers(t, "docs/asyncapi.yaml "+typ, keys(s.Properties), s.Required, props, required)
		for _, ex := range msg.Examples {
			if ex.Headers["ce-type"] != typ || ex.Headers["ce-dataversion"] != strconv.Itoa(version) {
				t.Errorf("docs/asyncapi.yaml: %s's example has ce-type %q, ce-dataversion %q", typ, ex.Headers["ce-type"], ex.Headers["ce-dataversion"])
			}
			// The example payload decodes into the struct with no member left over.
			b, err := json.Marshal(ex.Payload)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(reflect.New(reflect.TypeOf(p)).Interface()); err != nil {
				t.Errorf("docs/asyncapi.yaml: %s's example payload does not decode: %v", typ, err)
			}
		}
	}
}

func jsonMembers(t reflect.Type) (props, required []string) {
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		props = append(props, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	return props, required
}

func checkMembers(t *testing.T, where string, gotProps, gotRequired, props, required []string) {
	t.Helper()
	sortCopy := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	if g, w := sortCopy(gotProps), sortCopy(props); !slices.Equal(g, w) {
		t.Errorf("%s: properties %v, the payload has %v", where, g, w)
	}
	if g, w := sortCopy(gotRequired), sortCopy(required); !slices.Equal(g, w) {
		t.Errorf("%s: required %v, the payload's members without omitempty are %v", where, g, w)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

type asyncRef struct {
	Ref string `yaml:"$ref"`
}

type asyncMessage struct {
	Name     string   `yaml:"name"`
	Title    string   `yaml:"title"`
	Payload  asyncRef `yaml:"payload"`
	Examples []struct {
		Headers map[string]string `yaml:"headers"`
		Payload map[string]any    `yaml:"payload"`
	} `yaml:"examples"`
}

type asyncDoc struct {
	AsyncAPI string `yaml:"asyncapi"`
	Channels map[string]struct {
		Messages map[string]asyncRef `yaml:"messages"`
	} `yaml:"channels"`
	Operations map[string]struct {
		Messages []asyncRef `yaml:"messages"`
	} `yaml:"operations"`
	Components struct {
		Parameters map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"parameters"`
		Messages map[string]asyncMessage `yaml:"messages"`
		Schemas  map[string]struct {
			Required   []string       `yaml:"required"`
			Properties map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func asyncAPI(t *testing.T) asyncDoc {
	t.Helper()
	b, err := os.ReadFile("../docs/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc asyncDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/asyncapi.yaml: %v", err)
	}
	if doc.AsyncAPI == "" || len(doc.Components.Messages) == 0 {
		t.Fatal("docs/asyncapi.yaml: no asyncapi version or no messages")
	}
	return doc
}
