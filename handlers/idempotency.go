package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// maxIdempotencyKey is the longest Idempotency-Key accepted, in bytes.
const maxIdempotencyKey = 255

// adminScope is the store-id token of the admin API's own idempotency keys (ledger.platform.admin.…):
// no store id is ever "admin" (they are str_…), so admin keys never share a namespace with a store's.
const adminScope = "admin"

// errIdempotencyReused is a second request with a key already used for a different request.
var errIdempotencyReused = &requestError{http.StatusConflict, "idempotency_key_reused",
	"This Idempotency-Key was already used with a different request body."}

// idempotency is one request's Idempotency-Key, bound to the namespace it belongs to (a store and mode,
// or the admin API), the endpoint it was sent to and the body it came with.
//
// The protocol, shared by every POST that creates something: before deciding, previous reads from the
// log (exact on every replica) whether the key was used; if so the endpoint answers the resource it
// created (Idempotent-Replayed: true) and writes nothing. Otherwise the endpoint appends writes(id) in
// the same atomic batch as the resource: expected sequence 0 on the key's subject, so of concurrent
// requests with one key exactly one batch commits; the others conflict, read the winner's record and
// replay it. A request that fails (validation, a 409 of the resource) appends nothing, so the key stays
// free for a corrected retry. A nil *idempotency (no header) is valid: previous finds nothing, writes
// adds nothing.
type idempotency struct {
	agg      events.Aggregate
	endpoint string
	hash     string
}

// idempotencyOf reads r's Idempotency-Key for the namespace (mode, owner) — the key's store and mode, or
// (platform, adminScope) — and the body as received: nil without the header, 400 for a key over 255
// bytes.
func idempotencyOf(r *http.Request, mode, owner string, body []byte) (*idempotency, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return nil, nil
	}
	if len(key) > maxIdempotencyKey {
		return nil, badRequest(fmt.Sprintf("The Idempotency-Key header may not be longer than %d characters.", maxIdempotencyKey))
	}
	sum := sha256.Sum256(body)
	return &idempotency{
		agg:      events.Aggregate{Mode: mode, StoreID: owner, Type: events.AggregateIdempotency, ID: domain.HashID(key)},
		endpoint: r.Method + " " + r.URL.Path,
		hash:     hex.EncodeToString(sum[:]),
	}, nil
}

// storeIdempotency is idempotencyOf for the store API: the key belongs to the caller's store and mode.
func storeIdempotency(r *http.Request, body []byte) (*idempotency, error) {
	sc := scopeFrom(r.Context())
	return idempotencyOf(r, sc.Mode, sc.StoreID, body)
}

// previous reads what the key was first used for. found is false for a new key (or no key). The key
// used on another endpoint, or with another body, is 409 idempotency_key_reused: a key names one
// request, never a resource of another kind.
func (k *idempotency) previous(ctx context.Context, log EventStore) (rec events.IdempotencyKeyRecorded, found bool, err error) {
	if k == nil {
		return rec, false, nil
	}
	e, found, err := log.Last(ctx, k.agg.Filter())
	if err != nil || !found {
		return rec, false, err
	}
	rec, ok := e.Payload.(events.IdempotencyKeyRecorded)
	if !ok {
		return rec, false, fmt.Errorf("idempotency subject %s holds %s", k.agg.Filter(), e.Payload.EventType())
	}
	if used := rec.UsedOn(); used != k.endpoint {
		return rec, true, &requestError{http.StatusConflict, errIdempotencyReused.code,
			fmt.Sprintf("This Idempotency-Key was already used with another endpoint (%s); use a new key for this request.", used)}
	}
	if rec.RequestHash != k.hash {
		return rec, true, errIdempotencyReused
	}
	return rec, true, nil
}

// writes is what binds the key to resourceID, for the resource's own atomic batch: nothing without a
// key. secrets, if not nil, is what the first answer showed only once (a new store's keys): it is kept
// sealed in the record, so that a replay can show it again.
func (k *idempotency) writes(env func(events.Aggregate, events.Payload) events.Envelope, resourceID string) []events.Write {
	if k == nil {
		return nil
	}
	rec := events.IdempotencyKeyRecorded{RequestHash: k.hash, ResourceID: resourceID, Endpoint: k.endpoint}
	return []events.Write{{Event: env(k.agg, rec), Expect: 0}}
}

// idempotent runs create once and, when its batch conflicts, up to retries more times — each time after
// looking whether the key was recorded meanwhile (a concurrent request with the same key won), in which
// case run replays it instead. run gets the earlier request's record, or nil to create.
func (a *API) idempotent(ctx context.Context, k *idempotency, retries int, run func(prev *events.IdempotencyKeyRecorded) error) error {
	for attempt := 0; ; attempt++ {
		prev, found, err := k.previous(ctx, a.cfg.Events)
		if err != nil {
			return err
		}
		if found {
			return run(&prev)
		}
		err = run(nil)
		if errors.Is(err, domain.ErrConflict) && attempt < retries {
			continue
		}
		if err != nil && k != nil {
			// Whatever the refusal (a conflict, or "email taken" read from what a racer with this very
			// key committed a moment ago), a request with the same key that won meanwhile is the answer.
			if prev, found, perr := k.previous(ctx, a.cfg.Events); perr == nil && found {
				return run(&prev)
			}
		}
		return err
	}
}

// markReplayed tells the client that the answer replays an earlier request with the same key.
func markReplayed(w http.ResponseWriter) {
	w.Header().Set("Idempotent-Replayed", "true")
}
