package webhooksout_test

import (
	"testing"
	"time"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

func TestShouldDisable(t *testing.T) {
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name         string
		firstFailure time.Time
		success      bool
		want         bool
	}{
		{"failing for exactly 5 days", now.Add(-5 * 24 * time.Hour), false, true},
		{"failing for 6 days", now.Add(-6 * 24 * time.Hour), false, true},
		{"failing for 5 days less a second", now.Add(-5*24*time.Hour + time.Second), false, false},
		{"failing for an hour", now.Add(-time.Hour), false, false},
		{"a success since the first failure", now.Add(-6 * 24 * time.Hour), true, false},
		{"no failure", time.Time{}, false, false},
		{"a first failure in the future (clock skew)", now.Add(time.Hour), false, false},
	} {
		if got := webhooksout.ShouldDisable(tt.firstFailure, now, tt.success); got != tt.want {
			t.Errorf("%s: ShouldDisable = %v, want %v", tt.name, got, tt.want)
		}
	}
	if webhooksout.DisableAfter != 120*time.Hour {
		t.Errorf("DisableAfter = %v, DESIGN.md says 5 days", webhooksout.DisableAfter)
	}
}
