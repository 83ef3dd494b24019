package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
)

func TestLicenceRevokeReasonLimit(t *testing.T) {
	var l domain.Licence
	if got, err := l.Revoke(strings.Repeat("é", domain.MaxReasonLen)); err != nil || len(got) != 1 {
		t.Fatalf("a reason of %d characters: %v %v", domain.MaxReasonLen, got, err)
	}
	_, err := l.Revoke(strings.Repeat("x", domain.MaxReasonLen+1))
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields["reason"] == nil {
		t.Fatalf("a reason over the limit: %v", err)
	}
	// Revoking a revoked licence changes nothing, and still checks the reason.
	l.Revoked = true
	if got, err := l.Revoke("again"); err != nil || got != nil {
		t.Fatalf("revoking twice: %v %v", got, err)
	}
	if _, err := l.Revoke(strings.Repeat("x", domain.MaxReasonLen+1)); !errors.As(err, &ve) {
		t.Fatalf("revoking twice with a reason over the limit: %v", err)
	}
}

func TestCustomerPhoneLimit(t *testing.T) {
	long := "+1" + strings.Repeat("2", domain.MaxPhoneLen)
	email := "p@example.com"
	_, err := domain.CustomerFields{}.Apply(domain.CustomerInput{Email: &email, Phone: &long}, true)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields["phone"]) != 1 || !strings.Contains(ve.Fields["phone"][0], "at most 64 characters") {
		t.Fatalf("a phone of %d characters: %v", len(long), err)
	}
}

func TestStoreFeeLimit(t *testing.T) {
	fee := "1." + strings.Repeat("0", domain.MaxDecimalLen)
	_, _, err := domain.CreateStore{Name: "x", Slug: "x", ServiceFeePercent: &fee}.Decide("str_1", domain.NewStoreKeys())
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields["service_fee_percent"] == nil {
		t.Fatalf("a fee of %d characters: %v", len(fee), err)
	}
}
