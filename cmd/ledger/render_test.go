package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// getData is the `data` of a GET, byte for byte as the server wrote it.
func getData(t *testing.T, c client, key, path string) json.RawMessage {
	t.Helper()
	r := c.do("GET", path, "Bearer "+key, nil)
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.raw), &body); r.status != http.StatusOK || err != nil {
		t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
	}
	return body.Data
}

// renderAt is m.api.ObjectAt, decoded too.
func renderAt(t *testing.T, m *Main, agg events.Aggregate, seq uint64) (json.RawMessage, map[string]any) {
	t.Helper()
	raw, err := m.api.ObjectAt(context.Background(), agg, seq)
	if err != nil {
		t.Fatalf("ObjectAt %s %s at %d: %v", agg.Type, agg.ID, seq, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("ObjectAt %s at %d: %v: %s", agg.ID, seq, err, raw)
	}
	return raw, obj
}

// seqOf is the stream sequence of agg's first event of type typ.
func seqOf(t *testing.T, m *Main, agg events.Aggregate, typ string) uint64 {
	t.Helper()
	evs, _, err := m.events.Load(context.Background(), agg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type() == typ {
			return e.Sequence
		}
	}
	t.Fatalf("%s %s has no %s: %d events", agg.Type, agg.ID, typ, len(evs))
	return 0
}

func lastSeq(t *testing.T, m *Main, agg events.Aggregate) uint64 {
	t.Helper()
	evs, _, err := m.events.Load(context.Background(), agg)
	if err != nil || len(evs) == 0 {
		t.Fatalf("load %s: %v (%d events)", agg.ID, err, len(evs))
	}
	return evs[len(evs)-1].Sequence
}

// TestRenderSaleAtASequence: a sale walked through checkout → pay → partial refund, and its licence
// activated. At the log's latest sequence ObjectAt is GET's data byte for byte (the download link is the one
// issued at completion, valid for days, so nothing needs normalising); at earlier sequences it shows
// the sale as it was: awaiting_payment at sale_started, completed without refunds at completion (with
// the licence issued in the completion's append), the licence inactive before its activation. Before the sale's first event it is not found.
func TestRenderSaleAtASequence(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "render")
	id := paidSale(t, c, live, "render@example.com", 10000)
	if r := c.post("/v1/sales/"+id+"/refunds", live, "", `{"amount":4000}`); r.status != 201 {
		t.Fatalf("refund: %d %s", r.status, r.raw)
	}
	sale := waitSale(t, c, live, id, func(d map[string]any) bool { return field(d, "amount_refunded.amount") == 4000.0 })
	lic := field(sale, "post_purchase.licences").([]any)[0].(map[string]any)
	key := lic["licence_key"].(string)
	if r := c.post("/v1/licences/"+key+"/activate", live, "", `{"instance":"laptop"}`); r.status != 200 {
		t.Fatalf("activate: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, id, func(d map[string]any) bool {
		l, _ := field(d, "post_purchase.licences").([]any)
		return len(l) == 1 && l[0].(map[string]any)["activations"] == 1.0
	})

	saleAgg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateSale, ID: id}
	licAgg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateLicence, ID: lic["id"].(string)}
	// The latest sequence of the log, not just the sale's: nothing after it changes the sale.
	head, err := m.events.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		agg  events.Aggregate
		path string
	}{{saleAgg, "/v1/sales/" + id}, {licAgg, "/v1/licences/" + key}} {
		want := getData(t, c, live, tt.path)
		if got, _ := renderAt(t, m, tt.agg, head); !bytes.Equal(got, want) {
			t.Errorf("%s at %d:\n got %s\nwant %s", tt.path, head, got, want)
		}
	}
	// At the sale's own last event (the refund) its licence was not activated yet: a licence is its
	// own aggregate, and rendered as at seq too.
	_, at := renderAt(t, m, saleAgg, lastSeq(t, m, saleAgg))
	if l := field(at, "post_purchase.licences").([]any); len(l) != 1 || l[0].(map[string]any)["activations"] != 0.0 ||
		field(at, "amount_refunded.amount") != 4000.0 {
		t.Errorf("at the refund: %v", at)
	}

	started := seqOf(t, m, saleAgg, events.TypeSaleStarted)
	_, at = renderAt(t, m, saleAgg, started)
	if at["status"] != domain.StatusAwaitingPayment || field(at, "payment.status") != nil || at["post_purchase"] != nil || at["completed_at"] != nil {
		t.Errorf("at sale_started: %v", at)
	}
	_, at = renderAt(t, m, saleAgg, seqOf(t, m, saleAgg, events.TypeSaleCompleted))
	licences, _ := field(at, "post_purchase.licences").([]any)
	if at["status"] != domain.StatusCompleted || field(at, "amount_refunded.amount") != 0.0 || len(at["refunds"].([]any)) != 0 ||
		len(licences) != 1 || licences[0].(map[string]any)["status"] != "inactive" {
		t.Errorf("at completion: %v", at)
	}
	_, at = renderAt(t, m, licAgg, seqOf(t, m, licAgg, events.TypeLicenceIssued))
	if at["status"] != "inactive" || at["activations"] != 0.0 {
		t.Errorf("licence at issue: %v", at)
	}
	if _, err := m.api.ObjectAt(context.Background(), saleAgg, started-1); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("before the sale: %v", err)
	}
}

// TestRenderCustomerAtASequence: a customer created, then renamed. At the latest sequence ObjectAt is
// GET's data byte for byte; at creation it shows the old name. Once the customer is erased, every
// sequence of theirs renders as the deleted customer, with none of their personal data, and their
// sale renders as GET shows it (email and name null), at its start too.
func TestRenderCustomerAtASequence(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "render-cus")
	cus := mustCustomer(t, c, live, `{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","phone":"+2250707070707"}`)
	id := cus["id"].(string)
	if r := c.send("PATCH", "/v1/customers/"+id, map[string]string{"Authorization": "Bearer " + live},
		strings.NewReader(`{"first_name":"Augusta"}`)); r.status != 200 || field(r.body, "data.first_name") != "Augusta" {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	agg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateCustomer, ID: id}
	if got, want := mustRender(t, m, agg, lastSeq(t, m, agg)), getData(t, c, live, "/v1/customers/"+id); !bytes.Equal(got, want) {
		t.Errorf("latest:\n got %s\nwant %s", got, want)
	}
	registered := seqOf(t, m, agg, events.TypeCustomerRegistered)
	if _, at := renderAt(t, m, agg, registered); at["first_name"] != "Ada" || at["name"] != "Ada Lovelace" || at["email"] != "ada@example.com" {
		t.Errorf("at registration: %v", at)
	}

	// A sale of theirs, then their erasure.
	r := c.post("/v1/checkouts", live, "", checkoutBody("ada@example.com", 500, ""))
	if r.status != 201 {
		t.Fatalf("checkout: %d %s", r.status, r.raw)
	}
	saleID := field(r.body, "data.id").(string)
	if field(r.body, "data.customer.id") != id {
		t.Fatalf("the sale's customer: %v, want %s", field(r.body, "data.customer"), id)
	}
	if r := c.do("DELETE", "/v1/customers/"+id, "Bearer "+live, nil); r.status != 200 {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	evs, _, err := m.events.Load(context.Background(), agg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		raw, at := renderAt(t, m, agg, e.Sequence)
		if len(at) != 3 || at["id"] != id || at["object"] != "customer" || at["deleted"] != true {
			t.Errorf("erased, at %d (%s): %s", e.Sequence, e.Type(), raw)
		}
	}
	saleAgg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateSale, ID: saleID}
	want := getData(t, c, live, "/v1/sales/"+saleID)
	if got := mustRender(t, m, saleAgg, lastSeq(t, m, saleAgg)); !bytes.Equal(got, want) {
		t.Errorf("erased customer's sale:\n got %s\nwant %s", got, want)
	}
	for _, seq := range []uint64{seqOf(t, m, saleAgg, events.TypeSaleStarted), lastSeq(t, m, saleAgg)} {
		raw, at := renderAt(t, m, saleAgg, seq)
		for _, personal := range []string{"ada@", "Ada", "Augusta", "Lovelace", "John", "Doe", "0707070707"} {
			if bytes.Contains(raw, []byte(personal)) {
				t.Errorf("erased customer's sale at %d shows %q: %s", seq, personal, raw)
			}
		}
		if field(at, "customer.id") != id || field(at, "customer.email") != nil || field(at, "customer.name") != nil {
			t.Errorf("erased customer's sale at %d: %v", seq, at["customer"])
		}
	}
}

func mustRender(t *testing.T, m *Main, agg events.Aggregate, seq uint64) json.RawMessage {
	t.Helper()
	raw, _ := renderAt(t, m, agg, seq)
	return raw
}

// TestRenderSaleAtAFullRefund: a full refund revokes the sale's licence in the same append, after the
// refund in the log. The sale rendered at the refund's sequence (what sale.refunded carries) shows the
// licence revoked, as the refund left it; at the completion it is not.
func TestRenderSaleAtAFullRefund(t *testing.T) {
	m := startMain(t, t.TempDir(), withGateways)
	c := client{t, "http://" + m.HTTPAddr}
	storeID, live, _ := createStore(t, c, "render-full")
	id := paidSale(t, c, live, "full@example.com", 10000)
	if r := c.post("/v1/sales/"+id+"/refunds", live, "", `{}`); r.status != 201 {
		t.Fatalf("refund: %d %s", r.status, r.raw)
	}
	waitSale(t, c, live, id, func(d map[string]any) bool { return d["status"] == domain.StatusRefunded })
	saleAgg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateSale, ID: id}
	refunded := seqOf(t, m, saleAgg, events.TypeRefundRecorded)
	_, at := renderAt(t, m, saleAgg, refunded)
	l := field(at, "post_purchase.licences").([]any)
	if at["status"] != domain.StatusRefunded || len(l) != 1 || l[0].(map[string]any)["status"] != "revoked" {
		t.Fatalf("at the full refund: %v", at)
	}
	licAgg := events.Aggregate{Mode: events.ModeLive, StoreID: storeID, Type: events.AggregateLicence, ID: l[0].(map[string]any)["id"].(string)}
	if revoked := seqOf(t, m, licAgg, events.TypeLicenceRevoked); revoked <= refunded {
		t.Fatalf("licence revoked at %d, refund at %d: the case this test is about is gone", revoked, refunded)
	}
	_, at = renderAt(t, m, saleAgg, seqOf(t, m, saleAgg, events.TypeSaleCompleted))
	if l := field(at, "post_purchase.licences").([]any); l[0].(map[string]any)["status"] == "revoked" {
		t.Fatalf("at completion the licence is revoked: %v", at)
	}
}
