package webhooksout_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

func TestDefaultSchedule(t *testing.T) {
	parsed, err := webhooksout.ParseSchedule(webhooksout.DefaultScheduleText)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parsed, webhooksout.DefaultSchedule) {
		t.Errorf("DefaultScheduleText parses to %v, DefaultSchedule is %v", parsed, webhooksout.DefaultSchedule)
	}
	if text, _ := webhooksout.DefaultSchedule.MarshalText(); string(text) != webhooksout.DefaultScheduleText {
		t.Errorf("DefaultSchedule.MarshalText() = %q, want %q", text, webhooksout.DefaultScheduleText)
	}
	// DESIGN.md: retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then failed.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at, n := t0, 0
	var waits []time.Duration
	for {
		next, done := webhooksout.DefaultSchedule.NextAttempt(n, at)
		if done {
			break
		}
		waits = append(waits, next.Sub(at))
		at, n = next, n+1
		if n > 100 {
			t.Fatal("the schedule never ends")
		}
	}
	want := []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if !slices.Equal(waits, want) || n != 8 {
		t.Errorf("%d attempts after waits %v, want 8 after %v", n, waits, want)
	}
	if got := at.Sub(t0); got != 27*time.Hour+35*time.Minute+5*time.Second {
		t.Errorf("last attempt %v after the first", got)
	}
}

func TestNextAttempt(t *testing.T) {
	s := webhooksout.Schedule{time.Second, time.Minute}
	last := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		attempt int
		want    time.Time
		done    bool
	}{
		{-1, last, false},
		{0, last, false},
		{1, last.Add(time.Second), false},
		{2, last.Add(time.Minute), false},
		{3, time.Time{}, true},
		{99, time.Time{}, true},
	} {
		got, done := s.NextAttempt(tt.attempt, last)
		if !got.Equal(tt.want) || done != tt.done {
			t.Errorf("NextAttempt(%d) = %v, %v; want %v, %v", tt.attempt, got, done, tt.want, tt.done)
		}
	}
	if _, done := (webhooksout.Schedule{}).NextAttempt(1, last); !done {
		t.Error("an empty schedule retries")
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want webhooksout.Schedule
		bad  string // in the error besides the variable's name
	}{
		{"1s", webhooksout.Schedule{time.Second}, ""},
		{" 1s , 2m,3h ", webhooksout.Schedule{time.Second, 2 * time.Minute, 3 * time.Hour}, ""},
		{"1h30m,500ms", webhooksout.Schedule{90 * time.Minute, 500 * time.Millisecond}, ""},
		{"", nil, "comma list"},
		{"  ", nil, "comma list"},
		{"5s,,5m", nil, "entry 2"},
		{"5s,5m,", nil, "entry 3"},
		{"5", nil, "entry 1"},
		{"5s,5 minutes", nil, "entry 2"},
		{"5s,0s", nil, "entry 2 (0s): want a positive"},
		{"-5s", nil, "entry 1 (-5s): want a positive"},
	} {
		got, err := webhooksout.ParseSchedule(tt.in)
		if tt.bad == "" {
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseSchedule(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			text, _ := got.MarshalText()
			if back, err := webhooksout.ParseSchedule(string(text)); err != nil || !slices.Equal(back, got) {
				t.Errorf("MarshalText of %v = %q, which parses to %v, %v", got, text, back, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "LEDGER_WEBHOOK_RETRY_SCHEDULE") || !strings.Contains(err.Error(), tt.bad) {
			t.Errorf("ParseSchedule(%q) = %v, want an error naming LEDGER_WEBHOOK_RETRY_SCHEDULE and %q", tt.in, err, tt.bad)
		}
		var s webhooksout.Schedule
		if err := s.UnmarshalText([]byte(tt.in)); err == nil || strings.Contains(err.Error(), "LEDGER_") {
			t.Errorf("UnmarshalText(%q) = %v, want an error without the variable (the flag names it)", tt.in, err)
		}
	}
}
