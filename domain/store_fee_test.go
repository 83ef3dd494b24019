package domain_test

import (
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Found by an attack review: POST /v1/admin/stores accepts any service_fee_percent of at most
// 32 characters that parses as 0..100, but completion multiplies it by the amount and demands the product
// be exact at 34 digits. With a fee of 31 significant digits every payment of a sale of this store — even
// 123.45 USD — is refused by the decision with ErrInvalidPercent, which the payment processor treats as
// transient and retries forever (MaxDeliver -1): the customer paid, the sale stays awaiting_payment (and
// is later abandoned by the timer).
func TestAcceptedStoreFeeNeverBlocksCompletion(t *testing.T) {
	fee := "99.99999999999999999999999999999" // 32 characters
	_, created, err := domain.CreateStore{Name: "Fee", Slug: "fee", ServiceFeePercent: &fee}.Decide("str_x", domain.NewStoreKeys())
	if err != nil {
		t.Fatalf("store refused (that would be a fix): %v", err)
	}
	for _, amount := range []int64{12345, domain.MaxAmount} {
		st := refStarted()
		st.Amount = events.Amount{Amount: amount, Currency: "USD"}
		st.ServiceFeePercent = created.ServiceFeePercent
		pay := events.PaymentRecorded{Status: "success", Gateway: "standard", Amount: st.Amount}
		if _, err := givenSale(st).RecordPayment(pay, domain.Grants{LinkTTL: time.Hour}, saleNow); err != nil {
			t.Errorf("a paid sale of %d USD minor units in a store whose fee was accepted cannot complete: %v", amount, err)
		}
	}
}
