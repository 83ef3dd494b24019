package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
)

func ptr[T any](v T) *T { return &v }

func TestCreateStoreDecide(t *testing.T) {
	keys := domain.NewStoreKeys()
	tests := []struct {
		name       string
		cmd        domain.CreateStore
		badFields  []string
		wantFee    string
		wantDelay  int
		wantAbandn int
	}{
		{"defaults", domain.CreateStore{Name: "My Digital Store", Slug: "my-digital-store"}, nil, "0", 7, 60},
		{"explicit", domain.CreateStore{Name: " Shop ", Slug: "s1", ServiceFeePercent: ptr("2.5"), SettlementDelayDays: ptr(0), AbandonAfterMinutes: ptr(15)}, nil, "2.5", 0, 15},
		{"everything wrong at once", domain.CreateStore{Name: "  ", Slug: "Bad_Slug", ServiceFeePercent: ptr("101"), SettlementDelayDays: ptr(-1), AbandonAfterMinutes: ptr(0)},
			[]string{"name", "slug", "service_fee_percent", "settlement_delay_days", "abandon_after_minutes"}, "", 0, 0},
		{"missing slug", domain.CreateStore{Name: "x"}, []string{"slug"}, "", 0, 0},
		{"slug with a dot would break the subject", domain.CreateStore{Name: "x", Slug: "a.b"}, []string{"slug"}, "", 0, 0},
		{"slug too long", domain.CreateStore{Name: "x", Slug: strings.Repeat("a", 65)}, []string{"slug"}, "", 0, 0},
		{"negative fee", domain.CreateStore{Name: "x", Slug: "x", ServiceFeePercent: ptr("-1")}, []string{"service_fee_percent"}, "", 0, 0},
		{"fee not a number", domain.CreateStore{Name: "x", Slug: "x", ServiceFeePercent: ptr("five")}, []string{"service_fee_percent"}, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slug, store, err := tt.cmd.Decide("str_1", keys)
			if len(tt.badFields) > 0 {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a ValidationError", err)
				}
				if len(ve.Fields) != len(tt.badFields) {
					t.Errorf("fields %v, want exactly %v", ve.Fields, tt.badFields)
				}
				for _, f := range tt.badFields {
					if len(ve.Fields[f]) == 0 {
						t.Errorf("no message for %s in %v", f, ve.Fields)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if slug.Slug != tt.cmd.Slug || slug.StoreID != "str_1" || store.Slug != tt.cmd.Slug {
				t.Errorf("slug event %+v / store %+v", slug, store)
			}
			if store.Name != strings.TrimSpace(tt.cmd.Name) || store.ServiceFeePercent != tt.wantFee ||
				store.SettlementDelayDays != tt.wantDelay || store.AbandonAfterMinutes != tt.wantAbandn {
				t.Errorf("store = %+v", store)
			}
			if len(store.Keys) != 2 {
				t.Fatalf("keys = %+v", store.Keys)
			}
			for _, k := range store.Keys {
				clear := map[string]string{"live": keys.Live, "test": keys.Test}[k.Mode]
				if k.Hash != domain.HashKey(clear) || strings.Contains(k.Hash, clear) || k.Last4 != clear[len(clear)-4:] {
					t.Errorf("key at rest %+v does not match its hash or leaks the key", k)
				}
			}
		})
	}
}

func TestKeysAndIDs(t *testing.T) {
	k := domain.NewStoreKeys()
	if domain.KeyMode(k.Live) != "live" || domain.KeyMode(k.Test) != "test" || domain.KeyMode("adm_x") != "" {
		t.Fatalf("key modes wrong for %q %q", k.Live, k.Test)
	}
	if k.Live == domain.NewStoreKeys().Live {
		t.Fatal("two generated keys are equal")
	}
	if domain.HashKey("a") == domain.HashKey("b") || len(domain.HashKey("a")) != 64 {
		t.Fatal("HashKey is not a hex SHA-256")
	}
	seen := map[string]bool{}
	for range 1000 {
		id := domain.NewID(domain.PrefixSale)
		if !strings.HasPrefix(id, "sal_") || len(id) != 26 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
