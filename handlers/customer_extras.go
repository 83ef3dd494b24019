package handlers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// MaxPhotoBytes caps a customer photo.
const MaxPhotoBytes = 5 << 20

// Eraser destroys a data subject's key (crypto-shredding).
type Eraser interface {
	Erase(ctx context.Context, subject string) error
}

// PhotoStore keeps customer photos (a JetStream object store).
type PhotoStore interface {
	Put(ctx context.Context, name, contentType string, data []byte) error
	Get(ctx context.Context, name string) (contentType string, data []byte, err error)
	Delete(ctx context.Context, name string) error
}

// addAddress is POST /v1/customers/{id}/addresses. The fourth address is 409; concurrent adds are
// decided one after another on the customer's version, so they can never exceed the limit. With an
// Idempotency-Key the key's record is in the address's batch, and a replay answers the address as it is
// now (404 once it was removed).
func (a *API) addAddress(w http.ResponseWriter, r *http.Request) {
	var in domain.AddressInput
	raw, err := decodeBody(r, &in)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	idem, err := storeIdempotency(r, raw)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id, addressID := r.PathValue("customer_id"), domain.NewID(domain.PrefixAddress)
	replayed := false
	seq, err := a.changeCustomer(ctx, id, func(c domain.Customer) ([]events.Write, error) {
		// Looked at on every attempt: a conflict may be a concurrent request with the same key.
		prev, found, err := idem.previous(ctx, a.cfg.Events)
		if err != nil || found {
			replayed, addressID = found, prev.ResourceID
			return nil, err
		}
		p, err := c.AddAddress(addressID, in)
		if err != nil {
			return nil, err
		}
		env := func(agg events.Aggregate, p events.Payload) events.Envelope {
			return events.Envelope{Aggregate: agg, Payload: p}
		}
		return append([]events.Write{own(c, p)}, idem.writes(env, addressID)...), nil
	})
	if errors.Is(err, domain.ErrTooManyAddresses) {
		err = errTooManyAddresses
	}
	if err == nil && replayed {
		// The version the replay was decided on came from the read store, which may not have folded the
		// first request's batch yet: answer once it holds the customer as the log has it now.
		var last events.Envelope
		if last, _, err = a.cfg.Events.Last(ctx, customerAgg(sc, id).Filter()); err == nil && last.Sequence > seq {
			seq = last.Sequence
		}
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if replayed {
		markReplayed(w)
	}
	a.respondAddresses(w, r, sc, id, seq, http.StatusCreated, addressID, replayed)
}

// listAddresses is GET /v1/customers/{id}/addresses.
func (a *API) listAddresses(w http.ResponseWriter, r *http.Request) {
	a.respondAddresses(w, r, scopeFrom(r.Context()), r.PathValue("customer_id"), 0, http.StatusOK, "", false)
}

// deleteAddress is DELETE /v1/customers/{id}/addresses/{address_id}.
func (a *API) deleteAddress(w http.ResponseWriter, r *http.Request) {
	a.addressCommand(w, r, func(c domain.Customer, addressID string) (events.Payload, error) { return c.RemoveAddress(addressID) })
}

// setDefaultAddress is POST /v1/customers/{id}/addresses/{address_id}/default.
func (a *API) setDefaultAddress(w http.ResponseWriter, r *http.Request) {
	a.addressCommand(w, r, func(c domain.Customer, addressID string) (events.Payload, error) {
		return c.SetDefaultAddress(addressID)
	})
}

func (a *API) addressCommand(w http.ResponseWriter, r *http.Request, decide func(domain.Customer, string) (events.Payload, error)) {
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id, addressID := r.PathValue("customer_id"), r.PathValue("address_id")
	seq, err := a.changeCustomer(ctx, id, func(c domain.Customer) ([]events.Write, error) {
		p, err := decide(c, addressID)
		if err != nil || p == nil {
			return nil, err
		}
		return []events.Write{own(c, p)}, nil
	})
	if errors.Is(err, domain.ErrNotFound) {
		err = errAddressNotFound
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.respondAddresses(w, r, sc, id, seq, http.StatusOK, "", false)
}

// respondAddresses answers with the customer's addresses, or with the one just added (or, replayed,
// added by an earlier request with the same Idempotency-Key).
func (a *API) respondAddresses(w http.ResponseWriter, r *http.Request, sc Scope, id string, seq uint64, status int, added string, replayed bool) {
	if seq > 0 {
		a.awaitProjection(r.Context(), seq)
	}
	row, err := a.readCustomer(r.Context(), sc, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := []addressJSON{}
	for _, ad := range row.Addresses {
		if added != "" && ad.ID == added {
			positioned(w, seq, status, data{addressObject(ad)})
			return
		}
		out = append(out, addressObject(ad))
	}
	if added != "" && replayed {
		writeError(w, r, a.log, errAddressNotFound) // removed since
		return
	}
	if added != "" {
		// Written but not yet in the read model: answer from what was decided.
		positioned(w, seq, status, data{map[string]any{"id": added}})
		return
	}
	if seq > 0 {
		w.Header().Set("Ledger-Position", itoa(seq))
	}
	writeJSON(w, status, data{out})
}

// putPhoto is PUT /v1/customers/{id}/photo: a JPEG or PNG of at most 5 MB, as the raw body or as the
// first file of a multipart form. The type is sniffed from the content; the name and the declared type
// are not trusted.
func (a *API) putPhoto(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Photos == nil {
		writeError(w, r, a.log, errNotFoundRoute)
		return
	}
	img, err := readPhoto(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctype := http.DetectContentType(img)
	if ctype != "image/jpeg" && ctype != "image/png" {
		var v domain.ValidationError
		v.Add("photo", "The photo must be a JPEG or PNG image.")
		writeError(w, r, a.log, &v)
		return
	}
	ctx := r.Context()
	sc := scopeFrom(ctx)
	id := r.PathValue("customer_id")
	if _, err := a.currentCustomer(ctx, sc, id, false); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	object := id + "/" + domain.RandomString(16)
	if err := a.cfg.Photos.Put(ctx, object, ctype, img); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	var previous string
	seq, err := a.changeCustomer(ctx, id, func(c domain.Customer) ([]events.Write, error) {
		if c.Photo != nil {
			previous = c.Photo.Object
		}
		return []events.Write{own(c, events.CustomerPhotoSet{CustomerID: c.ID, Object: object, ContentType: ctype, Size: int64(len(img))})}, nil
	})
	if err != nil {
		_ = a.cfg.Photos.Delete(context.WithoutCancel(ctx), object)
		writeError(w, r, a.log, err)
		return
	}
	if previous != "" {
		if err := a.cfg.Photos.Delete(ctx, previous); err != nil {
			a.log.WarnContext(ctx, "replaced photo not deleted", "object", previous, "err", err)
		}
	}
	a.respondCustomer(w, r, sc, id, seq, http.StatusOK)
}

var (
	errAddressNotFound = &requestError{http.StatusNotFound, "not_found", "The customer has no such address."}
	errAvatarLink      = &requestError{http.StatusForbidden, "invalid_link", "The avatar link is not valid."}
	errPhotoTooLarge   = &requestError{http.StatusRequestEntityTooLarge, "payload_too_large", "The photo is larger than 5 MB."}
	errPhotoMissing    = badRequest("Send the photo as the request body or as a file in a multipart form.")
)

func readPhoto(r *http.Request) ([]byte, error) {
	body := io.LimitReader(r.Body, MaxPhotoBytes+1)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				var mbe *http.MaxBytesError
				switch err := bodyError(err); {
				case errors.As(err, &mbe):
					return nil, errPhotoTooLarge
				case errors.Is(err, errBodyTimeout):
					return nil, err
				}
				return nil, errPhotoMissing
			}
			if part.FileName() == "" && part.FormName() != "photo" {
				continue
			}
			body = io.LimitReader(part, MaxPhotoBytes+1)
			break
		}
	}
	img, err := io.ReadAll(body)
	if err != nil {
		err = bodyError(err)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), len(img) > MaxPhotoBytes:
		return nil, errPhotoTooLarge
	case err != nil:
		return nil, err
	case len(img) == 0:
		return nil, errPhotoMissing
	}
	return img, nil
}

// avatarURL is the public, signed link of a customer's photo: it can go in an <img> tag, and nothing in
// it can be changed without the signing key. Erasing the customer deletes the photo behind it.
func (a *API) avatarURL(storeID, mode, customerID, object string) string {
	payload := strings.Join([]string{storeID, mode, customerID, object}, "|")
	return strings.TrimRight(a.cfg.PublicURL, "/") + "/v1/avatars/" + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + a.sign(payload)
}

func (a *API) sign(payload string) string {
	mac := hmac.New(sha256.New, a.cfg.DownloadKey)
	mac.Write([]byte("avatar|" + payload))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// avatar is GET /v1/avatars/{token}: the photo a signed avatar_url names.
func (a *API) avatar(w http.ResponseWriter, r *http.Request) {
	b64, sig, ok := strings.Cut(r.PathValue("avatar_token"), ".")
	payload, err := base64.RawURLEncoding.Strict().DecodeString(b64) // one spelling per link
	if !ok || err != nil || !hmac.Equal([]byte(sig), []byte(a.sign(string(payload)))) || a.cfg.Photos == nil {
		writeError(w, r, a.log, errAvatarLink)
		return
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 4 {
		writeError(w, r, a.log, errAvatarLink)
		return
	}
	ctype, img, err := a.cfg.Photos.Get(r.Context(), parts[3])
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", timeZero, bytes.NewReader(img))
}
