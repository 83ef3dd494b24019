package domain

import (
	"crypto/rand"
	"math/big"
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
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewID returns prefix followed by 22 random base62 characters (about 131 bits), e.g. "sal_3Fq…".
func NewID(prefix string) string { return prefix + RandomString(22) }

// RandomString returns n characters drawn uniformly from [0-9A-Za-z] with crypto/rand.
func RandomString(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("crypto/rand failed: " + err.Error()) // the OS entropy source is gone; nothing is safe
		}
		b[i] = base62[v.Int64()]
	}
	return string(b)
}
