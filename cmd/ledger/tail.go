package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// tailOptions are `ledger tail`'s own flags.
type tailOptions struct {
	json      bool
	store     string
	types     string
	aggregate string
	since     string
	follow    explicitBool
}

// explicitBool is a boolean flag that knows whether it was given.
type explicitBool struct{ v, set bool }

func (b *explicitBool) String() string   { return strconv.FormatBool(b != nil && b.v) }
func (b *explicitBool) IsBoolFlag() bool { return true }
func (b *explicitBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.v, b.set = v, true
	return nil
}

// tailLast is how many of the log's last events tail shows when --since is not given.
const tailLast = 10

// tail is `ledger tail`: the event log, decoded, one line per event, following new ones.
func tail(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	var o tailOptions
	cfg, err := commandConfig(commandTail, args, env, stdout, func(fs *flag.FlagSet) {
		fs.BoolVar(&o.json, "json", false, "one JSON object per line instead of text")
		fs.StringVar(&o.store, "store", "", "only these stores' events, comma-separated (str_…)")
		fs.StringVar(&o.types, "type", "", "only these event types, comma-separated (sale_started,payment_succeeded)")
		fs.StringVar(&o.aggregate, "aggregate", "", "only events of these aggregates, comma-separated (sale, customer, licence, store, webhook, …)")
		fs.StringVar(&o.since, "since", "", "start at a stream sequence (1: the whole log), an RFC 3339 time, or a duration ago (1h); default: the last 10 events")
		fs.Var(&o.follow, "follow", "keep waiting for new events; the default through a running ledger, not on a data dir tail opens itself")
	})
	if err != nil {
		return flagErr(err)
	}
	filters, err := tailFilters(o)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	m := &Main{Config: cfg, Log: logger}
	defer m.Close()
	probe := newKeysProbe(logger)
	if err := m.connectTool(ctx, "ledger-tail", probe.option()); err != nil {
		return err
	}

	follow := o.follow.v || !o.follow.set
	if m.lock != nil { // no ledger answered: tail runs the embedded server on the data dir itself
		switch {
		case !o.follow.set:
			follow = false
			fmt.Fprintf(stderr, "no ledger answered, so tail opened the data dir %s itself: it shows the log up to its end "+
				"and stops (--follow keeps it open, and a ledger cannot start on the data dir meanwhile)\n", cfg.DataDir)
		case follow:
			fmt.Fprintf(stderr, "warning: no ledger answered, so tail opened the data dir %s itself and holds its LOCK while it "+
				"follows: \"ledger serve\" cannot start on it until tail stops\n", cfg.DataDir)
		}
	}

	// Personal data is opened only if the keyring can be read; a client without the right (the analytics
	// user) sees it sealed, as any stream consumer does.
	var keys events.Keyring
	if kr, err := probe.keys(ctx, m.events); err != nil {
		fmt.Fprintf(stderr, "personal data stays sealed: the keyring cannot be read (%v)\n", err)
	} else {
		keys = kr
	}

	// Named so that the analytics user may make it too (its consumers are analytics_…, and reading is all
	// tail does); unique, so that two tails never share one.
	ccfg := natsjs.OrderedConsumerConfig{FilterSubjects: filters, NamePrefix: jetstream.AnalyticsRole.ConsumerPrefix + "tail_" + nuid.Next()}
	if err := tailStart(ctx, m.events, o.since, time.Now(), &ccfg); err != nil {
		return err
	}
	cons, err := m.events.JetStream().OrderedConsumer(ctx, jetstream.StreamName, ccfg)
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	if !follow && cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, natsjs.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("tail: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		line := tailLine(ctx, keys, msg.Subject(), msg.Headers().Get, msg.Data(), md.Sequence.Stream)
		if o.json {
			b, _ := json.Marshal(line)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintln(stdout, line.text())
		}
		if !follow && md.NumPending == 0 {
			return nil
		}
	}
}

// tailFilters turns --store, --type and --aggregate into subject filters
// (ledger.<mode>.<store>.<aggregate>.<id>.<type>); none means the whole stream.
func tailFilters(o tailOptions) ([]string, error) {
	list := func(flagName, s string) ([]string, error) {
		if s == "" {
			return []string{"*"}, nil
		}
		var out []string
		for _, v := range strings.Split(s, ",") {
			v = strings.TrimSpace(v)
			if v == "" || strings.ContainsAny(v, ".*> \t") {
				return nil, fmt.Errorf("tail: --%s %q: want names separated by commas, without dots or wildcards", flagName, s)
			}
			out = append(out, v)
		}
		return out, nil
	}
	stores, err := list("store", o.store)
	if err != nil {
		return nil, err
	}
	types, err := list("type", o.types)
	if err != nil {
		return nil, err
	}
	aggs, err := list("aggregate", o.aggregate)
	if err != nil {
		return nil, err
	}
	if o.store == "" && o.types == "" && o.aggregate == "" {
		return nil, nil
	}
	var filters []string
	for _, s := range stores {
		for _, a := range aggs {
			for _, t := range types {
				filters = append(filters, strings.Join([]string{events.SubjectPrefix, "*", s, a, "*", t}, "."))
			}
		}
	}
	return filters, nil
}

// tailStart sets where the consumer starts from --since: a sequence, an RFC 3339 time or a duration
// before now (by the time the stream stored the event); by default the log's last tailLast events.
func tailStart(ctx context.Context, st *jetstream.Store, since string, now time.Time, cfg *natsjs.OrderedConsumerConfig) error {
	if since == "" {
		head, err := st.LastSequence(ctx)
		if err != nil {
			return fmt.Errorf("tail: reading the head of the log: %w", err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = natsjs.DeliverByStartSequencePolicy, 1
		if head > tailLast {
			cfg.OptStartSeq = head - tailLast + 1
		}
		return nil
	}
	if seq, err := strconv.ParseUint(since, 10, 64); err == nil {
		cfg.DeliverPolicy, cfg.OptStartSeq = natsjs.DeliverByStartSequencePolicy, max(seq, 1)
		return nil
	}
	at, err := time.Parse(time.RFC3339Nano, since)
	if err != nil {
		d, derr := time.ParseDuration(since)
		if derr != nil || d < 0 {
			return fmt.Errorf("tail: --since %q: want a stream sequence, an RFC 3339 time or a duration such as 1h", since)
		}
		at = now.Add(-d)
	}
	cfg.DeliverPolicy, cfg.OptStartTime = natsjs.DeliverByStartTimePolicy, &at
	return nil
}

// tailEvent is one line of `ledger tail --json`.
type tailEvent struct {
	Sequence      uint64          `json:"sequence"`
	Time          string          `json:"time,omitempty"`
	ID            string          `json:"id,omitempty"`
	Type          string          `json:"type"`
	Subject       string          `json:"subject"`
	Mode          string          `json:"mode"`
	StoreID       string          `json:"store_id"`
	Aggregate     string          `json:"aggregate"`
	AggregateID   string          `json:"aggregate_id"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Personal      string          `json:"personal,omitempty"` // clear, sealed or erased: only for events with personal data
	Data          json.RawMessage `json:"data,omitempty"`
	Error         string          `json:"error,omitempty"` // the event did not decode
}

// tailLine decodes one message. An event this build cannot decode (a newer ledger's) is shown with the
// error rather than stopping the tail.
func tailLine(ctx context.Context, keys events.Keyring, subject string, header func(string) string, data []byte, seq uint64) tailEvent {
	ev := tailEvent{Sequence: seq, Subject: subject, ID: header(events.HeaderID)}
	parts := strings.Split(subject, ".")
	if len(parts) == 6 {
		ev.Mode, ev.StoreID, ev.Aggregate, ev.AggregateID, ev.Type = parts[1], parts[2], parts[3], parts[4], parts[5]
	}
	if t, err := time.Parse(time.RFC3339Nano, header(events.HeaderTime)); err == nil {
		ev.Time = t.UTC().Format(time.RFC3339Nano)
	}
	e, err := events.DecodeMessageWith(ctx, keys, subject, header, data, seq)
	if err != nil {
		ev.Error = err.Error()
		return ev
	}
	ev.CorrelationID, ev.CausationID = e.CorrelationID, e.CausationID
	payload, err := json.Marshal(e.Payload)
	if err != nil {
		ev.Error = err.Error()
		return ev
	}
	if c, ok := e.Payload.(events.Credentials); ok {
		// A signing secret is a live credential: the operator may read customers' data, never that.
		var members map[string]json.RawMessage
		if json.Unmarshal(payload, &members) == nil {
			for _, k := range c.CredentialMembers() {
				if _, present := members[k]; present {
					members[k] = json.RawMessage(`"[credential]"`)
				}
			}
			payload, _ = json.Marshal(members)
		}
	}
	if bytes.Contains(data, []byte(`"sealed":`)) {
		var members map[string]json.RawMessage
		if json.Unmarshal(payload, &members) == nil {
			_, erased := members["personal_erased"]
			switch {
			case keys == nil:
				// Without the keyring the codec cannot tell sealed from erased: say what is known.
				ev.Personal = "sealed"
				delete(members, "personal_erased")
				payload, _ = json.Marshal(members)
			case erased:
				ev.Personal = "erased"
			default:
				ev.Personal = "clear"
			}
		}
	}
	ev.Data = payload
	return ev
}

// text is the line of `ledger tail`: time, sequence, mode, store, aggregate/id, type and a short summary.
func (ev tailEvent) text() string {
	t := ev.Time
	if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
		t = tt.Format("2006-01-02T15:04:05Z07:00")
	}
	line := fmt.Sprintf("%s  %d  %s  %s  %s/%s  %s", t, ev.Sequence, ev.Mode, ev.StoreID, ev.Aggregate, ev.AggregateID, ev.Type)
	var s string
	if ev.Error != "" {
		s = "(cannot decode: " + ev.Error + ")"
	} else {
		s = summarize(ev)
	}
	if s != "" {
		line += "  " + s
	}
	return line
}

// summaryKeys are the payload members a summary shows, in this order, when present.
var summaryKeys = []string{
	"kind", "status", "amount", "gateway", "transaction_id", "email", "first_name", "last_name", "name", "slug",
	"product", "customer", "customer_id", "sale_id", "licence_id", "instance", "value", "reason", "source",
}

const summaryMax = 160

// summarize picks a few telling members of the payload: amounts as "7920 USD", a product or customer by
// its name or email, ids that are not the event's own aggregate.
func summarize(ev tailEvent) string {
	var members map[string]any
	if json.Unmarshal(ev.Data, &members) != nil {
		return ""
	}
	var parts []string
	for _, k := range summaryKeys {
		v, ok := members[k]
		if !ok {
			continue
		}
		if s := summaryValue(k, v); s != "" && s != ev.AggregateID {
			parts = append(parts, k+"="+s)
		}
	}
	if len(parts) == 0 { // an event type the list does not know: its first few scalar members
		var keys []string
		for k := range members {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s := summaryValue(k, members[k]); s != "" && len(parts) < 4 {
				parts = append(parts, k+"="+s)
			}
		}
	}
	switch ev.Personal {
	case "sealed":
		parts = append(parts, "[personal data sealed]")
	case "erased":
		parts = append(parts, "[personal data erased]")
	}
	s := strings.Join(parts, " ")
	if len(s) > summaryMax {
		s = s[:summaryMax-1] + "…"
	}
	return s
}

func summaryValue(key string, v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return ""
		}
		if strings.ContainsAny(v, " \t") {
			return strconv.Quote(v)
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		if !v {
			return ""
		}
		return "true"
	case map[string]any:
		if amount, ok := v["amount"].(float64); ok {
			cur, _ := v["currency"].(string)
			return strings.TrimSpace(strconv.FormatFloat(amount, 'f', -1, 64) + " " + cur)
		}
		switch key {
		case "product":
			return summaryValue("", v["name"])
		case "customer":
			if s := summaryValue("", v["email"]); s != "" {
				return s
			}
			return summaryValue("", v["id"])
		}
	}
	return ""
}
