package handlers

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// The sale object, field for field as reference/sales-chariow.txt shows it.
type saleJSON struct {
	ID             string              `json:"id"`
	Object         string              `json:"object"`
	Status         string              `json:"status"`
	Channel        channelJSON         `json:"channel"`
	OriginalAmount domain.Money        `json:"original_amount"`
	Amount         domain.Money        `json:"amount"`
	DiscountAmount domain.Money        `json:"discount_amount"`
	AmountRefunded domain.Money        `json:"amount_refunded"`
	Refunds        []refundJSON        `json:"refunds"`
	Dispute        *disputeJSON        `json:"dispute"`
	Settlement     *settlementJSON     `json:"settlement"`
	Download       downloadJSON        `json:"download"`
	Payment        paymentJSON         `json:"payment"`
	Shipping       *events.Shipping    `json:"shipping"`
	Context        *events.SaleContext `json:"context"`
	Store          events.StoreRef     `json:"store"`
	Product        productRefJSON      `json:"product"`
	Customer       customerRefJSON     `json:"customer"`
	Discount       *discountJSON       `json:"discount"`
	Rate           *rateJSON           `json:"rate"`
	Campaign       *events.Campaign    `json:"campaign"`
	Metadata       json.RawMessage     `json:"metadata"`
	PostPurchase   *postPurchaseJSON   `json:"post_purchase"`
	Livemode       bool                `json:"livemode"`
	CreatedAt      string              `json:"created_at"`
	CompletedAt    *string             `json:"completed_at"`
}

type channelJSON struct {
	Value       string `json:"value"`
	Label       string `json:"label"`
	Description string `json:"description"`
}

// settlementJSON is what the store is paid for the sale: before it is done, on the amount less its
// refunds; after, what was paid, and the part of it refunds since took back (clawback, null if none).
type settlementJSON struct {
	Amount     domain.Money  `json:"amount"`
	DueAt      string        `json:"due_at"`
	DoneAt     *string       `json:"done_at"`
	ServiceFee domain.Money  `json:"service_fee"`
	Clawback   *domain.Money `json:"clawback"`
}

// refundJSON is one refund of a sale (POST /v1/sales/{id}/refunds answers one).
type refundJSON struct {
	ID              string       `json:"id"`
	Object          string       `json:"object"`
	Amount          domain.Money `json:"amount"`
	Reason          *string      `json:"reason"`
	Source          string       `json:"source"`
	GatewayRefundID *string      `json:"gateway_refund_id"`
	DisputeID       *string      `json:"dispute_id"`
	CreatedAt       string       `json:"created_at"`
}

// disputeJSON is a sale's dispute: open, won or lost.
type disputeJSON struct {
	ID       string       `json:"id"`
	Status   string       `json:"status"`
	Amount   domain.Money `json:"amount"`
	Reason   *string      `json:"reason"`
	Gateway  string       `json:"gateway"`
	OpenedAt string       `json:"opened_at"`
	ClosedAt *string      `json:"closed_at"`
}

func refundObject(r events.RefundRecorded, at time.Time) refundJSON {
	return refundJSON{ID: r.RefundID, Object: "refund", Amount: money(r.Amount), Reason: optString(r.Reason), Source: r.Source,
		GatewayRefundID: optString(r.GatewayRefundID), DisputeID: optString(r.DisputeID), CreatedAt: rfc3339(at)}
}

type downloadJSON struct {
	Total  int     `json:"total"`
	LastAt *string `json:"last_at"`
}

type paymentJSON struct {
	Status        *string               `json:"status"`
	TransactionID *string               `json:"transaction_id"`
	Gateway       *string               `json:"gateway"`
	Method        *events.PaymentMethod `json:"method"`
	Amount        domain.Money          `json:"amount"`
	Fee           *domain.Money         `json:"fee"`
	ExchangeRate  *string               `json:"exchange_rate"`
	FailureError  *events.FailureError  `json:"failure_error"`
}

type productRefJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// customerRefJSON is the buyer on a sale; email and name are null once the customer was erased.
type customerRefJSON struct {
	ID    string  `json:"id"`
	Email *string `json:"email"`
	Name  *string `json:"name"`
}

type discountJSON struct {
	ID   *string `json:"id"`
	Code string  `json:"code"`
	Type string  `json:"type"`
}

type rateJSON struct {
	ID      string `json:"id"`
	Value   int    `json:"value"`
	Comment string `json:"comment,omitempty"`
}

type postPurchaseJSON struct {
	Files        []fileJSON    `json:"files"`
	Licences     []licenceJSON `json:"licences"`
	Instructions string        `json:"instructions"`
}

type fileJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size,omitempty"`
	Type        string `json:"type,omitempty"`
	DownloadURL string `json:"download_url"`
	ExpiresAt   string `json:"expires_at"`
}

type licenceJSON struct {
	ID             string  `json:"id"`
	LicenceKey     string  `json:"licence_key"`
	Status         string  `json:"status"`
	Activations    int     `json:"activations"`
	MaxActivations int     `json:"max_activations"`
	ExpiresAt      *string `json:"expires_at"`
}

func money(a events.Amount) domain.Money { return domain.Money{Amount: a.Amount, Currency: a.Currency} }

func rfc3339(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// saleObject renders a sale. Post-purchase access (signed links, licences) is added by the caller that
// can sign links; this renders everything the sale itself holds.
func saleObject(s domain.Sale, mode string) saleJSON {
	st := s.Started
	out := saleJSON{
		ID:             s.ID,
		Object:         "sale",
		Status:         s.Status,
		Channel:        channelJSON{Value: st.Channel, Label: title(st.Channel), Description: domain.Channels[st.Channel]},
		OriginalAmount: money(st.OriginalAmount),
		Amount:         money(st.Amount),
		DiscountAmount: money(st.DiscountAmount),
		AmountRefunded: domain.Money{Amount: s.Refunded, Currency: st.Amount.Currency},
		Refunds:        make([]refundJSON, len(s.Refunds)),
		Download:       downloadJSON{Total: s.Downloads, LastAt: optTime(s.LastDownload)},
		Payment:        paymentJSON{Amount: money(st.Amount)},
		Shipping:       st.Shipping,
		Context:        st.Context,
		Store:          st.Store,
		Product:        productRefJSON{ID: st.Product.ID, Name: st.Product.Name, Type: st.Product.Type},
		Customer:       customerRefJSON{ID: st.Customer.ID, Email: optString(cmp.Or(st.Customer.EmailAsTyped, st.Customer.Email)), Name: optString(strings.TrimSpace(st.Customer.FirstName + " " + st.Customer.LastName))},
		Campaign:       st.Campaign,
		Metadata:       st.Metadata,
		Livemode:       mode == events.ModeLive,
		CreatedAt:      rfc3339(s.CreatedAt),
		CompletedAt:    optTime(s.CompletedAt),
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage("null") // as on customers
	}
	if d := st.Discount; d != nil {
		out.Discount = &discountJSON{ID: optString(d.ID), Code: d.Code, Type: d.Type}
	}
	if p := s.Payment; p != nil {
		out.Payment.Status = optString(p.Status)
		out.Payment.TransactionID = optString(p.TransactionID)
		out.Payment.Gateway = optString(p.Gateway)
		out.Payment.Method = p.Method
		out.Payment.Amount = money(p.Amount)
		if p.Fee != nil {
			fee := money(*p.Fee)
			out.Payment.Fee = &fee
		}
		out.Payment.ExchangeRate = optString(p.ExchangeRate)
		out.Payment.FailureError = p.FailureError
	}
	for i, r := range s.Refunds {
		var at time.Time
		if i < len(s.RefundTimes) {
			at = s.RefundTimes[i]
		}
		out.Refunds[i] = refundObject(r, at)
	}
	if d := s.Dispute; d != nil {
		out.Dispute = &disputeJSON{ID: d.ID, Status: d.Status, Amount: money(d.Amount), Reason: optString(d.Reason), Gateway: d.Gateway,
			OpenedAt: rfc3339(d.OpenedAt), ClosedAt: optTime(d.ClosedAt)}
	}
	if c := s.Completed; c != nil {
		out.Settlement = &settlementJSON{
			Amount: money(c.SettlementTotal), DueAt: rfc3339(c.SettlementDueAt), DoneAt: optTime(s.SettledAt), ServiceFee: money(c.ServiceFee),
		}
		// The figures follow the refunds; a sale whose terms cannot be recomputed (not possible for
		// terms the API accepted) keeps the completion's.
		if f, ok, err := s.Settlement(); ok && err == nil {
			out.Settlement.Amount, out.Settlement.ServiceFee = money(f.Amount), money(f.ServiceFee)
			if f.Clawback != nil {
				cb := money(*f.Clawback)
				out.Settlement.Clawback = &cb
			}
		}
	}
	if r := s.Rating; r != nil {
		out.Rate = &rateJSON{ID: r.RatingID, Value: r.Value, Comment: r.Comment}
	}
	return out
}
