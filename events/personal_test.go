package events

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// gcmKeys is a Keyring in memory with AES-256-GCM, the subject as additional data (the event store's
// cipher): enough for the codec, which only seals and opens through the interface.
type gcmKeys struct {
	keys   map[string][]byte
	erased map[string]bool
}

func (k *gcmKeys) aead(subject string) (cipher.AEAD, error) {
	if k.erased[subject] {
		return nil, ErrErased
	}
	key, ok := k.keys[subject]
	if !ok {
		key = make([]byte, 32)
		rand.Read(key)
		k.keys[subject] = key
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (k *gcmKeys) Seal(_ context.Context, subject string, plaintext []byte) (string, error) {
	a, err := k.aead(subject)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, a.NonceSize())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(a.Seal(nonce, nonce, plaintext, []byte(subject))), nil
}

func (k *gcmKeys) Open(_ context.Context, subject, sealed string) ([]byte, error) {
	a, err := k.aead(subject)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, err
	}
	return a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], []byte(subject))
}

// TestDecodeOpenEqualsOpenThenDecode: decoding a sealed body by decoding its personal members over the
// clear ones gives exactly the payload that opening it into one JSON object and decoding that gives —
// with the subject's key, after the subject's erasure, and without a keyring — for every kind of
// payload that carries personal data; and, with the key, the payload that was sealed.
func TestDecodeOpenEqualsOpenThenDecode(t *testing.T) {
	ctx := context.Background()
	exp := 30
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	payloads := []Payload{
		SaleStarted{SaleID: "sal_1", Store: StoreRef{ID: "str_1", Name: "Shop", Slug: "shop"}, CustomerID: "cus_1",
			Product: Product{ID: "p1", Name: "Guide", Type: "digital", Price: Amount{Amount: 1900, Currency: "USD"},
				Files: []ProductFile{{ID: "fil_1", Name: "a.pdf", URL: "https://x.example/a.pdf"}}, Licence: &LicenceTerms{MaxActivations: 2, ExpiresInDays: &exp}},
			Customer: CustomerRef{ID: "cus_1", Email: "ada@example.com", EmailAsTyped: "Ada@Example.com", FirstName: "Ada", LastName: "L", Phone: "+14155552671"},
			Discount: &Discount{Code: "X", Type: "percentage", Value: "10"}, Campaign: &Campaign{Name: "spring"}, Channel: "api",
			Shipping: &Shipping{Address: "1 Main St", City: "Springfield", Country: &Country{Code: "US"}, Zip: "12345", State: "IL"},
			Context:  &SaleContext{IPAddress: "203.0.113.9", Country: &Country{Code: "US", Name: "United States"}, DeviceType: "mobile"},
			Metadata: json.RawMessage(`{"order":"o-1","n":[1,2]}`), OriginalAmount: Amount{Amount: 1900, Currency: "USD"},
			DiscountAmount: Amount{Amount: 190, Currency: "USD"}, Amount: Amount{Amount: 1710, Currency: "USD"}, ServiceFeePercent: "5",
			SettlementDelayDays: 7, AbandonAt: at},
		CustomerRegistered{CustomerID: "cus_1", Source: "checkout", CustomerData: CustomerData{Email: "ada@example.com", FirstName: "Ada",
			Phone: "+14155552671", Country: "US", City: "Springfield", Zip: "12345", State: "IL", IP: "203.0.113.9", Metadata: json.RawMessage(`{"a":1}`)}},
		CustomerUpdated{CustomerID: "cus_1", CustomerData: CustomerData{Email: "ada@example.com", LastName: "Lovelace"}},
		CustomerAddressAdded{CustomerID: "cus_1", AddressID: "adr_1", AddressData: AddressData{Line1: "1 Main St", City: "Springfield", Country: "US"}, Default: true},
		WebhookEndpointCreated{EndpointID: "we_1", URL: "https://hooks.example/x", Events: []string{"sale.completed"}, Secret: "whsec_abc", SecretLast4: "_abc"},
	}
	for _, p := range payloads {
		keys := &gcmKeys{keys: map[string][]byte{}, erased: map[string]bool{}}
		e := Envelope{ID: "evt_1", Aggregate: Aggregate{Mode: ModeLive, StoreID: "str_1", Type: "x", ID: "x1"}, Time: at, Payload: p}
		_, _, data, err := EncodeWith(ctx, keys, e)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(data) || reflect.DeepEqual(data, mustJSON(t, p)) {
			t.Fatalf("%s: not sealed: %s", p.EventType(), data)
		}
		for _, c := range []struct {
			name string
			keys Keyring
		}{{"key", keys}, {"no keyring", nil}, {"erased", keys}} {
			if c.name == "erased" {
				keys.erased[p.(Personal).DataSubject()] = true
			}
			got, err := decodeOpen(ctx, c.keys, p.EventType(), p.EventVersion(), data)
			if err != nil {
				t.Fatalf("%s, %s: %v", p.EventType(), c.name, err)
			}
			opened, err := open(ctx, c.keys, data)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Decode(p.EventType(), p.EventVersion(), opened)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: personal over clear\n%+v\nopen, then decode\n%+v", p.EventType(), c.name, got, want)
			}
			if c.name == "key" && !reflect.DeepEqual(mustJSON(t, got), mustJSON(t, p)) {
				t.Errorf("%s: decoded %s, sealed %s", p.EventType(), mustJSON(t, got), mustJSON(t, p))
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
