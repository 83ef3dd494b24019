package webhooksout

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com, spec section "Webhook headers").
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every endpoint secret as shown to a store: whsec_ then the key in standard
// base64 (the spec's serialisation of a symmetric secret).
const SecretPrefix = "whsec_"

// SecretBytes is the length of the keys NewSecret makes: 32 random bytes (the spec asks for at least
// 24 and at most 64).
const SecretBytes = 32

// ErrSecretFormat means a secret is not whsec_ followed by standard base64 of 24 to 64 bytes.
var ErrSecretFormat = errors.New("the secret is not whsec_ followed by the base64 of a 24 to 64 byte key")

// NewSecret returns a fresh endpoint secret, whsec_ + base64 of SecretBytes bytes from crypto/rand.
func NewSecret() string {
	key := make([]byte, SecretBytes)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseSecret returns the HMAC key of a whsec_<base64> secret. It wraps ErrSecretFormat when the prefix
// is missing, the rest is not standard (padded) base64, or the key is shorter than 24 or longer than 64
// bytes (Standard Webhooks, "Signature scheme": at least 24 bytes, 512 bits at most).
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: no %s prefix", ErrSecretFormat, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSecretFormat, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("%w: the key has %d bytes", ErrSecretFormat, len(key))
	}
	return key, nil
}

// Sign returns the Standard Webhooks headers of one attempt to deliver body: webhook-id = msgID (the
// event id, the same on every attempt, so receivers can de-duplicate), webhook-timestamp = ts in Unix
// seconds (the attempt's time, not the event's: receivers refuse stale ones), and webhook-signature =
// "v1,<base64 of HMAC-SHA256(key, msgID + "." + timestamp + "." + body)>" for each key in secrets, in
// that order, separated by single spaces. Names are stored canonically (Webhook-Id); HTTP header names
// are case-insensitive, and HTTP/2 sends them in lower case as the spec writes them. Several keys are for a rotation: the new secret and the old
// one, which keeps signing for 24 hours so a receiver holding either verifies.
//
// Keys are raw HMAC keys (ParseSecret). msgID must not contain "." (the spec: the signed content is
// split by full stops); the ledger's evt_ ids never do. With no secrets there is no signature header.
func Sign(msgID string, ts time.Time, body []byte, secrets ...[]byte) http.Header {
	unix := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, unix)
	sigs := make([]string, 0, len(secrets))
	for _, key := range secrets {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(msgID + "." + unix + "."))
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	if len(sigs) > 0 {
		h.Set(HeaderSignature, strings.Join(sigs, " "))
	}
	return h
}
