package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events/jetstream"
)

// violations collects the permission violations the server reports on one connection.
type violations struct {
	mu   sync.Mutex
	seen []string
	more chan struct{}
}

func newViolations() *violations { return &violations{more: make(chan struct{}, 1)} }

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	v.mu.Lock()
	v.seen = append(v.seen, err.Error())
	v.mu.Unlock()
	select {
	case v.more <- struct{}{}:
	default:
	}
}

// await waits until the server reported a violation naming subject. The deadline only guards against a
// hang: the server answers a refused publish or subscription at once.
func (v *violations) await(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		v.mu.Lock()
		for _, s := range v.seen {
			if strings.Contains(s, fmt.Sprintf("%q", subject)) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		select {
		case <-v.more:
		case <-deadline:
			t.Errorf("analytics could %s (%s): no permissions violation reported", what, subject)
			return
		}
	}
}

// expectGateRefusal sends a consumer API request as nc and fails the test unless the ledger's consumer gate
// refuses it (a JetStream error with code 403). who and what describe it for the failure message.
func expectGateRefusal(t *testing.T, nc *nats.Conn, who, what, subject, body string) {
	t.Helper()
	r, err := nc.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !strings.Contains(string(r.Data), `"code":403`) {
		t.Errorf("%s could %s (%s): %s", who, what, subject, r.Data)
	}
}

// The analytics user reads the LEDGER stream and nothing else: it receives no reply of the ledger's (keys and
// shared secrets travel as replies), cannot subscribe under the ledger's inboxes or to the buckets, and cannot
// touch the payment processor's consumer, so every webhook answered 200 is applied.
func TestAnalyticsRoleIsReadOnly(t *testing.T) {
	const analyticsPW = "analytics-password-0123456789"
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) {
		c.NATSListen = "127.0.0.1:-1"
		c.AnalyticsPassword = analyticsPW
		withGateways(c)
	})
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "watched")

	v := newViolations()
	nc, err := nats.Connect(m.NATSURL, nats.UserInfo(analyticsUser, analyticsPW), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Everything delivered to analytics' own inboxes while the ledger reads keys and secrets.
	var inboxMsgs atomic.Int64
	var leaked bytes.Buffer
	var leakedMu sync.Mutex
	if _, err := nc.Subscribe("_INBOX.>", func(msg *nats.Msg) {
		inboxMsgs.Add(1)
		leakedMu.Lock()
		fmt.Fprintf(&leaked, "%s %q\n", msg.Subject, msg.Data)
		leakedMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{">", jetstream.InboxPrefix + ".>", jetstream.OperatorInboxPrefix + ".>", "$KV.>", "$JS.API.>", "$JS.EVENT.>", "$O.>"} {
		if _, err := nc.Subscribe(subj, func(*nats.Msg) { inboxMsgs.Add(1) }); err != nil {
			t.Fatal(err)
		}
		v.await(t, "subscribe", subj)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// The ledger reads keys and secrets: a customer is created (a key is made and read back), the shared
	// secrets are read as at start-up, and a rebuild through the listener reads every customer's key.
	cus := mustCustomer(t, c, live, `{"email":"kim@example.com","first_name":"Kim"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range []string{"download_signing_key", "email_claim_key"} {
		if _, err := m.events.SharedSecret(ctx, name, 1); err != nil {
			t.Fatal(err)
		}
	}
	listen := strings.TrimPrefix(m.NATSURL, "nats://")
	var stderr bytes.Buffer
	if err := run(ctx, []string{"rebuild", "--data-dir", dir, "--nats-listen", listen, "--until", "1000000"}, env(nil), &stderr, &stderr); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr.String())
	}
	if r := getCustomer(c, live, cus["id"].(string)); r.status != 200 || field(r.body, "data.email") != "kim@example.com" {
		t.Fatalf("customer: %d %s", r.status, r.raw)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := inboxMsgs.Load(); n != 0 {
		t.Fatalf("analytics received %d messages not meant for it:\n%s", n, leaked.String())
	}

	// Outside its imports nothing is even published: the server refuses it.
	for what, subj := range map[string]string{
		"pause the payments consumer":       "$JS.API.CONSUMER.PAUSE.LEDGER." + jetstream.PaymentsDurable,
		"list the ledger's consumer names":  "$JS.API.CONSUMER.NAMES.LEDGER",
		"list the ledger's consumers":       "$JS.API.CONSUMER.LIST.LEDGER",
		"read the key bucket":               "$JS.API.DIRECT.GET.KV_" + jetstream.KeysBucket + ".$KV." + jetstream.KeysBucket + ".x",
		"append an event":                   "ledger.live.str_x.sale.sal_x.payment_succeeded",
		"delete the stream":                 "$JS.API.STREAM.DELETE.LEDGER",
		"read the secrets bucket's stream":  "$JS.API.STREAM.MSG.GET.KV_ledger_secrets",
		"create a consumer on the keys":     "$JS.API.CONSUMER.CREATE.KV_" + jetstream.KeysBucket + ".x",
		"write to the photos object store":  "$O.ledger_photos.C.x",
		"publish to a ledger inbox":         jetstream.InboxPrefix + ".x.y",
		"publish to an operator tool inbox": jetstream.OperatorInboxPrefix + ".x.y",
	} {
		if err := nc.Publish(subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		v.await(t, what, subj)
	}
	// The consumer API answers through the ledger's gate, which refuses the payment processor's consumer
	// and any consumer not named analytics_….
	for what, subj := range map[string]string{
		"read the payments consumer":      "$JS.API.CONSUMER.INFO.LEDGER." + jetstream.PaymentsDurable,
		"delete the payments consumer":    "$JS.API.CONSUMER.DELETE.LEDGER." + jetstream.PaymentsDurable,
		"re-create the payments consumer": "$JS.API.CONSUMER.CREATE.LEDGER." + jetstream.PaymentsDurable,
		"re-filter the payments consumer": "$JS.API.CONSUMER.CREATE.LEDGER." + jetstream.PaymentsDurable + ".ledger.>",
		"create a durable named payments": "$JS.API.CONSUMER.DURABLE.CREATE.LEDGER." + jetstream.PaymentsDurable,
		"read the webhooks consumer":      "$JS.API.CONSUMER.INFO.LEDGER." + jetstream.WebhooksDurable,
		"delete the webhooks consumer":    "$JS.API.CONSUMER.DELETE.LEDGER." + jetstream.WebhooksDurable,
		"re-create the webhooks consumer": "$JS.API.CONSUMER.CREATE.LEDGER." + jetstream.WebhooksDurable,
		"create a consumer of any name":   "$JS.API.CONSUMER.CREATE.LEDGER.reports",
		"delete a consumer of any name":   "$JS.API.CONSUMER.DELETE.LEDGER.reports",
	} {
		expectGateRefusal(t, nc, "analytics", what, subj, `{"stream_name":"LEDGER","config":{"ack_policy":"explicit"}}`)
	}
	// Pulls and acknowledgements name the consumer, and the payment processor's real name is not one a
	// reader can know: under its well-known name there is nothing.
	// (No consumer listens there, so the pull goes unanswered.)
	if r, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.LEDGER."+jetstream.PaymentsDurable, []byte(`{"batch":1,"no_wait":true}`), time.Second); err == nil {
		t.Fatalf("a pull from %s was answered: %v %s", jetstream.PaymentsDurable, r.Header, r.Data)
	} else if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatal(err)
	}
	if err := nc.Publish("$JS.ACK.LEDGER."+jetstream.PaymentsDurable+".1.5.5.1796073047716570881.0", nil); err != nil {
		t.Fatal(err)
	}

	// Consumers of its own work, ordered ones included, and show the events (personal data sealed).
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := js.OrderedConsumer(ctx, jetstream.StreamName, natsjs.OrderedConsumerConfig{NamePrefix: "analytics"})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	msg, err := oc.Next(natsjs.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("analytics read no event: %v", err)
	}
	if !strings.HasPrefix(msg.Subject(), "ledger.") {
		t.Fatalf("first event on %s", msg.Subject())
	}

	// Every webhook answered 200 is applied.
	var sales []string
	for i := range 20 {
		r := c.post("/v1/checkouts", live, "", checkoutBody(fmt.Sprintf("buyer%d@example.com", i), 1000, ""))
		if r.status != 201 {
			t.Fatalf("checkout: %d %s", r.status, r.raw)
		}
		id := field(r.body, "data.id").(string)
		sales = append(sales, id)
		if r := c.standardWebhook("msg_roles_"+id, paymentBody("payment.succeeded", id, 1000, "USD"), time.Now()); r.status != 200 {
			t.Fatalf("webhook: %d %s", r.status, r.raw)
		}
	}
	for _, id := range sales {
		waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
	}
}

// Operator tools (rebuild, tail) read the log and the keys through the listener, and write nothing.
func TestOperatorRoleReadsOnly(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "operated")
	mustCustomer(t, c, live, `{"email":"op@example.com"}`)

	nc, err := dialLedgerNATS(Config{DataDir: dir, NATSListen: strings.TrimPrefix(m.NATSURL, "nats://")}, "test-operator")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	v := newViolations()
	nc.SetErrorHandler(v.handler)
	st, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := st.Keys(ctx); err != nil {
		t.Fatalf("operator cannot open the keyring: %v", err)
	}
	// It may look at the payments backlog, not take part in it.
	ojs, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{jetstream.PaymentsDurable, jetstream.WebhooksDurable} {
		if _, err := ojs.Consumer(ctx, jetstream.StreamName, name); err != nil {
			t.Fatalf("operator cannot read the %s consumer's state: %v", name, err)
		}
	}
	for what, subj := range map[string]string{
		"append an event":               "ledger.live.str_x.sale.sal_x.payment_succeeded",
		"write a key":                   "$KV." + jetstream.KeysBucket + ".x",
		"read the shared secrets":       "$JS.API.DIRECT.GET.KV_ledger_secrets.$KV.ledger_secrets.download_signing_key",
		"delete the stream":             "$JS.API.STREAM.DELETE.LEDGER",
		"purge the key bucket":          "$JS.API.STREAM.PURGE.KV_" + jetstream.KeysBucket,
		"pause payments":                "$JS.API.CONSUMER.PAUSE.LEDGER." + jetstream.PaymentsDurable,
		"publish to the ledger's inbox": jetstream.InboxPrefix + ".x.y",
	} {
		if err := nc.Publish(subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		v.await(t, what, subj)
	}
	for what, subj := range map[string]string{
		"delete payments":    "$JS.API.CONSUMER.DELETE.LEDGER." + jetstream.PaymentsDurable,
		"re-create payments": "$JS.API.CONSUMER.DURABLE.CREATE.LEDGER." + jetstream.PaymentsDurable,
		"delete webhooks":    "$JS.API.CONSUMER.DELETE.LEDGER." + jetstream.WebhooksDurable,
	} {
		expectGateRefusal(t, nc, "the operator", what, subj, `{"stream_name":"LEDGER","config":{"durable_name":"payments","ack_policy":"explicit"}}`)
	}
	// Its info shows the backlog under the well-known name, never the real one (which would let the
	// operator pull and acknowledge).
	real, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := nc.Request("$JS.API.CONSUMER.INFO.LEDGER."+jetstream.PaymentsDurable, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(r.Data), real) || !strings.Contains(string(r.Data), `"num_pending"`) {
		t.Fatalf("payments info as the operator sees it: %s", r.Data)
	}
	for _, subj := range []string{"_INBOX.>", jetstream.InboxPrefix + ".>", "$KV.>", "ledger.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		v.await(t, "subscribe", subj)
	}
}

// A stranger's failed logins to the listener cost the server little: the CPU the whole process spends on
// them, per login, stays far below one bcrypt check (~80 ms of CPU at default cost; more under -race).
func TestFailedNATSLoginsAreCheap(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) {
		c.NATSListen = "127.0.0.1:-1"
		c.AnalyticsPassword = "analytics-password-0123456789"
	})
	const logins = 40
	before := processCPU(t)
	for i := range logins {
		nc, err := nats.Connect(m.NATSURL, nats.UserInfo(analyticsUser, fmt.Sprintf("wrong-password-%d-0123456789", i)),
			nats.Timeout(30*time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("a wrong password was accepted")
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	perLogin := (processCPU(t) - before) / logins
	// The bound is CPU time, not wall time, so a busy machine does not move it; the client's own work is
	// included, and -race multiplies everything.
	if perLogin > 20*time.Millisecond {
		t.Fatalf("a failed login costs %v of CPU", perLogin)
	}
	t.Logf("CPU per failed login (server and client together): %v", perLogin)
}

// processCPU is the user and system CPU time this process has used so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Readiness says not ready while the payment processor is not consuming (its consumer paused), and a
// deleted consumer is made again from where it was acknowledged: no webhook answered 200 is left unapplied.
func TestReadinessFollowsPaymentProcessor(t *testing.T) {
	m := startMain(t, t.TempDir(), func(c *Config) { withGateways(c); c.readyCheckEvery = 50 * time.Millisecond })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "processing")
	js, err := natsjs.New(m.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready := func(want int, reason string) {
		t.Helper()
		var r response
		for ctx.Err() == nil {
			if r = c.do("GET", "/readyz", "", nil); r.status == want && strings.Contains(r.raw, reason) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("/readyz never answered %d with %q; last %d %s", want, reason, r.status, r.raw)
	}
	pay := func(i int) string {
		t.Helper()
		r := c.post("/v1/checkouts", live, "", checkoutBody(fmt.Sprintf("p%d@example.com", i), 500, ""))
		id := field(r.body, "data.id").(string)
		if r := c.standardWebhook(fmt.Sprintf("msg_ready_%d", i), paymentBody("payment.succeeded", id, 500, "USD"), time.Now()); r.status != 200 {
			t.Fatalf("webhook: %d %s", r.status, r.raw)
		}
		return id
	}
	ready(200, `"ready"`)
	payments, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(payments, jetstream.PaymentsDurable+"_") || len(payments) < len(jetstream.PaymentsDurable)+20 {
		t.Fatalf("the payments consumer's name %q is guessable", payments)
	}

	if _, err := js.PauseConsumer(ctx, jetstream.StreamName, payments, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ready(503, "payment processor: consumer payments is paused")
	paused := pay(1)
	if _, err := js.ResumeConsumer(ctx, jetstream.StreamName, payments); err != nil {
		t.Fatal(err)
	}
	ready(200, `"ready"`)
	waitSale(t, c, live, paused, func(d map[string]any) bool { return d["status"] == "completed" })

	if err := js.DeleteConsumer(ctx, jetstream.StreamName, payments); err != nil {
		t.Fatal(err)
	}
	// Made again: it exists, and what arrives after is applied.
	for ctx.Err() == nil {
		if _, err := js.Consumer(ctx, jetstream.StreamName, payments); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := pay(2)
	waitSale(t, c, live, after, func(d map[string]any) bool { return d["status"] == "completed" })
	ready(200, `"ready"`)
}
