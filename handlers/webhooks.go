package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/handlers/gateways"
)

var (
	errUnknownGateway = &requestError{http.StatusNotFound, "unknown_gateway", "No such payment gateway, or no secret is configured for it."}
	errSignature      = &requestError{http.StatusUnauthorized, "invalid_signature", "The webhook signature is missing or does not match."}
	errStale          = &requestError{http.StatusUnauthorized, "stale_timestamp", "The webhook timestamp is more than 5 minutes from now."}
	errDelivery       = &requestError{http.StatusBadRequest, "invalid_request", "The webhook body is not a delivery this gateway sends."}
)

// webhook is POST /v1/webhooks/{gateway}. It verifies the gateway's signature on the raw body, records
// the delivery in the log and only then answers 2xx: an answered delivery is never lost. The record is
// appended with an expected sequence of zero on the delivery's own subject, so a repeated delivery
// changes nothing (and is answered 2xx too). Applying the delivery to its sale happens behind the log,
// in the payment processor.
func (a *API) webhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("gateway")
	gw, known := gateways.Lookup(name)
	secret, configured := a.cfg.GatewaySecrets[name]
	if !known || !configured {
		writeError(w, r, a.log, errUnknownGateway)
		return
	}
	if d := a.cfg.WebhookBodyTimeout; d > 0 {
		// Anyone may post here, unlimited and unauthenticated until the body is read: a body that dribbles
		// must not hold a connection (one of LEDGER_HTTP_MAX_CONNS) for the whole read timeout.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	switch err := gw.Verify(secret, r.Header, body, a.cfg.Now()); {
	case errors.Is(err, gateways.ErrStaleTimestamp):
		writeError(w, r, a.log, errStale)
		return
	case errors.Is(err, gateways.ErrBadSignature):
		writeError(w, r, a.log, errSignature)
		return
	case err != nil:
		writeError(w, r, a.log, err)
		return
	}
	if tooDeep(body, MaxJSONDepth) {
		writeError(w, r, a.log, errTooDeep)
		return
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		writeError(w, r, a.log, errDelivery) // json.Unmarshal would read null as an empty delivery
		return
	}
	if key, dup := duplicateKey(body); dup {
		// Which of the two a parser reads differs between parsers: no gateway sends it, and no reading
		// of it is safe.
		writeError(w, r, a.log, badRequest("The webhook body gives the key "+key+" twice in one object."))
		return
	}
	d, err := gw.Parse(r.Header, body)
	var long gateways.FieldTooLongError
	var bad gateways.MalformedFieldError
	switch {
	case errors.Is(err, gateways.ErrIgnored):
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "ignored": true})
		return
	case errors.As(err, &long):
		a.log.WarnContext(r.Context(), "webhook delivery refused: a field is over its limit", "gateway", name, "err", err)
		writeError(w, r, a.log, badRequest(long.Error()))
		return
	case errors.As(err, &bad):
		writeError(w, r, a.log, badRequest(bad.Error()))
		return
	case err != nil || d.DeliveryID == "":
		writeError(w, r, a.log, errDelivery)
		return
	}
	d.Gateway = name
	// The body is not kept: gateways put the buyer's email, name and address in it, and a delivery is
	// filed under no customer, so it could not be erased with them. Its digest proves what was received.
	sum := sha256.Sum256(body)
	d.BodySHA256 = hex.EncodeToString(sum[:])
	env := deliveryEnvelope(d, a.cfg.Now())
	// Concurrent copies of one delivery queue behind each other here, so the later ones find the first
	// in the log below instead of racing it.
	defer a.deliveries.Lock(env.Aggregate.ID)()
	// A repeated delivery is answered from the log without an append: it is the common case of a gateway
	// retrying, and a failed condition would cost the appends that share its group a retry.
	if prev, found, err := a.cfg.Events.Last(r.Context(), env.Aggregate.Filter()); err != nil {
		writeError(w, r, a.log, err)
		return
	} else if found {
		positioned(w, prev.Sequence, http.StatusOK, map[string]any{"received": true, "duplicate": true})
		return
	}
	seq, err := a.cfg.Events.Append(r.Context(), 0, env)
	if errors.Is(err, domain.ErrConflict) {
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
		return
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	positioned(w, seq, http.StatusOK, map[string]any{"received": true})
}

// deliveryEnvelope is how a gateway delivery is filed in the log: on its own subject
// ledger.platform.<gateway>.webhook.<hash of gateway and delivery id>, with an event id derived from the
// same (a retry inside the de-duplication window is absorbed by Nats-Msg-Id too) and the delivery id as
// correlation id, which every event the payment processor appends for it carries on. The caller appends
// it with expectation 0 on that subject, so one delivery is recorded once.
func deliveryEnvelope(d events.WebhookReceived, now time.Time) events.Envelope {
	key := domain.HashID(d.Gateway + ":" + d.DeliveryID)
	return events.Envelope{
		ID:            domain.PrefixEvent + "wh" + key,
		Aggregate:     events.Aggregate{Mode: events.ModePlatform, StoreID: d.Gateway, Type: events.AggregateWebhook, ID: key},
		Time:          now.UTC(),
		CorrelationID: d.DeliveryID,
		Payload:       d,
	}
}
