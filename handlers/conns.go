package handlers

import (
	"net"
	"net/http"
	"sync"
	"time"

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
	// Grace is how long a new connection may take to send its request header before it can be closed at
	// the cap; NewConnLimit sets 1 s. Set it before serving.
	Grace time.Duration

	max   int
	mu    sync.Mutex
	open  int
	idle  map[net.Conn]struct{}
	fresh map[net.Conn]time.Time // connections that have not sent a whole request header, since when
	timer *time.Timer            // looks at fresh again while the cap lasts
	gauge prometheus.Gauge
	shed  prometheus.Counter
}

// NewConnLimit builds a limit of n open connections (at least 1) and registers its metrics.
func NewConnLimit(n int, reg prometheus.Registerer) *ConnLimit {
	l := &ConnLimit{
		Grace: time.Second,
		max:   max(n, 1),
		idle:  map[net.Conn]struct{}{},
		fresh: map[net.Conn]time.Time{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ledger_http_open_connections", Help: "HTTP connections open now (at most LEDGER_HTTP_MAX_CONNS).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_http_idle_connections_closed_total", Help: "Idle keep-alive connections, and new ones silent for the grace period, closed because open connections reached LEDGER_HTTP_MAX_CONNS.",
		}),
	}
	reg.MustRegister(l.gauge, l.shed)
	return l
}

// Listener wraps ln so that at most the limit's connections are open at once.
func (l *ConnLimit) Listener(ln net.Listener) net.Listener { return netutil.LimitListener(ln, l.max) }

// ConnState is the http.Server's ConnState hook: it counts connections and, at the cap, closes the idle
// ones and those silent for longer than Grace.
func (l *ConnLimit) ConnState(c net.Conn, s http.ConnState) {
	var shed []net.Conn
	l.mu.Lock()
	switch s {
	case http.StateNew:
		l.open++
		l.fresh[c] = time.Now()
		if l.open >= l.max {
			for ic := range l.idle {
				shed = append(shed, ic)
			}
			clear(l.idle)
			shed = l.silent(shed)
		}
	case http.StateIdle:
		if l.open >= l.max {
			shed = append(shed, c)
		} else {
			l.idle[c] = struct{}{}
		}
	case http.StateActive:
		delete(l.idle, c)
		delete(l.fresh, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		delete(l.fresh, c)
		l.open--
	}
	l.gauge.Set(float64(l.open))
	l.mu.Unlock()
	for _, ic := range shed {
		_ = ic.Close() // the server's read on it fails, and it moves to StateClosed
		l.shed.Inc()
	}
}

// silent adds to shed the connections that have been silent for Grace, and forgets them; while others
// are not yet, it looks again when the first of them will have been (the cap holds no Accept that would
// call ConnState meanwhile). Call it with mu held, at the cap.
func (l *ConnLimit) silent(shed []net.Conn) []net.Conn {
	now := time.Now()
	var next time.Duration
	for c, since := range l.fresh {
		if wait := l.Grace - now.Sub(since); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		shed = append(shed, c)
		delete(l.fresh, c)
	}
	if next > 0 && l.timer == nil {
		l.timer = time.AfterFunc(next, l.recheck)
	}
	return shed
}

// recheck is silent's timer: at the cap still, it closes the connections silent for Grace by then.
func (l *ConnLimit) recheck() {
	var shed []net.Conn
	l.mu.Lock()
	l.timer = nil
	if l.open >= l.max {
		shed = l.silent(nil)
	}
	l.mu.Unlock()
	for _, c := range shed {
		_ = c.Close()
		l.shed.Inc()
	}
}
