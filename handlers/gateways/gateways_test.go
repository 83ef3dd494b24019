package gateways

// Tests for the per-gateway webhook verification and parsing in this package (DESIGN.md §5 "Gateway
// webhooks in"). Every expected signature is computed here, independently of the code under test,
// with crypto/hmac.
//
// Header names: the verifiers read headers with http.Header.Get, which canonicalises the name
// ("webhook-id" → "Webhook-Id"), and net/http canonicalises every incoming header name when it parses a
// request (HTTP/1.x and HTTP/2 alike). So a gateway may send "webhook-id", "Webhook-ID" or
// "WEBHOOK-ID" and it is found. Only a Header map built by hand with a non-canonical key (http.Header{
// "webhook-id": ...}) is not seen by Get; that cannot come from the wire. TestGatewayHeaderNamesAnyCase
// shows both.

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/events"
)

// testNow is the verifier's clock in every test; whole seconds, like the signed timestamps.
var testNow = time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC)

// --- independent signers -----------------------------------------------------------------------------

func hmacOf(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// standardSig is the base64 part of a Standard Webhooks "v1,<base64>" signature.
func standardSig(key []byte, id, ts string, body []byte) string {
	return base64.StdEncoding.EncodeToString(hmacOf(sha256.New, key, []byte(id+"."+ts+"."), body))
}

// stripeSig is the hex of a Stripe "v1=<hex>" signature.
func stripeSig(secret, ts string, body []byte) string {
	return hex.EncodeToString(hmacOf(sha256.New, []byte(secret), []byte(ts+"."), body))
}

func hexSig(h func() hash.Hash, secret string, body []byte) string {
	return hex.EncodeToString(hmacOf(h, []byte(secret), body))
}

func unixAt(d time.Duration) string { return strconv.FormatInt(testNow.Add(d).Unix(), 10) }

// checkErr asserts err against want: nil means success, errAny means "any non-nil error", otherwise
// errors.Is.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("err = %v, want nil", err)
	case want == errAny && err == nil:
		t.Fatalf("err = nil, want a non-nil error")
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// --- standard ------------------------------------------------------------------------------------------

func TestVerifyStandard(t *testing.T) {
	key := []byte("a 24-byte test HMAC key!")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key entirely...."))
	body := []byte(`{"type":"payment.succeeded","data":{"sale_id":"sal_1","transaction_id":"tx_1","amount":{"amount":7920,"currency":"USD"}}}`)
	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

	type req struct {
		secret            string
		id, ts, sig       string
		noID, noTS, noSig bool
		body              []byte
	}
	good := func() req {
		ts := unixAt(0)
		return req{secret: secret, id: id, ts: ts, sig: "v1," + standardSig(key, id, ts, body), body: body}
	}
	at := func(d time.Duration) req {
		r := good()
		r.ts = unixAt(d)
		r.sig = "v1," + standardSig(key, id, r.ts, body)
		return r
	}
	tests := []struct {
		name string
		req  func() req
		want error
	}{
		{"valid", good, nil},
		{"valid among several, wrong one first", func() req {
			r := good()
			r.sig = "v1,AAAA " + r.sig
			return r
		}, nil},
		{"valid after an undecodable and a foreign entry", func() req {
			r := good()
			r.sig = "v1,!!notbase64!! v1a,xyz garbage " + r.sig + " v1,AAAA"
			return r
		}, nil},
		{"good MAC then base64 garbage", func() req {
			r := good()
			r.sig += "!!!!"
			return r
		}, ErrBadSignature},
		{"good MAC then more base64", func() req {
			r := good()
			r.sig += "AAAA"
			return r
		}, ErrBadSignature},
		{"v2 entry with the right MAC is ignored", func() req {
			r := good()
			r.sig = "v2," + strings.TrimPrefix(r.sig, "v1,")
			return r
		}, ErrBadSignature},
		{"v1a entry with the right MAC is ignored", func() req {
			r := good()
			r.sig = "v1a," + strings.TrimPrefix(r.sig, "v1,")
			return r
		}, ErrBadSignature},
		{"upper-case V1 entry is ignored", func() req {
			r := good()
			r.sig = "V1," + strings.TrimPrefix(r.sig, "v1,")
			return r
		}, ErrBadSignature},
		{"v1 entry with no comma is ignored", func() req {
			r := good()
			r.sig = "v1" + strings.TrimPrefix(r.sig, "v1,")
			return r
		}, ErrBadSignature},
		{"wrong secret", func() req {
			r := good()
			r.secret = otherSecret
			return r
		}, ErrBadSignature},
		{"secret without whsec_ prefix still decodes", func() req {
			r := good()
			r.secret = base64.StdEncoding.EncodeToString(key)
			return r
		}, nil},
		{"body changed by one byte", func() req {
			r := good()
			r.body = []byte(strings.Replace(string(body), "7920", "7921", 1))
			return r
		}, ErrBadSignature},
		{"body with one byte appended", func() req {
			r := good()
			r.body = append(append([]byte(nil), body...), ' ')
			return r
		}, ErrBadSignature},
		{"webhook-id changed", func() req {
			r := good()
			r.id = id + "x"
			return r
		}, ErrBadSignature},
		{"webhook-timestamp changed (signed for another second)", func() req {
			r := good()
			r.ts = unixAt(time.Second)
			return r
		}, ErrBadSignature},
		{"missing webhook-id", func() req {
			r := good()
			r.noID = true
			return r
		}, ErrBadSignature},
		{"missing webhook-id, signature computed over an empty id", func() req {
			r := good()
			r.noID = true
			r.sig = "v1," + standardSig(key, "", r.ts, body)
			return r
		}, ErrBadSignature},
		{"missing webhook-timestamp", func() req {
			r := good()
			r.noTS = true
			return r
		}, ErrBadSignature},
		{"missing webhook-signature", func() req {
			r := good()
			r.noSig = true
			return r
		}, ErrBadSignature},
		{"empty webhook-signature value", func() req {
			r := good()
			r.sig = ""
			return r
		}, ErrBadSignature},
		{"4m59s old is valid", func() req { return at(-(4*time.Minute + 59*time.Second)) }, nil},
		{"exactly 5m old is valid", func() req { return at(-5 * time.Minute) }, nil},
		{"4m59s in the future is valid", func() req { return at(4*time.Minute + 59*time.Second) }, nil},
		{"5m01s old is stale", func() req { return at(-(5*time.Minute + time.Second)) }, ErrStaleTimestamp},
		{"5m01s in the future is stale", func() req { return at(5*time.Minute + time.Second) }, ErrStaleTimestamp},
		{"a year old is stale", func() req { return at(-365 * 24 * time.Hour) }, ErrStaleTimestamp},
		{"timestamp far beyond int64 time range is stale", func() req {
			r := good()
			r.ts = strconv.FormatInt(1<<62, 10)
			r.sig = "v1," + standardSig(key, id, r.ts, body)
			return r
		}, ErrStaleTimestamp},
		{"non-numeric timestamp", func() req {
			r := good()
			r.ts = "yesterday"
			r.sig = "v1," + standardSig(key, id, r.ts, body)
			return r
		}, ErrBadSignature},
		{"timestamp in milliseconds is stale", func() req {
			r := good()
			r.ts = strconv.FormatInt(testNow.UnixMilli(), 10)
			r.sig = "v1," + standardSig(key, id, r.ts, body)
			return r
		}, ErrStaleTimestamp},
		{"secret that is not base64", func() req {
			r := good()
			r.secret = "whsec_not*base64!"
			return r
		}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			h := http.Header{}
			if !r.noID {
				h.Set("webhook-id", r.id)
			}
			if !r.noTS {
				h.Set("webhook-timestamp", r.ts)
			}
			if !r.noSig {
				h.Set("webhook-signature", r.sig)
			}
			err := Standard{}.Verify(r.secret, h, r.body, testNow)
			checkErr(t, err, tt.want)
			if tt.want == errAny && errors.Is(err, ErrBadSignature) {
				t.Logf("note: a secret that is not base64 answers ErrBadSignature (401), not a configuration error")
			}
		})
	}
}

// --- stripe --------------------------------------------------------------------------------------------

func TestVerifyStripe(t *testing.T) {
	const secret = "whsec_stripe_test_secret"
	body := []byte(`{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":7920,"currency":"usd"}}}`)
	ts := unixAt(0)
	good := stripeSig(secret, ts, body)
	wrong := stripeSig("not the secret", ts, body)
	tests := []struct {
		name   string
		header string
		noHdr  bool
		body   []byte
		want   error
	}{
		{"valid", "t=" + ts + ",v1=" + good, false, body, nil},
		{"valid, v1 before t", "v1=" + good + ",t=" + ts, false, body, nil},
		{"v0 and two v1, wrong one first", "t=" + ts + ",v1=" + wrong + ",v1=" + good + ",v0=" + good, false, body, nil},
		{"v0 and two v1, good one first", "t=" + ts + ",v0=deadbeef,v1=" + good + ",v1=" + wrong, false, body, nil},
		{"uppercase hex", "t=" + ts + ",v1=" + strings.ToUpper(good), false, body, nil},
		{"spaces after commas", "t=" + ts + ", v1=" + wrong + ", v1=" + good, false, body, nil},
		{"right MAC only under v0", "t=" + ts + ",v0=" + good, false, body, ErrBadSignature},
		{"wrong signature", "t=" + ts + ",v1=" + wrong, false, body, ErrBadSignature},
		{"signature not hex", "t=" + ts + ",v1=zz" + good[2:], false, body, ErrBadSignature},
		{"truncated signature", "t=" + ts + ",v1=" + good[:62], false, body, ErrBadSignature},
		{"good MAC then one more hex digit", "t=" + ts + ",v1=" + good + "0", false, body, ErrBadSignature},
		{"good MAC then non-hex", "t=" + ts + ",v1=" + good + "zz", false, body, ErrBadSignature},
		{"body changed by one byte", "t=" + ts + ",v1=" + good, false, []byte(strings.Replace(string(body), "7920", "7921", 1)), ErrBadSignature},
		{"signed t differs from header t", "t=" + unixAt(time.Second) + ",v1=" + good, false, body, ErrBadSignature},
		{"missing t", "v1=" + good, false, body, ErrBadSignature},
		{"empty t", "t=,v1=" + good, false, body, ErrBadSignature},
		{"missing v1", "t=" + ts, false, body, ErrBadSignature},
		{"empty header", "", false, body, ErrBadSignature},
		{"no header", "", true, body, ErrBadSignature},
		{"non-numeric t", "t=abc,v1=" + stripeSig(secret, "abc", body), false, body, ErrBadSignature},
		{"stale t (5m01s old)", "t=" + unixAt(-(5*time.Minute + time.Second)) + ",v1=" + stripeSig(secret, unixAt(-(5*time.Minute+time.Second)), body), false, body, ErrStaleTimestamp},
		{"t 4m59s old is valid", "t=" + unixAt(-(4*time.Minute + 59*time.Second)) + ",v1=" + stripeSig(secret, unixAt(-(4*time.Minute+59*time.Second)), body), false, body, nil},
		{"t 5m01s in the future is stale", "t=" + unixAt(5*time.Minute+time.Second) + ",v1=" + stripeSig(secret, unixAt(5*time.Minute+time.Second), body), false, body, ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if !tt.noHdr {
				h.Set("Stripe-Signature", tt.header)
			}
			checkErr(t, Stripe{}.Verify(secret, h, tt.body, testNow), tt.want)
		})
	}
}

// --- moneroo and paystack (hex HMAC of the raw body) ---------------------------------------------------

func TestVerifyMoneroo(t *testing.T) {
	const secret = "moneroo-webhook-secret"
	verify := adapters["moneroo"].Verify
	body := []byte(`{"event":"payment.success","data":{"id":"py_1","amount":5000,"currency":"XOF","metadata":{"sale_id":"sal_1"}}}`)
	good := hexSig(sha256.New, secret, body)
	tests := []struct {
		name  string
		sig   string
		noHdr bool
		body  []byte
		want  error
	}{
		{"valid", good, false, body, nil},
		{"uppercase hex (hex.DecodeString accepts it)", strings.ToUpper(good), false, body, nil},
		{"surrounding whitespace is trimmed", "  " + good + " ", false, body, nil},
		{"wrong secret", hexSig(sha256.New, "other", body), false, body, ErrBadSignature},
		{"body changed by one byte", good, false, []byte(strings.Replace(string(body), "5000", "5001", 1)), ErrBadSignature},
		{"SHA-512 instead of SHA-256", hexSig(sha512.New, secret, body), false, body, ErrBadSignature},
		{"missing", "", true, body, ErrBadSignature},
		{"empty", "", false, body, ErrBadSignature},
		{"non-hex", "g" + good[1:], false, body, ErrBadSignature},
		{"odd length", good[1:], false, body, ErrBadSignature},
		{"good MAC then one more hex digit", good + "0", false, body, ErrBadSignature},
		{"good MAC then non-hex", good + "zz", false, body, ErrBadSignature},
		{"sha256= prefix is not accepted", "sha256=" + good, false, body, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if !tt.noHdr {
				h.Set("X-Moneroo-Signature", tt.sig)
			}
			checkErr(t, verify(secret, h, tt.body, testNow), tt.want)
		})
	}
}

func TestVerifyPaystack(t *testing.T) {
	const secret = "sk_test_paystack_secret"
	verify := adapters["paystack"].Verify
	body := []byte(`{"event":"charge.success","data":{"id":302961,"reference":"qTPrJoy9Bx","amount":20000,"currency":"NGN"}}`)
	good := hexSig(sha512.New, secret, body)
	tests := []struct {
		name  string
		sig   string
		noHdr bool
		body  []byte
		want  error
	}{
		{"valid", good, false, body, nil},
		{"uppercase hex", strings.ToUpper(good), false, body, nil},
		{"SHA-256 instead of SHA-512", hexSig(sha256.New, secret, body), false, body, ErrBadSignature},
		{"wrong secret", hexSig(sha512.New, "sk_test_other", body), false, body, ErrBadSignature},
		{"body changed by one byte", good, false, []byte(strings.Replace(string(body), "20000", "20001", 1)), ErrBadSignature},
		{"missing", "", true, body, ErrBadSignature},
		{"non-hex", "x" + good[1:], false, body, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if !tt.noHdr {
				h.Set("x-paystack-signature", tt.sig)
			}
			checkErr(t, verify(secret, h, tt.body, testNow), tt.want)
		})
	}
}

// TestVerifyHexHMACIgnoresClock: Moneroo and Paystack sign no timestamp, so the clock plays no part.
func TestVerifyHexHMACIgnoresClock(t *testing.T) {
	body := []byte(`{}`)
	h := http.Header{}
	h.Set("X-Moneroo-Signature", hexSig(sha256.New, "s", body))
	if err := adapters["moneroo"].Verify("s", h, body, time.Time{}); err != nil {
		t.Fatalf("zero clock: %v", err)
	}
}

// --- header names in any case ---------------------------------------------------------------------------

func TestGatewayHeaderNamesAnyCase(t *testing.T) {
	key := []byte("standard key")
	stdSecret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := []byte(`{"type":"payment.pending","data":{"sale_id":"sal_1"}}`)
	ts := unixAt(0)

	type hdr struct{ name, value string }
	tests := []struct {
		gateway, secret string
		headers         []hdr
	}{
		{"standard", stdSecret, []hdr{{"WEBHOOK-ID", "msg_1"}, {"Webhook-Timestamp", ts}, {"webhook-SIGNATURE", "v1," + standardSig(key, "msg_1", ts, body)}}},
		{"standard", stdSecret, []hdr{{"webhook-id", "msg_1"}, {"webhook-timestamp", ts}, {"webhook-signature", "v1," + standardSig(key, "msg_1", ts, body)}}},
		{"stripe", "sk", []hdr{{"stripe-signature", "t=" + ts + ",v1=" + stripeSig("sk", ts, body)}}},
		{"stripe", "sk", []hdr{{"STRIPE-SIGNATURE", "t=" + ts + ",v1=" + stripeSig("sk", ts, body)}}},
		{"moneroo", "mk", []hdr{{"x-moneroo-signature", hexSig(sha256.New, "mk", body)}}},
		{"moneroo", "mk", []hdr{{"X-MONEROO-SIGNATURE", hexSig(sha256.New, "mk", body)}}},
		{"paystack", "pk", []hdr{{"x-paystack-signature", hexSig(sha512.New, "pk", body)}}},
		{"paystack", "pk", []hdr{{"X-Paystack-Signature", hexSig(sha512.New, "pk", body)}}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.gateway, i), func(t *testing.T) {
			verify := adapters[tt.gateway].Verify

			// Header.Set canonicalises the name.
			h := http.Header{}
			for _, x := range tt.headers {
				h.Set(x.name, x.value)
			}
			if err := verify(tt.secret, h, body, testNow); err != nil {
				t.Fatalf("Header.Set: %v", err)
			}

			// As off the wire: net/http canonicalises the names it parses.
			var raw strings.Builder
			fmt.Fprintf(&raw, "POST /v1/webhooks/%s HTTP/1.1\r\nHost: ledger\r\nContent-Length: %d\r\n", tt.gateway, len(body))
			for _, x := range tt.headers {
				fmt.Fprintf(&raw, "%s: %s\r\n", x.name, x.value)
			}
			raw.WriteString("\r\n")
			raw.Write(body)
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
			if err != nil {
				t.Fatal(err)
			}
			if err := verify(tt.secret, r.Header, body, testNow); err != nil {
				t.Fatalf("parsed request: %v", err)
			}

			// A map literal with a non-canonical key is invisible to Header.Get. Documented, not a
			// defect: no request parsed by net/http carries such a key.
			lit := http.Header{}
			for _, x := range tt.headers {
				lit[strings.ToLower(x.name)] = []string{x.value}
			}
			if err := verify(tt.secret, lit, body, testNow); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("non-canonical map key: err = %v, want ErrBadSignature (Header.Get canonicalises)", err)
			}
		})
	}
}

// --- parse ---------------------------------------------------------------------------------------------

func amt(n int64, cur string) *events.Amount { return &events.Amount{Amount: n, Currency: cur} }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type parseCase struct {
	name    string
	gateway string
	header  map[string]string
	body    string
	want    events.WebhookReceived
	wantErr error
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.gateway+"/"+tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, err := adapters[tt.gateway].Parse(h, []byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v (got %s)", err, tt.wantErr, jsonOf(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse:\n got  %s\n want %s", jsonOf(got), jsonOf(tt.want))
			}
		})
	}
}

func TestParseStandard(t *testing.T) {
	hdr := map[string]string{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}
	base := events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", SaleID: "sal_1", StoreID: "str_1", TransactionID: "tx_1"}
	with := func(f func(*events.WebhookReceived)) events.WebhookReceived { w := base; f(&w); return w }

	var tests []parseCase
	for _, kind := range []string{"payment.initiated", "payment.pending", "payment.succeeded", "payment.cancelled", "settlement.done"} {
		tests = append(tests, parseCase{
			name: kind, gateway: "standard", header: hdr,
			body: `{"type":"` + kind + `","data":{"sale_id":"sal_1","store_id":"str_1","transaction_id":"tx_1","amount":{"amount":7920,"currency":"USD"}}}`,
			want: with(func(w *events.WebhookReceived) { w.Kind = kind; w.Amount = amt(7920, "USD") }),
		})
	}
	tests = append(tests,
		parseCase{
			name: "succeeded with fee and method", gateway: "standard", header: hdr,
			body: `{"type":"payment.succeeded","data":{"sale_id":"sal_1","store_id":"str_1","transaction_id":"tx_1",
				"amount":{"amount":7920,"currency":"USD"},"fee":{"amount":396,"currency":"USD"},"method":{"id":"card","name":"Visa"},"extra":true},"unknown_top":1}`,
			want: with(func(w *events.WebhookReceived) {
				w.Kind = "payment.succeeded"
				w.Amount, w.Fee = amt(7920, "USD"), amt(396, "USD")
				w.Method = &events.PaymentMethod{ID: "card", Name: "Visa"}
			}),
		},
		parseCase{
			name: "failed with failure_error", gateway: "standard", header: hdr,
			body: `{"type":"payment.failed","data":{"sale_id":"sal_1","store_id":"str_1","transaction_id":"tx_1",
				"failure_error":{"code":"insufficient_funds","message":"The card has insufficient funds."}}}`,
			want: with(func(w *events.WebhookReceived) {
				w.Kind = "payment.failed"
				w.FailureError = &events.FailureError{Code: "insufficient_funds", Message: "The card has insufficient funds."}
			}),
		},
		parseCase{
			name: "no store_id", gateway: "standard", header: hdr,
			body: `{"type":"payment.pending","data":{"sale_id":"sal_1"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "payment.pending", SaleID: "sal_1"},
		},
		parseCase{
			name: "payment kinds read no refund or dispute fields", gateway: "standard", header: hdr,
			body: `{"type":"payment.pending","data":{"sale_id":"sal_1","refund_id":"r","dispute_id":"d","status":"won","reason":"x"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "payment.pending", SaleID: "sal_1"},
		},
		parseCase{
			name: "refund.succeeded", gateway: "standard", header: hdr,
			body: `{"type":"refund.succeeded","data":{"sale_id":"sal_1","store_id":"str_1","refund_id":"rfd_1","amount":{"amount":2500,"currency":"usd"},"reason":"requested_by_customer"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "refund.succeeded", SaleID: "sal_1", StoreID: "str_1",
				RefundID: "rfd_1", Amount: amt(2500, "usd"), Reason: "requested_by_customer"},
		},
		parseCase{
			name: "refund.succeeded without reason", gateway: "standard", header: hdr,
			body: `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"rfd_2","amount":{"amount":1,"currency":"USD"}}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "refund.succeeded", SaleID: "sal_1", RefundID: "rfd_2", Amount: amt(1, "USD")},
		},
		parseCase{
			name: "dispute.opened", gateway: "standard", header: hdr,
			body: `{"type":"dispute.opened","data":{"sale_id":"sal_1","dispute_id":"dsp_1","amount":{"amount":7920,"currency":"USD"},"reason":"fraudulent"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "dispute.opened", SaleID: "sal_1", DisputeID: "dsp_1",
				Amount: amt(7920, "USD"), Reason: "fraudulent"},
		},
		parseCase{
			name: "dispute.opened without amount (the sale's)", gateway: "standard", header: hdr,
			body: `{"type":"dispute.opened","data":{"sale_id":"sal_1","dispute_id":"dsp_1"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "dispute.opened", SaleID: "sal_1", DisputeID: "dsp_1"},
		},
		parseCase{
			name: "dispute.closed won", gateway: "standard", header: hdr,
			body: `{"type":"dispute.closed","data":{"sale_id":"sal_1","dispute_id":"dsp_1","status":"won"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "dispute.closed", SaleID: "sal_1", DisputeID: "dsp_1", DisputeStatus: "won"},
		},
		parseCase{
			name: "dispute.closed lost", gateway: "standard", header: hdr,
			body: `{"type":"dispute.closed","data":{"sale_id":"sal_1","dispute_id":"dsp_1","status":"lost"}}`,
			want: events.WebhookReceived{DeliveryID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", Kind: "dispute.closed", SaleID: "sal_1", DisputeID: "dsp_1", DisputeStatus: "lost"},
		},
		parseCase{name: "refund.succeeded without refund_id", gateway: "standard", header: hdr,
			body: `{"type":"refund.succeeded","data":{"sale_id":"sal_1","amount":{"amount":1,"currency":"USD"}}}`, wantErr: ErrMalformed},
		parseCase{name: "refund.succeeded without amount", gateway: "standard", header: hdr,
			body: `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"rfd_1"}}`, wantErr: ErrMalformed},
		parseCase{name: "dispute.opened without dispute_id", gateway: "standard", header: hdr,
			body: `{"type":"dispute.opened","data":{"sale_id":"sal_1"}}`, wantErr: ErrMalformed},
		parseCase{name: "dispute.closed without status", gateway: "standard", header: hdr,
			body: `{"type":"dispute.closed","data":{"sale_id":"sal_1","dispute_id":"dsp_1"}}`, wantErr: ErrMalformed},
		parseCase{name: "dispute.closed with another status", gateway: "standard", header: hdr,
			body: `{"type":"dispute.closed","data":{"sale_id":"sal_1","dispute_id":"dsp_1","status":"Won"}}`, wantErr: ErrMalformed},
		parseCase{name: "reason not a string", gateway: "standard", header: hdr,
			body: `{"type":"dispute.opened","data":{"sale_id":"sal_1","dispute_id":"dsp_1","reason":7}}`, wantErr: ErrMalformed},
		parseCase{name: "refund.failed is no kind", gateway: "standard", header: hdr, body: `{"type":"refund.failed","data":{"sale_id":"sal_1"}}`, wantErr: ErrIgnored},
		parseCase{name: "unknown type", gateway: "standard", header: hdr, body: `{"type":"customer.created","data":{"sale_id":"sal_1"}}`, wantErr: ErrIgnored},
		parseCase{name: "type case differs", gateway: "standard", header: hdr, body: `{"type":"Payment.Succeeded","data":{"sale_id":"sal_1"}}`, wantErr: ErrIgnored},
		parseCase{name: "no type", gateway: "standard", header: hdr, body: `{"data":{"sale_id":"sal_1"}}`, wantErr: ErrIgnored},
		parseCase{name: "invalid JSON", gateway: "standard", header: hdr, body: `{"type":"payment.succeeded",`, wantErr: ErrMalformed},
		parseCase{name: "empty body", gateway: "standard", header: hdr, body: ``, wantErr: ErrMalformed},
		parseCase{name: "amount of the wrong type", gateway: "standard", header: hdr, body: `{"type":"payment.succeeded","data":{"sale_id":"sal_1","amount":"79.20"}}`, wantErr: ErrMalformed},
	)
	runParseCases(t, tests)
}

// TestParseStandardWithoutWebhookID: Standard.Parse takes the delivery id from the webhook-id header
// and does not itself reject its absence; it returns an empty DeliveryID, which the webhook handler
// answers 400 (`err != nil || d.DeliveryID == ""`). Standard.Verify already rejects a missing
// webhook-id, so such a delivery never reaches Parse through the handler.
func TestParseStandardWithoutWebhookID(t *testing.T) {
	got, err := Standard{}.Parse(http.Header{}, []byte(`{"type":"payment.succeeded","data":{"sale_id":"sal_1"}}`))
	if !errors.Is(err, ErrMalformed) && !(err == nil && got.DeliveryID == "") {
		t.Fatalf("want ErrMalformed or an empty DeliveryID (rejected by the handler), got %v / %q", err, got.DeliveryID)
	}
}

func TestParseMoneroo(t *testing.T) {
	body := func(event string) string {
		return `{"event":"` + event + `","data":{"id":"py_2j5kcl7bnn0o","status":"success","amount":5000,"currency":"xof","fee":150,
			"method":{"id":"mtn_bj","name":"MTN Mobile Money Benin"},
			"customer":{"email":"ama@example.com","first_name":"Ama"},
			"metadata":{"sale_id":"sal_1","store_id":"str_1","other":"x"}}}`
	}
	want := func(kind, event string) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "moneroo:" + event + ":py_2j5kcl7bnn0o", Kind: kind, SaleID: "sal_1", StoreID: "str_1",
			TransactionID: "py_2j5kcl7bnn0o", Amount: amt(5000, "XOF"), Fee: amt(150, "XOF"), Method: &events.PaymentMethod{ID: "mtn_bj", Name: "MTN Mobile Money Benin"}}
	}
	failed := want("payment.failed", "payment.failed")
	failed.FailureError = &events.FailureError{Code: "declined", Message: "Payment declined by the operator."}
	tests := []parseCase{
		{name: "payment.initiated", gateway: "moneroo", body: body("payment.initiated"), want: want("payment.initiated", "payment.initiated")},
		{name: "payment.success → payment.succeeded", gateway: "moneroo", body: body("payment.success"), want: want("payment.succeeded", "payment.success")},
		{name: "payment.cancelled", gateway: "moneroo", body: body("payment.cancelled"), want: want("payment.cancelled", "payment.cancelled")},
		{name: "payment.failed with failure_error", gateway: "moneroo",
			body: strings.Replace(body("payment.failed"), `"fee":150,`, `"fee":150,"failure_error":{"code":"declined","message":"Payment declined by the operator."},`, 1),
			want: failed},
		{name: "no amount, fee or metadata", gateway: "moneroo", body: `{"event":"payment.initiated","data":{"id":"py_3"}}`,
			want: events.WebhookReceived{DeliveryID: "moneroo:payment.initiated:py_3", Kind: "payment.initiated", TransactionID: "py_3"}},
		{name: "payout event ignored", gateway: "moneroo", body: body("payout.success"), wantErr: ErrIgnored},
		{name: "payment.succeeded is not a Moneroo name", gateway: "moneroo", body: body("payment.succeeded"), wantErr: ErrIgnored},
		{name: "invalid JSON", gateway: "moneroo", body: `not json`, wantErr: ErrMalformed},
		{name: "missing data.id", gateway: "moneroo", body: `{"event":"payment.success","data":{"amount":5000,"metadata":{"sale_id":"sal_1"}}}`, wantErr: ErrMalformed},
		{name: "missing data", gateway: "moneroo", body: `{"event":"payment.success"}`, wantErr: ErrMalformed},
	}
	runParseCases(t, tests)
}

func TestParseStripe(t *testing.T) {
	body := func(typ, extra string) string {
		return `{"id":"evt_3MtwBwLkdIwHu7ix28a3tqPa","object":"event","api_version":"2022-11-15","type":"` + typ + `",
			"data":{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":7920,"amount_received":7920,
			"currency":"usd","payment_method_types":["card","link"],` + extra + `
			"metadata":{"sale_id":"sal_1","store_id":"str_1"},"status":"succeeded"}},"livemode":false}`
	}
	want := func(kind string) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "evt_3MtwBwLkdIwHu7ix28a3tqPa", Kind: kind, SaleID: "sal_1", StoreID: "str_1",
			TransactionID: "pi_3MtwBwLkdIwHu7ix28a3tqPa", Amount: amt(7920, "USD"), Method: &events.PaymentMethod{ID: "card"}, Livemode: testMode}
	}
	failed := want("payment.failed")
	failed.FailureError = &events.FailureError{Code: "card_declined", Message: "Your card was declined."}
	// A Charge: amount_refunded is the running total of its refunds.
	charge := func(paymentIntent, refunded, currency string) string {
		return `{"id":"evt_R1","object":"event","type":"charge.refunded","livemode":true,"data":{"object":{"id":"ch_1","object":"charge",
			"amount":7920,"amount_captured":7920,"amount_refunded":` + refunded + `,"currency":"` + currency + `","payment_intent":` + paymentIntent + `,
			"metadata":{"sale_id":"sal_1"},"refunded":false,"status":"succeeded"},"previous_attributes":{"amount_refunded":0}}}`
	}
	refund := func(tx string, amount *events.Amount) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "evt_R1", Kind: "refund.succeeded", SaleID: "sal_1", TransactionID: tx, Amount: amount,
			Cumulative: true, Livemode: liveMode}
	}
	// A Dispute names the charge and, when there is one, the payment intent; never the sale.
	dispute := func(typ, status, paymentIntent string) string {
		return `{"id":"evt_D1","object":"event","type":"` + typ + `","livemode":false,"data":{"object":{"id":"du_1","object":"dispute",
			"amount":7920,"charge":"ch_1","currency":"usd","evidence":{},"metadata":{},"payment_intent":` + paymentIntent + `,
			"reason":"fraudulent","status":"` + status + `"}}}`
	}
	disputed := func(kind, status, tx string) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "evt_D1", Kind: kind, TransactionID: tx, DisputeID: "du_1", DisputeStatus: status,
			Amount: amt(7920, "USD"), Reason: "fraudulent", Livemode: testMode}
	}
	tests := []parseCase{
		{name: "charge.refunded → refund.succeeded, cumulative, the payment intent as transaction", gateway: "stripe",
			body: charge(`"pi_1"`, "3000", "usd"), want: refund("pi_1", amt(3000, "USD"))},
		{name: "charge.refunded without payment intent: the charge", gateway: "stripe", body: charge("null", "7920", "usd"), want: refund("ch_1", amt(7920, "USD"))},
		{name: "charge.refunded with an empty payment intent: the charge", gateway: "stripe", body: charge(`""`, "7920", "usd"), want: refund("ch_1", amt(7920, "USD"))},
		{name: "charge.refunded ISK ×100 converted", gateway: "stripe", body: charge(`"pi_1"`, "500000", "isk"), want: refund("pi_1", amt(5000, "ISK"))},
		{name: "charge.refunded JPY whole units", gateway: "stripe", body: charge(`"pi_1"`, "1200", "jpy"), want: refund("pi_1", amt(1200, "JPY"))},
		{name: "charge.refunded ISK not whole", gateway: "stripe", body: charge(`"pi_1"`, "500050", "isk"), wantErr: ErrMalformed},
		{name: "charge.refunded without amount_refunded", gateway: "stripe",
			body: `{"id":"evt_R1","type":"charge.refunded","data":{"object":{"id":"ch_1","amount":7920,"currency":"usd"}}}`, wantErr: ErrMalformed},
		{name: "charge.refunded amount_refunded not a number", gateway: "stripe", body: charge(`"pi_1"`, `"3000"`, "usd"), wantErr: ErrMalformed},
		{name: "charge.refunded without event id", gateway: "stripe",
			body: `{"type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":1,"currency":"usd"}}}`, wantErr: ErrMalformed},
		{name: "charge.dispute.created → dispute.opened", gateway: "stripe", body: dispute("charge.dispute.created", "needs_response", `"pi_1"`),
			want: disputed("dispute.opened", "", "pi_1")},
		{name: "charge.dispute.created, an inquiry without payment intent: the charge", gateway: "stripe",
			body: dispute("charge.dispute.created", "warning_needs_response", "null"), want: disputed("dispute.opened", "", "ch_1")},
		{name: "charge.dispute.closed won", gateway: "stripe", body: dispute("charge.dispute.closed", "won", `"pi_1"`), want: disputed("dispute.closed", "won", "pi_1")},
		{name: "charge.dispute.closed lost", gateway: "stripe", body: dispute("charge.dispute.closed", "lost", `"pi_1"`), want: disputed("dispute.closed", "lost", "pi_1")},
		{name: "charge.dispute.closed warning_closed: the store keeps the money", gateway: "stripe",
			body: dispute("charge.dispute.closed", "warning_closed", "null"), want: disputed("dispute.closed", "won", "ch_1")},
		{name: "charge.dispute.closed prevented: the store keeps the money", gateway: "stripe",
			body: dispute("charge.dispute.closed", "prevented", `"pi_1"`), want: disputed("dispute.closed", "won", "pi_1")},
		{name: "charge.dispute.closed under_review: no outcome", gateway: "stripe", body: dispute("charge.dispute.closed", "under_review", `"pi_1"`), wantErr: ErrIgnored},
		{name: "charge.dispute.closed without status", gateway: "stripe", body: dispute("charge.dispute.closed", "", `"pi_1"`), wantErr: ErrIgnored},
		{name: "dispute without id", gateway: "stripe",
			body: `{"id":"evt_D1","type":"charge.dispute.created","data":{"object":{"charge":"ch_1","amount":100,"currency":"usd"}}}`, wantErr: ErrMalformed},
		{name: "dispute charge expanded (not a string)", gateway: "stripe",
			body: `{"id":"evt_D1","type":"charge.dispute.created","data":{"object":{"id":"du_1","charge":{"id":"ch_1"}}}}`, wantErr: ErrMalformed},
		{name: "processing → payment.pending", gateway: "stripe", body: body("payment_intent.processing", ""), want: want("payment.pending")},
		{name: "succeeded → payment.succeeded, usd → USD", gateway: "stripe", body: body("payment_intent.succeeded", ""), want: want("payment.succeeded")},
		{name: "payment_failed → payment.failed with last_payment_error", gateway: "stripe",
			body: body("payment_intent.payment_failed", `"last_payment_error":{"code":"card_declined","decline_code":"generic_decline","message":"Your card was declined.","type":"card_error"},`),
			want: failed},
		{name: "canceled → payment.cancelled", gateway: "stripe", body: body("payment_intent.canceled", `"cancellation_reason":"abandoned","last_payment_error":null,`), want: want("payment.cancelled")},
		{name: "no payment_method_types, no metadata", gateway: "stripe",
			body: `{"id":"evt_2","type":"payment_intent.succeeded","data":{"object":{"id":"pi_2","amount":100,"currency":"eur"}}}`,
			want: events.WebhookReceived{DeliveryID: "evt_2", Kind: "payment.succeeded", TransactionID: "pi_2", Amount: amt(100, "EUR")}},
		{name: "charge event ignored", gateway: "stripe", body: body("charge.succeeded", ""), wantErr: ErrIgnored},
		{name: "payment_intent.created ignored", gateway: "stripe", body: body("payment_intent.created", ""), wantErr: ErrIgnored},
		{name: "ignored event with data of another shape", gateway: "stripe",
			body: `{"id":"evt_9","type":"charge.dispute.updated","data":{"object":{"id":"du_1","amount":"1000","metadata":[]}}}`, wantErr: ErrIgnored},
		{name: "charge.dispute.funds_withdrawn ignored", gateway: "stripe", body: dispute("charge.dispute.funds_withdrawn", "lost", `"pi_1"`), wantErr: ErrIgnored},
		{name: "invalid JSON", gateway: "stripe", body: `{"id":`, wantErr: ErrMalformed},
		{name: "missing event id", gateway: "stripe", body: `{"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","metadata":{"sale_id":"sal_1"}}}}`, wantErr: ErrMalformed},
		{name: "metadata value not a string", gateway: "stripe", body: `{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"metadata":{"sale_id":7}}}}`, wantErr: ErrMalformed},
	}
	runParseCases(t, tests)
}

func TestParsePaystack(t *testing.T) {
	body := func(event string) string {
		return `{"event":"` + event + `","data":{"id":302961,"domain":"live","status":"success","reference":"qTPrJoy9Bx",
			"amount":20000,"message":null,"gateway_response":"Approved by Financial Institution","paid_at":"2016-09-30T21:10:19.000Z",
			"channel":"card","currency":"NGN","ip_address":"41.242.49.37","fees":300,
			"metadata":{"sale_id":"sal_1","store_id":"str_1","custom_fields":[]},
			"customer":{"id":68324,"email":"bojack@horsinaround.com"},
			"authorization":{"authorization_code":"AUTH_f5rnfq9p","bin":"539999","last4":"8877","card_type":"mastercard DEBIT"}}}`
	}
	// refund.processed names the transaction by data.transaction_reference and has no data.reference.
	refund := func(event, ids string) string {
		return `{"event":"` + event + `","data":{"status":"processed","transaction_reference":"qTPrJoy9Bx",` + ids + `"amount":5000,"currency":"NGN",
			"processor":"mastercard","customer":{"email":"bojack@horsinaround.com"},"integration":100032,"domain":"live"}}`
	}
	refunded := func(refundID string) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "paystack:refund.processed:qTPrJoy9Bx:" + refundID, Kind: "refund.succeeded", TransactionID: "qTPrJoy9Bx",
			RefundID: refundID, Amount: amt(5000, "NGN"), Livemode: liveMode}
	}
	// A Dispute as the Disputes API has it: the transaction nested, refund_amount and currency may be null.
	dispute := func(event, fields string) string {
		return `{"event":"` + event + `","data":{"id":2867,"domain":"test","transaction":{"id":302961,"reference":"qTPrJoy9Bx","amount":20000,"currency":"NGN"},
			"transaction_reference":null,"category":"fraud","customer":{"email":"bojack@horsinaround.com"},"bin":"539999","last4":"8877",` + fields + `}}`
	}
	disputed := func(event, kind, status string, amount *events.Amount) events.WebhookReceived {
		return events.WebhookReceived{DeliveryID: "paystack:" + event + ":2867:qTPrJoy9Bx", Kind: kind, TransactionID: "qTPrJoy9Bx", DisputeID: "2867",
			DisputeStatus: status, Amount: amount, Reason: "fraud", Livemode: testMode}
	}
	tests := []parseCase{
		{name: "refund.processed → refund.succeeded, refund_reference the refund", gateway: "paystack", body: refund("refund.processed", `"refund_reference":"R1",`), want: refunded("R1")},
		{name: "refund.processed with data.id and refund_reference: the reference", gateway: "paystack", body: refund("refund.processed", `"id":77,"refund_reference":"R1",`), want: refunded("R1")},
		{name: "refund.processed with data.id only", gateway: "paystack", body: refund("refund.processed", `"id":77,`), want: refunded("77")},
		{name: "refund.processed naming no refund", gateway: "paystack", body: refund("refund.processed", ``), wantErr: ErrMalformed},
		{name: "refund.processed without transaction_reference", gateway: "paystack",
			body: `{"event":"refund.processed","data":{"refund_reference":"R1","amount":5000,"currency":"NGN"}}`, wantErr: ErrMalformed},
		{name: "refund.processed without amount", gateway: "paystack",
			body: `{"event":"refund.processed","data":{"transaction_reference":"T1","refund_reference":"R1","currency":"NGN"}}`, wantErr: ErrMalformed},
		{name: "refund.processed amount a string", gateway: "paystack",
			body: `{"event":"refund.processed","data":{"transaction_reference":"T1","refund_reference":"R1","amount":"5000"}}`, wantErr: ErrMalformed},
		{name: "charge.dispute.create → dispute.opened", gateway: "paystack",
			body: dispute("charge.dispute.create", `"refund_amount":20000,"currency":"NGN","status":"awaiting-merchant-feedback","resolution":null`),
			want: disputed("charge.dispute.create", "dispute.opened", "", amt(20000, "NGN"))},
		{name: "charge.dispute.create, refund_amount and currency null: the sale's amount", gateway: "paystack",
			body: dispute("charge.dispute.create", `"refund_amount":null,"currency":null,"status":"awaiting-merchant-feedback","resolution":null`),
			want: disputed("charge.dispute.create", "dispute.opened", "", nil)},
		{name: "charge.dispute.create, currency null: the transaction's", gateway: "paystack",
			body: dispute("charge.dispute.create", `"refund_amount":15000,"currency":null,"status":"awaiting-merchant-feedback"`),
			want: disputed("charge.dispute.create", "dispute.opened", "", amt(15000, "NGN"))},
		{name: "charge.dispute.resolve declined → won", gateway: "paystack",
			body: dispute("charge.dispute.resolve", `"refund_amount":20000,"currency":"NGN","status":"resolved","resolution":"declined"`),
			want: disputed("charge.dispute.resolve", "dispute.closed", "won", amt(20000, "NGN"))},
		{name: "charge.dispute.resolve merchant-accepted → lost", gateway: "paystack",
			body: dispute("charge.dispute.resolve", `"refund_amount":20000,"currency":"NGN","status":"resolved","resolution":"merchant-accepted"`),
			want: disputed("charge.dispute.resolve", "dispute.closed", "lost", amt(20000, "NGN"))},
		{name: "charge.dispute.resolve without resolution", gateway: "paystack",
			body: dispute("charge.dispute.resolve", `"status":"resolved","resolution":null`), wantErr: ErrIgnored},
		{name: "charge.dispute.resolve with another resolution", gateway: "paystack",
			body: dispute("charge.dispute.resolve", `"status":"resolved","resolution":"Declined"`), wantErr: ErrIgnored},
		{name: "dispute naming its transaction by transaction_reference only", gateway: "paystack",
			body: `{"event":"charge.dispute.create","data":{"id":2867,"domain":"test","transaction":null,"transaction_reference":"qTPrJoy9Bx","category":"fraud"}}`,
			want: disputed("charge.dispute.create", "dispute.opened", "", nil)},
		{name: "dispute without id", gateway: "paystack",
			body: `{"event":"charge.dispute.create","data":{"transaction":{"reference":"qTPrJoy9Bx"}}}`, wantErr: ErrMalformed},
		{name: "dispute id not a number", gateway: "paystack",
			body: `{"event":"charge.dispute.create","data":{"id":"abc","transaction":{"reference":"qTPrJoy9Bx"}}}`, wantErr: ErrMalformed},
		{name: "dispute naming no transaction", gateway: "paystack",
			body: `{"event":"charge.dispute.create","data":{"id":2867,"transaction":{"id":302961},"transaction_reference":null}}`, wantErr: ErrMalformed},
		{name: "charge.success → payment.succeeded", gateway: "paystack", body: body("charge.success"),
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:302961:qTPrJoy9Bx", Kind: "payment.succeeded", SaleID: "sal_1", StoreID: "str_1",
				TransactionID: "qTPrJoy9Bx", Amount: amt(20000, "NGN"), Fee: amt(300, "NGN"), Method: &events.PaymentMethod{ID: "card"}, Livemode: liveMode}},
		{name: "lower-case currency, no channel, no fees", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":7,"reference":"ref7","amount":150,"currency":"ghs","metadata":{"sale_id":"sal_7"}}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:7:ref7", Kind: "payment.succeeded", SaleID: "sal_7",
				TransactionID: "ref7", Amount: amt(150, "GHS")}},
		{name: "transfer event ignored", gateway: "paystack", body: body("transfer.success"), wantErr: ErrIgnored},
		{name: "charge.dispute.remind ignored", gateway: "paystack", body: body("charge.dispute.remind"), wantErr: ErrIgnored},
		{name: "refund.pending ignored", gateway: "paystack", body: refund("refund.pending", `"refund_reference":null,`), wantErr: ErrIgnored},
		// Other events are ignored whatever their data: bank.transfer.rejected writes its amount as a string.
		{name: "event with data of another shape ignored", gateway: "paystack",
			body: `{"event":"bank.transfer.rejected","data":{"bank_transfer":{"amount":"1000"},"amount":"1000","metadata":{"sale_id":5}}}`, wantErr: ErrIgnored},
		{name: "event not a string", gateway: "paystack", body: `{"event":7,"data":{"id":1,"reference":"r"}}`, wantErr: ErrMalformed},
		{name: "invalid JSON", gateway: "paystack", body: `{"event":"charge.success","data":`, wantErr: ErrMalformed},
		{name: "missing id and reference", gateway: "paystack", body: `{"event":"charge.success","data":{"amount":20000,"currency":"NGN","metadata":{"sale_id":"sal_1"}}}`, wantErr: ErrMalformed},
		{name: "id not a number", gateway: "paystack", body: `{"event":"charge.success","data":{"id":"abc","reference":"r"}}`, wantErr: ErrMalformed},
		// Paystack's own charge.success sample: metadata 0. It names no sale; it is not malformed.
		{name: "metadata 0 (Paystack's documented sample)", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":302961,"reference":"qTPrJoy9Bx","amount":10000,"currency":"NGN","metadata":0}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:302961:qTPrJoy9Bx", Kind: "payment.succeeded",
				TransactionID: "qTPrJoy9Bx", Amount: amt(10000, "NGN")}},
		{name: "metadata stringified (the transaction API's string form)", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":8,"reference":"ref8","amount":150,"currency":"NGN","metadata":"{\"sale_id\":\"sal_8\",\"store_id\":\"str_8\"}"}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:8:ref8", Kind: "payment.succeeded", SaleID: "sal_8", StoreID: "str_8",
				TransactionID: "ref8", Amount: amt(150, "NGN")}},
		{name: "metadata an empty string", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":9,"reference":"ref9","amount":150,"currency":"NGN","metadata":""}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:9:ref9", Kind: "payment.succeeded", TransactionID: "ref9", Amount: amt(150, "NGN")}},
		{name: "metadata null", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":10,"reference":"ref10","amount":150,"currency":"NGN","metadata":null}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:10:ref10", Kind: "payment.succeeded", TransactionID: "ref10", Amount: amt(150, "NGN")}},
		{name: "metadata a string that is no object", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":11,"reference":"ref11","amount":150,"currency":"NGN","metadata":"order 11"}}`,
			want: events.WebhookReceived{DeliveryID: "paystack:charge.success:11:ref11", Kind: "payment.succeeded", TransactionID: "ref11", Amount: amt(150, "NGN")}},
		{name: "metadata sale_id not a string", gateway: "paystack",
			body: `{"event":"charge.success","data":{"id":12,"reference":"ref12","metadata":{"sale_id":12}}}`, wantErr: ErrMalformed},
	}
	runParseCases(t, tests)
}

// --- fuzz ----------------------------------------------------------------------------------------------

func isVerifyErr(err error) bool {
	return err == nil || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrStaleTimestamp)
}

// FuzzStripeSignature: any header and body is answered without a panic and with one of the verifier's
// own errors; and a header computed correctly for a timestamp within tolerance verifies, while any
// single-byte change of the body (flip, truncation, insertion) does not.
func FuzzStripeSignature(f *testing.F) {
	ts := unixAt(0)
	b := []byte(`{"id":"evt_1","type":"payment_intent.succeeded"}`)
	f.Add("whsec_x", "t="+ts+",v1="+stripeSig("whsec_x", ts, b), b, int64(0), uint(3), byte(1))
	f.Add("s", "t=,v1=,v0=,=,,", []byte{}, int64(-299), uint(0), byte(0x80))
	f.Add("", "t=99999999999999999999,v1=zz", []byte("\x00\xff"), int64(299), uint(1), byte(0xff))
	f.Add("k", " t = 1 , v1 = ab ", []byte("x"), int64(1<<40), uint(7), byte(2))
	f.Fuzz(func(t *testing.T, secret, header string, body []byte, offset int64, pos uint, flip byte) {
		h := http.Header{}
		h.Set("Stripe-Signature", header)
		if err := (Stripe{}).Verify(secret, h, body, testNow); !isVerifyErr(err) {
			t.Fatalf("arbitrary header %q: unexpected error %v", header, err)
		}

		// Oracle.
		ts := strconv.FormatInt(testNow.Unix()+offset%300, 10) // |skew| <= 299 s
		good := "t=" + ts + ",v1=" + stripeSig(secret, ts, body)
		h.Set("Stripe-Signature", good)
		if err := (Stripe{}).Verify(secret, h, body, testNow); err != nil {
			t.Fatalf("correct header %q for body %q: %v", good, body, err)
		}
		for _, changed := range oneByteChanges(body, pos, flip) {
			if err := (Stripe{}).Verify(secret, h, changed, testNow); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("body %q changed to %q still verifies (err %v)", body, changed, err)
			}
		}
	})
}

// FuzzStandardSignature: as FuzzStripeSignature, for Standard Webhooks.
func FuzzStandardSignature(f *testing.F) {
	ts := unixAt(0)
	key := []byte("0123456789abcdef")
	b := []byte(`{"type":"payment.succeeded","data":{"sale_id":"sal_1"}}`)
	f.Add("whsec_"+base64.StdEncoding.EncodeToString(key), "msg_1", ts, "v1,"+standardSig(key, "msg_1", ts, b), b, key, int64(0), uint(0), byte(1))
	f.Add("whsec_!!", "", "", "", []byte{}, []byte{}, int64(-299), uint(5), byte(0x80))
	f.Add("whsec_", "a.b", "-1", "v1, v1,, ,v1 v2,AAAA", []byte("."), []byte{0}, int64(299), uint(1), byte(0xff))
	f.Add("whsec_AAAA", "id", "+1e9", "v1,====", []byte("\n"), []byte("k"), int64(-1<<50), uint(9), byte(4))
	f.Fuzz(func(t *testing.T, secret, id, ts, sigs string, body, key []byte, offset int64, pos uint, flip byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sigs)
		err := Standard{}.Verify(secret, h, body, testNow)
		// A secret that is not base64 yields a configuration error of its own; anything else must be one
		// of the verifier's errors.
		if !isVerifyErr(err) && !strings.Contains(err.Error(), "whsec_") {
			t.Fatalf("arbitrary headers: unexpected error %v", err)
		}

		// Oracle.
		if id == "" {
			id = "msg_fuzz"
		}
		secret = "whsec_" + base64.StdEncoding.EncodeToString(key)
		ts = strconv.FormatInt(testNow.Unix()+offset%300, 10)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", "v1,"+standardSig(key, id, ts, body))
		if err := (Standard{}).Verify(secret, h, body, testNow); err != nil {
			t.Fatalf("correct signature (id %q, ts %s, body %q): %v", id, ts, body, err)
		}
		for _, changed := range oneByteChanges(body, pos, flip) {
			if err := (Standard{}).Verify(secret, h, changed, testNow); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("body %q changed to %q still verifies (err %v)", body, changed, err)
			}
		}
	})
}

// oneByteChanges returns body with the byte at pos flipped (by flip, or 1 if flip is 0), with one byte
// removed, and with one byte inserted. The input is not modified.
func oneByteChanges(body []byte, pos uint, flip byte) [][]byte {
	if flip == 0 {
		flip = 1
	}
	var out [][]byte
	ins := make([]byte, 0, len(body)+1)
	i := 0
	if len(body) > 0 {
		i = int(pos % uint(len(body)))
		flipped := append([]byte(nil), body...)
		flipped[i] ^= flip
		removed := append(append([]byte(nil), body[:i]...), body[i+1:]...)
		out = append(out, flipped, removed)
	}
	ins = append(append(append(ins, body[:i]...), flip), body[i:]...)
	return append(out, ins)
}

// FuzzGatewayParse: no body makes a parse function panic, and every outcome is a delivery with a
// recognised kind, ErrIgnored or ErrMalformed.
func FuzzGatewayParse(f *testing.F) {
	f.Add(`{"type":"payment.succeeded","data":{"sale_id":"s"}}`)
	f.Add(`{"event":"payment.success","data":{"id":"p","amount":1,"currency":"xof","metadata":{"sale_id":"s"}}}`)
	f.Add(`{"id":"evt","type":"payment_intent.payment_failed","data":{"object":{"last_payment_error":{}}}}`)
	f.Add(`{"event":"charge.success","data":{"id":1e400,"reference":"r"}}`)
	f.Add(`null`)
	f.Add(`{"id":"evt","type":"charge.refunded","data":{"object":{"id":"ch","amount_refunded":5,"currency":"isk","payment_intent":null}}}`)
	f.Add(`{"id":"evt","type":"charge.dispute.closed","data":{"object":{"id":"du","charge":"ch","status":"warning_closed"}}}`)
	f.Add(`{"event":"charge.dispute.resolve","data":{"id":1,"transaction":{"reference":"r"},"resolution":"declined"}}`)
	f.Add(`{"event":"refund.processed","data":{"transaction_reference":"t","refund_reference":"r","amount":1}}`)
	f.Add(`{"type":"dispute.closed","data":{"sale_id":"s","dispute_id":"d","status":"lost"}}`)
	kinds := map[string]bool{"payment.initiated": true, "payment.pending": true, "payment.succeeded": true,
		"payment.failed": true, "payment.cancelled": true, "settlement.done": true,
		"refund.succeeded": true, "dispute.opened": true, "dispute.closed": true}
	f.Fuzz(func(t *testing.T, body string) {
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		for name, gw := range adapters {
			d, err := gw.Parse(h, []byte(body))
			switch {
			case errors.Is(err, ErrIgnored), errors.Is(err, ErrMalformed):
			case err != nil:
				t.Fatalf("%s: unexpected error %v", name, err)
			case !kinds[d.Kind]:
				t.Fatalf("%s: kind %q is not a ledger kind", name, d.Kind)
			case d.Kind == "dispute.closed" && d.DisputeStatus != events.DisputeWon && d.DisputeStatus != events.DisputeLost:
				t.Fatalf("%s: a closed dispute with status %q", name, d.DisputeStatus)
			case d.Kind == "dispute.opened" && d.DisputeStatus != "":
				t.Fatalf("%s: an opened dispute with status %q", name, d.DisputeStatus)
			case d.Kind == "refund.succeeded" && (d.Amount == nil || (d.RefundID == "" && !d.Cumulative)):
				t.Fatalf("%s: a refund without an amount or a way to tell it from another: %s", name, jsonOf(d))
			}
		}
	})
}

// Stripe's units per currency become ISO minor units (Stripe docs, "Supported currencies").
func TestStripeAmounts(t *testing.T) {
	for _, tc := range []struct {
		stripe   int64
		currency string
		want     int64
		err      bool
	}{
		{500000, "isk", 5000, false},   // ISK: ISO 0 decimals, Stripe ×100
		{500050, "isk", 0, true},       // not a whole krona
		{1000000, "ugx", 10000, false}, // UGX: ISO 0 decimals, Stripe ×100
		{150000, "huf", 150000, false}, // HUF: two decimals in both
		{9900, "twd", 9900, false},     // TWD: two decimals in both
		{1200, "jpy", 1200, false},     // zero-decimal in both
		{500, "xof", 500, false},       // zero-decimal in both
		{12340, "kwd", 12340, false},   // three-decimal in both
		{9900, "usd", 9900, false},
		{5000, "mga", 500000, false},        // MGA: zero-decimal at Stripe, two decimals in ISO 4217
		{50000, "idr", 50000, false},        // IDR: two decimals at Stripe and in ISO 4217 (CLDR says 0)
		{1000, "iqd", 10000, false},         // IQD: two decimals at Stripe, three in ISO 4217
		{math.MaxInt64 / 2, "mga", 0, true}, // would overflow: refused, never wrapped
	} {
		n := tc.stripe
		got, err := stripeAmount("data.object.amount", &n, tc.currency)
		if tc.err {
			if err == nil {
				t.Errorf("%d %s: %v, want an error", tc.stripe, tc.currency, got)
			}
			continue
		}
		if err != nil || got.Amount != tc.want || got.Currency != strings.ToUpper(tc.currency) {
			t.Errorf("%d %s: %+v %v, want %d", tc.stripe, tc.currency, got, err, tc.want)
		}
	}
}

// TestEveryGatewayObeysTheLedgersRules: whatever a gateway sends, what enters the ledger has amounts
// within 0..MaxAmount and free text without control characters or bidirectional overrides (found by an
// attack review: a fee of -2^63 and a failure message with U+202E were stored and shown).
func TestEveryGatewayObeysTheLedgersRules(t *testing.T) {
	std, _ := Lookup("standard")
	body := func(amount, fee, message string) []byte {
		return []byte(`{"type":"payment.failed","timestamp":"2026-01-01T00:00:00Z","data":{"sale_id":"sal_1","transaction_id":"t1",
			"amount":{"amount":` + amount + `,"currency":"USD"},"fee":{"amount":` + fee + `,"currency":"USD"},
			"failure_error":{"code":"declined","message":` + message + `}}}`)
	}
	h := http.Header{"Webhook-Id": {"msg_rules"}}
	for _, tt := range []struct{ amount, fee string }{
		{"-1", "0"}, {"100", "-1"}, {"100", "9223372036854775807"}, {"1000000000000001", "0"}, {"100", "-9223372036854775808"},
	} {
		if d, err := std.Parse(h, body(tt.amount, tt.fee, `"x"`)); !errors.Is(err, ErrMalformed) {
			t.Errorf("amount %s fee %s: %v (%s), want ErrMalformed", tt.amount, tt.fee, err, jsonOf(d))
		}
	}
	d, err := std.Parse(h, body("100", "3", `"Declined \u202eevil\u0000\nnext"`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.FailureError.Message, "Declined \uFFFDevil\uFFFD\uFFFDnext"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if d.Amount.Amount != 100 || d.Fee.Amount != 3 {
		t.Errorf("amounts %+v %+v", d.Amount, d.Fee)
	}

	// A refund's or a dispute's reason is gateway free text too, and its amount an amount.
	refund := func(amount, reason string) []byte {
		return []byte(`{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"rfd_1","amount":{"amount":` + amount + `,"currency":"USD"},"reason":` + reason + `}}`)
	}
	d, err = std.Parse(h, refund("100", `"requested ‮by customer"`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Reason, "requested \uFFFDby\uFFFDcustomer"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if d, err := std.Parse(h, refund("-1", `"x"`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("refund of -1: %v (%s), want ErrMalformed", err, jsonOf(d))
	}
	stripe, _ := Lookup("stripe")
	for _, n := range []string{"-100", "9223372036854775807"} {
		body := `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":` + n + `,"currency":"usd"}}}`
		if d, err := stripe.Parse(nil, []byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("amount_refunded %s: %v (%s), want ErrMalformed", n, err, jsonOf(d))
		}
	}
	paystack, _ := Lookup("paystack")
	dispute := `{"event":"charge.dispute.create","data":{"id":1,"transaction":{"reference":"r"},"category":"fraud\u0000\u202a"}}`
	if d, err := paystack.Parse(nil, []byte(dispute)); err != nil || d.Reason != "fraud\uFFFD\uFFFD" {
		t.Errorf("paystack category: %v %q, want cleaned", err, d.Reason)
	}
}

// TestRefundAndDisputeFieldLimits: the ids and reasons of refunds and disputes are refused over their
// limits, named as the gateway names them.
func TestRefundAndDisputeFieldLimits(t *testing.T) {
	long, longReason := strings.Repeat("x", maxGatewayID+1), strings.Repeat("r", maxReason+1)
	h := http.Header{"Webhook-Id": {"msg_1"}}
	for _, tt := range []struct {
		gateway, body, field string
	}{
		{"standard", `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"` + long + `","amount":{"amount":1,"currency":"USD"}}}`, "data.refund_id"},
		{"standard", `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"r","amount":{"amount":1,"currency":"USD"},"reason":"` + longReason + `"}}`, "data.reason"},
		{"standard", `{"type":"dispute.opened","data":{"sale_id":"sal_1","dispute_id":"` + long + `"}}`, "data.dispute_id"},
		{"stripe", `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":1,"currency":"usd","payment_intent":"` + long + `"}}}`, "data.object.payment_intent"},
		{"stripe", `{"id":"evt_1","type":"charge.dispute.created","data":{"object":{"id":"du_1","charge":"` + long + `"}}}`, "data.object.charge"},
		{"stripe", `{"id":"evt_1","type":"charge.dispute.created","data":{"object":{"id":"du_1","charge":"ch_1","reason":"` + longReason + `"}}}`, "data.object.reason"},
		{"paystack", `{"event":"refund.processed","data":{"transaction_reference":"t","refund_reference":"` + long + `","amount":1}}`, "data.refund_reference"},
		{"paystack", `{"event":"refund.processed","data":{"transaction_reference":"` + long + `","refund_reference":"r","amount":1}}`, "data.transaction_reference"},
		{"paystack", `{"event":"charge.dispute.create","data":{"id":1,"transaction":{"reference":"` + long + `"}}}`, "data.transaction.reference"},
		{"paystack", `{"event":"charge.dispute.create","data":{"id":1,"transaction":{"reference":"r"},"category":"` + longReason + `"}}`, "data.category"},
	} {
		a, _ := Lookup(tt.gateway)
		_, err := a.Parse(h, []byte(tt.body))
		var f FieldTooLongError
		if !errors.As(err, &f) || f.Field != tt.field {
			t.Errorf("%s %s: %v, want FieldTooLongError naming %s", tt.gateway, tt.field, err, tt.field)
		}
	}
}

// TestMalformedDeliveriesNameTheField: a refused delivery says which field is wrong, for the gateway's
// delivery log (new-user review: "The webhook body is not a delivery this gateway sends" named nothing).
func TestMalformedDeliveriesNameTheField(t *testing.T) {
	stripe, _ := Lookup("stripe")
	paystack, _ := Lookup("paystack")
	std, _ := Lookup("standard")
	for _, tt := range []struct {
		name  string
		a     Adapter
		body  string
		field string
	}{
		{"stripe UGX not ×100", stripe, `{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":500050,"currency":"ugx","metadata":{"sale_id":"sal_1"}}}}`, "data.object.amount"},
		{"paystack sale_id a number", paystack, `{"event":"charge.success","data":{"id":1,"reference":"r","amount":100,"currency":"NGN","metadata":{"sale_id":123}}}`, "metadata.sale_id"},
		{"paystack stringified store_id a number", paystack, `{"event":"charge.success","data":{"id":1,"reference":"r","amount":100,"currency":"NGN","metadata":"{\"store_id\":7}"}}`, "metadata.store_id"},
		{"standard negative fee", std, `{"type":"payment.succeeded","data":{"sale_id":"sal_1","amount":{"amount":100,"currency":"USD"},"fee":{"amount":-5,"currency":"USD"}}}`, "fee"},
		{"stripe ISK amount_refunded not ×100", stripe, `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":500050,"currency":"isk"}}}`, "data.object.amount_refunded"},
		{"stripe charge.refunded without amount_refunded", stripe, `{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"ch_1","currency":"usd"}}}`, "data.object.amount_refunded"},
		{"stripe dispute without id", stripe, `{"id":"evt_1","type":"charge.dispute.closed","data":{"object":{"charge":"ch_1","status":"lost"}}}`, "data.object.id"},
		{"standard refund without refund_id", std, `{"type":"refund.succeeded","data":{"sale_id":"sal_1","amount":{"amount":1,"currency":"USD"}}}`, "data.refund_id"},
		{"standard refund without amount", std, `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"rfd_1"}}`, "data.amount"},
		{"standard dispute without dispute_id", std, `{"type":"dispute.opened","data":{"sale_id":"sal_1"}}`, "data.dispute_id"},
		{"standard dispute closed pending", std, `{"type":"dispute.closed","data":{"sale_id":"sal_1","dispute_id":"d","status":"pending"}}`, "data.status"},
		{"standard refund negative", std, `{"type":"refund.succeeded","data":{"sale_id":"sal_1","refund_id":"r","amount":{"amount":-1,"currency":"USD"}}}`, "amount"},
		{"paystack refund without transaction_reference", paystack, `{"event":"refund.processed","data":{"refund_reference":"r","amount":1}}`, "data.transaction_reference"},
		{"paystack refund naming no refund", paystack, `{"event":"refund.processed","data":{"transaction_reference":"t","refund_reference":null,"amount":1}}`, "data.refund_reference"},
		{"paystack refund without amount", paystack, `{"event":"refund.processed","data":{"transaction_reference":"t","refund_reference":"r"}}`, "data.amount"},
		{"paystack dispute without id", paystack, `{"event":"charge.dispute.resolve","data":{"transaction":{"reference":"r"},"resolution":"declined"}}`, "data.id"},
		{"paystack dispute naming no transaction", paystack, `{"event":"charge.dispute.resolve","data":{"id":1,"resolution":"declined"}}`, "data.transaction.reference"},
	} {
		_, err := tt.a.Parse(http.Header{"Webhook-Id": {"msg_1"}}, []byte(tt.body))
		var f MalformedFieldError
		if !errors.As(err, &f) || f.Field != tt.field || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: %v, want a MalformedFieldError naming %s", tt.name, err, tt.field)
		}
	}
}
