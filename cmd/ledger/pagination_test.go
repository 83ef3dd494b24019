package main

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
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
			if back := page(2, empty.prev); !slices.Equal(back.ids, n[:2]) || back.prev != "" || back.next == "" {
				t.Errorf("back from the empty page: %+v, want %v (the anchor %s included), next_cursor but no prev_cursor", back, n[:2], n[1])
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
