package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/events/jetstream"
)

// A reader chooses where the server sends its answers. Inside the ledger's own account an answer sent to a
// subject of a stream would be stored there: the server's JSON appended to the log (the projection halts on
// it), written as a customer key or a shared secret, or delivered to the JetStream API as a command. The
// readers live in accounts of their own, so every answer goes back to the reader's account, where no
// stream listens, and push consumers (which deliver with the server's rights) may not point elsewhere.
func TestRepliesNeverLandInTheLedgersStreams(t *testing.T) {
	const analyticsPW = "analytics-password-0123456789"
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) {
		c.NATSListen = "127.0.0.1:-1"
		c.AnalyticsPassword = analyticsPW
		withGateways(c)
	})
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "targeted")
	cus := mustCustomer(t, c, live, `{"email":"ana@example.com","first_name":"Ana"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payments, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := m.events.SharedSecret(ctx, "download_signing_key", 1)
	if err != nil {
		t.Fatal(err)
	}
	js := m.events.JetStream()
	msgs := func(stream string) uint64 {
		t.Helper()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	before := map[string]uint64{}
	for _, s := range []string{jetstream.StreamName, "KV_" + jetstream.KeysBucket, "KV_ledger_secrets", "OBJ_" + jetstream.PhotosBucket} {
		before[s] = msgs(s)
	}

	analytics, err := nats.Connect(m.NATSURL, nats.UserInfo(analyticsUser, analyticsPW))
	if err != nil {
		t.Fatal(err)
	}
	defer analytics.Close()
	operator, err := dialLedgerNATS(Config{DataDir: dir, NATSListen: strings.TrimPrefix(m.NATSURL, "nats://")}, "test-operator")
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()

	targets := []string{
		"ledger.live." + storeID + ".sale.sal_0000000000000000000000.payment_succeeded",
		"ledger.live." + storeID + ".customer." + cus["id"].(string) + ".customer_erased",
		"$KV." + jetstream.KeysBucket + ".ledger.live." + storeID + ".customer.cus_forged",
		"$KV.ledger_secrets.download_signing_key",
		"$O." + jetstream.PhotosBucket + ".C.forged",
		"$JS.API.CONSUMER.DELETE.LEDGER." + payments,
		"$JS.API.CONSUMER.PAUSE.LEDGER." + payments,
		"$JS.API.STREAM.PURGE.KV_" + jetstream.KeysBucket,
		"$JS.ACK.LEDGER." + payments + ".1.1.1.1796073047716570881.0",
	}
	requests := map[*nats.Conn][][2]string{
		analytics: {
			{"$JS.API.INFO", ""},
			{"$JS.API.STREAM.INFO.LEDGER", ""},
			{"$JS.API.STREAM.MSG.GET.LEDGER", `{"seq":1}`},
			{"$JS.API.DIRECT.GET.LEDGER", `{"seq":1}`},
			{"$JS.API.CONSUMER.CREATE.LEDGER.analytics_reply", `{"stream_name":"LEDGER","config":{"name":"analytics_reply","ack_policy":"explicit"}}`},
			{"$JS.API.CONSUMER.INFO.LEDGER.analytics_reply", ""},
			{"$JS.API.CONSUMER.MSG.NEXT.LEDGER.analytics_reply", `{"batch":3}`},
		},
		operator: {
			{"$JS.API.INFO", ""},
			{"$JS.API.STREAM.NAMES", ""},
			{"$JS.API.STREAM.INFO.KV_" + jetstream.KeysBucket, ""},
			{"$JS.API.DIRECT.GET.KV_" + jetstream.KeysBucket, `{"seq":1}`},
			{"$JS.API.CONSUMER.INFO.LEDGER." + jetstream.PaymentsDurable, ""},
			{"$JS.API.CONSUMER.CREATE.LEDGER.ops_reply", `{"stream_name":"LEDGER","config":{"name":"ops_reply","ack_policy":"explicit"}}`},
			{"$JS.API.CONSUMER.MSG.NEXT.LEDGER.ops_reply", `{"batch":3}`},
		},
	}
	for nc, reqs := range requests {
		for _, req := range reqs {
			for _, target := range targets {
				if err := nc.PublishRequest(req[0], target, []byte(req[1])); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Push consumers may deliver only into the operator's own inbox, and the analytics user has none.
	for nc, deliver := range map[*nats.Conn][]string{
		analytics: {"_INBOX.mine", targets[0], "$JS.API.CONSUMER.RESET.LEDGER." + payments},
		operator:  {"_INBOX.mine", targets[2], targets[3], "$JS.API.CONSUMER.DELETE.LEDGER." + payments},
	} {
		name := map[*nats.Conn]string{analytics: "analytics_push", operator: "ops_push"}[nc]
		for _, ds := range deliver {
			body := fmt.Sprintf(`{"stream_name":"LEDGER","config":{"name":%q,"deliver_subject":%q,"ack_policy":"none"}}`, name, ds)
			expectGateRefusal(t, nc, name, "make a push consumer delivering to "+ds, "$JS.API.CONSUMER.CREATE.LEDGER."+name, body)
		}
	}
	// Refused as a push consumer whatever its name (nats sub --stream names its consumers at random).
	if r, err := analytics.Request("$JS.API.CONSUMER.CREATE.LEDGER.x1Yz", []byte(`{"stream_name":"LEDGER","config":{"name":"x1Yz","deliver_subject":"_INBOX.x","ack_policy":"none"}}`), 10*time.Second); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(string(r.Data), "pull consumers") {
		t.Errorf("a push consumer's refusal does not say why: %s", r.Data)
	}
	// A few round trips on each connection, so that the answers are on their way; the checks below run
	// after a whole checkout and payment besides, and look at what the log holds, not only at counts.
	for nc := range requests {
		for range 3 {
			if _, err := nc.Request("$JS.API.INFO", nil, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	ci, err := js.Consumer(ctx, jetstream.StreamName, payments)
	if err != nil {
		t.Fatalf("the payments consumer: %v", err)
	}
	if info, err := ci.Info(ctx); err != nil || info.Paused {
		t.Fatalf("the payments consumer: %v paused=%v", err, info != nil && info.Paused)
	}
	// The ledger still works end to end: the projection follows the log and a paid sale completes.
	r := c.post("/v1/checkouts", live, "", checkoutBody("buyer@example.com", 1000, ""))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	id := field(r.body, "data.id").(string)
	if r := c.standardWebhook("msg_after_replies", paymentBody("payment.succeeded", id, 1000, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
	if r := getCustomer(c, live, cus["id"].(string)); r.status != 200 || field(r.body, "data.email") != "ana@example.com" {
		t.Fatalf("customer after the attempts: %d %s", r.status, r.raw)
	}

	// Everything the log gained since is the ledger's own events (a server answer has no ce-id), the
	// secrets and photos gained nothing, no forged key exists, and the signing key is the same.
	st, err := js.Stream(ctx, jetstream.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for seq := before[jetstream.StreamName] + 1; seq <= msgs(jetstream.StreamName); seq++ {
		if msg, err := st.GetMsg(ctx, seq); err != nil {
			t.Fatal(err)
		} else if msg.Header.Get(events.HeaderID) == "" {
			t.Errorf("log message %d on %s is no event of the ledger's: %q", seq, msg.Subject, msg.Data)
		}
	}
	for _, stream := range []string{"KV_ledger_secrets", "OBJ_" + jetstream.PhotosBucket} {
		if now := msgs(stream); now != before[stream] {
			t.Errorf("stream %s went from %d to %d messages: an answer was stored", stream, before[stream], now)
		}
	}
	keys, err := js.Stream(ctx, "KV_"+jetstream.KeysBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.GetLastMsgForSubject(ctx, targets[2]); !errors.Is(err, natsjs.ErrMsgNotFound) {
		t.Errorf("the forged key subject %s: %v, want no message", targets[2], err)
	}
	if again, err := m.events.SharedSecret(ctx, "download_signing_key", 1); err != nil || !bytes.Equal(again, signing) {
		t.Errorf("download signing key changed: %v", err)
	}
}

// The analytics user reads through pull consumers named analytics_…, at most MaxAnalyticsConsumers of them:
// JetStream's limits are per account, and the ledger's consumers share the account.
func TestAnalyticsConsumersAreBounded(t *testing.T) {
	const analyticsPW = "analytics-password-0123456789"
	m := startMain(t, t.TempDir(), func(c *Config) {
		c.NATSListen = "127.0.0.1:-1"
		c.AnalyticsPassword = analyticsPW
	})
	nc, err := nats.Connect(m.NATSURL, nats.UserInfo(analyticsUser, analyticsPW))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mk := func(i int) error {
		_, err := js.CreateOrUpdateConsumer(ctx, jetstream.StreamName, natsjs.ConsumerConfig{
			Durable: fmt.Sprintf("analytics_%d", i), AckPolicy: natsjs.AckExplicitPolicy})
		return err
	}
	for i := range jetstream.MaxAnalyticsConsumers {
		if err := mk(i); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	var apiErr *natsjs.APIError
	if err := mk(jetstream.MaxAnalyticsConsumers); !errors.As(err, &apiErr) || apiErr.Code != 403 || !strings.Contains(apiErr.Description, "most allowed") {
		t.Fatalf("consumer %d past the bound: %v", jetstream.MaxAnalyticsConsumers, err)
	}
	if err := mk(0); err != nil { // an update is no new consumer
		t.Fatalf("updating a consumer at the bound: %v", err)
	}
	if err := js.DeleteConsumer(ctx, jetstream.StreamName, "analytics_0"); err != nil {
		t.Fatal(err)
	}
	if err := mk(jetstream.MaxAnalyticsConsumers); err != nil {
		t.Fatalf("a consumer after deleting one: %v", err)
	}
	for _, name := range []string{"reports", "payments", "payments_x", "analytics"} {
		_, err := js.CreateOrUpdateConsumer(ctx, jetstream.StreamName, natsjs.ConsumerConfig{Durable: name, AckPolicy: natsjs.AckExplicitPolicy})
		if !errors.As(err, &apiErr) || apiErr.Code != 403 {
			t.Errorf("consumer %q: %v, want 403", name, err)
		}
	}
}

// A data dir of a ledger from before the accounts (streams in NATS's global account, the payment
// processor's consumer named "payments") starts with its log, keys and payments backlog intact.
func TestDataDirFromBeforeAccounts(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { withGateways(c) })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "older")
	cus := mustCustomer(t, c, live, `{"email":"old@example.com","first_name":"Olga"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payments, err := m.events.PaymentsConsumer(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the processor's consumer as the old ledger did: named "payments".
	js := m.events.JetStream()
	info, err := js.Consumer(ctx, jetstream.StreamName, payments)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	m.Close()

	store := filepath.Join(dir, jetstreamDir)
	acct := filepath.Join(store, "jetstream", jetstream.LedgerAccount)
	if _, err := os.Stat(acct); err != nil {
		t.Fatalf("the ledger's account directory: %v", err)
	}
	if err := os.Rename(acct, filepath.Join(store, "jetstream", "$G")); err != nil {
		t.Fatal(err)
	}
	ns, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: store}, m.Log)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	old, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.DeleteConsumer(ctx, jetstream.StreamName, payments); err != nil {
		t.Fatal(err)
	}
	cfg.Durable, cfg.Name = jetstream.PaymentsDurable, ""
	if _, err := old.CreateConsumer(ctx, jetstream.StreamName, cfg); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	m = startMain(t, dir, func(c *Config) { withGateways(c) })
	c = client{t, "http://" + m.HTTPAddr}
	if r := getCustomer(c, live, cus["id"].(string)); r.status != 200 || field(r.body, "data.email") != "old@example.com" {
		t.Fatalf("customer after the move: %d %s", r.status, r.raw)
	}
	if _, err := m.events.JetStream().Consumer(ctx, jetstream.StreamName, jetstream.PaymentsDurable); !errors.Is(err, natsjs.ErrConsumerNotFound) {
		t.Fatalf("the consumer under its old name: %v", err)
	}
	r := c.post("/v1/checkouts", live, "", checkoutBody("after@example.com", 700, ""))
	id := field(r.body, "data.id").(string)
	if r := c.standardWebhook("msg_after_move", paymentBody("payment.succeeded", id, 700, "USD"), time.Now()); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == "completed" })
}

// The ledger's own consumers cannot be named by a reader (their names carry 128 random bits, and nothing
// the log stores follows nats.go's name counter), and the operator, who may make and delete consumers,
// cannot change or delete one of them even knowing its name: not the projection's, not the payment
// processor's, not the key watcher's (a push consumer delivering to the ledger's inbox).
func TestLedgersConsumersAreOutOfReach(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, dir, func(c *Config) { c.NATSListen = "127.0.0.1:-1" })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "guarded")
	mustCustomer(t, c, live, `{"email":"g@example.com","first_name":"Gus"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := m.events.JetStream()

	// Batch ids stored in the log are random, not nuid (a reader who sees two nuids predicts the rest).
	st, err := js.Stream(ctx, jetstream.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	last, err := m.events.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= last; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if id := msg.Header.Get("Nats-Batch-Id"); id != "" && len(id) != 32 {
			t.Fatalf("event %d has batch id %q, want 32 random hex digits", seq, id)
		}
	}

	operator, err := dialLedgerNATS(Config{DataDir: dir, NATSListen: strings.TrimPrefix(m.NATSURL, "nats://")}, "test-operator")
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	var own []string
	for _, stream := range []string{jetstream.StreamName, "KV_" + jetstream.KeysBucket} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		infos := s.ListConsumers(ctx)
		for ci := range infos.Info() {
			name := ci.Name
			if stream == jetstream.StreamName && !(strings.HasPrefix(name, jetstream.OwnConsumerPrefix) ||
				strings.HasPrefix(name, jetstream.PaymentsDurable+"_") || strings.HasPrefix(name, jetstream.WebhooksDurable+"_")) {
				t.Errorf("the ledger's consumer %q of %s is not named by the ledger", name, stream)
			}
			if stream == jetstream.StreamName && len(name) < 30 {
				t.Errorf("the ledger's consumer %q is short enough to guess", name)
			}
			own = append(own, stream+" "+name)
			for what, req := range map[string][2]string{
				"delete": {"$JS.API.CONSUMER.DELETE." + stream + "." + name, ""},
				"update": {"$JS.API.CONSUMER.CREATE." + stream + "." + name, fmt.Sprintf(
					`{"stream_name":%q,"action":"update","config":{"name":%q,"ack_policy":"none","filter_subject":"ledger.nothing.>"}}`, stream, name)},
			} {
				expectGateRefusal(t, operator, "the operator", what+" the ledger's consumer "+name+" of "+stream, req[0], req[1])
			}
		}
		if err := infos.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Refused for being someone else's, not for want of a look (nats.go cannot look at push consumers);
	// and a push consumer of the operator's own, into its inbox, is the operator's to delete.
	watcher, ok := strings.CutPrefix(own[len(own)-1], "KV_"+jetstream.KeysBucket+" ")
	if !ok {
		t.Fatalf("no key watcher among %v", own)
	}
	if r, err := operator.Request("$JS.API.CONSUMER.DELETE.KV_"+jetstream.KeysBucket+"."+watcher, nil, 10*time.Second); err != nil || !strings.Contains(string(r.Data), "is not the operator user's") {
		t.Errorf("deleting the key watcher %s: %v %s", watcher, err, r.Data)
	}
	mine := `{"stream_name":"KV_` + jetstream.KeysBucket + `","config":{"name":"ops_watch","deliver_subject":"` + jetstream.OperatorInboxPrefix + `.mine","ack_policy":"none"}}`
	if r, err := operator.Request("$JS.API.CONSUMER.CREATE.KV_"+jetstream.KeysBucket+".ops_watch", []byte(mine), 10*time.Second); err != nil || strings.Contains(string(r.Data), `"error"`) {
		t.Fatalf("the operator's own push consumer: %v %s", err, r.Data)
	}
	if r, err := operator.Request("$JS.API.CONSUMER.DELETE.KV_"+jetstream.KeysBucket+".ops_watch", nil, 10*time.Second); err != nil || !strings.Contains(string(r.Data), `"success":true`) {
		t.Errorf("deleting the operator's own push consumer: %v %s", err, r.Data)
	}
	if len(own) < 3 {
		t.Fatalf("found only %v: the projection, the payment processor and the key watcher should be there", own)
	}
	// Still working: a new customer is projected.
	cus := mustCustomer(t, c, live, `{"email":"h@example.com","first_name":"Hal"}`)
	if r := getCustomer(c, live, cus["id"].(string)); r.status != 200 {
		t.Fatalf("customer after the attempts: %d %s", r.status, r.raw)
	}
}
