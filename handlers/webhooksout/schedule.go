package webhooksout

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ScheduleEnv is the environment variable that replaces DefaultSchedule.
const ScheduleEnv = "LEDGER_WEBHOOK_RETRY_SCHEDULE"

// DefaultScheduleText is DefaultSchedule as ScheduleEnv writes it.
const DefaultScheduleText = "5s,5m,30m,2h,5h,10h,10h"

// DefaultSchedule is DESIGN.md's retry schedule: after a failed first attempt, retries 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h and 10 h after the attempt before (Standard Webhooks' example schedule, cut
// after about 32 hours); 8 attempts in all.
var DefaultSchedule = Schedule{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Schedule is the delays of a delivery's retries: entry i is the wait after the attempt numbered i+1
// failed, counted from that attempt's start. len(Schedule)+1 attempts are made at most; a Schedule
// with no entries never retries. The delays are fixed, without jitter, so the delivery log can say when
// the next attempt is and a restart computes the same time from the recorded attempts.
type Schedule []time.Duration

// ParseSchedule reads a comma-separated list of Go durations ("5s,5m,30m"); spaces around entries are
// ignored. Every entry must be positive. An error names ScheduleEnv and the entry; an empty s is an error
// too (the caller uses DefaultSchedule when the variable is unset).
func ParseSchedule(s string) (Schedule, error) {
	sch, err := parseSchedule(s)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", ScheduleEnv, s, err)
	}
	return sch, nil
}

func parseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("want a comma list of durations, e.g. " + DefaultScheduleText)
	}
	var sch Schedule
	for i, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %v", i+1, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("entry %d (%s): want a positive duration", i+1, d)
		}
		sch = append(sch, d)
	}
	return sch, nil
}

// UnmarshalText parses text as ParseSchedule does, for flags; its errors do not name ScheduleEnv (the
// flag's error does).
func (s *Schedule) UnmarshalText(text []byte) error {
	sch, err := parseSchedule(string(text))
	if err != nil {
		return err
	}
	*s = sch
	return nil
}

// MarshalText writes s as ParseSchedule reads it.
func (s Schedule) MarshalText() ([]byte, error) {
	parts := make([]string, len(s))
	for i, d := range s {
		// 5m and 2h, not Duration.String's 5m0s and 2h0m0s.
		t := d.String()
		if strings.HasSuffix(t, "m0s") {
			t = strings.TrimSuffix(t, "0s")
		}
		if strings.HasSuffix(t, "h0m") {
			t = strings.TrimSuffix(t, "0m")
		}
		parts[i] = t
	}
	return []byte(strings.Join(parts, ",")), nil
}

// NextAttempt returns when the attempt after attempt number attempt is due, given that attempt started
// at lastAt; attempts are numbered from 1. done is true (and the time zero) when attempt was the last one
// s allows: the delivery is then failed. attempt 0 (nothing sent yet) is due at lastAt, at once.
func (s Schedule) NextAttempt(attempt int, lastAt time.Time) (next time.Time, done bool) {
	switch {
	case attempt <= 0:
		return lastAt, false
	case attempt > len(s):
		return time.Time{}, true
	default:
		return lastAt.Add(s[attempt-1]), false
	}
}
