package projections

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The progress of a rebuild --until a time runs to the last event at or before that time, found by
// halves over the events' times.
func TestLastAtOrBefore(t *testing.T) {
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec ...int) func(context.Context, uint64) (time.Time, error) {
		return func(_ context.Context, seq uint64) (time.Time, error) {
			if seq < 1 || seq > uint64(len(sec)) {
				t.Fatalf("asked for sequence %d of %d", seq, len(sec))
			}
			return base.Add(time.Duration(sec[seq-1]) * time.Second), nil
		}
	}
	tests := []struct {
		name  string
		times []int
		until int
		want  uint64
	}{
		{"before the first event", []int{10, 20, 30}, 5, 0},
		{"at the first event", []int{10, 20, 30}, 10, 1},
		{"between two events", []int{10, 20, 30, 40, 50}, 35, 3},
		{"at an event", []int{10, 20, 30, 40, 50}, 40, 4},
		{"after the last event", []int{10, 20, 30}, 99, 3},
		{"equal times", []int{10, 20, 20, 20, 30}, 20, 4},
		{"one event, later", []int{10}, 9, 0},
		{"one event, earlier", []int{10}, 11, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lastAtOrBefore(context.Background(), at(tt.times...), uint64(len(tt.times)), base.Add(time.Duration(tt.until)*time.Second))
			if err != nil || got != tt.want {
				t.Fatalf("got %d %v, want %d", got, err, tt.want)
			}
		})
	}
	// 1,000,000 events take about 20 look-ups.
	n := 0
	times := func(_ context.Context, seq uint64) (time.Time, error) {
		n++
		return base.Add(time.Duration(seq) * time.Second), nil
	}
	if got, _ := lastAtOrBefore(context.Background(), times, 1_000_000, base.Add(123_456*time.Second)); got != 123_456 || n > 21 {
		t.Fatalf("got %d after %d look-ups", got, n)
	}
}

func TestProgressDone(t *testing.T) {
	for _, tt := range []struct{ applied, read, target, want uint64 }{
		{0, 0, 100, 0},
		{0, 37, 100, 37}, // the first batch is read, not yet committed
		{4096, 5000, 10000, 5000},
		{90, 120, 100, 100}, // read past a time bound's estimate
		{100, 100, 100, 100},
	} {
		if got := progressDone(tt.applied, tt.read, tt.target); got != tt.want {
			t.Errorf("progressDone(%d, %d, %d) = %d, want %d", tt.applied, tt.read, tt.target, got, tt.want)
		}
	}
}

// Under way, the bar shows the share done, the count, the rate and, in brackets, the time elapsed and
// the time left.
func TestProgressBarShowsRateAndTimeLeft(t *testing.T) {
	var out bytes.Buffer
	bar := newBar(&out, 10_000)
	time.Sleep(progressEvery + 50*time.Millisecond) // past the redraw throttle
	if err := bar.Set64(4_200); err != nil {
		t.Fatal(err)
	}
	frame := out.String()[strings.LastIndex(out.String(), "\r")+1:]
	if !regexp.MustCompile(`^\s*42% \|[^|]+\| \(4200/10000, \d+ events/s\) \[\d+s:\d+(ms|s|m|h)[\dms]*\]`).MatchString(frame) {
		t.Fatalf("frame %q: want percentage, count, rate and [elapsed:left]", frame)
	}
}

// Ticks without progress are not fed to the bar: they would draw a rate of "0 events/hr" and "0s" left.
func TestProgressBarIgnoresIdleTicks(t *testing.T) {
	var out bytes.Buffer
	p := &progress{bar: newBar(&out, 1_000_000), w: &out}
	for range 5 { // a slow start: a second of ticks before the first event
		p.show(0)
		time.Sleep(progressEvery)
	}
	if strings.Contains(out.String(), "events/hr") || strings.Contains(out.String(), ":0s]") {
		t.Fatalf("idle ticks drew %q", out.String())
	}
	p.show(4_200)
	frame := out.String()[strings.LastIndex(out.String(), "\r")+1:]
	if !regexp.MustCompile(`\(4200/1000000, \d+ events/s\) \[\d+s:\d+[hms]`).MatchString(frame) || strings.Contains(frame, ":0s]") {
		t.Fatalf("frame %q: want a rate per second and a time left", frame)
	}
}

// The stall timeout runs from the last progress, not from when a check happened to notice it.
func TestStallWait(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		last, now time.Duration // after at
		want      time.Duration
	}{
		{0, 0, 30 * time.Second},
		{0, 29 * time.Second, time.Second},
		{0, 30 * time.Second, 0},
		{10 * time.Second, 35 * time.Second, 5 * time.Second},
		{10 * time.Second, 41 * time.Second, -time.Second},
	} {
		if got := stallWait(at.Add(tt.last), at.Add(tt.now), 30*time.Second); got != tt.want {
			t.Errorf("progress at +%s, now +%s: wait %s, want %s", tt.last, tt.now, got, tt.want)
		}
	}
}
