package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/salesledger/ledger/events"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh temp dir, unmounted when the test ends (after
// everything registered later, like the ledger, has stopped). It skips the test where mounting is not
// allowed (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("this test fills a small disk: mounting a tmpfs needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still has a file open there: detach it now, the kernel frees it once closed.
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmounting the test's tmpfs %s: %v", dir, err)
			}
		}
	})
	return dir
}

// fillDisk writes a file in dir until the disk has no byte left, and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for size := 1 << 20; size >= 1; size /= 16 {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling the disk: %v", err)
				}
				break
			}
		}
	}
	return path
}

// waitReady polls /readyz until it answers want, and returns the last body.
func waitReady(t *testing.T, c client, want int, within time.Duration) response {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := c.do("GET", "/readyz", "", nil)
		if r.status == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %s; last: %d %s", want, within, r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDiskFullWritesResume fills the disk under a running ledger (its data dir on a small tmpfs, the
// embedded server with SyncAlways): writes fail with 503, never a 2xx without storage and never a 500,
// and /readyz says not ready. Once space is freed, writes resume by themselves — nats-server left the
// LEDGER stream refusing every write until JetStream restarts — /readyz is ready again, the payment
// processor and the projection go on, and every write answered 2xx is in the read store exactly once.
func TestDiskFullWritesResume(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk")
	}
	disk := mountTmpfs(t, 64<<20)
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("LEDGER_TEST_LOGS") != "" {
			t.Logf("ledger log:\n%s", logs.String())
		}
	})
	m := startMainLogged(t, filepath.Join(disk, "data"), logs, func(c *Config) {
		withGateways(c)
		c.SyncAlways = true
	})
	c := client{t, "http://" + m.HTTPAddr}

	// What was acknowledged (2xx), to be found exactly once at the end.
	type store struct{ id, key string }
	var (
		stores    []store
		sales     []string // created by checkouts
		customers []string // created by POST /v1/customers
		paid      []string // sales a payment.succeeded delivery was answered 2xx for
	)
	storeID, live, _ := createStore(t, c, "full-disk")
	stores = append(stores, store{storeID, live})
	checkout := func(email string) response {
		r := c.post("/v1/checkouts", live, "", checkoutBody(email, 1500, ""))
		if r.status == http.StatusCreated {
			sales = append(sales, field(r.body, "data.id").(string))
		}
		return r
	}
	var unpaid []string
	for i := range 16 {
		if r := checkout(fmt.Sprintf("before%d@example.com", i)); r.status != http.StatusCreated {
			t.Fatalf("checkout before the disk filled: %d %s", r.status, r.raw)
		}
		unpaid = append(unpaid, sales[len(sales)-1])
	}
	delivery := 0
	pay := func(saleID string) response {
		delivery++
		r := c.standardWebhook(fmt.Sprintf("msg_full_%d", delivery), paymentBody("payment.succeeded", saleID, 1500, "USD"), time.Now())
		if r.status == http.StatusOK {
			paid = append(paid, saleID)
		}
		return r
	}
	nextUnpaid := func() string {
		id := unpaid[0]
		unpaid = unpaid[1:]
		return id
	}
	if r := pay(nextUnpaid()); r.status != http.StatusOK {
		t.Fatalf("payment before the disk filled: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, paid[0], func(d map[string]any) bool { return d["status"] == "completed" })
	waitReady(t, c, http.StatusOK, 10*time.Second)

	filler := fillDisk(t, disk)

	// payment.pending deliveries one at a time until the log refuses one. Each is one event, and so is
	// the payment_pending the processor appends for it: single appends that go straight to the LEDGER
	// stream's file. A delivery that still fits in what the disk has left is stored and answered 2xx
	// (and must be found at the end); the first that does not fit fails the stream's own write, after
	// which nats-server refuses every write to the stream until its JetStream restarts.
	var pending []string // sales a payment.pending delivery was answered 2xx for
	refused := false
	for len(unpaid) > 4 && !refused {
		saleID := nextUnpaid()
		delivery++
		switch r := c.standardWebhook(fmt.Sprintf("msg_pending_%d", delivery), paymentBody("payment.pending", saleID, 1500, "USD"), time.Now()); r.status {
		case http.StatusOK:
			pending = append(pending, saleID)
		case http.StatusServiceUnavailable:
			refused = true
		default:
			t.Fatalf("payment delivery on a full disk: %d %s, want 200 or 503", r.status, r.raw)
		}
	}
	if !refused {
		t.Fatal("the full disk never refused a write")
	}
	if h := m.ns.Healthz(&server.HealthzOptions{Details: true}); h.StatusCode == http.StatusOK {
		t.Fatal("nats-server reports no write error: the test did not reach the fault that needed a restart")
	} else {
		t.Logf("nats-server health on the full disk: %+v", h.Errors)
	}
	r := waitReady(t, c, http.StatusServiceUnavailable, 30*time.Second)
	if r.body["reason"] != "writes to the event log are failing" {
		t.Errorf("/readyz on a full disk: %s", r.raw)
	}

	// Every kind of write answers 503 now: never 2xx, never a 500.
	attempt := 0
	writeRound := func() (statuses []int) {
		attempt++
		saleID := unpaid[0]
		rs := map[string]response{
			"store": c.do("POST", "/v1/admin/stores", "Bearer "+adminToken,
				strings.NewReader(fmt.Sprintf(`{"name":"Shop","slug":"shop-%d"}`, attempt))),
			"checkout": checkout(fmt.Sprintf("during%d@example.com", attempt)),
			"customer": postCustomer(c, live, fmt.Sprintf(`{"email":"customer%d@example.com","first_name":"Ann"}`, attempt)),
			"payment":  pay(saleID),
		}
		for what, r := range rs {
			switch {
			case r.status == http.StatusServiceUnavailable:
				if r.header.Get("Retry-After") == "" {
					t.Errorf("%s: 503 without Retry-After", what)
				}
			case r.status/100 == 2:
				switch what {
				case "store":
					stores = append(stores, store{field(r.body, "data.store.id").(string), field(r.body, "data.keys.live").(string)})
				case "customer":
					customers = append(customers, field(r.body, "data.id").(string))
				case "payment":
					unpaid = unpaid[1:]
				}
			default:
				t.Fatalf("%s (attempt %d): %d %s, want 2xx or 503", what, attempt, r.status, r.raw)
			}
			statuses = append(statuses, r.status)
		}
		return statuses
	}
	for _, s := range writeRound() {
		if s != http.StatusServiceUnavailable {
			t.Fatalf("writes on a full disk answered %v, want 503 each", s)
		}
	}

	// Free the space: writes resume by themselves, within a bounded time.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for {
		ok := true
		for _, s := range writeRound() {
			ok = ok && s/100 == 2
		}
		if ok {
			break
		}
		if time.Since(freed) > 60*time.Second {
			t.Fatal("writes still fail 60s after the disk has space again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every kind of write answered 2xx again %s after the space was freed", time.Since(freed).Round(time.Millisecond))
	waitReady(t, c, http.StatusOK, 30*time.Second)

	// The payment processor goes on: every payment.pending answered 2xx is applied, once; then they
	// are paid.
	for _, id := range pending {
		waitSaleWithin(t, c, live, id, 60*time.Second, func(d map[string]any) bool { return field(d, "payment.status") == "pending" })
		if r := pay(id); r.status != http.StatusOK {
			t.Fatalf("payment after recovery: %d %s", r.status, r.raw)
		}
	}
	// Every sale paid with a 2xx delivery completes, once.
	for _, id := range paid {
		waitSaleWithin(t, c, live, id, 60*time.Second, func(d map[string]any) bool { return d["status"] == "completed" })
		r := c.do("GET", "/v1/sales/"+id+"/events", "Bearer "+live, nil)
		if got := strings.Count(r.raw, `"payment_succeeded"`); got != 1 {
			t.Errorf("sale %s has %d payment_succeeded events, want 1: %s", id, got, r.raw)
		}
		if got, want := strings.Count(r.raw, `"payment_pending"`), min(1, slices.Index(pending, id)+1); got != want {
			t.Errorf("sale %s has %d payment_pending events, want %d: %s", id, got, want, r.raw)
		}
	}
	// And so does the projection: every acknowledged sale and customer is served exactly once.
	countIDs := func(path string) map[string]int {
		r := c.do("GET", path, "Bearer "+live, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
		}
		n := map[string]int{}
		for _, id := range listIDs(t, r) {
			n[id]++
		}
		return n
	}
	listed := countIDs("/v1/sales?per_page=100")
	for _, id := range sales {
		if listed[id] != 1 {
			t.Errorf("acknowledged sale %s is listed %d times", id, listed[id])
		}
	}
	listed = countIDs("/v1/customers?per_page=100")
	for _, id := range customers {
		if listed[id] != 1 {
			t.Errorf("acknowledged customer %s is listed %d times", id, listed[id])
		}
	}
	for _, s := range stores {
		waitForStore(t, c, s.key, s.id, 10*time.Second)
		evs, _, err := m.events.Load(context.Background(), events.Aggregate{Mode: events.ModePlatform, StoreID: s.id, Type: events.AggregateStore, ID: s.id})
		if err != nil || len(evs) != 1 {
			t.Errorf("store %s: %d events in the log (%v), want its one store_created", s.id, len(evs), err)
		}
	}
	t.Logf("acknowledged: %d stores, %d sales, %d customers, %d pending and %d succeeded payments", len(stores), len(sales), len(customers), len(pending), len(paid))
}

// waitSaleWithin is waitSale with its own deadline.
func waitSaleWithin(t *testing.T, c client, key, id string, within time.Duration, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := c.do("GET", "/v1/sales/"+id, "Bearer "+key, nil)
		if r.status == http.StatusOK {
			if d := r.body["data"].(map[string]any); cond(d) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sale %s did not reach the expected state within %s; last: %d %s", id, within, r.status, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
