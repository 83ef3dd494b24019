package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

var (
	errLinkForged  = &requestError{http.StatusForbidden, "invalid_link", "The download link is not valid."}
	errLinkExpired = &requestError{http.StatusGone, "link_expired", "The download link has expired; the store can hand out a fresh one: GET /v1/sales/{id} shows it."}
	// errAccessRevoked: the sale was refunded in full (DESIGN "Refunds and disputes").
	errAccessRevoked = &requestError{http.StatusGone, "access_revoked", "The sale was refunded; its downloads are no longer available."}
)

// downloadToken signs "store|mode|sale|file|expiry" with HMAC-SHA256: the link is the capability, so
// it needs no API key, and nothing in it can be changed without the signing key.
func (a *API) downloadToken(storeID, mode, saleID, fileID string, exp time.Time) string {
	payload := strings.Join([]string{storeID, mode, saleID, fileID, strconv.FormatInt(exp.Unix(), 10)}, "|")
	mac := hmac.New(sha256.New, a.cfg.DownloadKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// downloadURL is the signed link a completed sale shows for one of its files, and its expiry: the link
// issued at completion while it is valid, then a fresh one valid for DownloadTTL from the time the
// store reads the sale again. The buyer's access is the store's to hand out, so a store that reads the
// sale can always give the buyer a working link; a link itself never outlives its expiry.
func (a *API) downloadURL(storeID, mode, saleID string, f events.IssuedFile) (string, time.Time) {
	exp := f.ExpiresAt
	if now := a.cfg.Now(); !now.Before(exp) {
		ttl := a.cfg.DownloadTTL
		if ttl <= 0 {
			ttl = 7 * 24 * time.Hour
		}
		exp = now.Add(ttl).Truncate(time.Second)
	}
	return strings.TrimRight(a.cfg.PublicURL, "/") + "/v1/downloads/" + a.downloadToken(storeID, mode, saleID, f.ID, exp), exp
}

// download is GET /v1/downloads/{token}: it checks the signature (constant time) and the expiry,
// records the download on the sale, then redirects to the file's origin. Forged → 403, expired → 410.
// Concurrent downloads of one sale are all recorded and all redirected (changeSale retries its
// conflicts). HEAD answers exactly as GET would, and records nothing: link checkers and previews are
// not downloads.
func (a *API) download(w http.ResponseWriter, r *http.Request) {
	b64, sig64, ok := strings.Cut(r.PathValue("download_token"), ".")
	// Strict: the unused low bits of the last character must be zero, so each link has one spelling
	// and one changed character anywhere is a forged link.
	payload, err1 := base64.RawURLEncoding.Strict().DecodeString(b64)
	sig, err2 := base64.RawURLEncoding.Strict().DecodeString(sig64)
	if !ok || err1 != nil || err2 != nil {
		writeError(w, r, a.log, errLinkForged)
		return
	}
	mac := hmac.New(sha256.New, a.cfg.DownloadKey)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		writeError(w, r, a.log, errLinkForged)
		return
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 5 {
		writeError(w, r, a.log, errLinkForged)
		return
	}
	exp, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		writeError(w, r, a.log, errLinkForged)
		return
	}
	if !a.cfg.Now().Before(time.Unix(exp, 0)) {
		writeError(w, r, a.log, errLinkExpired)
		return
	}
	storeID, mode, saleID, fileID := parts[0], parts[1], parts[2], parts[3]
	ctx := withScope(r.Context(), Scope{StoreID: storeID, Mode: mode})
	var origin string
	decide := func(s domain.Sale) ([]events.Payload, error) {
		if s.Completed != nil {
			for _, f := range s.Completed.Files {
				if f.ID == fileID {
					origin = f.URL
				}
			}
		}
		return s.RecordDownload(fileID)
	}
	if r.Method == http.MethodHead {
		agg := events.Aggregate{Mode: mode, StoreID: storeID, Type: events.AggregateSale, ID: saleID}
		var s domain.Sale
		if s, err = currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), agg, false); err == nil {
			_, err = decide(s)
		}
		if err != nil { // the read store may lag the log: a refusal is confirmed on the log
			if s, err = currentSale(ctx, a.cfg.Events, a.cfg.Projection.Reads(), agg, true); err == nil {
				_, err = decide(s)
			}
		}
	} else {
		_, _, err = a.changeSale(ctx, saleID, decide)
	}
	if errors.Is(err, domain.ErrNotCompleted) || errors.Is(err, domain.ErrNotFound) {
		writeError(w, r, a.log, errLinkForged)
		return
	}
	if errors.Is(err, domain.ErrAccessRevoked) {
		writeError(w, r, a.log, errAccessRevoked)
		return
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	http.Redirect(w, r, origin, http.StatusFound)
}

// licencesOfSale lists the licences a sale issued: the read model's (GET) or, for ObjectAt, each as
// the log stood at a sequence.
type licencesOfSale func(ctx context.Context, saleID string) ([]sqlite.LicenceRow, error)

// saleData is the sale object GET /v1/sales/{id} answers: the sale and what it gives access to, with
// its licences as licences lists them.
func (a *API) saleData(ctx context.Context, s domain.Sale, mode string, licences licencesOfSale) (saleJSON, error) {
	obj := saleObject(s, mode)
	var err error
	obj.PostPurchase, err = a.postPurchase(ctx, s, mode, licences)
	return obj, err
}

// postPurchase renders what a completed sale gives access to: signed file links and its licences.
func (a *API) postPurchase(ctx context.Context, s domain.Sale, mode string, licences licencesOfSale) (*postPurchaseJSON, error) {
	if s.Completed == nil {
		return nil, nil
	}
	pp := &postPurchaseJSON{Files: []fileJSON{}, Licences: []licenceJSON{}, Instructions: s.Completed.Instructions}
	for _, f := range s.Completed.Files {
		link, exp := a.downloadURL(s.Started.Store.ID, mode, s.ID, f)
		pp.Files = append(pp.Files, fileJSON{ID: f.ID, Name: f.Name, Size: f.Size, Type: f.Type, DownloadURL: link, ExpiresAt: rfc3339(exp)})
	}
	rows, err := licences(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	for _, l := range rows {
		pp.Licences = append(pp.Licences, licenceEntry(l, now))
	}
	return pp, nil
}

// licenceEntry is one licence as a sale's post_purchase lists it.
func licenceEntry(l sqlite.LicenceRow, now time.Time) licenceJSON {
	lj := licenceJSON{ID: l.ID, LicenceKey: l.Key, Status: domain.LicenceStatus(l.Revoked, l.ExpiresAt, l.Activations, now), Activations: l.Activations, MaxActivations: l.MaxActivations}
	if l.ExpiresAt != nil {
		lj.ExpiresAt = optTime(*l.ExpiresAt)
	}
	return lj
}
