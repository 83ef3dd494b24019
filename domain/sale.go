package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/salesledger/ledger/events"
)

// Sale statuses.
const (
	StatusAwaitingPayment = "awaiting_payment"
	StatusCompleted       = "completed"
	StatusFailed          = "failed"
	StatusAbandoned       = "abandoned"
	StatusSettled         = "settled"
)

// Channels a sale can come through.
var Channels = map[string]string{
	"store":     "Sale made through the store checkout",
	"affiliate": "Sale made through an affiliate link",
	"discover":  "Sale from the Discover marketplace",
	"widget":    "Sale through an embedded checkout widget",
	"api":       "Sale created via the Public API",
}

// Sale errors.
var (
	ErrSaleNotPayable  = errors.New("the sale no longer accepts payments")
	ErrSaleNotOpen     = errors.New("the sale is not awaiting payment")
	ErrNotCompleted    = errors.New("the sale is not completed")
	ErrPaymentMismatch = errors.New("the payment does not match the sale")
	// ErrAccessRevoked: the sale was refunded in full; its downloads and licences are revoked.
	ErrAccessRevoked = errors.New("the sale was refunded; access to it is revoked")
)

// Sale is the sale aggregate, folded from its events.
type Sale struct {
	ID            string
	Started       events.SaleStarted
	Status        string
	PaymentStatus string
	Payment       *events.PaymentRecorded
	Completed     *events.SaleCompleted
	CompletedAt   time.Time
	SettledAt     time.Time
	CreatedAt     time.Time
	Downloads     int
	LastDownload  time.Time
	Rating        *events.SaleRated
	// Refunds are the sale's refunds, oldest first, and RefundTimes when each was recorded; Refunded
	// their sum in minor units (never above the amount).
	Refunds     []events.RefundRecorded
	RefundTimes []time.Time
	Refunded    int64
	// RefundedAtSettle is what had been refunded when the settlement was done: the settlement paid out
	// was computed on the rest.
	RefundedAtSettle int64
	// Cumulative is, per gateway, the highest cumulative refunded figure it reported (Stripe's
	// amount_refunded), so an older or repeated one records nothing.
	Cumulative map[string]int64
	// Disputes are the sale's disputes, in the order they opened; Dispute is the last of them (the one
	// the sale object shows).
	Disputes []Dispute
	Dispute  *Dispute
	// Version is the sale's last subject sequence: the expectation for the next append.
	Version uint64
}

// Evolve returns the sale with one more event applied. Events of other aggregates are ignored.
func (s Sale) Evolve(e events.Envelope) Sale {
	switch p := e.Payload.(type) {
	case events.SaleStarted:
		if p.PersonalErased {
			p = ErasePersonal(p)
		}
		s.ID, s.Started, s.Status, s.CreatedAt = p.SaleID, p, StatusAwaitingPayment, e.Time
	case events.PaymentRecorded:
		s.PaymentStatus = p.Status
		pc := p
		s.Payment = &pc
		if p.Status == "failed" || p.Status == "cancelled" {
			if s.Status == StatusAwaitingPayment {
				s.Status = StatusFailed
			}
		}
	case events.SaleCompleted:
		pc := p
		s.Completed, s.Status, s.CompletedAt = &pc, StatusCompleted, e.Time
	case events.SaleAbandoned:
		s.Status = StatusAbandoned
	case events.SaleSettled:
		s.Status, s.SettledAt, s.RefundedAtSettle = StatusSettled, e.Time, s.Refunded
	case events.DownloadRecorded:
		s.Downloads++
		s.LastDownload = e.Time
	case events.SaleRated:
		pc := p
		s.Rating = &pc
	default:
		var ok bool
		if s, ok = s.evolveRefunds(e); !ok {
			return s
		}
	}
	if e.Sequence > s.Version {
		s.Version = e.Sequence
	}
	return s
}

// ErasePersonal is a sale's opening without its customer's personal data: the buyer's details, the
// shipping address, the checkout context and the metadata, as a sale of an erased customer reads.
func ErasePersonal(p events.SaleStarted) events.SaleStarted {
	p.CustomerID = p.BuyerID()
	p.Customer = events.CustomerRef{ID: p.CustomerID}
	p.Shipping, p.Context, p.Metadata, p.PersonalErased = nil, nil, nil, true
	return p
}

// DueAt is when a timer must act on the sale next: the abandon deadline of an unpaid checkout, the due
// date of a scheduled settlement; zero when nothing is pending.
func (s Sale) DueAt() time.Time {
	if s.disputeOpen() {
		return time.Time{} // an open dispute holds the settlement
	}
	switch s.Status {
	case StatusAwaitingPayment:
		return s.Started.AbandonAt
	case StatusCompleted:
		return s.Completed.SettlementDueAt
	}
	return time.Time{}
}

// FoldSale folds a sale from its events in order.
func FoldSale(evs []events.Envelope) Sale {
	var s Sale
	for _, e := range evs {
		s = s.Evolve(e)
	}
	return s
}

// paymentRank orders payment statuses: a report never moves a payment to a lower rank, so late and
// out-of-order deliveries cannot take a sale backwards.
var paymentRank = map[string]int{"": 0, "initiated": 1, "pending": 2, "failed": 3, "cancelled": 3, "success": 4}

// PaymentReport is what a verified gateway delivery says about a sale's payment.
type PaymentReport = events.PaymentRecorded

// Licence issued on completion, with the data its licence_issued event needs.
type IssuedLicence struct {
	ID             string
	Key            string
	MaxActivations int
	ExpiresAt      *time.Time
}

// Grants are the generated parts of a completion (ids, keys, link lifetime) that the pure decision
// cannot invent itself.
type Grants struct {
	Licences []IssuedLicence
	LinkTTL  time.Duration
}

// RecordPayment decides what a payment report does to the sale. It returns no events when the report
// changes nothing, so duplicates and late deliveries are harmless:
//   - a paid sale (completed, settled) ignores every later report;
//   - success completes an awaiting, failed or abandoned sale (the customer paid; a retry after a failure
//     or a payment after the abandon timer must not lose money): access granted, settlement scheduled;
//   - any other report applies only to a sale awaiting payment and only moves the payment forward
//     (initiated < pending < failed, cancelled); failed and cancelled fail the sale.
//
// A report in another currency than the sale, or a success for another amount, is ErrPaymentMismatch.
func (s Sale) RecordPayment(r PaymentReport, g Grants, now time.Time) ([]events.Payload, error) {
	if _, ok := paymentRank[r.Status]; !ok || r.Status == "" {
		return nil, fmt.Errorf("unknown payment status %q", r.Status)
	}
	if r.Amount.Currency != "" && r.Amount.Currency != s.Started.Amount.Currency {
		return nil, fmt.Errorf("%w: currency %s, sale is in %s", ErrPaymentMismatch, r.Amount.Currency, s.Started.Amount.Currency)
	}
	if r.Status == "success" && r.Amount.Amount != s.Started.Amount.Amount {
		return nil, fmt.Errorf("%w: amount %d, sale amount is %d", ErrPaymentMismatch, r.Amount.Amount, s.Started.Amount.Amount)
	}
	if s.Status == StatusCompleted || s.Status == StatusSettled || s.Status == StatusRefunded {
		return nil, nil
	}
	if r.Status == "success" {
		done, err := s.complete(g, now)
		if err != nil {
			return nil, err
		}
		return []events.Payload{r, done}, nil
	}
	if s.Status != StatusAwaitingPayment || paymentRank[r.Status] <= paymentRank[s.PaymentStatus] {
		return nil, nil
	}
	return []events.Payload{r}, nil
}

func (s Sale) complete(g Grants, now time.Time) (events.SaleCompleted, error) {
	amount, err := StoredMoney(s.Started.Amount.Amount, s.Started.Amount.Currency)
	if err != nil {
		return events.SaleCompleted{}, err
	}
	pct, err := ParsePercent(s.Started.ServiceFeePercent)
	if err != nil {
		return events.SaleCompleted{}, err
	}
	fee, err := amount.Percent(pct)
	if err != nil {
		return events.SaleCompleted{}, err
	}
	net, err := amount.Sub(fee)
	if err != nil {
		return events.SaleCompleted{}, err
	}
	c := events.SaleCompleted{
		Instructions:    s.Started.Product.Instructions,
		ServiceFee:      events.Amount{Amount: fee.Amount, Currency: fee.Currency},
		SettlementTotal: events.Amount{Amount: net.Amount, Currency: net.Currency},
		SettlementDueAt: now.Add(time.Duration(s.Started.SettlementDelayDays) * 24 * time.Hour).UTC(),
	}
	for _, f := range s.Started.Product.Files {
		c.Files = append(c.Files, events.IssuedFile{ID: f.ID, Name: f.Name, Size: f.Size, Type: f.Type, URL: f.URL, ExpiresAt: now.Add(g.LinkTTL).UTC()})
	}
	for _, l := range g.Licences {
		c.LicenceIDs = append(c.LicenceIDs, l.ID)
	}
	return c, nil
}

// Abandon closes a sale still awaiting payment once its deadline passed; otherwise it returns nothing.
func (s Sale) Abandon(now time.Time) []events.Payload {
	if s.Status != StatusAwaitingPayment || now.Before(s.Started.AbandonAt) {
		return nil
	}
	return []events.Payload{events.SaleAbandoned{}}
}

// Settle marks a completed sale settled: when its settlement is due (source "schedule"), or at once when
// the gateway reports the settlement done.
func (s Sale) Settle(now time.Time, source string) ([]events.Payload, error) {
	switch {
	case s.Status == StatusSettled, s.Status == StatusRefunded: // a fully refunded sale is never settled
		return nil, nil
	case s.Status != StatusCompleted:
		return nil, ErrNotCompleted
	case source == "schedule" && now.Before(s.Completed.SettlementDueAt):
		return nil, nil
	case source == "schedule" && s.disputeOpen():
		return nil, nil // held until the dispute closes
	}
	return []events.Payload{events.SaleSettled{Source: source}}, nil
}

// RecordDownload counts a download of one of the sale's files.
func (s Sale) RecordDownload(fileID string) ([]events.Payload, error) {
	if s.Completed == nil {
		return nil, ErrNotCompleted
	}
	if s.Status == StatusRefunded {
		return nil, ErrAccessRevoked
	}
	for _, f := range s.Completed.Files {
		if f.ID == fileID {
			return []events.Payload{events.DownloadRecorded{FileID: fileID}}, nil
		}
	}
	return nil, ErrNotFound
}

// Rate records the buyer's rating (1 to 5, comment up to 2000 characters) of a completed sale.
func (s Sale) Rate(ratingID string, value int, comment string) ([]events.Payload, error) {
	var v ValidationError
	if value < 1 || value > 5 {
		v.Add("value", "The value must be an integer from 1 to 5.")
	}
	if len([]rune(comment)) > 2000 {
		v.Add("comment", "The comment may not be greater than 2000 characters.")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.Status != StatusCompleted && s.Status != StatusSettled {
		return nil, ErrNotCompleted
	}
	if s.Rating != nil {
		ratingID = s.Rating.RatingID
	}
	return []events.Payload{events.SaleRated{RatingID: ratingID, Value: value, Comment: comment}}, nil
}
