package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ID prefixes of the public objects.
const (
	PrefixStore    = "str_"
	PrefixCustomer = "cus_"
	PrefixSale     = "sal_"
	PrefixLicence  = "lic_"
	PrefixFile     = "fil_"
	PrefixAddress  = "adr_"
	PrefixEvent    = "evt_"
	PrefixRefund   = "ref_"
	// PrefixWebhookEndpoint names an outgoing-webhook endpoint.
	PrefixWebhookEndpoint = "we_"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ValidID reports whether id has the shape of a ledger id of the kind prefix names: the prefix, then
// one or more base62 characters, at most MaxIDLen in all. Ids of any other shape are not looked up
// anywhere: they could not name anything, and characters such as "*", ">" and "." would change the
// meaning of a NATS subject built from them.
func ValidID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	return ok && rest != "" && len(id) <= MaxIDLen && isBase62(rest)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// NewID returns prefix followed by 22 random base62 characters (about 131 bits), e.g. "sal_3Fq…".
func NewID(prefix string) string { return prefix + RandomString(22) }

// RandomString returns n characters drawn uniformly from [0-9A-Za-z] with crypto/rand. It reads random
// bytes in bulk and keeps those below 248 (= 4 × 62), each then giving one character as its value
// modulo 62: rejection sampling, so every character is equally likely (about 3 % of bytes are dropped).
func RandomString(n int) string {
	const limit = 256 - 256%len(base62)
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		rand.Read(buf[:]) // never fails (crypto/rand: it crashes the program if the OS cannot give randomness)
		for _, v := range buf {
			if int(v) < limit && len(out) < n {
				out = append(out, base62[int(v)%len(base62)])
			}
		}
	}
	return string(out)
}

// HashID is a subject-safe id for free text (idempotency keys, gateway delivery ids, the event ids of
// rejected deliveries): the first 16 bytes of its SHA-256, as 32 hex digits. It is deterministic, so the
// same text always names the same subject or message id.
func HashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
