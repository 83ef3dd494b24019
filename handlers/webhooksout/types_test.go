package webhooksout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// decodedTypes reads events/codec.go's Decode and returns every event type it accepts: the constants
// it compares eventType with, and PaymentTypes' values (isPaymentType). Reading the source, not a list
// kept by hand, is what makes a new event type fail TestEveryLedgerEventIsDecided.
func decodedTypes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("../../events/*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	var decode *ast.FuncDecl
	var paymentTypes *ast.CompositeLit
	for _, name := range files {
		if filepath.Ext(name) != ".go" || len(name) > 8 && name[len(name)-8:] == "_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, s := range d.Specs {
					vs, ok := s.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, n := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						switch v := vs.Values[i].(type) {
						case *ast.BasicLit:
							if v.Kind == token.STRING {
								consts[n.Name], _ = strconv.Unquote(v.Value)
							}
						case *ast.CompositeLit:
							if n.Name == "PaymentTypes" {
								paymentTypes = v
							}
						}
					}
				}
			case *ast.FuncDecl:
				if d.Name.Name == "decode" && d.Recv == nil { // Decode's switch, which decodeOpen shares
					decode = d
				}
			}
		}
	}
	if decode == nil || paymentTypes == nil {
		t.Fatal("events.Decode or events.PaymentTypes not found")
	}
	var out []string
	add := func(id *ast.Ident) {
		v, ok := consts[id.Name]
		if !ok {
			t.Fatalf("Decode compares eventType with %s, not a string constant of package events", id.Name)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	ast.Inspect(decode.Body, func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryExpr); ok && b.Op == token.EQL {
			if x, ok := b.X.(*ast.Ident); ok && x.Name == "eventType" {
				if y, ok := b.Y.(*ast.Ident); ok {
					add(y)
				}
			}
		}
		return true
	})
	for _, el := range paymentTypes.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Value.(*ast.Ident); ok {
				add(id)
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("found only %d event types in events.Decode: %v", len(out), out)
	}
	return out
}

func TestEveryLedgerEventIsDecided(t *testing.T) {
	types := decodedTypes(t)
	for _, typ := range types {
		if !Decided(typ) {
			t.Errorf("ledger event type %q has no entry in outgoingOf: decide which outgoing event (or none) it causes", typ)
		}
	}
	for typ := range outgoingOf {
		if !slices.Contains(types, typ) {
			t.Errorf("outgoingOf names %q, which events.Decode does not know", typ)
		}
	}
	// Every outgoing type a subscription may name is caused by some ledger event, and nothing else is.
	caused := map[string]bool{}
	for _, o := range outgoingOf {
		if o == saleFailedIfFailed {
			o = SaleFailed
		}
		if o != "" {
			caused[o] = true
		}
	}
	for _, w := range domain.WebhookEventTypes {
		if !caused[w] {
			t.Errorf("outgoing type %q is subscribable but no ledger event causes it", w)
		}
		delete(caused, w)
	}
	for o := range caused {
		t.Errorf("outgoing type %q is not in domain.WebhookEventTypes", o)
	}
}

func env(mode, aggType, id string, p events.Payload) events.Envelope {
	return events.Envelope{ID: "evt_1", Aggregate: events.Aggregate{Mode: mode, StoreID: "str_1", Type: aggType, ID: id},
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Payload: p}
}

func TestEventFor(t *testing.T) {
	sale := func(p events.Payload) events.Envelope { return env(events.ModeLive, events.AggregateSale, "sal_1", p) }
	cus := func(p events.Payload) events.Envelope {
		return env(events.ModeTest, events.AggregateCustomer, "cus_1", p)
	}
	lic := func(p events.Payload) events.Envelope {
		return env(events.ModeLive, events.AggregateLicence, "lic_1", p)
	}
	pay := func(status string) events.PaymentRecorded { return events.PaymentRecorded{Status: status} }
	tests := []struct {
		name       string
		e          events.Envelope
		saleStatus string
		want       string // "" none
	}{
		{"sale_started", sale(events.SaleStarted{SaleID: "sal_1"}), domain.StatusAwaitingPayment, SaleCreated},
		{"payment_initiated", sale(pay("initiated")), domain.StatusAwaitingPayment, ""},
		{"payment_pending", sale(pay("pending")), domain.StatusAwaitingPayment, ""},
		{"payment_succeeded", sale(pay("success")), domain.StatusCompleted, ""},
		{"payment_failed failing the sale", sale(pay("failed")), domain.StatusFailed, SaleFailed},
		{"payment_cancelled failing the sale", sale(pay("cancelled")), domain.StatusFailed, SaleFailed},
		{"payment_failed on a completed sale", sale(pay("failed")), domain.StatusCompleted, ""},
		{"payment_failed, status unknown", sale(pay("failed")), "", ""},
		{"sale_completed", sale(events.SaleCompleted{}), domain.StatusCompleted, SaleCompleted},
		{"sale_abandoned", sale(events.SaleAbandoned{}), domain.StatusAbandoned, SaleAbandoned},
		{"sale_settled", sale(events.SaleSettled{}), domain.StatusSettled, SaleSettled},
		{"refund_recorded partial", sale(events.RefundRecorded{}), domain.StatusCompleted, SaleRefunded},
		{"refund_recorded full", sale(events.RefundRecorded{}), domain.StatusRefunded, SaleRefunded},
		{"dispute_opened", sale(events.DisputeOpened{}), domain.StatusCompleted, DisputeOpened},
		{"dispute_closed", sale(events.DisputeClosed{}), domain.StatusCompleted, DisputeClosed},
		{"download_recorded", sale(events.DownloadRecorded{}), domain.StatusCompleted, ""},
		{"sale_rated", sale(events.SaleRated{}), domain.StatusCompleted, ""},
		{"customer_registered", cus(events.CustomerRegistered{}), "", CustomerCreated},
		{"customer_updated", cus(events.CustomerUpdated{}), "", CustomerUpdated},
		{"customer_address_added", cus(events.CustomerAddressAdded{}), "", CustomerUpdated},
		{"customer_address_removed", cus(events.CustomerAddressRemoved{}), "", CustomerUpdated},
		{"customer_default_address_set", cus(events.CustomerDefaultAddressSet{}), "", CustomerUpdated},
		{"customer_photo_set", cus(events.CustomerPhotoSet{}), "", CustomerUpdated},
		{"customer_erased", cus(events.CustomerErased{}), "", CustomerDeleted},
		{"licence_issued", lic(events.LicenceIssued{}), "", ""},
		{"licence_activated", lic(events.LicenceActivated{}), "", LicenceActivated},
		{"licence_deactivated", lic(events.LicenceDeactivated{}), "", LicenceDeactivated},
		{"licence_revoked", lic(events.LicenceRevoked{}), "", LicenceRevoked},
		{"webhook_endpoint_created", env(events.ModeLive, events.AggregateWebhookEndpoint, "we_1", events.WebhookEndpointCreated{}), "", ""},
		{"webhook_delivery_attempted", env(events.ModeLive, events.AggregateWebhookDelivery, "whd_1", events.WebhookDeliveryAttempted{}), "", ""},
		{"store_created (platform)", env(events.ModePlatform, events.AggregateStore, "str_1", events.StoreCreated{}), "", ""},
		{"webhook_received (platform)", env(events.ModePlatform, "webhook", "abc", events.WebhookReceived{}), "", ""},
		{"a sale event in platform mode", env(events.ModePlatform, events.AggregateSale, "sal_1", events.SaleCompleted{}), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := EventFor(tt.e, tt.saleStatus)
			if tt.want == "" {
				if ok {
					t.Fatalf("EventFor = %+v, want none", got)
				}
				return
			}
			if want := (Outgoing{Type: tt.want, Object: tt.e.Aggregate.ID}); !ok || got != want {
				t.Fatalf("EventFor = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
}
