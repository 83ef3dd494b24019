// Package domain holds the ledger's pure business rules: aggregates folded from events, the decisions
// that produce new events, Money, IDs and the domain errors. It imports no transport or storage package.
package domain

import (
	"errors"
	"sort"
	"strings"
)

// Domain errors. Handlers map them to HTTP statuses in one table; match them with errors.Is.
var (
	// ErrConflict means the aggregate changed between load and append (JetStream's wrong last sequence).
	ErrConflict = errors.New("the resource was modified concurrently")
	// ErrSlugTaken means another store already holds the slug.
	ErrSlugTaken = errors.New("the slug is already taken")
	// ErrUnavailable means the event log could not take the write right now (no stream leader, a
	// timeout); nothing was acknowledged, and the request may be retried.
	ErrUnavailable = errors.New("the event log is temporarily unavailable")
	// ErrNotFound means no such aggregate in the caller's store and mode.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge means an event would be larger than the log accepts in one message; nothing was
	// appended. It is the request's doing (what it asked to record is too large), never the log's.
	ErrTooLarge = errors.New("the event is larger than the log accepts")
)

// ValidationError lists every failing field of a command at once.
type ValidationError struct {
	Fields map[string][]string
}

// Add records one problem with a field.
func (v *ValidationError) Add(field, msg string) {
	if v.Fields == nil {
		v.Fields = map[string][]string{}
	}
	v.Fields[field] = append(v.Fields[field], msg)
}

// Err returns v as an error if it holds any problem, nil otherwise.
func (v *ValidationError) Err() error {
	if v == nil || len(v.Fields) == 0 {
		return nil
	}
	return v
}

func (v *ValidationError) Error() string {
	names := make([]string, 0, len(v.Fields))
	for f := range v.Fields {
		names = append(names, f)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("invalid ")
	for i, f := range names {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f + ": " + strings.Join(v.Fields[f], ", "))
	}
	return b.String()
}
