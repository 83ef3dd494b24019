package handlers

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"

	"github.com/salesledger/ledger/projections/sqlite"
)

// customerCursors seals the customer list's cursors. A customer's position is its registration seq,
// which counts every store's customers: a plain {"s": 84} in the cursor of a store with 5 customers told
// any tenant how fast the platform registers customers. A cursor is one AES block, so it shows nothing
// of the seq (not even its size or order), and carries a tag binding it to the key's store and mode, so
// a cursor of another store or mode, or a changed one, is refused rather than read as a position.
//
// The block: seq (8 bytes, big-endian), flags (1 byte: 1 back, 2 inclusive), and the first 7 bytes of
// HMAC-SHA256(mac key, store NUL mode NUL seq flags). Guessing a tag that opens takes 2^56 tries on
// average; a client learns nothing from a refused cursor but that it was refused.
type customerCursors struct {
	block cipher.Block
	mac   []byte
}

// newCustomerCursors derives the cipher and MAC keys from secret (every replica's shared
// customer_cursor_key); without one, a random key, valid for this process only. list names the list the
// cursors page ("customer", "webhook endpoint"): each list's keys are its own, so one list's cursor never
// opens on another.
func newCustomerCursors(secret []byte, list string) *customerCursors {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			panic(err)
		}
	}
	derive := func(label string) []byte {
		h := hmac.New(sha256.New, secret)
		h.Write([]byte(label))
		return h.Sum(nil)
	}
	block, err := aes.NewCipher(derive(list + " cursor cipher"))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	return &customerCursors{block: block, mac: derive(list + " cursor tag")}
}

const (
	cursorBack      = 1
	cursorInclusive = 2
)

func (cc *customerCursors) tag(sc Scope, plain []byte) []byte {
	h := hmac.New(sha256.New, cc.mac)
	h.Write([]byte(sc.StoreID))
	h.Write([]byte{0})
	h.Write([]byte(sc.Mode))
	h.Write([]byte{0})
	h.Write(plain)
	return h.Sum(nil)[:aes.BlockSize-9]
}

// seal is c as the scope's opaque cursor (nil: none).
func (cc *customerCursors) seal(sc Scope, c *sqlite.Cursor[int64]) *string {
	if c == nil {
		return nil
	}
	var b [aes.BlockSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.At))
	if c.Back {
		b[8] |= cursorBack
	}
	if c.Inclusive {
		b[8] |= cursorInclusive
	}
	copy(b[9:], cc.tag(sc, b[:9]))
	cc.block.Encrypt(b[:], b[:])
	s := base64.RawURLEncoding.EncodeToString(b[:])
	return &s
}

// open reads a cursor seal made for the scope; anything else (another store's or mode's, changed,
// truncated, a plain cursor of before) is errBadCursor.
func (cc *customerCursors) open(sc Scope, s string) (sqlite.Cursor[int64], error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) != aes.BlockSize {
		return sqlite.Cursor[int64]{}, errBadCursor
	}
	var b [aes.BlockSize]byte
	cc.block.Decrypt(b[:], raw)
	seq := binary.BigEndian.Uint64(b[:8])
	if subtle.ConstantTimeCompare(b[9:], cc.tag(sc, b[:9])) != 1 || b[8]&^(cursorBack|cursorInclusive) != 0 || seq < 1 || seq > 1<<62 {
		return sqlite.Cursor[int64]{}, errBadCursor
	}
	return sqlite.Cursor[int64]{At: int64(seq), Back: b[8]&cursorBack != 0, Inclusive: b[8]&cursorInclusive != 0}, nil
}
