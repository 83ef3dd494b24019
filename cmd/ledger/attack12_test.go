package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events/jetstream"
)

// Two replicas share one NATS server. Replica A takes a checkout, so the shared sale cache of A
// (handlers/salecache, filled by startSale since ae60fbc) holds the sale as "awaiting_payment". The
// payment's delivery is applied by replica B's processor (here: A's processor is stopped, so the
// outcome of the race between the two processors is fixed). A's read store then shows the sale
// completed, but A's commands decide on the cached copy, which nothing on A ever refreshes:
// a rejection (not refundable, not completed) involves no append, so no expected sequence catches the
// stale copy, and A refuses the refund and the rating for as long as the entry stays cached.
//
// Before ae60fbc A had no cached copy of a sale it had only checked out, read the read store, and
// both commands succeeded.
func TestAttack12CheckoutCacheGoesStaleWhenAnotherReplicaTakesThePayment(t *testing.T) {
	ext, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", ServerName: "shared"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)
	shared := func(c *Config) {
		withGateways(c)
		c.NATSURL = ext.ClientURL()
	}
	a := startMain(t, t.TempDir(), shared)
	b := startMain(t, t.TempDir(), shared)
	ca, cb := client{t, "http://" + a.HTTPAddr}, client{t, "http://" + b.HTTPAddr}
	_, live, _ := createStore(t, ca, "two-replicas-cache")

	r := ca.post("/v1/checkouts", live, "", checkoutBody("buyer@example.com", 1200, ""))
	if r.status != http.StatusCreated {
		t.Fatalf("checkout on A: %d %s", r.status, r.raw)
	}
	saleID := field(r.body, "data.id").(string)

	// The delivery goes to B's processor: A's no longer pulls from the shared durable consumer.
	if err := a.router.Close(); err != nil {
		t.Fatal(err)
	}
	if r := cb.standardWebhook("msg_attack12_pay", paymentBody("payment.succeeded", saleID, 1200, "USD"), time.Now()); r.status != http.StatusOK {
		t.Fatalf("delivery to B: %d %s", r.status, r.raw)
	}
	// Both replicas' read stores fold the completion B appended.
	waitSale(t, cb, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })
	sale := waitSale(t, ca, live, saleID, func(d map[string]any) bool { return d["status"] == "completed" })

	// The buyer follows the download link A itself shows for the completed sale.
	files, _ := field(sale, "post_purchase.files").([]any)
	if len(files) == 0 {
		t.Fatalf("A shows no files for the completed sale: %v", sale)
	}
	link := files[0].(map[string]any)["download_url"].(string)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(strings.Replace(link, "http://"+b.HTTPAddr, "http://"+a.HTTPAddr, 1))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Errorf("download on A of a sale A shows completed: %d; want 302 (decided on A's cached awaiting_payment copy)", res.StatusCode)
	}

	// A itself shows the sale completed, yet decides on its cached checkout copy.
	if r := ca.post("/v1/sales/"+saleID+"/rating", live, "", `{"value":5}`); r.status != http.StatusCreated {
		t.Errorf("rating on A of a sale A shows completed: %d %s; want 201 (decided on A's cached awaiting_payment copy)", r.status, r.raw)
	}
	if r := ca.post("/v1/sales/"+saleID+"/refunds", live, "", `{"amount":200}`); r.status != http.StatusCreated {
		t.Errorf("refund on A of a sale A shows completed: %d %s; want 201 (decided on A's cached awaiting_payment copy)", r.status, r.raw)
	}
	// B, which has no cached checkout copy (or the processor's fresh one), accepts the same refund.
	if r := cb.post("/v1/sales/"+saleID+"/refunds", live, "", `{"amount":200}`); r.status != http.StatusCreated {
		t.Errorf("refund on B: %d %s", r.status, r.raw)
	}
}
