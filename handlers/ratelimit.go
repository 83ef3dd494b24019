package handlers

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// RateLimits are the API's request rates, token buckets refilled at Rate requests per second and
// holding at most Burst. A zero Rate turns that limit off.
type RateLimits struct {
	// PerKey limits each API key, and the admin token, on the endpoints they authenticate.
	PerKey      float64
	PerKeyBurst int
	// PerIP limits each client IP on the requests no valid key authenticates: failed authentication,
	// download and avatar links, health, metrics, the OpenAPI document, unknown routes. Gateway
	// webhooks are not limited: they carry no key, and a gateway sends from few addresses.
	PerIP      float64
	PerIPBurst int
}

// maxLimiters bounds the buckets kept per kind; see limiters.
const maxLimiters = 1 << 16

// limiters holds one token bucket per key. A bucket that has refilled to its burst behaves exactly like
// a new one, so it is dropped (swept at most once a second); memory follows the keys active in the last
// burst/rate seconds. Past maxLimiters even then (a flood from ever new addresses), arbitrary buckets are
// dropped, which hands those keys a fresh burst: a degradation, never a lock-out.
type limiters struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	swept time.Time
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	return &limiters{rate: rate.Limit(perSecond), burst: max(burst, 1), m: map[string]*rate.Limiter{}}
}

// allow takes one request from key's bucket at now; when it is empty it returns false and how long
// until it holds a request again.
func (l *limiters) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if now.Sub(l.swept) >= time.Second || len(l.m) >= maxLimiters {
			l.sweep(now)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration((1 - lim.TokensAt(now)) / float64(l.rate) * float64(time.Second))
	return false, max(wait, 0)
}

// sweep drops the full buckets, then, if there are still too many, any until a tenth is free.
func (l *limiters) sweep(now time.Time) {
	l.swept = now
	for k, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < maxLimiters*9/10 {
			break
		}
		delete(l.m, k)
	}
}

// rateLimiter applies RateLimits to requests.
type rateLimiter struct {
	keys, ips *limiters
	limited   *prometheus.CounterVec
	now       func() time.Time
}

func newRateLimiter(cfg RateLimits, reg prometheus.Registerer) *rateLimiter {
	rl := &rateLimiter{
		keys: newLimiters(cfg.PerKey, cfg.PerKeyBurst),
		ips:  newLimiters(cfg.PerIP, cfg.PerIPBurst),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_http_rate_limited_total", Help: "Requests answered 429, by what they were counted against: key (an API key or the admin token) or ip.",
		}, []string{"by"}),
		now: time.Now, // real time, whatever clock the ledger's decisions run on
	}
	reg.MustRegister(rl.limited)
	return rl
}

// errRateLimited is a 429; Retry-After says when to try again.
type errRateLimited struct {
	by    string // "key" or "ip"
	after time.Duration
}

func (e errRateLimited) Error() string {
	who := "this API key"
	if e.by == "ip" {
		who = "this client address"
	}
	return fmt.Sprintf("Too many requests with %s; retry after %d s.", who, e.retryAfter())
}

// retryAfter is the Retry-After value: whole seconds, rounded up, at least 1.
func (e errRateLimited) retryAfter() int {
	return max(1, int(math.Ceil(e.after.Seconds())))
}

// key counts a request against the bucket of an authenticated key (its hash); nil means go on.
func (rl *rateLimiter) key(hash string) error {
	if rl.keys == nil {
		return nil
	}
	if ok, after := rl.keys.allow(hash, rl.now()); !ok {
		rl.limited.WithLabelValues("key").Inc()
		return errRateLimited{"key", after}
	}
	return nil
}

// ip counts a request no valid key authenticates against its client address's bucket.
func (rl *rateLimiter) ip(r *http.Request) error {
	if rl.ips == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ok, after := rl.ips.allow(host, rl.now()); !ok {
		rl.limited.WithLabelValues("ip").Inc()
		return errRateLimited{"ip", after}
	}
	return nil
}

// anonymous limits a route that no key authenticates by client address.
func (a *API) anonymous(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.rates.ip(r); err != nil {
			writeError(w, r, a.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// setRetryAfter is writeError's hook for a 429.
func setRetryAfter(w http.ResponseWriter, e errRateLimited) {
	w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter()))
}
