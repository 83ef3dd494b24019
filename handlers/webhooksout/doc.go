// Package webhooksout holds the primitives of outgoing webhooks (DESIGN.md, "Webhooks out (to stores)"):
// signing a message with Standard Webhooks, sending one attempt through a client that refuses internal
// addresses, the retry schedule, and the rule that disables an endpoint failing everything for 5 days.
// It also holds the dispatcher's pure decisions: which outgoing event a ledger event causes (EventFor),
// which endpoints receive it (Recipients) and the body sent (Body).
//
// It keeps no state and reads no log: a dispatcher (a later slice of issue 11) decides what to send and
// records each Attempt as an event, so attempts survive restarts.
package webhooksout
