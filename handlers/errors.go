package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/salesledger/ledger/domain"
)

// errorBody is the one error shape of the API: {"error": {"code", "message", "fields"?}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Fields  map[string][]string `json:"fields,omitempty"`
}

// requestError is an error the handler layer raises itself, with its status and code.
type requestError struct {
	status  int
	code    string
	message string
}

func (e *requestError) Error() string { return e.message }

func badRequest(msg string) error {
	return &requestError{http.StatusBadRequest, "invalid_request", msg}
}

var (
	errUnauthenticated = &requestError{http.StatusUnauthorized, "unauthenticated", "Authentication credentials were not provided."}
	errBadCredentials  = &requestError{http.StatusUnauthorized, "unauthenticated", "The API key or token is invalid."}
	errBasicPassword   = &requestError{http.StatusUnauthorized, "unauthenticated",
		"With HTTP Basic authentication the API key is the username and the password is empty (curl -u \"$KEY:\")."}
	errAdminOnly     = &requestError{http.StatusForbidden, "forbidden", "This endpoint needs the admin token; a store key cannot call it."}
	errLagging       = &requestError{http.StatusServiceUnavailable, "projection_lagging", "The read model has not reached the requested Ledger-Min-Position yet; retry shortly."}
	errNotFoundRoute = &requestError{http.StatusNotFound, "not_found", "No such endpoint."}
	// The Allow header of a 405 lists the methods the path serves.
	errMethodNotAllowed     = &requestError{http.StatusMethodNotAllowed, "method_not_allowed", "This endpoint does not serve this method; the Allow header lists the ones it does."}
	errMethodNotImplemented = &requestError{http.StatusNotImplemented, "method_not_implemented", "The server does not implement this method for any endpoint."}
	errInternal             = &requestError{http.StatusInternalServerError, "internal_error", "Something went wrong on our side; the request may be retried."}
)

// errorTable maps domain errors to statuses and codes; it is the only place that does.
var errorTable = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{domain.ErrNotFound, http.StatusNotFound, "not_found", "No such resource."},
	{domain.ErrCustomerErased, http.StatusNotFound, "not_found", "The customer could not be found, please check the id."},
	{domain.ErrWebhookEndpointDeleted, http.StatusNotFound, "not_found", "The webhook endpoint could not be found, please check the id."},
	{domain.ErrSlugTaken, http.StatusConflict, "slug_taken", "The slug is already taken by another store."},
	{domain.ErrConflict, http.StatusConflict, "conflict", "The resource was modified concurrently; retry the request."},
	{domain.ErrTooLarge, http.StatusRequestEntityTooLarge, "payload_too_large", "What the request asks to record is larger than the event log accepts in one event; send less (shorter texts, fewer files)."},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "The event log is temporarily unavailable; nothing was recorded, retry shortly."},
}

// writeError answers with the error's status and body. Anything not known is a 500 with a generic body;
// its cause is logged, never sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, body := describe(err)
	if status == http.StatusInternalServerError {
		log.ErrorContext(r.Context(), "request failed", "method", methodLabel(r.Method), "path", r.URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if rl := (errRateLimited{}); errors.As(err, &rl) {
		setRetryAfter(w, rl)
	}
	writeJSON(w, status, body)
}

func describe(err error) (int, errorBody) {
	var (
		re  *requestError
		ve  *domain.ValidationError
		mbe *http.MaxBytesError
		rl  errRateLimited
	)
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, errorBody{errorDetail{Code: "rate_limited", Message: rl.Error()}}
	case errors.As(err, &re):
		return re.status, errorBody{errorDetail{Code: re.code, Message: re.message}}
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, errorBody{errorDetail{Code: "validation_failed", Message: "The given data was invalid.", Fields: ve.Fields}}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{errorDetail{Code: "payload_too_large", Message: "The request body is larger than 1 MiB."}}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, errorBody{errorDetail{Code: "timeout", Message: "The request timed out before it completed; retry it."}}
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, errorBody{errorDetail{Code: e.code, Message: e.message}}
		}
	}
	return http.StatusInternalServerError, errorBody{errorDetail{Code: "internal_error", Message: "Something went wrong on our side; the request may be retried."}}
}
