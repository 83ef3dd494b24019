package domain_test

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

var (
	saleT0  = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC) // sale_started
	saleNow = saleT0.Add(10 * time.Minute)                 // when the success arrives

	saleGrants = domain.Grants{
		Licences: []domain.IssuedLicence{{ID: "lic_1", Key: "K-1", MaxActivations: 3}, {ID: "lic_2", Key: "K-2", MaxActivations: 3}},
		LinkTTL:  24 * time.Hour,
	}
)

// refStarted is the reference sale (reference/sales-chariow.txt): 9900 USD − 20 % = 7920, fee 5 %,
// settlement after 7 days, abandoned after an hour.
func refStarted() events.SaleStarted {
	usd := func(n int64) events.Amount { return events.Amount{Amount: n, Currency: "USD"} }
	return events.SaleStarted{
		SaleID: "sal_1",
		Store:  events.StoreRef{ID: "str_1", Name: "My Digital Store", Slug: "my-digital-store"},
		Product: events.Product{
			ID: "prd_1", Name: "Go Course", Type: "digital", Price: usd(9900),
			Files: []events.ProductFile{
				{ID: "fil_1", Name: "book.pdf", Size: 1024, Type: "application/pdf", URL: "https://cdn.example.com/book.pdf"},
				{ID: "fil_2", Name: "code.zip", URL: "https://cdn.example.com/code.zip"},
			},
			Licence:      &events.LicenceTerms{MaxActivations: 3},
			Instructions: "Join the Discord",
		},
		Customer:            events.CustomerRef{ID: "cus_1", Email: "buyer@example.com"},
		Discount:            &events.Discount{Code: "SAVE20", Type: "percentage", Value: "20"},
		Channel:             "api",
		OriginalAmount:      usd(9900),
		DiscountAmount:      usd(1980),
		Amount:              usd(7920),
		ServiceFeePercent:   "5",
		SettlementDelayDays: 7,
		AbandonAt:           saleT0.Add(time.Hour),
	}
}

// refCompleted is what a success at saleNow with saleGrants decides for refStarted.
func refCompleted() events.SaleCompleted {
	exp := saleNow.Add(24 * time.Hour)
	return events.SaleCompleted{
		Files: []events.IssuedFile{
			{ID: "fil_1", Name: "book.pdf", Size: 1024, Type: "application/pdf", URL: "https://cdn.example.com/book.pdf", ExpiresAt: exp},
			{ID: "fil_2", Name: "code.zip", URL: "https://cdn.example.com/code.zip", ExpiresAt: exp},
		},
		LicenceIDs:      []string{"lic_1", "lic_2"},
		Instructions:    "Join the Discord",
		ServiceFee:      events.Amount{Amount: 396, Currency: "USD"},
		SettlementTotal: events.Amount{Amount: 7524, Currency: "USD"},
		SettlementDueAt: saleNow.Add(7 * 24 * time.Hour),
	}
}

func paymentReport(status string, amount int64) events.PaymentRecorded {
	return events.PaymentRecorded{
		Status: status, Gateway: "standard", TransactionID: "tx_1", DeliveryID: "msg_" + status,
		Amount: events.Amount{Amount: amount, Currency: "USD"},
	}
}

func saleEnvelope(seq uint64, at time.Time, p events.Payload) events.Envelope {
	return events.Envelope{Sequence: seq, Time: at, Payload: p}
}

// saleHistory numbers the payloads 1, 2, … a minute apart from saleT0.
func saleHistory(ps ...events.Payload) []events.Envelope {
	evs := make([]events.Envelope, len(ps))
	for i, p := range ps {
		evs[i] = saleEnvelope(uint64(i+1), saleT0.Add(time.Duration(i)*time.Minute), p)
	}
	return evs
}

// givenSale folds the payloads as saleHistory numbers them.
func givenSale(ps ...events.Payload) domain.Sale { return domain.FoldSale(saleHistory(ps...)) }

// Histories used by several tables.
var (
	saleAwaiting  = []events.Payload{refStarted()}
	saleCompleted = []events.Payload{refStarted(), paymentReport("success", 7920), refCompleted()}
	saleSettled   = append(append([]events.Payload(nil), saleCompleted...), events.SaleSettled{Source: "schedule"})
)

func saleWith(base []events.Payload, more ...events.Payload) []events.Payload {
	return append(append([]events.Payload(nil), base...), more...)
}

// checkSaleEvents asserts the decision: either wantErr (errors.Is, and no events) or exactly want.
func checkSaleEvents(t *testing.T, got []events.Payload, err error, want []events.Payload, wantErr error) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("err = %v, want %v", err, wantErr)
		}
		if len(got) != 0 {
			t.Errorf("events %+v returned with an error", got)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got  %+v\n want %+v", got, want)
	}
}

func TestSaleRecordPayment(t *testing.T) {
	success := paymentReport("success", 7920)
	tests := []struct {
		name    string
		given   []events.Payload
		when    events.PaymentRecorded
		then    []events.Payload
		wantErr error
	}{
		{"initiated on an awaiting sale", saleAwaiting, paymentReport("initiated", 7920), []events.Payload{paymentReport("initiated", 7920)}, nil},
		{"pending after initiated", saleWith(saleAwaiting, paymentReport("initiated", 7920)), paymentReport("pending", 7920), []events.Payload{paymentReport("pending", 7920)}, nil},
		{"pending straight away", saleAwaiting, paymentReport("pending", 7920), []events.Payload{paymentReport("pending", 7920)}, nil},
		{"pending after pending is a duplicate", saleWith(saleAwaiting, paymentReport("pending", 7920)), paymentReport("pending", 7920), nil, nil},
		{"initiated after pending never goes backwards", saleWith(saleAwaiting, paymentReport("pending", 7920)), paymentReport("initiated", 7920), nil, nil},
		{"failed on an awaiting sale", saleWith(saleAwaiting, paymentReport("pending", 7920)), paymentReport("failed", 7920), []events.Payload{paymentReport("failed", 7920)}, nil},
		{"cancelled on an awaiting sale", saleAwaiting, paymentReport("cancelled", 7920), []events.Payload{paymentReport("cancelled", 7920)}, nil},
		{"failed twice is a duplicate", saleWith(saleAwaiting, paymentReport("failed", 7920)), paymentReport("failed", 7920), nil, nil},
		{"pending after failed", saleWith(saleAwaiting, paymentReport("failed", 7920)), paymentReport("pending", 7920), nil, nil},

		{"success completes an awaiting sale", saleAwaiting, success, []events.Payload{success, refCompleted()}, nil},
		{"success after pending", saleWith(saleAwaiting, paymentReport("initiated", 7920), paymentReport("pending", 7920)), success, []events.Payload{success, refCompleted()}, nil},
		{"success after failed completes (a retry paid)", saleWith(saleAwaiting, paymentReport("failed", 7920)), success, []events.Payload{success, refCompleted()}, nil},
		{"success after cancelled completes", saleWith(saleAwaiting, paymentReport("cancelled", 7920)), success, []events.Payload{success, refCompleted()}, nil},
		{"success after abandoned completes (money is never lost)", saleWith(saleAwaiting, events.SaleAbandoned{}), success, []events.Payload{success, refCompleted()}, nil},
		{"success without a currency is accepted", saleAwaiting, events.PaymentRecorded{Status: "success", Amount: events.Amount{Amount: 7920}},
			[]events.Payload{events.PaymentRecorded{Status: "success", Amount: events.Amount{Amount: 7920}}, refCompleted()}, nil},
		{"pending after abandoned", saleWith(saleAwaiting, events.SaleAbandoned{}), paymentReport("pending", 7920), nil, nil},
		{"failed after abandoned", saleWith(saleAwaiting, events.SaleAbandoned{}), paymentReport("failed", 7920), nil, nil},

		{"pending after completion", saleCompleted, paymentReport("pending", 7920), nil, nil},
		{"failed after completion", saleCompleted, paymentReport("failed", 7920), nil, nil},
		{"cancelled after completion", saleCompleted, paymentReport("cancelled", 7920), nil, nil},
		{"success again after completion", saleCompleted, success, nil, nil},
		{"success after settlement", saleSettled, success, nil, nil},
		{"failed after settlement", saleSettled, paymentReport("failed", 7920), nil, nil},

		{"other currency", saleAwaiting, events.PaymentRecorded{Status: "pending", Amount: events.Amount{Amount: 7920, Currency: "EUR"}}, nil, domain.ErrPaymentMismatch},
		{"success in another currency", saleAwaiting, events.PaymentRecorded{Status: "success", Amount: events.Amount{Amount: 7920, Currency: "EUR"}}, nil, domain.ErrPaymentMismatch},
		{"success for less", saleAwaiting, paymentReport("success", 7919), nil, domain.ErrPaymentMismatch},
		{"success for more", saleWith(saleAwaiting, paymentReport("pending", 7920)), paymentReport("success", 9900), nil, domain.ErrPaymentMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := givenSale(tt.given...).RecordPayment(tt.when, saleGrants, saleNow)
			checkSaleEvents(t, got, err, tt.then, tt.wantErr)
		})
	}
}

func TestSaleRecordPaymentUnknownStatus(t *testing.T) {
	for _, status := range []string{"", "refunded", "SUCCESS", "succeeded"} {
		t.Run(status, func(t *testing.T) {
			got, err := givenSale(saleAwaiting...).RecordPayment(paymentReport(status, 7920), saleGrants, saleNow)
			if err == nil || len(got) != 0 {
				t.Fatalf("status %q: events %+v, err %v; want an error", status, got, err)
			}
			if errors.Is(err, domain.ErrPaymentMismatch) {
				t.Errorf("status %q: err %v should not be a payment mismatch", status, err)
			}
		})
	}
}

func TestSaleCompletionFee(t *testing.T) {
	tests := []struct {
		name           string
		amount         int64
		currency       string
		fee            string
		delayDays      int
		wantFee, wantN int64
	}{
		{"reference: 5 % of 7920", 7920, "USD", "5", 7, 396, 7524},
		{"397.5 rounds half-even to 398", 7950, "USD", "5", 7, 398, 7552},
		{"396.5 rounds half-even to 396", 7930, "USD", "5", 7, 396, 7534},
		{"no fee", 7920, "USD", "0", 0, 0, 7920},
		{"fractional percent", 10000, "USD", "2.75", 30, 275, 9725},
		{"XOF whole francs: 2.5 % of 1100 = 27.5 → 28", 1100, "XOF", "2.5", 1, 28, 1072},
		{"KWD fils: 5 % of 1.234 = 0.0617 → 0.062", 1234, "KWD", "5", 1, 62, 1172},
		{"free sale", 0, "USD", "5", 7, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := refStarted()
			st.Amount = events.Amount{Amount: tt.amount, Currency: tt.currency}
			st.ServiceFeePercent, st.SettlementDelayDays = tt.fee, tt.delayDays
			st.Product.Files, st.Product.Instructions = nil, ""
			pay := events.PaymentRecorded{Status: "success", Gateway: "moneroo", Amount: st.Amount}

			got, err := givenSale(st).RecordPayment(pay, domain.Grants{LinkTTL: time.Hour}, saleNow)
			want := []events.Payload{pay, events.SaleCompleted{
				ServiceFee:      events.Amount{Amount: tt.wantFee, Currency: tt.currency},
				SettlementTotal: events.Amount{Amount: tt.wantN, Currency: tt.currency},
				SettlementDueAt: saleNow.AddDate(0, 0, tt.delayDays),
			}}
			checkSaleEvents(t, got, err, want, nil)
		})
	}
}

func TestFoldSale(t *testing.T) {
	st := refStarted()
	t.Run("started", func(t *testing.T) {
		s := givenSale(st)
		if s.ID != "sal_1" || s.Status != domain.StatusAwaitingPayment || !s.CreatedAt.Equal(saleT0) ||
			s.PaymentStatus != "" || s.Payment != nil || s.Completed != nil || s.Version != 1 ||
			!reflect.DeepEqual(s.Started, st) {
			t.Errorf("sale = %+v", s)
		}
	})
	for _, status := range []string{"failed", "cancelled"} {
		t.Run(status+" fails the sale", func(t *testing.T) {
			s := givenSale(st, paymentReport("pending", 7920), paymentReport(status, 7920))
			if s.Status != domain.StatusFailed || s.PaymentStatus != status || s.Payment == nil || s.Payment.Status != status {
				t.Errorf("status %q payment %q %+v", s.Status, s.PaymentStatus, s.Payment)
			}
		})
	}
	t.Run("success and completion", func(t *testing.T) {
		evs, err := givenSale(st, paymentReport("pending", 7920)).RecordPayment(paymentReport("success", 7920), saleGrants, saleNow)
		if err != nil {
			t.Fatal(err)
		}
		at := saleNow.Add(2 * time.Second) // the envelope's time, not the decision's
		h := saleHistory(st, paymentReport("pending", 7920))
		for i, p := range evs {
			h = append(h, saleEnvelope(uint64(10+i), at, p))
		}
		s := domain.FoldSale(h)
		if s.Status != domain.StatusCompleted || !s.CompletedAt.Equal(at) || s.PaymentStatus != "success" || s.Version != 11 {
			t.Errorf("status %q completed at %v payment %q version %d", s.Status, s.CompletedAt, s.PaymentStatus, s.Version)
		}
		if s.Completed == nil || !reflect.DeepEqual(*s.Completed, refCompleted()) {
			t.Errorf("completed = %+v", s.Completed)
		}
	})
	t.Run("abandoned", func(t *testing.T) {
		if s := givenSale(st, paymentReport("initiated", 7920), events.SaleAbandoned{}); s.Status != domain.StatusAbandoned {
			t.Errorf("status %q", s.Status)
		}
	})
	t.Run("completed after abandoned", func(t *testing.T) {
		s := givenSale(st, events.SaleAbandoned{}, paymentReport("success", 7920), refCompleted())
		if s.Status != domain.StatusCompleted {
			t.Errorf("status %q", s.Status)
		}
	})
	t.Run("completed after failed", func(t *testing.T) {
		s := givenSale(st, paymentReport("failed", 7920), paymentReport("success", 7920), refCompleted())
		if s.Status != domain.StatusCompleted || s.PaymentStatus != "success" {
			t.Errorf("status %q payment %q", s.Status, s.PaymentStatus)
		}
	})
	t.Run("a late failure does not undo a completion", func(t *testing.T) {
		s := givenSale(saleWith(saleCompleted, paymentReport("failed", 7920))...)
		if s.Status != domain.StatusCompleted {
			t.Errorf("status %q", s.Status)
		}
	})
}

func TestSaleVersion(t *testing.T) {
	st := refStarted()
	tests := []struct {
		name string
		evs  []events.Envelope
		want uint64
	}{
		{"no events", nil, 0},
		{"one event", []events.Envelope{saleEnvelope(42, saleT0, st)}, 42},
		{"stream sequences with gaps", []events.Envelope{
			saleEnvelope(3, saleT0, st), saleEnvelope(7, saleT0, paymentReport("pending", 7920)), saleEnvelope(12, saleT0, paymentReport("failed", 7920)),
		}, 12},
		{"the highest wins, not the last", []events.Envelope{
			saleEnvelope(9, saleT0, st), saleEnvelope(5, saleT0, paymentReport("pending", 7920)),
		}, 9},
		{"every event type counts", saleHistory(saleWith(saleCompleted, events.DownloadRecorded{FileID: "fil_1"}, events.SaleRated{RatingID: "rat_1", Value: 5}, events.SaleSettled{Source: "schedule"}, events.SaleAbandoned{})...), 7},
		{"events of other aggregates are ignored", []events.Envelope{
			saleEnvelope(3, saleT0, st), saleEnvelope(99, saleT0, events.CustomerRegistered{CustomerID: "cus_1"}),
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.FoldSale(tt.evs).Version; got != tt.want {
				t.Errorf("version = %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("Evolve is FoldSale one event at a time", func(t *testing.T) {
		evs := saleHistory(saleCompleted...)
		var s domain.Sale
		for _, e := range evs {
			s = s.Evolve(e)
		}
		if !reflect.DeepEqual(s, domain.FoldSale(evs)) {
			t.Errorf("Evolve %+v\nFoldSale %+v", s, domain.FoldSale(evs))
		}
	})
}

func TestSaleAbandon(t *testing.T) {
	deadline := refStarted().AbandonAt
	tests := []struct {
		name  string
		given []events.Payload
		now   time.Time
		then  []events.Payload
	}{
		{"before the deadline", saleAwaiting, deadline.Add(-time.Nanosecond), nil},
		{"at the deadline", saleAwaiting, deadline, []events.Payload{events.SaleAbandoned{}}},
		{"after the deadline", saleAwaiting, deadline.Add(time.Hour), []events.Payload{events.SaleAbandoned{}}},
		{"after the deadline, payment pending", saleWith(saleAwaiting, paymentReport("pending", 7920)), deadline.Add(time.Hour), []events.Payload{events.SaleAbandoned{}}},
		{"completed sale", saleCompleted, deadline.Add(time.Hour), nil},
		{"settled sale", saleSettled, deadline.Add(time.Hour), nil},
		{"already abandoned", saleWith(saleAwaiting, events.SaleAbandoned{}), deadline.Add(time.Hour), nil},
		{"failed sale", saleWith(saleAwaiting, paymentReport("failed", 7920)), deadline.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := givenSale(tt.given...).Abandon(tt.now)
			checkSaleEvents(t, got, nil, tt.then, nil)
		})
	}
}

func TestSaleSettle(t *testing.T) {
	due := refCompleted().SettlementDueAt
	tests := []struct {
		name    string
		given   []events.Payload
		now     time.Time
		source  string
		then    []events.Payload
		wantErr error
	}{
		{"schedule before due", saleCompleted, due.Add(-time.Second), "schedule", nil, nil},
		{"schedule at due", saleCompleted, due, "schedule", []events.Payload{events.SaleSettled{Source: "schedule"}}, nil},
		{"schedule after due", saleCompleted, due.Add(48 * time.Hour), "schedule", []events.Payload{events.SaleSettled{Source: "schedule"}}, nil},
		{"gateway settlement before due settles at once", saleCompleted, saleNow, "moneroo", []events.Payload{events.SaleSettled{Source: "moneroo"}}, nil},
		{"awaiting payment", saleAwaiting, due, "schedule", nil, domain.ErrNotCompleted},
		{"gateway settlement of an awaiting sale", saleAwaiting, due, "moneroo", nil, domain.ErrNotCompleted},
		{"failed sale", saleWith(saleAwaiting, paymentReport("failed", 7920)), due, "schedule", nil, domain.ErrNotCompleted},
		{"abandoned sale", saleWith(saleAwaiting, events.SaleAbandoned{}), due, "schedule", nil, domain.ErrNotCompleted},
		{"already settled", saleSettled, due.Add(time.Hour), "schedule", nil, nil},
		{"already settled, gateway repeats", saleSettled, due.Add(time.Hour), "moneroo", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := givenSale(tt.given...).Settle(tt.now, tt.source)
			checkSaleEvents(t, got, err, tt.then, tt.wantErr)
		})
	}
	t.Run("folding a settlement", func(t *testing.T) {
		at := due.Add(time.Minute)
		s := domain.FoldSale(append(saleHistory(saleCompleted...), saleEnvelope(9, at, events.SaleSettled{Source: "schedule"})))
		if s.Status != domain.StatusSettled || !s.SettledAt.Equal(at) || s.Completed == nil || s.Version != 9 {
			t.Errorf("status %q settled at %v completed %v version %d", s.Status, s.SettledAt, s.Completed, s.Version)
		}
	})
}

func TestSaleRecordDownload(t *testing.T) {
	tests := []struct {
		name    string
		given   []events.Payload
		file    string
		then    []events.Payload
		wantErr error
	}{
		{"known file", saleCompleted, "fil_2", []events.Payload{events.DownloadRecorded{FileID: "fil_2"}}, nil},
		{"known file of a settled sale", saleSettled, "fil_1", []events.Payload{events.DownloadRecorded{FileID: "fil_1"}}, nil},
		{"unknown file", saleCompleted, "fil_9", nil, domain.ErrNotFound},
		{"empty file id", saleCompleted, "", nil, domain.ErrNotFound},
		{"not completed", saleAwaiting, "fil_1", nil, domain.ErrNotCompleted},
		{"failed", saleWith(saleAwaiting, paymentReport("failed", 7920)), "fil_1", nil, domain.ErrNotCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := givenSale(tt.given...).RecordDownload(tt.file)
			checkSaleEvents(t, got, err, tt.then, tt.wantErr)
		})
	}
	t.Run("folding counts downloads", func(t *testing.T) {
		h := saleHistory(saleCompleted...)
		last := saleNow.Add(3 * time.Hour)
		h = append(h,
			saleEnvelope(10, saleNow.Add(time.Hour), events.DownloadRecorded{FileID: "fil_1"}),
			saleEnvelope(11, last, events.DownloadRecorded{FileID: "fil_2"}))
		s := domain.FoldSale(h)
		if s.Downloads != 2 || !s.LastDownload.Equal(last) || s.Status != domain.StatusCompleted {
			t.Errorf("downloads %d last %v status %q", s.Downloads, s.LastDownload, s.Status)
		}
	})
}

func TestSaleRate(t *testing.T) {
	first := events.SaleRated{RatingID: "rat_1", Value: 4, Comment: "good"}
	tests := []struct {
		name      string
		given     []events.Payload
		value     int
		comment   string
		then      []events.Payload
		badFields []string
		wantErr   error
	}{
		{"first rating", saleCompleted, 5, "great", []events.Payload{events.SaleRated{RatingID: "rat_new", Value: 5, Comment: "great"}}, nil, nil},
		{"rating a settled sale", saleSettled, 1, "", []events.Payload{events.SaleRated{RatingID: "rat_new", Value: 1}}, nil, nil},
		{"a second rating replaces the first under its id", saleWith(saleCompleted, first), 2, "changed my mind", []events.Payload{events.SaleRated{RatingID: "rat_1", Value: 2, Comment: "changed my mind"}}, nil, nil},
		{"comment of 2000 characters", saleCompleted, 3, strings.Repeat("é", 2000), []events.Payload{events.SaleRated{RatingID: "rat_new", Value: 3, Comment: strings.Repeat("é", 2000)}}, nil, nil},
		{"value 0", saleCompleted, 0, "", nil, []string{"value"}, nil},
		{"value 6", saleCompleted, 6, "", nil, []string{"value"}, nil},
		{"comment too long", saleCompleted, 5, strings.Repeat("x", 2001), nil, []string{"comment"}, nil},
		{"value and comment wrong at once", saleCompleted, -1, strings.Repeat("x", 2001), nil, []string{"value", "comment"}, nil},
		{"not completed", saleAwaiting, 5, "", nil, nil, domain.ErrNotCompleted},
		{"abandoned", saleWith(saleAwaiting, events.SaleAbandoned{}), 5, "", nil, nil, domain.ErrNotCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := givenSale(tt.given...).Rate("rat_new", tt.value, tt.comment)
			if tt.badFields != nil {
				var ve *domain.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a ValidationError", err)
				}
				fields := make([]string, 0, len(ve.Fields))
				for f := range ve.Fields {
					fields = append(fields, f)
				}
				want := append([]string(nil), tt.badFields...)
				sort.Strings(fields)
				sort.Strings(want)
				if !reflect.DeepEqual(fields, want) || len(got) != 0 {
					t.Errorf("fields %v events %+v, want exactly fields %v", fields, got, want)
				}
				return
			}
			checkSaleEvents(t, got, err, tt.then, tt.wantErr)
		})
	}
	t.Run("folding keeps the latest rating", func(t *testing.T) {
		second := events.SaleRated{RatingID: "rat_1", Value: 2}
		s := givenSale(saleWith(saleCompleted, first, second)...)
		if s.Rating == nil || *s.Rating != second {
			t.Errorf("rating = %+v, want %+v", s.Rating, second)
		}
	})
}

// BenchmarkFoldSale folds a typical ten-event sale history: started, three payment reports, completion,
// three downloads, a rating and the settlement.
func BenchmarkFoldSale(b *testing.B) {
	evs := saleHistory(
		refStarted(), paymentReport("initiated", 7920), paymentReport("pending", 7920), paymentReport("success", 7920), refCompleted(),
		events.DownloadRecorded{FileID: "fil_1"}, events.DownloadRecorded{FileID: "fil_2"}, events.DownloadRecorded{FileID: "fil_1"},
		events.SaleRated{RatingID: "rat_1", Value: 5}, events.SaleSettled{Source: "schedule"},
	)
	if len(evs) != 10 {
		b.Fatalf("history has %d events", len(evs))
	}
	var s domain.Sale
	b.ReportAllocs()
	for b.Loop() {
		s = domain.FoldSale(evs)
	}
	if s.Status != domain.StatusSettled || s.Downloads != 3 || s.Version != 10 {
		b.Fatalf("folded %+v", s)
	}
}
