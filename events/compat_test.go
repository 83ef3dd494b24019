package events_test

import (
	"testing"

	"github.com/salesledger/ledger/events"
)

// Events written before a field existed decode forever: the field is absent and means what it meant
// then.
func TestOldEventsDecode(t *testing.T) {
	t.Run("sale_started without metadata", func(t *testing.T) {
		p, err := events.Decode(events.TypeSaleStarted, 1, []byte(`{"sale_id":"sal_1","store":{"id":"str_1","name":"S","slug":"s"},
			"product":{"id":"prd_1","name":"P","type":"course","price":{"amount":9900,"currency":"USD"}},"customer_id":"cus_1",
			"customer":{"id":"cus_1","email":"a@example.com"},"channel":"api","original_amount":{"amount":9900,"currency":"USD"},
			"discount_amount":{"amount":0,"currency":"USD"},"amount":{"amount":9900,"currency":"USD"},"service_fee_percent":"5",
			"settlement_delay_days":7,"abandon_at":"2026-01-15T11:30:00Z"}`))
		if err != nil {
			t.Fatal(err)
		}
		s := p.(events.SaleStarted)
		if s.Metadata != nil || s.SaleID != "sal_1" || s.Amount.Amount != 9900 {
			t.Fatalf("decoded %+v", s)
		}
	})
	t.Run("idempotency_key_recorded without endpoint", func(t *testing.T) {
		p, err := events.Decode(events.TypeIdempotencyKey, 1, []byte(`{"request_hash":"5a9861d137f4820a5a7c4e2c3f68a94a35013e0492d575e78fdabaacaf0ffaa6","resource_id":"sal_INDDAnz5UbTPWzHtHO73MH"}`))
		if err != nil {
			t.Fatal(err)
		}
		r := p.(events.IdempotencyKeyRecorded)
		if r.ResourceID != "sal_INDDAnz5UbTPWzHtHO73MH" || r.UsedOn() != "POST /v1/checkouts" {
			t.Fatalf("decoded %+v, used on %q", r, r.UsedOn())
		}
	})
}
