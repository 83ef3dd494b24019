package handlers

import (
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
)

// ConnLimit caps the API's open connections. Its Listener accepts at most Max connections at once;
// beyond that a new client waits in the kernel's accept queue until one closes. At the cap, keep-alive
// pauses: idle connections are closed (those idle when the cap is reached, and every one going idle
// while it lasts), so a crowd of idle keep-alive connections frees its slots for the clients waiting
// instead of holding them until the idle timeout. Connections that never send a request are closed by
// the server's read-header timeout.
//
// Closing an idle connection races with a client sending its next request on it, as any keep-alive
// timeout does; HTTP clients retry such a request on a new connection when it is idempotent.
type ConnLimit struct {
	max   int
	mu    sync.Mutex
	open  int
	idle  map[net.Conn]struct{}
	gauge prometheus.Gauge
	shed  prometheus.Counter
}

// NewConnLimit builds a limit of n open connections (at least 1) and registers its metrics.
func NewConnLimit(n int, reg prometheus.Registerer) *ConnLimit {
	l := &ConnLimit{
		max:  max(n, 1),
		idle: map[net.Conn]struct{}{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledger_http_open_connections", Help: "HTTP connections open now (at most LEDGER_HTTP_MAX_CONNS).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_http_idle_connections_closed_total", Help: "Idle keep-alive connections closed because open connections reached LEDGER_HTTP_MAX_CONNS.",
		}),
	}
	reg.MustRegister(l.gauge, l.shed)
	return l
}

// Listener wraps ln so that at most the limit's connections are open at once.
func (l *ConnLimit) Listener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, l.max) }

// ConnState is the http.Server's ConnState hook: it counts connections and closes idle ones at the cap.
func (l *ConnLimit) ConnState(c net.Conn, s http.ConnState) {
	var shed []net.Conn
	l.mu.Lock()
	switch s {
	case http.StateNew:
		l.open++
		if l.open >= l.max {
			for ic := range l.idle {
				shed = append(shed, ic)
			}
			clear(l.idle)
		}
	case http.StateIdle:
		if l.open >= l.max {
			shed = append(shed, c)
		} else {
			l.idle[c] = struct{}{}
		}
	case http.StateActive:
		delete(l.idle, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		l.open--
	}
	l.gauge.Set(float64(l.open))
	l.mu.Unlock()
	for _, ic := range shed {
		_ = ic.Close() // the server's read on it fails, and it moves to StateClosed
		l.shed.Inc()
	}
}
