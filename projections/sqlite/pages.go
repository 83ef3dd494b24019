package sqlite

import (
	"context"
	"slices"
	"strings"
)

// Cursor is a page boundary as a client sends it back: the items after At (older, further down the
// newest-first list) or, with Back, before it (newer); At itself too when Inclusive. P is the list's
// position type: Position for sales, the registration seq for customers.
type Cursor[P any] struct {
	At        P
	Back      bool
	Inclusive bool
}

// Links are a page's ways on: Next to older items, Prev back to newer ones (nil: none), and HasMore,
// whether older items follow the page.
type Links[P any] struct {
	Next, Prev *Cursor[P]
	HasMore    bool
}

// PageLinks is the pagination of a page: page holds the positions of its items, newest first, as the
// list returned them at cur (nil: the top of the list), and more whether items exist beyond them in the
// direction of travel.
//
// A cursor is a position, not an item, so it stays valid when the item it was taken from is erased or
// leaves the filter (a sale paid out of status=awaiting_payment). Cursors from a non-empty page exclude
// the item they are taken from, which the page showed. An empty page has no item of its own to anchor
// on: it turns round at the position it was asked for, and includes it, because the item there (the
// last of the page the client came from) may still be in the list — excluding it would make going back
// from the empty page skip an item that exists.
func PageLinks[P any](cur *Cursor[P], page []P, more bool) Links[P] {
	var l Links[P]
	if len(page) == 0 {
		if cur == nil {
			return l
		}
		turn := &Cursor[P]{At: cur.At, Back: !cur.Back, Inclusive: true}
		if cur.Back {
			// Nothing newer than where the client came from; that page's items are older.
			l.Next, l.HasMore = turn, true
		} else {
			l.Prev = turn
		}
		return l
	}
	first, last := page[0], page[len(page)-1]
	if cur != nil && cur.Back {
		// Walking back: older items follow (the client came from them); newer ones if more.
		l.Next, l.HasMore = &Cursor[P]{At: last}, true
		if more {
			l.Prev = &Cursor[P]{At: first, Back: true}
		}
		return l
	}
	if more {
		l.Next, l.HasMore = &Cursor[P]{At: last}, true
	}
	if cur != nil {
		l.Prev = &Cursor[P]{At: first, Back: true}
	}
	return l
}

// ExactOlder makes a page reached going back (cur.Back) exact about what follows it: such a page knows
// from its own query only that it came from older items, which may have left the list since (paid out
// of a status filter, erased). exists tells whether the list has any item at a cursor (one bounded
// query); when Next would find none, the page has no Next and HasMore is false, so has_more means
// "older items follow" on every page. Other pages' links are exact already and returned as they are.
func ExactOlder[P any](cur *Cursor[P], l Links[P], exists func(Cursor[P]) (bool, error)) (Links[P], error) {
	if cur == nil || !cur.Back || l.Next == nil {
		return l, nil
	}
	found, err := exists(*l.Next)
	if err != nil {
		return l, err
	}
	if !found {
		l.Next, l.HasMore = nil, false
	}
	return l, nil
}

// anyRow tells whether the query q returns a row (a list's query at LIMIT 1: whether a cursor leads
// anywhere).
func (s *Store) anyRow(ctx context.Context, q string, args []any) (bool, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// listPage runs a list's query — which asks for limit+1 rows in the direction of travel — and returns
// at most limit of them, newest first (a page read going back, back, comes in oldest first and is
// turned round), and whether more exist beyond them.
func listPage[T any](ctx context.Context, s *Store, q string, args []any, limit int, back bool, scan func(func(...any) error) (T, error)) ([]T, bool, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		r, err := scan(rows.Scan)
		if err != nil {
			return nil, false, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if back {
		slices.Reverse(out)
	}
	return out, more, nil
}

// SeqPage is a position in a list ordered by a table's seq (its rowid, never reused), newest first, as
// PageLinks' cursors name it: After continues after this seq (older items), Before goes back (newer);
// Inclusive includes it. Limit is the page's size.
type SeqPage struct {
	After, Before int64
	Inclusive     bool
	Limit         int
}

// SeqPageAt is the position a client's cursor asks for (nil: the top of the list), with limit.
func SeqPageAt(c *Cursor[int64], limit int) SeqPage {
	p := SeqPage{Limit: limit}
	if c != nil {
		if c.Back {
			p.Before = c.At
		} else {
			p.After = c.At
		}
		p.Inclusive = c.Inclusive
	}
	return p
}

// seqListQuery selects cols from table where every condition of where holds (with args), at page p:
// newest first, or oldest first when going back, one row more than the page to tell whether more follow.
func seqListQuery(table, cols string, where []string, args []any, p SeqPage) (string, []any) {
	order := "seq DESC"
	lt, gt := " < ?", " > ?"
	if p.Inclusive {
		lt, gt = " <= ?", " >= ?"
	}
	switch {
	case p.After > 0:
		where, args = append(where, "seq"+lt), append(args, p.After)
	case p.Before > 0:
		where, args = append(where, "seq"+gt), append(args, p.Before)
		order = "seq ASC"
	}
	return `SELECT ` + cols + ` FROM ` + table + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`,
		append(args, p.Limit+1)
}
