package handlers

import (
	"strings"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Stripe's amounts are integers in Stripe's own units per currency, which are not always ISO 4217's
// minor units (Stripe docs, "Supported currencies": zero-decimal currencies, three-decimal currencies,
// special cases). The ledger keeps ISO minor units (domain.CurrencyExponent), so a Stripe amount is
// scaled from Stripe's exponent to the ledger's:
//   - zero-decimal currencies (stripeZeroDecimal): Stripe's unit is the currency's major unit;
//   - three-decimal currencies (stripeThreeDecimal): thousandths, as ISO;
//   - every other currency: hundredths ("two-decimal") — including ISK and UGX, which ISO gives no
//     minor unit but Stripe takes and sends ×100 for backwards compatibility (ISK 5,000 is 500000), and
//     HUF and TWD, which Stripe pays out in whole units but represents with two decimals, as ISO does.
var (
	stripeZeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true,
		"KRW": true, "MGA": true, "PYG": true, "RWF": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true}
	stripeThreeDecimal = map[string]bool{"BHD": true, "JOD": true, "KWD": true, "OMR": true, "TND": true}
)

// stripeExponent is the number of decimals in Stripe's integer amounts for currency (upper case).
func stripeExponent(currency string) int {
	switch {
	case stripeZeroDecimal[currency]:
		return 0
	case stripeThreeDecimal[currency]:
		return 3
	}
	return 2
}

// stripeAmount converts a Stripe amount to the ledger's minor units of currency. A currency the ledger
// does not know is passed on unscaled (the sale's currency check then refuses it); an amount that does
// not divide into the ledger's units (ISK 5,000.50 written 500050; Stripe itself requires multiples of
// 100) is errMalformedDelivery.
func stripeAmount(n *int64, currency string) (*events.Amount, error) {
	if n == nil {
		return nil, nil
	}
	cur := strings.ToUpper(currency)
	iso, err := domain.CurrencyExponent(cur)
	if err != nil {
		return &events.Amount{Amount: *n, Currency: cur}, nil
	}
	v := *n
	for e := stripeExponent(cur); e > iso; e-- {
		if v%10 != 0 {
			return nil, errMalformedDelivery
		}
		v /= 10
	}
	for e := stripeExponent(cur); e < iso; e++ {
		v *= 10
	}
	return &events.Amount{Amount: v, Currency: cur}, nil
}
