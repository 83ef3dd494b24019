package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events/jetstream"
)

// listPage is one page of a list endpoint: the ids in order and the two cursors ("" for null).
type listPage struct {
	ids        []string
	next, prev string
	hasMore    bool
}

func getPage(t *testing.T, c client, key, path string) listPage {
	t.Helper()
	r := c.do("GET", path, "Bearer "+key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
	}
	pg := r.body["pagination"].(map[string]any)
	next, _ := pg["next_cursor"].(string)
	prev, _ := pg["prev_cursor"].(string)
	return listPage{ids: listIDs(t, r), next: next, prev: prev, hasMore: pg["has_more"] == true}
}

// TestCursorsSurviveTheirAnchorLeaving (issue 9): a cursor is a position, and it stays right when the
// item it was taken from, or the items after it, leave the list between two page fetches — a sale paid
// out of status=awaiting_payment, an erased customer. Going back from an empty page used to skip the
// anchor (the last item of the page before), so it answered [] although that item was still listed.
func TestCursorsSurviveTheirAnchorLeaving(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}

	type kind struct {
		name  string
		list  string                             // the list's path and filter, to which per_page and cursor are added
		add   func(key string, i int) string     // registers an item of the list, returns its id
		leave func(t *testing.T, key, id string) // takes it out of the list
	}
	kinds := []kind{
		{
			name: "sales paid out of status=awaiting_payment",
			list: "/v1/sales?status=awaiting_payment",
			add: func(key string, i int) string {
				r := c.post("/v1/checkouts", key, "", checkoutBody(fmt.Sprintf("buyer%d@example.com", i), 1000, ""))
				if r.status != http.StatusCreated {
					t.Fatalf("checkout: %d %s", r.status, r.raw)
				}
				return field(r.body, "data.id").(string)
			},
			leave: func(t *testing.T, key, id string) {
				if r := c.standardWebhook("pay_"+id, paymentBody("payment.succeeded", id, 1000, "USD"), time.Now()); r.status != http.StatusOK {
					t.Fatalf("webhook: %d %s", r.status, r.raw)
				}
				waitSale(t, c, key, id, func(d map[string]any) bool { return d["status"] == "completed" })
			},
		},
		{
			name: "customers erased",
			list: "/v1/customers?search=example.com",
			add: func(key string, i int) string {
				return mustCustomer(t, c, key, fmt.Sprintf(`{"email":"person%d@example.com"}`, i))["id"].(string)
			},
			leave: func(t *testing.T, key, id string) {
				if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+key, nil); r.status != http.StatusOK {
					t.Fatalf("erase %s: %d %s", id, r.status, r.raw)
				}
			},
		},
	}
	// Each scenario starts with three items, n[0] the newest, and says what the walk must see.
	scenarios := []struct {
		name string
		run  func(t *testing.T, k kind, key string, n []string, page func(perPage int, cursor string) listPage)
	}{
		{"forward to an empty page, then back", func(t *testing.T, k kind, key string, n []string, page func(int, string) listPage) {
			p1 := page(2, "")
			k.leave(t, key, n[2]) // what the next page would have shown
			empty := page(2, p1.next)
			if len(empty.ids) != 0 || empty.next != "" || empty.hasMore || empty.prev == "" {
				t.Fatalf("the page after the last: %+v, want empty with only prev_cursor", empty)
			}
			// n[2], the only older one, left: no next_cursor (has_more is exact going back too).
			if back := page(2, empty.prev); !slices.Equal(back.ids, n[:2]) || back.prev != "" || back.next != "" || back.hasMore {
				t.Errorf("back from the empty page: %+v, want %v (the anchor %s included) and no cursors", back, n[:2], n[1])
			}
			k.leave(t, key, n[1]) // the anchor itself leaves
			if back := page(2, empty.prev); !slices.Equal(back.ids, n[:1]) {
				t.Errorf("back from the empty page once its anchor left: %v, want %v", back.ids, n[:1])
			}
		}},
		{"back to an empty page, then forward", func(t *testing.T, k kind, key string, n []string, page func(int, string) listPage) {
			p1 := page(1, "")
			p2 := page(1, p1.next)
			if !slices.Equal(p2.ids, n[1:2]) {
				t.Fatalf("second page: %v, want %v", p2.ids, n[1:2])
			}
			k.leave(t, key, n[0]) // what the previous page showed
			empty := page(1, p2.prev)
			if len(empty.ids) != 0 || empty.prev != "" || empty.next == "" {
				t.Fatalf("back past the top: %+v, want empty with only next_cursor", empty)
			}
			if fwd := page(1, empty.next); !slices.Equal(fwd.ids, n[1:2]) {
				t.Errorf("forward from the empty page: %v, want %v (the anchor included)", fwd.ids, n[1:2])
			}
			k.leave(t, key, n[1]) // the anchor itself leaves
			if fwd := page(1, empty.next); !slices.Equal(fwd.ids, n[2:3]) || fwd.next != "" {
				t.Errorf("forward from the empty page once its anchor left: %+v, want %v and no next_cursor", fwd, n[2:3])
			}
		}},
		{"back, then nothing older is left", func(t *testing.T, k kind, key string, n []string, page func(int, string) listPage) {
			// has_more is "whether older items follow this page"; a page reached going back used to
			// say true (and hand out a next_cursor to an empty page) whatever had left meanwhile.
			p1 := page(1, "")
			p2 := page(1, p1.next)
			if !slices.Equal(p2.ids, n[1:2]) {
				t.Fatalf("second page: %v, want %v", p2.ids, n[1:2])
			}
			if back := page(1, p2.prev); !slices.Equal(back.ids, n[:1]) || !back.hasMore || back.next == "" {
				t.Fatalf("back to the top while older items exist: %+v, want %v with has_more and next_cursor", back, n[:1])
			}
			k.leave(t, key, n[1])
			k.leave(t, key, n[2])
			if back := page(1, p2.prev); !slices.Equal(back.ids, n[:1]) || back.hasMore || back.next != "" || back.prev != "" {
				t.Errorf("back to the top once everything older left: %+v, want %v, has_more false, no cursors", back, n[:1])
			}
			k.leave(t, key, n[0])
			if empty := page(1, p2.prev); len(empty.ids) != 0 || empty.hasMore || empty.next != "" || empty.prev != "" {
				t.Errorf("back to an empty top once everything left: %+v, want empty, has_more false, no cursors", empty)
			}
		}},
	}
	for ki, k := range kinds {
		for si, sc := range scenarios {
			t.Run(k.name+"/"+sc.name, func(t *testing.T) {
				_, live, _ := createStore(t, c, fmt.Sprintf("anchors-%d-%d", ki, si))
				var n []string
				for i := range 3 {
					n = append([]string{k.add(live, i)}, n...)
				}
				page := func(perPage int, cursor string) listPage {
					t.Helper()
					path := fmt.Sprintf("%s&per_page=%d", k.list, perPage)
					if cursor != "" {
						path += "&cursor=" + cursor
					}
					return getPage(t, c, live, path)
				}
				if all := page(100, ""); !slices.Equal(all.ids, n) {
					t.Fatalf("the list: %v, want %v", all.ids, n)
				}
				sc.run(t, k, live, n, page)
			})
		}
	}
}

// TestCustomerCursorsAreSealed (review of issue 9): the customer list's cursor held the customer's
// registration seq in plain JSON ({"s": 84} for a store with 5 customers), which counts every store's
// customers: any tenant could watch the platform's volume. A cursor is now sealed and bound to the
// key's store and mode; every replica on the same NATS opens the others' cursors (the key is a shared
// secret); another store's or mode's cursor, a changed one and a plain one of before are 400.
func TestCustomerCursorsAreSealed(t *testing.T) {
	ext, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "cursors"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown) // after both replicas close (cleanups run last first)
	onExt := func(c *Config) { c.NATSURL = ext.ClientURL() }
	a := client{t, "http://" + startMain(t, t.TempDir(), onExt).HTTPAddr}
	b := client{t, "http://" + startMain(t, t.TempDir(), onExt).HTTPAddr}

	_, live, test := createStore(t, a, "sealed")
	_, otherLive, _ := createStore(t, a, "sealed-other")
	for i := range 5 {
		mustCustomer(t, a, live, fmt.Sprintf(`{"email":"c%d@example.com"}`, i))
		mustCustomer(t, a, test, fmt.Sprintf(`{"email":"c%d@example.com"}`, i))
		mustCustomer(t, a, otherLive, fmt.Sprintf(`{"email":"c%d@example.com"}`, i))
	}
	p1 := getPage(t, a, live, "/v1/customers?per_page=2")
	p2 := getPage(t, a, live, "/v1/customers?per_page=2&cursor="+p1.next)
	if len(p2.ids) != 2 || p2.next == "" || p2.prev == "" {
		t.Fatalf("second page: %+v", p2)
	}
	for _, cur := range []string{p1.next, p2.next, p2.prev} {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(raw) != 16 || json.Valid(raw) {
			t.Errorf("cursor %q decodes to %q: want 16 opaque bytes", cur, raw)
		}
	}
	if p2.next == p1.next {
		t.Errorf("two positions, one cursor: %q", p1.next)
	}

	// Another replica opens the cursor (once it has the store's key and customers).
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := b.do("GET", "/v1/customers?per_page=2&cursor="+p1.next, "Bearer "+live, nil)
		if r.status == http.StatusOK && slices.Equal(listIDs(t, r), p2.ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b, the cursor of replica a: %d %s; want %v", r.status, r.raw, p2.ids)
		}
		time.Sleep(50 * time.Millisecond)
	}

	tampered := []byte(p1.next)
	tampered[3] ^= 'A' ^ 'B'
	if tampered[3] == p1.next[3] {
		tampered[3] = 'C'
	}
	for _, tt := range []struct{ name, key, cursor string }{
		{"another store's", otherLive, p1.next},
		{"the other mode's", test, p1.next},
		{"a changed one", live, string(tampered)},
		{"a plain cursor of before", live, base64.RawURLEncoding.EncodeToString([]byte(`{"s":3,"d":"n"}`))},
		{"a plain cursor of before, inclusive", live, base64.RawURLEncoding.EncodeToString([]byte(`{"s":9,"d":"p","e":true}`))},
		{"a sales cursor", live, base64.RawURLEncoding.EncodeToString([]byte(`{"t":1,"i":"sal_x","d":"n"}`))},
	} {
		r := a.do("GET", "/v1/customers?per_page=2&cursor="+tt.cursor, "Bearer "+tt.key, nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "not a cursor this API returned") {
			t.Errorf("%s: %d %s; want 400 not a cursor this API returned", tt.name, r.status, r.raw)
		}
	}
}
