package jetstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream/jstest"
)

// An event over the server's max payload is refused as domain.ErrTooLarge before it is sent, alone:
// the appends that share its group are stored, and the size just under the limit still goes in.
func TestAppendTooLargeIsRefusedAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := startGrouped(t)
	big := func(id string, nameLen int) events.Envelope {
		e := created(id, 1)
		p := e.Payload.(events.StoreCreated)
		p.Name = strings.Repeat("n", nameLen)
		e.Payload = p
		return e
	}
	var errBig error
	errs := make([]error, 20)
	concurrently(21, func(i int) {
		if i == 20 {
			_, errBig = s.Append(ctx, 0, big("str_big", 1<<20))
			return
		}
		_, errs[i] = s.Append(ctx, 0, created("str_ok"+string(rune('a'+i)), 1))
	})
	if !errors.Is(errBig, domain.ErrTooLarge) {
		t.Fatalf("an event of over 1 MiB: %v, want ErrTooLarge", errBig)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d sharing the group of a too-large one: %v", i, err)
		}
	}
	if evs, _, err := s.Load(ctx, storeAgg("str_big")); err != nil || len(evs) != 0 {
		t.Fatalf("the too-large event was stored: %d events, %v", len(evs), err)
	}
	// Somewhat under the limit (headers and the rest of the event take the difference) is stored.
	if _, err := s.Append(ctx, 0, big("str_near", 1<<20-2048)); err != nil {
		t.Fatalf("an event just under 1 MiB: %v", err)
	}
}

// Load never widens to other aggregates: an id that is not a subject token (a wildcard, a dot) has no
// events, although "*" as a subject token would match every sale.
func TestLoadRefusesWildcards(t *testing.T) {
	ctx := context.Background()
	s := jstest.Start(t, "").Store
	for _, id := range []string{"str_a", "str_b"} {
		if _, err := s.Append(ctx, 0, created(id, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"*", ">", "str_a.*", "str_a.>"} {
		agg := storeAgg("str_a")
		agg.ID = id
		evs, last, err := s.Load(ctx, agg)
		if err != nil || len(evs) != 0 || last != 0 {
			t.Errorf("Load of id %q: %d events, last %d, %v; want none", id, len(evs), last, err)
		}
	}
}
