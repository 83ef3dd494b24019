package jetstream

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events"
)

// KeysBucket is the KV bucket of data-subject keys: one AES-256 key per customer, created on first use.
// Erasing a customer overwrites their key with a tombstone; the bucket keeps one revision per key, so
// the key itself leaves the stream.
const KeysBucket = "ledger_keys"

const (
	erasedMark   = "erased"
	sealedPrefix = "v1."
)

// Keyring is the events.Keyring over KeysBucket. Keys are cached; erasures made by any replica reach
// every replica's cache through a watch on the bucket.
type Keyring struct {
	kv jetstream.KeyValue
	nc *nats.Conn // for reads from the bucket stream's leader (leaderGet)

	mu    sync.RWMutex
	cache map[string][]byte // subject → key; a nil key is an erased subject
}

// maxCachedKeys bounds the cache; past it an arbitrary half is dropped (a dropped entry is read again
// from the bucket, tombstones included, so dropping never un-erases anyone).
const maxCachedKeys = 200_000

var _ events.Keyring = (*Keyring)(nil)

// newKeyring opens the bucket (creating it when create is set) and starts watching it.
func newKeyring(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, create bool, replicas int) (*Keyring, error) {
	var kv jetstream.KeyValue
	err := retryAPI(ctx, func(ctx context.Context) (err error) {
		if create {
			kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: KeysBucket, Description: "one key per data subject (crypto-shredding)", History: 1,
				Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
			})
		} else {
			kv, err = js.KeyValue(ctx, KeysBucket)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keys bucket: %w", err)
	}
	k := &Keyring{kv: kv, nc: nc, cache: make(map[string][]byte)}
	var w jetstream.KeyWatcher
	err = retryAPI(ctx, func(context.Context) (err error) {
		w, err = kv.WatchAll(context.Background(), jetstream.UpdatesOnly())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("keys bucket watch: %w", err)
	}
	go func() {
		for e := range w.Updates() {
			if e != nil && (e.Operation() != jetstream.KeyValuePut || string(e.Value()) == erasedMark) {
				k.forget(e.Key())
			}
		}
	}()
	return k, nil
}

func (k *Keyring) forget(subject string) {
	k.mu.Lock()
	k.remember(subject, nil)
	k.mu.Unlock()
}

// remember caches one entry; k.mu is held.
func (k *Keyring) remember(subject string, key []byte) {
	if len(k.cache) >= maxCachedKeys {
		n := 0
		for s := range k.cache {
			if n >= maxCachedKeys/2 {
				break
			}
			delete(k.cache, s)
			n++
		}
	}
	k.cache[subject] = key
}

// key returns the subject's key, creating it if create is set and there is none yet. An erased subject
// is events.ErrErased.
func (k *Keyring) key(ctx context.Context, subject string, create bool) ([]byte, error) {
	k.mu.RLock()
	key, cached := k.cache[subject]
	k.mu.RUnlock()
	if cached {
		if key == nil {
			return nil, events.ErrErased
		}
		return key, nil
	}
	for range 2 {
		e, err := k.kv.Get(ctx, subject)
		switch {
		case err == nil && string(e.Value()) != erasedMark && len(e.Value()) == 32:
			key = e.Value()
		case err == nil, errors.Is(err, jetstream.ErrKeyDeleted):
			k.forget(subject)
			return nil, events.ErrErased
		case errors.Is(err, jetstream.ErrKeyNotFound) && !create:
			// Opening: the key existed when the data was sealed, so "not found" may be a replica of the
			// bucket that has not caught up (reads are served by any replica). Only the stream's leader
			// decides; it says "not found" only for a bucket restored from before the key (read as erased).
			v, err := k.leaderGet(ctx, subject)
			switch {
			case err != nil:
				return nil, transient(fmt.Errorf("key of %s: %w", subject, err))
			case v == nil || string(v) == erasedMark || len(v) != 32:
				k.forget(subject)
				return nil, events.ErrErased
			}
			key = v
		case errors.Is(err, jetstream.ErrKeyNotFound):
			fresh := make([]byte, 32)
			if _, err := rand.Read(fresh); err != nil {
				return nil, err
			}
			if _, err := k.kv.Create(ctx, subject, fresh); errors.Is(err, jetstream.ErrKeyExists) {
				continue // created concurrently (or by a try whose answer was lost): read theirs
			} else if err != nil {
				return nil, transient(fmt.Errorf("key of %s: %w", subject, err))
			}
			key = fresh
		default:
			// The bucket did not answer (a failover): 503, not 500.
			return nil, transient(fmt.Errorf("key of %s: %w", subject, err))
		}
		k.mu.Lock()
		if v, ok := k.cache[subject]; ok && v == nil { // erased meanwhile
			k.mu.Unlock()
			return nil, events.ErrErased
		}
		k.remember(subject, key)
		k.mu.Unlock()
		return key, nil
	}
	return nil, fmt.Errorf("key of %s: created and gone concurrently", subject)
}

// Erased tells whether the subject's key was destroyed (the customer was erased), from the cache when it
// holds the subject (erasures by any replica reach it through the bucket's watch), else from the bucket.
func (k *Keyring) Erased(ctx context.Context, subject string) (bool, error) {
	_, err := k.key(ctx, subject, false)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, events.ErrErased):
		return true, nil
	}
	return false, err
}

// leaderGet reads the subject's key from the leader of the bucket's stream (JetStream's message get, which
// the leader answers, not a direct get that any replica may): nil when the leader has none or holds a
// delete marker.
func (k *Keyring) leaderGet(ctx context.Context, subject string) ([]byte, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + KeysBucket + "." + subject})
	msg, err := k.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+KeysBucket, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error *struct {
			Code    int `json:"code"`
			ErrCode int `json:"err_code"`
		} `json:"error"`
		Message *struct {
			Data []byte `json:"data"`
			Hdrs []byte `json:"hdrs"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("keys bucket: error %d/%d", resp.Error.Code, resp.Error.ErrCode)
	case resp.Message == nil:
		return nil, errors.New("keys bucket: empty answer")
	case bytes.Contains(resp.Message.Hdrs, []byte("KV-Operation")):
		return nil, nil // DEL or PURGE
	}
	return resp.Message.Data, nil
}

// Seal encrypts plaintext with the subject's key (AES-256-GCM, the subject as additional data).
func (k *Keyring) Seal(ctx context.Context, subject string, plaintext []byte) (string, error) {
	if subject == "" {
		return "", errors.New("seal: no data subject")
	}
	key, err := k.key(ctx, subject, true)
	if err != nil {
		return "", err
	}
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, plaintext, []byte(subject))), nil
}

// Open decrypts what Seal returned.
func (k *Keyring) Open(ctx context.Context, subject string, sealed string) ([]byte, error) {
	key, err := k.key(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedPrefix))
	if err != nil || !strings.HasPrefix(sealed, sealedPrefix) {
		return nil, fmt.Errorf("%w: sealed data of %s is not %s<base64>", events.ErrMalformed, subject, sealedPrefix)
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize() {
		return nil, fmt.Errorf("%w: sealed data of %s is too short", events.ErrMalformed, subject)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(subject))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed data of %s does not open with its key: %v", events.ErrMalformed, subject, err)
	}
	return plain, nil
}

// Erase destroys the subject's key: everything sealed with it becomes unreadable, in the log and in
// every copy of it.
func (k *Keyring) Erase(ctx context.Context, subject string) error {
	if _, err := k.kv.Put(ctx, subject, []byte(erasedMark)); err != nil {
		return transient(fmt.Errorf("erase key of %s: %w", subject, err))
	}
	k.forget(subject)
	return nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
