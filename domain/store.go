package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/salesledger/ledger/events"
)

// Store defaults.
const (
	DefaultServiceFeePercent   = "0"
	DefaultSettlementDelayDays = 7
	DefaultAbandonAfterMinutes = 60
)

// CreateStore is the command that opens a store.
type CreateStore struct {
	Name                string
	Slug                string
	ServiceFeePercent   *string
	SettlementDelayDays *int
	AbandonAfterMinutes *int
}

// StoreKeys are a new store's secret keys in clear text. They exist only in memory, long enough to be
// shown once to the caller; events carry their hashes.
type StoreKeys struct {
	Live string
	Test string
}

// NewStoreKeys generates a live and a test key: "sk_live_" / "sk_test_" and 40 random base62 characters.
func NewStoreKeys() StoreKeys {
	return StoreKeys{Live: "sk_live_" + RandomString(40), Test: "sk_test_" + RandomString(40)}
}

// HashKey is the at-rest form of an API key: hex SHA-256. Keys carry about 238 bits of randomness,
// so a fast hash is enough; nothing about the key can be recovered from it.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// KeyMode tells the mode a key belongs to from its prefix, or "" if it is not a store key.
func KeyMode(key string) string {
	switch {
	case strings.HasPrefix(key, "sk_live_"):
		return events.ModeLive
	case strings.HasPrefix(key, "sk_test_"):
		return events.ModeTest
	}
	return ""
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// Decide validates the command and returns the events that create store id with the given keys: the slug
// reservation and the store itself. Every failing field is reported at once.
func (c CreateStore) Decide(id string, keys StoreKeys) (SlugReserved, StoreCreated, error) {
	var v ValidationError
	name := strings.TrimSpace(c.Name)
	switch {
	case name == "":
		v.Add("name", "The name field is required.")
	case utf8.RuneCountInString(name) > MaxNameLen:
		v.Add("name", fmt.Sprintf("The name may not be greater than %d characters.", MaxNameLen))
	}
	switch {
	case c.Slug == "":
		v.Add("slug", "The slug field is required.")
	case len(c.Slug) > 64 || !slugPattern.MatchString(c.Slug):
		v.Add("slug", "The slug must be 1 to 64 lowercase letters, digits and single hyphens, e.g. my-digital-store.")
	}
	fee := DefaultServiceFeePercent
	if c.ServiceFeePercent != nil {
		if len(*c.ServiceFeePercent) > MaxDecimalLen {
			v.Add("service_fee_percent", fmt.Sprintf("The service fee must be at most %d characters.", MaxDecimalLen))
		} else if _, err := ParsePercent(*c.ServiceFeePercent); err != nil {
			v.Add("service_fee_percent", "The service fee must be a decimal percentage between 0 and 100, e.g. \"5\" or \"2.5\".")
		} else {
			fee = *c.ServiceFeePercent
		}
	}
	delay := DefaultSettlementDelayDays
	if c.SettlementDelayDays != nil {
		if *c.SettlementDelayDays < 0 || *c.SettlementDelayDays > 365 {
			v.Add("settlement_delay_days", "The settlement delay must be between 0 and 365 days.")
		}
		delay = *c.SettlementDelayDays
	}
	abandon := DefaultAbandonAfterMinutes
	if c.AbandonAfterMinutes != nil {
		if *c.AbandonAfterMinutes < 1 || *c.AbandonAfterMinutes > 60*24*30 {
			v.Add("abandon_after_minutes", "The abandon delay must be between 1 and 43200 minutes.")
		}
		abandon = *c.AbandonAfterMinutes
	}
	if err := v.Err(); err != nil {
		return SlugReserved{}, StoreCreated{}, err
	}
	created := StoreCreated{
		StoreID: id, Name: name, Slug: c.Slug, ServiceFeePercent: fee,
		SettlementDelayDays: delay, AbandonAfterMinutes: abandon,
		Keys: []events.APIKey{apiKey(events.ModeLive, keys.Live), apiKey(events.ModeTest, keys.Test)},
	}
	return SlugReserved{Slug: c.Slug, StoreID: id}, created, nil
}

// The store's events, re-exported for readability at call sites.
type (
	StoreCreated = events.StoreCreated
	SlugReserved = events.SlugReserved
)

func apiKey(mode, key string) events.APIKey {
	return events.APIKey{Mode: mode, Hash: HashKey(key), Prefix: key[:len("sk_live_")], Last4: key[len(key)-4:]}
}
