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

// TestRandomStringIsUniform draws 124,000 characters: each of the 62 comes about 2,000 times (standard
// deviation about 44). A bound of ±400 fails only for a biased draw (a modulo bias of the kind rejection
// sampling avoids gives some characters 25 % more), never by chance.
func TestRandomStringIsUniform(t *testing.T) {
	counts := map[rune]int{}
	for range 124_000 / 31 {
		s := domain.RandomString(31)
		if len(s) != 31 {
			t.Fatalf("RandomString(31) has %d characters: %q", len(s), s)
		}
		for _, c := range s {
			counts[c]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62: %v", len(counts), counts)
	}
	for c, n := range counts {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", c) || n < 1600 || n > 2400 {
			t.Errorf("character %q drawn %d times, want about 2,000", c, n)
		}
	}
}
