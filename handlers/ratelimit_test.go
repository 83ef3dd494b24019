package handlers

import (
	"fmt"
	"testing"
	"time"
)

func TestLimitersBucket(t *testing.T) {
	l := newLimiters(2, 3) // 2 per second, bursts of 3
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, _ := l.allow("k", t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("k", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: ok %v, wait %v; want refused, 500ms", ok, wait)
	}
	// A refused request takes nothing: after the wait, exactly one more passes.
	if ok, _ := l.allow("k", t0.Add(wait)); !ok {
		t.Fatal("refused after the announced wait")
	}
	if ok, _ := l.allow("k", t0.Add(wait)); ok {
		t.Fatal("two passed after one refill")
	}
	if ok, _ := l.allow("other", t0); !ok {
		t.Fatal("another key shares the bucket")
	}
	if newLimiters(0, 10) != nil {
		t.Fatal("a zero rate must turn the limit off")
	}
}

// Memory follows the keys active in the last burst/rate seconds, and never exceeds maxLimiters.
func TestLimitersAreBounded(t *testing.T) {
	l := newLimiters(10, 20) // full again 2 s after the last request
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		l.allow(fmt.Sprint("a", i), t0)
	}
	l.allow("late", t0.Add(3*time.Second)) // the first thousand are full again: swept
	if n := len(l.m); n != 1 {
		t.Fatalf("%d buckets after the others refilled, want 1", n)
	}
	// A flood of new keys, all within one second: dropped beyond the cap.
	for i := range maxLimiters + 5000 {
		l.allow(fmt.Sprint("b", i), t0.Add(3*time.Second))
	}
	if n := len(l.m); n > maxLimiters {
		t.Fatalf("%d buckets, cap %d", n, maxLimiters)
	}
}
