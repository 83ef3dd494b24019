package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events/jetstream"
)

// The embedded listener accepts only its users: the analytics user reads the LEDGER stream and nothing
// else — not the data-subject keys, not the shared secrets — and cannot write.
func TestEmbeddedListenerAuth(t *testing.T) {
	const analyticsPW = "analytics-password-0123456789"
	m := startMain(t, t.TempDir(), func(c *Config) { c.NATSListen = "127.0.0.1:-1"; c.AnalyticsPassword = analyticsPW })
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "guarded")
	if r := c.post("/v1/customers", live, "", `{"email":"ada@example.com"}`); r.status != 201 {
		t.Fatal(r.raw)
	}
	url := m.NATSURL
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the embedded listener")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("analytics", "wrong-password-0123456789"), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a wrong password connected")
	}
	nc, err := nats.Connect(url, nats.UserInfo("analytics", analyticsPW))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Reading the stream through a consumer of one's own works.
	cons, err := js.CreateOrUpdateConsumer(ctx, jetstream.StreamName, natsjs.ConsumerConfig{Durable: "analytics_test", AckPolicy: natsjs.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("analytics cannot create a consumer: %v", err)
	}
	batch, err := cons.Fetch(1, natsjs.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		if strings.Contains(string(msg.Data()), "ada@example.com") {
			t.Fatalf("personal data in the clear on %s", msg.Subject())
		}
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		t.Fatalf("analytics read no events: %v", batch.Error())
	}

	// Everything else is refused (a refused request goes unanswered: short deadlines).
	denied := func(what string, op func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := op(ctx); err == nil {
			t.Errorf("analytics could %s", what)
		}
	}
	denied("append to the ledger", func(ctx context.Context) error {
		_, err := js.Publish(ctx, "ledger.live.str_x.sale.sal_x.sale_started", []byte(`{}`))
		return err
	})
	for _, bucket := range []string{jetstream.KeysBucket, "ledger_secrets"} {
		denied("open the bucket "+bucket, func(ctx context.Context) error { _, err := js.KeyValue(ctx, bucket); return err })
		denied("read the bucket "+bucket+" directly", func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KV_"+bucket, []byte(`{"seq":1}`))
			return err
		})
	}
	denied("delete the LEDGER stream", func(ctx context.Context) error { return js.DeleteStream(ctx, jetstream.StreamName) })
}
