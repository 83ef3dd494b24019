package events

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeOpen against open-then-Decode on sealed bodies as the log may hold them beyond what Encode
// writes today: unknown members, members null or missing, the version 1 upcasts, with the key, erased
// and without a keyring.
func TestAttack12DecodeOpenOnVariedBodies(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	payloads := []Payload{
		SaleStarted{SaleID: "sal_1", CustomerID: "cus_1", Customer: CustomerRef{ID: "cus_1", Email: "a@example.com", FirstName: "Ada"},
			Shipping: &Shipping{City: "X", Country: &Country{Code: "US"}}, Context: &SaleContext{IPAddress: "203.0.113.9"},
			Metadata: json.RawMessage(`{"a":"<b>&","n":null}`), Amount: Amount{Amount: 1900, Currency: "USD"},
			OriginalAmount: Amount{Amount: 1900, Currency: "USD"}, AbandonAt: at},
		CustomerRegistered{CustomerID: "cus_1", Source: "api", CustomerData: CustomerData{Email: "a@example.com", Metadata: json.RawMessage(`{"x":[1,{"y":null}]}`)}},
		CustomerUpdated{CustomerID: "cus_1", CustomerData: CustomerData{Email: "a@example.com", FirstName: "Z"}},
		CustomerAddressAdded{CustomerID: "cus_1", AddressID: "adr_1", AddressData: AddressData{Line1: "1", City: "C", Country: "CI"}},
		WebhookEndpointCreated{EndpointID: "we_1", URL: "https://h.example", Events: []string{"sale.completed"}, Secret: "whsec_x", SecretLast4: "c_x"},
		WebhookEndpointSecretRotated{EndpointID: "we_1", Secret: "whsec_y", SecretLast4: "c_y", PreviousExpiresAt: at},
	}
	mutations := map[string]func(map[string]json.RawMessage){
		"as written":      func(map[string]json.RawMessage) {},
		"unknown member":  func(m map[string]json.RawMessage) { m["future_field"] = json.RawMessage(`{"customer_id":"cus_9"}`) },
		"subject null":    func(m map[string]json.RawMessage) { nullIf(m, "customer_id"); nullIf(m, "endpoint_id") },
		"subject missing": func(m map[string]json.RawMessage) { delete(m, "customer_id"); delete(m, "endpoint_id") },
		"clear null": func(m map[string]json.RawMessage) {
			nullIf(m, "amount")
			nullIf(m, "source")
			nullIf(m, "url")
			nullIf(m, "address_id")
		},
		"erased flag there": func(m map[string]json.RawMessage) { m["personal_erased"] = json.RawMessage(`false`) },
	}
	for _, p := range payloads {
		for name, mutate := range mutations {
			keys := &gcmKeys{keys: map[string][]byte{}, erased: map[string]bool{}}
			e := Envelope{ID: "evt_1", Aggregate: Aggregate{Mode: ModeLive, StoreID: "str_1", Type: "x", ID: "x1"}, Time: at, Payload: p}
			_, _, data, err := EncodeWith(ctx, keys, e)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			body, _ := json.Marshal(m)
			versions := []int{p.EventVersion()}
			if p.EventType() == TypeSaleStarted {
				versions = append(versions, 1)
			}
			for _, v := range versions {
				for _, c := range []string{"key", "no keyring", "erased"} {
					var kr Keyring = keys
					switch c {
					case "no keyring":
						kr = nil
					case "erased":
						keys.erased[p.(Personal).DataSubject()] = true
					}
					got, gerr := decodeOpen(ctx, kr, p.EventType(), v, body)
					var want Payload
					opened, werr := open(ctx, kr, body)
					if werr == nil {
						want, werr = Decode(p.EventType(), v, opened)
					}
					if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
						t.Errorf("%s v%d, %s, %s:\n decodeOpen %+v (%v)\n open+Decode %+v (%v)", p.EventType(), v, name, c, got, gerr, want, werr)
					}
				}
			}
		}
	}
}

func nullIf(m map[string]json.RawMessage, k string) {
	if _, ok := m[k]; ok {
		m[k] = json.RawMessage(`null`)
	}
}
