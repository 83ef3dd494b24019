package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/salesledger/ledger/domain"
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

// credential extracts the secret from "Authorization: Bearer <secret>" or HTTP Basic with the secret as
// user name and an empty password.
func credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest)
	}
	if user, pass, ok := r.BasicAuth(); ok && pass == "" {
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
func (a *API) store(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := credential(r)
		if secret == "" {
			a.refuse(w, r, errUnauthenticated)
			return
		}
		mode := domain.KeyMode(secret)
		if mode == "" {
			a.refuse(w, r, errBadCredentials)
			return
		}
		if err := a.awaitPosition(r); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		hash := domain.HashKey(secret)
		ks, err := a.cfg.Projection.Reads().KeyScope(r.Context(), hash)
		if errors.Is(err, domain.ErrNotFound) || (err == nil && ks.Mode != mode) {
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
		ctx := withScope(r.Context(), Scope{StoreID: ks.StoreID, Mode: ks.Mode})
		next(w, r.WithContext(ctx))
	})
}

// refuse answers a request no valid key authenticates: it counts against its client address's rate,
// so guessing keys is limited like any other anonymous traffic.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if limited := a.rates.ip(r); limited != nil {
		err = limited
	}
	writeError(w, r, a.log, err)
}
