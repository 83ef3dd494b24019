package domain_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
)

var idShape = regexp.MustCompile(`^sal_[0-9A-Za-z]+$`)

func TestValidID(t *testing.T) {
	for _, id := range []string{domain.NewID(domain.PrefixSale), "sal_1", "sal_" + strings.Repeat("a", 60)} {
		if !domain.ValidID(domain.PrefixSale, id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range []string{"", "sal_", "*", "sal_*", "sal_>", "sal_a.b", "sal_a-b", "sal_a b", "cus_abc", "SAL_abc",
		"sal_" + strings.Repeat("a", 61), "sal_é"} {
		if domain.ValidID(domain.PrefixSale, id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("sal_abc")
	f.Add("sal_a.*")
	f.Fuzz(func(t *testing.T, id string) {
		want := idShape.MatchString(id) && len(id) <= domain.MaxIDLen
		if got := domain.ValidID(domain.PrefixSale, id); got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", id, got, want)
		}
	})
}

func TestValidLicenceKey(t *testing.T) {
	for _, k := range []string{"F3Q9A-X3RQX-APP2N-MWM25", "ABCDE"} {
		if !domain.ValidLicenceKey(k) {
			t.Errorf("ValidLicenceKey(%q) = false", k)
		}
	}
	for _, k := range []string{"", "*", "F3Q9A-", "-F3Q9A", "F3Q9A--X3RQX", "f3q9a", "F3Q9O", "F3Q9A.X3RQX", strings.Repeat("A", 65)} {
		if domain.ValidLicenceKey(k) {
			t.Errorf("ValidLicenceKey(%q) = true", k)
		}
	}
}
