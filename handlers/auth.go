package handlers

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/projections/sqlite"
)

// Scope is what the request's key grants: one store in one mode.
type Scope struct {
	StoreID string
	Mode    string
}

type scopeKey struct{}

func scopeFrom(ctx context.Context) Scope { s, _ := ctx.Value(scopeKey{}).(Scope); return s }

func withScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// basicWithPassword is what credential returns for Basic credentials with a non-empty password: no key
// has this form (it is refused with its own message).
const basicWithPassword = "\x00basic-with-password"

// credential extracts the secret from "Authorization: Bearer <secret>" or HTTP Basic (RFC 7617) with the
// secret as user name and an empty password — "base64(secret:)", as curl -u and Stripe's clients send
// it, or "base64(secret)" without the colon, as 4Geeks' examples and Django REST Framework clients do
// (a secret never holds a colon, so the two cannot be confused).
func credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return ""
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(rest)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return ""
		}
		// `echo $KEY | base64` encodes the shell's line break too: a credential never ends in one.
		user, pass, hasColon := strings.Cut(strings.TrimRight(string(raw), "\r\n"), ":")
		if hasColon && pass != "" {
			return basicWithPassword
		}
		return user
	}
	return ""
}

// admin guards the admin API with the admin token, compared by hash in constant time.
func (a *API) admin(next http.HandlerFunc) http.Handler {
	want := []byte(a.cfg.AdminTokenHash)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := credential(r)
		switch {
		case secret == "":
			a.refuse(w, r, errUnauthenticated)
		case secret == basicWithPassword:
			a.refuse(w, r, errBasicPassword)
		case subtle.ConstantTimeCompare([]byte(domain.HashKey(secret)), want) == 1:
			// The admin token is a key like any other: it has its own bucket.
			if err := a.rates.key(a.cfg.AdminTokenHash); err != nil {
				writeError(w, r, a.log, err)
				return
			}
			next(w, r)
		case domain.KeyMode(secret) != "":
			a.refuse(w, r, errAdminOnly)
		default:
			a.refuse(w, r, errBadCredentials)
		}
	})
}

// store guards the store API: the key's store and mode scope the whole request. The key is looked up by
// its hash, so neither the key nor a comparison on it ever touches storage.
//
// Order: authenticate, then rate-limit, then wait for Ledger-Min-Position, so that no request without a
// valid key is held open: it is 401 at once. One exception keeps read-your-writes for a store created on
// another replica: a well-formed key this replica does not know yet, sent with a Ledger-Min-Position
// that the log holds but the read model has not applied, is counted against its client address's rate,
// waits for that position (bounded, and at most maxUnknownKeyWaits such requests at once; beyond that
// 503 projection_lagging), then is looked up again. A position past the log's end cannot be a write the
// client saw, so with one the unknown key is 401 at once: the only wait left to a stranger is this
// replica's real lag.
func (a *API) store(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := credential(r)
		if secret == "" {
			a.refuse(w, r, errUnauthenticated)
			return
		}
		if secret == basicWithPassword {
			a.refuse(w, r, errBasicPassword)
			return
		}
		mode := domain.KeyMode(secret)
		if mode == "" {
			a.refuse(w, r, errBadCredentials)
			return
		}
		hash := domain.HashKey(secret)
		ks, err := a.keyScope(r.Context(), hash, mode)
		if errors.Is(err, errBadCredentials) {
			ks, err = a.keyScopeAfterWait(r, hash, mode)
		}
		if errors.Is(err, errBadCredentials) {
			a.refuse(w, r, errBadCredentials)
			return
		}
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if err := a.rates.key(hash); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if err := a.awaitPosition(r); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		ctx := withScope(r.Context(), Scope{StoreID: ks.StoreID, Mode: ks.Mode})
		next(w, r.WithContext(ctx))
	})
}

// keyScope looks a key up by its hash; an unknown key, or one of another mode, is errBadCredentials.
func (a *API) keyScope(ctx context.Context, hash, mode string) (sqlite.KeyScope, error) {
	ks, err := a.cfg.Projection.Reads().KeyScope(ctx, hash)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && ks.Mode != mode) {
		return sqlite.KeyScope{}, errBadCredentials
	}
	return ks, err
}

// maxUnknownKeyWaits bounds the requests with a key this replica does not know that wait for their
// Ledger-Min-Position at once, so that guessed keys cannot hold many connections open.
const maxUnknownKeyWaits = 32

// keyScopeAfterWait is the exception of store: a key not known here, with a Ledger-Min-Position ahead of
// the read model. Without such a header, or once the position is reached, the key is unknown
// (errBadCredentials).
func (a *API) keyScopeAfterWait(r *http.Request, hash, mode string) (sqlite.KeyScope, error) {
	h := r.Header.Get("Ledger-Min-Position")
	if h == "" {
		return sqlite.KeyScope{}, errBadCredentials
	}
	seq, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return sqlite.KeyScope{}, errBadCredentials
	}
	if seq <= a.cfg.Projection.Applied() {
		return sqlite.KeyScope{}, errBadCredentials
	}
	last, err := a.cfg.Events.LastSequence(r.Context())
	if err != nil {
		return sqlite.KeyScope{}, err
	}
	if seq > last {
		return sqlite.KeyScope{}, errBadCredentials
	}
	if err := a.rates.ip(r); err != nil {
		return sqlite.KeyScope{}, err
	}
	select {
	case a.unknownKeyWaits <- struct{}{}:
		defer func() { <-a.unknownKeyWaits }()
	default:
		return sqlite.KeyScope{}, errLagging
	}
	if err := a.awaitPosition(r); err != nil {
		return sqlite.KeyScope{}, err
	}
	return a.keyScope(r.Context(), hash, mode)
}

// refuse answers a request no valid key authenticates: it counts against its client address's rate,
// so guessing keys is limited like any other anonymous traffic.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if limited := a.rates.ip(r); limited != nil {
		err = limited
	}
	writeError(w, r, a.log, err)
}
