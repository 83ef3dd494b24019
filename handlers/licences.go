package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

type instanceRequest struct {
	Instance string `json:"instance"`
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

// licenceObject renders a licence aggregate.
func (a *API) licenceObject(l domain.Licence) map[string]any {
	out := licenceJSON{
		ID: l.Issued.LicenceID, LicenceKey: l.Issued.Key, Status: l.Status(a.cfg.Now()),
		Activations: len(l.Instances), MaxActivations: l.Issued.MaxActivations,
	}
	if l.Issued.ExpiresAt != nil {
		out.ExpiresAt = optTime(*l.Issued.ExpiresAt)
	}
	instances := make([]string, 0, len(l.Instances))
	for i := range l.Instances {
		instances = append(instances, i)
	}
	slices.Sort(instances) // one spelling of one licence: a map has no order
	return map[string]any{
		"id": out.ID, "object": "licence", "licence_key": out.LicenceKey, "status": out.Status,
		"activations": out.Activations, "max_activations": out.MaxActivations, "expires_at": out.ExpiresAt,
		"instances": instances, "sale_id": l.Issued.SaleID, "product_id": l.Issued.ProductID, "customer_id": l.Issued.CustomerID,
	}
}

// loadLicence finds a licence of the caller's store and mode by key and reads it from its subject.
func (a *API) loadLicence(ctx context.Context, key string) (domain.Licence, events.Aggregate, error) {
	sc := scopeFrom(ctx)
	row, err := a.cfg.Projection.Reads().LicenceByKey(ctx, sc.StoreID, sc.Mode, key)
	if err != nil {
		return domain.Licence{}, events.Aggregate{}, err
	}
	agg := events.Aggregate{Mode: sc.Mode, StoreID: sc.StoreID, Type: events.AggregateLicence, ID: row.ID}
	evs, _, err := a.cfg.Events.Load(ctx, agg)
	if err != nil {
		return domain.Licence{}, agg, err
	}
	return foldLicence(evs), agg, nil
}

// foldLicence folds a licence from its events in order.
func foldLicence(evs []events.Envelope) domain.Licence {
	var l domain.Licence
	for _, e := range evs {
		l = l.Evolve(e)
	}
	return l
}

// getLicence is GET /v1/licences/{key}.
func (a *API) getLicence(w http.ResponseWriter, r *http.Request) {
	l, _, err := a.loadLicence(r.Context(), r.PathValue("licence_key"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, data{a.licenceObject(l)})
}

// licenceCommand runs one licence command: load from the log, decide, append with the licence's last
// sequence as expectation. Concurrent activations therefore serialise in JetStream: of two racing for
// the last free activation, one appends and the other reloads, sees the licence full and gets 409.
func (a *API) licenceCommand(decide func(domain.Licence, *http.Request) ([]events.Payload, error), body any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := decodeBody(r, body); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		for attempt := 0; ; attempt++ {
			l, agg, err := a.loadLicence(r.Context(), r.PathValue("licence_key"))
			if err != nil {
				writeError(w, r, a.log, err)
				return
			}
			payloads, err := decide(l, r)
			var limit domain.ErrActivationLimit
			switch {
			case errors.As(err, &limit):
				writeError(w, r, a.log, &requestError{http.StatusConflict, "activation_limit", sentence(limit.Error())})
				return
			case errors.Is(err, domain.ErrLicenceRevoked), errors.Is(err, domain.ErrLicenceExpired):
				writeError(w, r, a.log, &requestError{http.StatusConflict, "licence_unusable", sentence(err.Error())})
				return
			case err != nil:
				writeError(w, r, a.log, err)
				return
			}
			seq := l.Version
			if len(payloads) > 0 {
				now := a.cfg.Now().UTC()
				envs := make([]events.Envelope, len(payloads))
				for i, p := range payloads {
					envs[i] = events.Envelope{ID: domain.NewID(domain.PrefixEvent), Aggregate: agg, Time: now, CorrelationID: requestID(r.Context()), Payload: p}
				}
				seq, err = a.cfg.Events.Append(r.Context(), l.Version, envs...)
				if errors.Is(err, domain.ErrConflict) && attempt < 50 {
					continue
				}
				if err != nil {
					writeError(w, r, a.log, err)
					return
				}
				for i := range envs {
					envs[i].Sequence = seq
					l = l.Evolve(envs[i])
				}
			}
			positioned(w, seq, http.StatusOK, data{a.licenceObject(l)})
			return
		}
	}
}

func (a *API) activateLicence() http.HandlerFunc {
	var req instanceRequest
	return func(w http.ResponseWriter, r *http.Request) {
		req := req
		a.licenceCommand(func(l domain.Licence, r *http.Request) ([]events.Payload, error) {
			return l.Activate(req.Instance, a.cfg.Now())
		}, &req)(w, r)
	}
}

func (a *API) deactivateLicence() http.HandlerFunc {
	var req instanceRequest
	return func(w http.ResponseWriter, r *http.Request) {
		req := req
		a.licenceCommand(func(l domain.Licence, r *http.Request) ([]events.Payload, error) {
			return l.Deactivate(req.Instance)
		}, &req)(w, r)
	}
}

func (a *API) revokeLicence() http.HandlerFunc {
	var req revokeRequest
	return func(w http.ResponseWriter, r *http.Request) {
		req := req
		a.licenceCommand(func(l domain.Licence, r *http.Request) ([]events.Payload, error) {
			return l.Revoke(req.Reason)
		}, &req)(w, r)
	}
}

// sentence makes a domain error's text an API message: capitalised, with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}
