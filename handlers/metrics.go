package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/salesledger/ledger/domain"
)

type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ledger_http_request_duration_seconds",
		Help:    "HTTP request latency by method (other for any method no route serves), route pattern (/ for no route) and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "code"})}
	reg.MustRegister(m.duration)
	return m
}

type requestIDKey struct{}

func requestID(ctx context.Context) string { s, _ := ctx.Value(requestIDKey{}).(string); return s }

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection (read deadlines, flushing).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// instrument gives every request an id (Request-Id header, and the correlation id of the events it
// causes), recovers panics, measures latency by route pattern and logs one debug line. Logs never
// include headers or bodies, so keys and secrets stay out of them.
func (a *API) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := domain.NewID("req_")
		w.Header().Set("Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		defer func() {
			if p := recover(); p != nil {
				a.log.ErrorContext(r.Context(), "panic in handler", "panic", p, "method", methodLabel(r.Method), "path", r.URL.Path, "request_id", id)
				if sw.status == 0 {
					writeError(sw, r, a.log, errInternal)
				}
			}
			a.metrics.duration.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
			a.log.Log(r.Context(), slog.LevelDebug, "http", "method", methodLabel(r.Method), "route", route, "status", sw.status,
				"duration", time.Since(start), "request_id", id)
		}()
		next.ServeHTTP(sw, r)
	})
}
