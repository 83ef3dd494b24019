package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/salesledger/ledger/events"
)

// TimeAt is the time (ce-time) of the event at stream sequence seq, read directly from the stream
// without decoding the event: rebuild uses it to find how far --until a time reaches.
func (s *Store) TimeAt(ctx context.Context, seq uint64) (time.Time, error) {
	stream, err := s.ledgerStream(ctx)
	if err != nil {
		return time.Time{}, err
	}
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return time.Time{}, fmt.Errorf("event %d: %w", seq, err)
	}
	t, err := time.Parse(time.RFC3339Nano, m.Header.Get(events.HeaderTime))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: event %d: ce-time: %v", events.ErrMalformed, seq, err)
	}
	return t, nil
}
