package webhooksout

import "time"

// DisableAfter is how long an endpoint may fail every attempt before it is disabled (DESIGN.md).
const DisableAfter = 5 * 24 * time.Hour

// ShouldDisable reports whether an endpoint is to be disabled: its first failed attempt since its last
// success was at firstFailureAt, at least DisableAfter before now, and no attempt succeeded since
// (anySuccessSince false). A zero firstFailureAt (no failure) never disables.
func ShouldDisable(firstFailureAt, now time.Time, anySuccessSince bool) bool {
	return !anySuccessSince && !firstFailureAt.IsZero() && now.Sub(firstFailureAt) >= DisableAfter
}
