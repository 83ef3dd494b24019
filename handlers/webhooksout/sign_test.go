package webhooksout_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	key, err := webhooksout.ParseSecret(secret)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", secret, err)
	}
	return key
}

func verifier(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// The vector every Standard Webhooks library tests its signer with (Go, Python, JavaScript).
func TestSignKnownVector(t *testing.T) {
	h := webhooksout.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`),
		mustKey(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	if got, want := h.Get("webhook-signature"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	if got := h.Get("webhook-timestamp"); got != "1614265330" {
		t.Errorf("webhook-timestamp = %q, want Unix seconds 1614265330", got)
	}
	if got := h.Get("webhook-id"); got != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Errorf("webhook-id = %q", got)
	}
}

func TestSignVerifiesWithOfficialLibrary(t *testing.T) {
	secret := webhooksout.NewSecret()
	body := []byte(`{"id":"evt_1","type":"sale.completed","data":{"id":"sal_1"}}`)
	h := webhooksout.Sign("evt_1", time.Now(), body, mustKey(t, secret))
	wh := verifier(t, secret)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("official library refuses our signature: %v", err)
	}
	if err := wh.Verify(append(body[:len(body):len(body)], ' '), h); err == nil {
		t.Error("a changed body verified")
	}
	other := h.Clone()
	other.Set("webhook-id", "evt_2")
	if err := wh.Verify(body, other); err == nil {
		t.Error("another message id verified: the id is not signed")
	}
	if err := verifier(t, webhooksout.NewSecret()).Verify(body, h); err == nil {
		t.Error("another secret verified")
	}
	// The timestamp is the attempt's: a stale one is refused by receivers (5-minute tolerance).
	old := webhooksout.Sign("evt_1", time.Now().Add(-10*time.Minute), body, mustKey(t, secret))
	if err := wh.Verify(body, old); !errors.Is(err, standardwebhooks.ErrMessageTooOld) {
		t.Errorf("10-minute-old attempt: %v, want ErrMessageTooOld", err)
	}
}

// During a rotation both the new and the old secret sign; a receiver holding either one verifies.
func TestSignRotatedSecrets(t *testing.T) {
	oldSecret, newSecret := webhooksout.NewSecret(), webhooksout.NewSecret()
	body := []byte(`{"id":"evt_9"}`)
	h := webhooksout.Sign("evt_9", time.Now(), body, mustKey(t, newSecret), mustKey(t, oldSecret))
	sigs := strings.Split(h.Get("webhook-signature"), " ")
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") || sigs[0] == sigs[1] {
		t.Fatalf("webhook-signature = %q, want two distinct space-separated v1 signatures", h.Get("webhook-signature"))
	}
	for i, secret := range []string{newSecret, oldSecret} {
		if err := verifier(t, secret).Verify(body, h); err != nil {
			t.Errorf("secret %d alone does not verify: %v", i, err)
		}
		// The signatures come in the order of the secrets, each the one that secret alone makes.
		ts, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
		only := webhooksout.Sign("evt_9", time.Unix(ts, 0), body, mustKey(t, secret))
		if got := only.Get("webhook-signature"); got != sigs[i] {
			t.Errorf("signature %d = %q, want secret %d's %q", i, sigs[i], i, got)
		}
	}
	if err := verifier(t, webhooksout.NewSecret()).Verify(body, h); err == nil {
		t.Error("a third secret verified")
	}
}

func TestSignWithoutSecret(t *testing.T) {
	h := webhooksout.Sign("evt_1", time.Now(), nil)
	if _, ok := h["Webhook-Signature"]; ok {
		t.Errorf("signature header without a secret: %q", h.Get("webhook-signature"))
	}
}

func TestNewSecret(t *testing.T) {
	a, b := webhooksout.NewSecret(), webhooksout.NewSecret()
	if a == b {
		t.Fatal("two secrets alike")
	}
	if key := mustKey(t, a); len(key) != webhooksout.SecretBytes {
		t.Errorf("key of %d bytes, want %d", len(key), webhooksout.SecretBytes)
	}
}

func TestParseSecret(t *testing.T) {
	for _, tt := range []struct {
		secret string
		ok     bool
	}{
		{"whsec_" + strings.Repeat("A", 32), true},        // 24 bytes, the spec's minimum
		{"whsec_" + strings.Repeat("A", 86) + "==", true}, // 64 bytes, the maximum
		{"whsec_" + strings.Repeat("A", 28), false},       // 21 bytes
		{"whsec_" + strings.Repeat("A", 92), false},       // 69 bytes
		{strings.Repeat("A", 32), false},                  // no prefix
		{"WHSEC_" + strings.Repeat("A", 32), false},       // the prefix is lower case
		{"whsec_" + strings.Repeat("A", 31) + "!", false},
		{"whsec_" + strings.Repeat("-", 32), false}, // URL-safe base64 is not the spec's
		{"whsec_", false},
		{"", false},
	} {
		_, err := webhooksout.ParseSecret(tt.secret)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) = %v, want ok %v", tt.secret, err, tt.ok)
		}
		if err != nil && !errors.Is(err, webhooksout.ErrSecretFormat) {
			t.Errorf("ParseSecret(%q) = %v, not ErrSecretFormat", tt.secret, err)
		}
	}
}
