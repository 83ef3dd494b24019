package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// inFlight keeps the API requests being served, for a shutdown that runs out of time to say which it cut.
type inFlight struct {
	mu   sync.Mutex
	next uint64
	reqs map[uint64]inFlightRequest
}

type inFlightRequest struct {
	what  string // method and path
	since time.Time
}

func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if len(path) > 100 {
			path = path[:100] + "…"
		}
		f.mu.Lock()
		if f.reqs == nil {
			f.reqs = map[uint64]inFlightRequest{}
		}
		f.next++
		id := f.next
		f.reqs[id] = inFlightRequest{what: r.Method + " " + path, since: time.Now()}
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			delete(f.reqs, id)
			f.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// describe is "2 requests: POST /v1/checkouts (running 16s), …", the oldest first, at most five named.
func (f *inFlight) describe(now time.Time) string {
	f.mu.Lock()
	reqs := make([]inFlightRequest, 0, len(f.reqs))
	for _, r := range f.reqs {
		reqs = append(reqs, r)
	}
	f.mu.Unlock()
	if len(reqs) == 0 {
		return "no request (only connections still open)"
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].since.Before(reqs[j].since) })
	var named []string
	for _, r := range reqs[:min(len(reqs), 5)] {
		named = append(named, fmt.Sprintf("%s (running %s)", r.what, now.Sub(r.since).Round(time.Second)))
	}
	if len(reqs) > 5 {
		named = append(named, fmt.Sprintf("and %d more", len(reqs)-5))
	}
	noun := "requests"
	if len(reqs) == 1 {
		noun = "request"
	}
	return fmt.Sprintf("%d %s: %s", len(reqs), noun, strings.Join(named, ", "))
}
