package jetstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/domain"
)

// PhotosBucket is the object store of customer photos.
const PhotosBucket = "ledger_photos"

// Photos keeps customer photos in a JetStream object store bucket.
type Photos struct{ obs jetstream.ObjectStore }

// Photos opens (creating if needed) the photo bucket, as replicated as the log.
func (s *Store) Photos(ctx context.Context, replicas int) (*Photos, error) {
	var obs jetstream.ObjectStore
	err := retryAPI(ctx, func(ctx context.Context) (err error) {
		obs, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: PhotosBucket, Description: "customer photos", Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("photos bucket: %w", err)
	}
	return &Photos{obs: obs}, nil
}

// Put stores one photo under name.
func (p *Photos) Put(ctx context.Context, name, contentType string, data []byte) error {
	meta := jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {contentType}}}
	if _, err := p.obs.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("put photo %s: %w", name, err)
	}
	return nil
}

// Get reads one photo; a missing one is domain.ErrNotFound.
func (p *Photos) Get(ctx context.Context, name string) (string, []byte, error) {
	info, err := p.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil, domain.ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("photo %s: %w", name, err)
	}
	data, err := p.obs.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil, domain.ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("photo %s: %w", name, err)
	}
	return info.Headers.Get("Content-Type"), data, nil
}

// Delete removes a photo; the object store purges its chunks. A missing one is not an error.
func (p *Photos) Delete(ctx context.Context, name string) error {
	if err := p.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete photo %s: %w", name, err)
	}
	return nil
}
