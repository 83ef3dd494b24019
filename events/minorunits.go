package events

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// legacyMinorUnitShift is, for each currency whose minor unit the ledger's version 1 events counted
// differently from ISO 4217, how many decimal digits ISO has more. Version 1 events took exponents from
// golang.org/x/text/currency v0.43.0, i.e. CLDR's "digits", which are 0 for these currencies where
// ISO 4217's list_one.xml (CcyMnrUnts) gives 2, or 3 for IQD. From version 2 every amount is in ISO
// 4217 minor units, so a version 1 amount in one of these currencies is multiplied by 10^shift when it is
// read: IDR 50000 (Rp 50,000) in a v1 event is IDR 5000000 (Rp 50,000.00) in the current payload.
//
// The table is frozen: it describes what version 1 meant and must never change. Currencies not in it
// had the same exponent in both sources, or were unknown to one of them.
var legacyMinorUnitShift = map[string]int{
	"AFN": 2, "ALL": 2, "AMD": 2, "COP": 2, "GYD": 2, "IDR": 2, "IQD": 3, "IRR": 2, "KPW": 2, "LAK": 2,
	"LBP": 2, "MGA": 2, "MMK": 2, "MNT": 2, "MUR": 2, "PKR": 2, "RSD": 2, "SOS": 2, "SYP": 2, "TZS": 2,
	"UZS": 2, "YER": 2,
}

// upcastAmount converts a version 1 amount to ISO 4217 minor units (see legacyMinorUnitShift). An amount
// that would no longer fit an int64 is an error wrapping ErrMalformed: the event cannot be represented,
// and the reader stops rather than guess.
func upcastAmount(a *Amount) error {
	if a == nil {
		return nil
	}
	n, err := upcastMinor(a.Amount, a.Currency)
	if err != nil {
		return err
	}
	a.Amount = n
	return nil
}

func upcastMinor(n int64, currency string) (int64, error) {
	shift := legacyMinorUnitShift[strings.ToUpper(currency)]
	for i := 0; i < shift; i++ {
		if n > math.MaxInt64/10 || n < math.MinInt64/10 {
			return 0, fmt.Errorf("%w: a version 1 amount of %d %s overflows in ISO 4217 minor units", ErrMalformed, n, currency)
		}
		n *= 10
	}
	return n, nil
}

// upcastSaleStarted converts a version 1 sale_started to ISO 4217 minor units: the price, the amounts
// and a fixed discount's value.
func upcastSaleStarted(s SaleStarted) (Payload, error) {
	for _, a := range []*Amount{&s.Product.Price, &s.OriginalAmount, &s.DiscountAmount, &s.Amount} {
		if err := upcastAmount(a); err != nil {
			return nil, err
		}
	}
	if d := s.Discount; d != nil && d.Type == "fixed" {
		if v, err := strconv.ParseInt(d.Value, 10, 64); err == nil {
			n, err := upcastMinor(v, s.Product.Price.Currency)
			if err != nil {
				return nil, err
			}
			dd := *d
			dd.Value = strconv.FormatInt(n, 10)
			s.Discount = &dd
		}
	}
	return s, nil
}

func upcastPayment(p PaymentRecorded) (Payload, error) {
	if err := upcastAmount(&p.Amount); err != nil {
		return nil, err
	}
	if p.Fee != nil {
		fee := *p.Fee
		if err := upcastAmount(&fee); err != nil {
			return nil, err
		}
		p.Fee = &fee
	}
	return p, nil
}

func upcastSaleCompleted(c SaleCompleted) (Payload, error) {
	for _, a := range []*Amount{&c.ServiceFee, &c.SettlementTotal} {
		if err := upcastAmount(a); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func upcastWebhookReceived(w WebhookReceived) (Payload, error) {
	for _, p := range []**Amount{&w.Amount, &w.Fee} {
		if *p == nil {
			continue
		}
		a := **p
		if err := upcastAmount(&a); err != nil {
			return nil, err
		}
		*p = &a
	}
	return w, nil
}

// decodeV1 decodes a version 1 body (and personal over it; see decode) into T and upcasts its amounts
// with up.
func decodeV1[T Payload](data, personal []byte, up func(T) (Payload, error)) (Payload, error) {
	p, err := decodeInto[T](data, personal)
	if err != nil {
		return nil, err
	}
	return up(p.(T))
}
