package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

var checkoutNow = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

var checkoutTerms = domain.StoreTerms{
	Store:               events.StoreRef{ID: "str_1", Name: "My Digital Store", Slug: "my-digital-store"},
	ServiceFeePercent:   "5",
	SettlementDelayDays: 7,
	AbandonAfter:        60 * time.Minute,
}

// checkoutIDs is a deterministic ids func: prefix followed by a counter, "fil_1", "fil_2", …
func checkoutIDs() func(string) string {
	n := 0
	return func(prefix string) string {
		n++
		return fmt.Sprintf("%s%d", prefix, n)
	}
}

// refCheckout is the reference checkout (reference/sales-chariow.txt) with no discount; edit builds a
// variant of it.
func refCheckout(edit func(c *domain.Checkout)) domain.Checkout {
	c := domain.Checkout{
		Product: events.Product{
			ID: "prd_1", Name: "Go Course", Type: "digital",
			Price: events.Amount{Amount: 9900, Currency: "USD"},
		},
		Customer: events.CustomerRef{Email: "buyer@example.com", FirstName: "Ada"},
	}
	if edit != nil {
		edit(&c)
	}
	return c
}

func withDiscount(typ, value string) func(c *domain.Checkout) {
	return func(c *domain.Checkout) {
		c.Discount = &events.Discount{Code: "SAVE20", Type: typ, Value: value}
	}
}

func withPrice(amount int64, cur string) func(c *domain.Checkout) {
	return func(c *domain.Checkout) { c.Product.Price = events.Amount{Amount: amount, Currency: cur} }
}

func TestCheckoutDecideAmounts(t *testing.T) {
	usd := func(n int64) events.Amount { return events.Amount{Amount: n, Currency: "USD"} }
	tests := []struct {
		name                       string
		cmd                        domain.Checkout
		original, discount, amount events.Amount
	}{
		{"reference: 20 % off 9900", refCheckout(withDiscount("percentage", "20")), usd(9900), usd(1980), usd(7920)},
		{"fixed 500 off", refCheckout(withDiscount("fixed", "500")), usd(9900), usd(500), usd(9400)},
		{"fixed discount equal to the price", refCheckout(withDiscount("fixed", "9900")), usd(9900), usd(9900), usd(0)},
		{"100 % off", refCheckout(withDiscount("percentage", "100")), usd(9900), usd(9900), usd(0)},
		{"0 % off", refCheckout(withDiscount("percentage", "0")), usd(9900), usd(0), usd(9900)},
		{"no discount", refCheckout(nil), usd(9900), usd(0), usd(9900)},
		{"free product", refCheckout(withPrice(0, "USD")), usd(0), usd(0), usd(0)},
		// Half-even to the minor unit: exact halves go to the even neighbour.
		{"2.5 % of 100 = 2.5 rounds to 2", refCheckout(func(c *domain.Checkout) {
			withPrice(100, "USD")(c)
			withDiscount("percentage", "2.5")(c)
		}), usd(100), usd(2), usd(98)},
		{"2.5 % of 300 = 7.5 rounds to 8", refCheckout(func(c *domain.Checkout) {
			withPrice(300, "USD")(c)
			withDiscount("percentage", "2.5")(c)
		}), usd(300), usd(8), usd(292)},
		{"33.33 % of 9900 = 3299.67 rounds to 3300", refCheckout(withDiscount("percentage", "33.33")), usd(9900), usd(3300), usd(6600)},
		// XOF has no minor unit: amounts are whole francs.
		{"XOF 10 % of 1005 = 100.5 rounds to 100", refCheckout(func(c *domain.Checkout) {
			withPrice(1005, "XOF")(c)
			withDiscount("percentage", "10")(c)
		}), events.Amount{Amount: 1005, Currency: "XOF"}, events.Amount{Amount: 100, Currency: "XOF"}, events.Amount{Amount: 905, Currency: "XOF"}},
		{"XOF fixed 250", refCheckout(func(c *domain.Checkout) {
			withPrice(5000, "XOF")(c)
			withDiscount("fixed", "250")(c)
		}), events.Amount{Amount: 5000, Currency: "XOF"}, events.Amount{Amount: 250, Currency: "XOF"}, events.Amount{Amount: 4750, Currency: "XOF"}},
		// KWD has three decimals: 1.234 KWD is 1234 fils.
		{"KWD 12.5 % of 1.234 = 0.15425 rounds to 0.154", refCheckout(func(c *domain.Checkout) {
			withPrice(1234, "KWD")(c)
			withDiscount("percentage", "12.5")(c)
		}), events.Amount{Amount: 1234, Currency: "KWD"}, events.Amount{Amount: 154, Currency: "KWD"}, events.Amount{Amount: 1080, Currency: "KWD"}},
		{"KWD no discount", refCheckout(withPrice(1234, "KWD")),
			events.Amount{Amount: 1234, Currency: "KWD"}, events.Amount{Amount: 0, Currency: "KWD"}, events.Amount{Amount: 1234, Currency: "KWD"}},
		{"lower-case currency is normalised", refCheckout(func(c *domain.Checkout) {
			withPrice(9900, "usd")(c)
			withDiscount("percentage", "20")(c)
		}), usd(9900), usd(1980), usd(7920)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd.Decide("sal_1", "cus_1", checkoutTerms, checkoutIDs(), checkoutNow)
			if err != nil {
				t.Fatal(err)
			}
			if got.OriginalAmount != tt.original || got.DiscountAmount != tt.discount || got.Amount != tt.amount {
				t.Errorf("original %+v discount %+v amount %+v, want %+v %+v %+v",
					got.OriginalAmount, got.DiscountAmount, got.Amount, tt.original, tt.discount, tt.amount)
			}
			if got.Product.Price != tt.original {
				t.Errorf("product.price = %+v, want %+v", got.Product.Price, tt.original)
			}
		})
	}
}

func TestCheckoutDecideValidation(t *testing.T) {
	badFile := func(f events.ProductFile) func(c *domain.Checkout) {
		return func(c *domain.Checkout) {
			c.Product.Files = []events.ProductFile{{Name: "ok.pdf", URL: "https://cdn.example.com/ok.pdf"}, f}
		}
	}
	tests := []struct {
		name      string
		cmd       domain.Checkout
		badFields []string
	}{
		{"missing product id", refCheckout(func(c *domain.Checkout) { c.Product.ID = " " }), []string{"product.id"}},
		{"missing product name", refCheckout(func(c *domain.Checkout) { c.Product.Name = "" }), []string{"product.name"}},
		{"missing product type", refCheckout(func(c *domain.Checkout) { c.Product.Type = "" }), []string{"product.type"}},
		{"missing currency", refCheckout(withPrice(9900, "")), []string{"product.price.currency"}},
		{"unknown currency", refCheckout(withPrice(9900, "ZZZ")), []string{"product.price.currency"}},
		{"negative price", refCheckout(withPrice(-1, "USD")), []string{"product.price.amount"}},
		{"percentage over 100", refCheckout(withDiscount("percentage", "100.5")), []string{"discount.value"}},
		{"negative percentage", refCheckout(withDiscount("percentage", "-5")), []string{"discount.value"}},
		{"percentage not a number", refCheckout(withDiscount("percentage", "twenty")), []string{"discount.value"}},
		{"fixed discount larger than the price", refCheckout(withDiscount("fixed", "9901")), []string{"discount.value"}},
		{"fixed discount not an integer", refCheckout(withDiscount("fixed", "1.5")), []string{"discount.value"}},
		{"negative fixed discount", refCheckout(withDiscount("fixed", "-1")), []string{"discount.value"}},
		{"unknown discount type", refCheckout(withDiscount("bogo", "1")), []string{"discount.type"}},
		{"missing discount code", refCheckout(func(c *domain.Checkout) {
			c.Discount = &events.Discount{Type: "fixed", Value: "100"}
		}), []string{"discount.code"}},
		{"bad email", refCheckout(func(c *domain.Checkout) { c.Customer.Email = "not-an-email" }), []string{"customer.email"}},
		{"email without a domain dot", refCheckout(func(c *domain.Checkout) { c.Customer.Email = "a@localhost" }), []string{"customer.email"}},
		{"email with a display name", refCheckout(func(c *domain.Checkout) { c.Customer.Email = "Ada <ada@example.com>" }), []string{"customer.email"}},
		{"missing email", refCheckout(func(c *domain.Checkout) { c.Customer.Email = "   " }), []string{"customer.email"}},
		{"unknown channel", refCheckout(func(c *domain.Checkout) { c.Channel = "telepathy" }), []string{"channel"}},
		{"file without name", refCheckout(badFile(events.ProductFile{URL: "https://cdn.example.com/a.pdf"})), []string{"product.files.1.name"}},
		{"file with a relative url", refCheckout(badFile(events.ProductFile{Name: "a.pdf", URL: "/files/a.pdf"})), []string{"product.files.1.url"}},
		{"file with an ftp url", refCheckout(badFile(events.ProductFile{Name: "a.pdf", URL: "ftp://cdn.example.com/a.pdf"})), []string{"product.files.1.url"}},
		{"file with a negative size", refCheckout(badFile(events.ProductFile{Name: "a.pdf", URL: "https://cdn.example.com/a.pdf", Size: -1})), []string{"product.files.1.size"}},
		{"product name over 200 characters", refCheckout(func(c *domain.Checkout) { c.Product.Name = strings.Repeat("é", 201) }), []string{"product.name"}},
		{"instructions over 5000 characters", refCheckout(func(c *domain.Checkout) { c.Product.Instructions = strings.Repeat("x", 5001) }), []string{"product.instructions"}},
		{"currency of 1000 letters", refCheckout(withPrice(9900, strings.Repeat("U", 1000))), []string{"product.price.currency"}},
		{"file url over 2048 characters", refCheckout(badFile(events.ProductFile{Name: "a.pdf", URL: "https://cdn.example.com/" + strings.Repeat("a", 2048)})), []string{"product.files.1.url"}},
		{"file id over 64 characters", refCheckout(badFile(events.ProductFile{ID: strings.Repeat("f", 65), Name: "a.pdf", URL: "https://cdn.example.com/a"})), []string{"product.files.1.id"}},
		{"51 files, reported once", refCheckout(func(c *domain.Checkout) { c.Product.Files = make([]events.ProductFile, 51) }), []string{"product.files"}},
		{"buyer's names and phone", refCheckout(func(c *domain.Checkout) {
			c.Customer.FirstName, c.Customer.LastName, c.Customer.Phone = strings.Repeat("n", 201), strings.Repeat("n", 201), strings.Repeat("1", 65)
		}), []string{"customer.first_name", "customer.last_name", "customer.phone"}},
		{"email over 254 characters", refCheckout(func(c *domain.Checkout) { c.Customer.Email = strings.Repeat("a", 250) + "@example.com" }), []string{"customer.email"}},
		{"discount code and value", refCheckout(func(c *domain.Checkout) {
			c.Discount = &events.Discount{Code: strings.Repeat("C", 101), Type: "percentage", Value: strings.Repeat("1", 33)}
		}), []string{"discount.code", "discount.value"}},
		{"campaign, shipping and context", refCheckout(func(c *domain.Checkout) {
			c.Campaign = &events.Campaign{ID: strings.Repeat("i", 65), Name: strings.Repeat("n", 201)}
			c.Shipping = &events.Shipping{Address: strings.Repeat("a", 201), City: strings.Repeat("c", 101), State: strings.Repeat("s", 101),
				Zip: strings.Repeat("z", 21), Country: &events.Country{Code: "USAX", Name: strings.Repeat("n", 101)}}
			c.Context = &events.SaleContext{IPAddress: strings.Repeat("1", 46), DeviceType: strings.Repeat("d", 101), Locale: strings.Repeat("l", 36),
				Country: &events.Country{Code: "FRAX"}}
		}), []string{"campaign.id", "campaign.name", "shipping.address", "shipping.city", "shipping.state", "shipping.zip",
			"shipping.country.code", "shipping.country.name", "context.ip_address", "context.device_type", "context.locale", "context.country.code"}},
		{"licence max_activations 0", refCheckout(func(c *domain.Checkout) {
			c.Product.Licence = &events.LicenceTerms{MaxActivations: 0}
		}), []string{"product.licence.max_activations"}},
		{"licence expires_in_days 0", refCheckout(func(c *domain.Checkout) {
			c.Product.Licence = &events.LicenceTerms{MaxActivations: 1, ExpiresInDays: ptr(0)}
		}), []string{"product.licence.expires_in_days"}},
		{"everything wrong at once", domain.Checkout{
			Product: events.Product{
				Price:   events.Amount{Amount: 100, Currency: "USD"},
				Files:   []events.ProductFile{{URL: "ftp://x/y"}},
				Licence: &events.LicenceTerms{MaxActivations: 0, ExpiresInDays: ptr(0)},
			},
			Customer: events.CustomerRef{Email: "nope"},
			Discount: &events.Discount{Type: "fixed", Value: "1.5"},
			Channel:  "fax",
		}, []string{
			"product.id", "product.name", "product.type", "product.files.0.name", "product.files.0.url",
			"product.licence.max_activations", "product.licence.expires_in_days", "customer.email", "channel",
			"discount.code", "discount.value",
		}},
		// Decide's contract: "Every failing field is reported at once". The discount's code and type do
		// not depend on the price, so they are reported even when the price itself is invalid.
		{"discount errors reported alongside an invalid price", refCheckout(func(c *domain.Checkout) {
			c.Product.Price = events.Amount{Amount: -5, Currency: "ZZZ"}
			c.Customer.Email = ""
			c.Discount = &events.Discount{Code: "X", Type: "bogo", Value: "1"}
		}), []string{"product.price.amount", "product.price.currency", "customer.email", "discount.type"}},
		{"malformed discount value reported alongside an invalid price", refCheckout(func(c *domain.Checkout) {
			c.Product.Price = events.Amount{Amount: -5, Currency: "USD"}
			c.Discount = &events.Discount{Code: "X", Type: "fixed", Value: "1.5"}
		}), []string{"product.price.amount", "discount.value"}},
		// Whether a discount exceeds the price cannot be told without a valid price: only the price is reported.
		{"discount size not judged against an invalid price", refCheckout(func(c *domain.Checkout) {
			c.Product.Price = events.Amount{Amount: 100, Currency: "ZZZ"}
			c.Discount = &events.Discount{Code: "X", Type: "fixed", Value: "99999"}
		}), []string{"product.price.currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cmd.Decide("sal_1", "cus_1", checkoutTerms, checkoutIDs(), checkoutNow)
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError", err)
			}
			got := make([]string, 0, len(ve.Fields))
			for f, msgs := range ve.Fields {
				got = append(got, f)
				if len(msgs) == 0 {
					t.Errorf("field %s has no message", f)
				}
			}
			want := append([]string(nil), tt.badFields...)
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fields %v, want exactly %v", got, want)
			}
		})
	}
}

func TestCheckoutDecideNormalises(t *testing.T) {
	cmd := domain.Checkout{
		Product: events.Product{
			ID: "prd_1", Name: "Go Course", Type: "digital",
			Price: events.Amount{Amount: 9900, Currency: "usd"},
			Files: []events.ProductFile{
				{Name: "book.pdf", URL: "https://cdn.example.com/book.pdf"},
				{ID: "fil_given", Name: "code.zip", URL: "http://cdn.example.com/code.zip"},
				{Name: "audio.mp3", URL: "https://cdn.example.com/audio.mp3"},
			},
			Licence:      &events.LicenceTerms{MaxActivations: 3, ExpiresInDays: ptr(365)},
			Instructions: "Enjoy",
		},
		Customer: events.CustomerRef{Email: "  Buyer@Example.COM ", FirstName: "Ada", LastName: "Lovelace", Phone: "+15550100"},
		Discount: &events.Discount{Code: "SAVE20", Type: "percentage", Value: "20"},
		Campaign: &events.Campaign{Name: "spring"},
		Shipping: &events.Shipping{City: "Paris"},
		Context:  &events.SaleContext{Locale: "fr-FR"},
	}
	files := append([]events.ProductFile(nil), cmd.Product.Files...)

	got, err := cmd.Decide("sal_1", "cus_1", checkoutTerms, checkoutIDs(), checkoutNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.SaleID != "sal_1" || got.Store != checkoutTerms.Store {
		t.Errorf("sale id %q store %+v", got.SaleID, got.Store)
	}
	if got.Channel != "api" {
		t.Errorf("channel = %q, want the default api", got.Channel)
	}
	wantCustomer := events.CustomerRef{ID: "cus_1", Email: "buyer@example.com", EmailAsTyped: "Buyer@Example.COM", FirstName: "Ada", LastName: "Lovelace", Phone: "+15550100"}
	if got.Customer != wantCustomer {
		t.Errorf("customer = %+v, want %+v", got.Customer, wantCustomer)
	}
	if got.Product.Price != (events.Amount{Amount: 9900, Currency: "USD"}) {
		t.Errorf("price = %+v, want 9900 USD", got.Product.Price)
	}
	wantIDs := []string{"fil_1", "fil_given", "fil_2"}
	if len(got.Product.Files) != len(wantIDs) {
		t.Fatalf("files = %+v", got.Product.Files)
	}
	for i, f := range got.Product.Files {
		want := files[i]
		want.ID = wantIDs[i]
		if f != want {
			t.Errorf("file %d = %+v, want %+v", i, f, want)
		}
	}
	if !reflect.DeepEqual(cmd.Product.Files, files) {
		t.Errorf("Decide changed the command's files: %+v", cmd.Product.Files)
	}
	if l := got.Product.Licence; l == nil || l.MaxActivations != 3 || l.ExpiresInDays == nil || *l.ExpiresInDays != 365 {
		t.Errorf("licence = %+v", l)
	}
	if got.Product.Instructions != "Enjoy" || got.Product.ID != "prd_1" || got.Product.Name != "Go Course" || got.Product.Type != "digital" {
		t.Errorf("product = %+v", got.Product)
	}
	if !reflect.DeepEqual(got.Discount, cmd.Discount) || !reflect.DeepEqual(got.Campaign, cmd.Campaign) ||
		!reflect.DeepEqual(got.Shipping, cmd.Shipping) || !reflect.DeepEqual(got.Context, cmd.Context) {
		t.Errorf("discount %+v campaign %+v shipping %+v context %+v not copied", got.Discount, got.Campaign, got.Shipping, got.Context)
	}
	if got.ServiceFeePercent != "5" || got.SettlementDelayDays != 7 {
		t.Errorf("terms fee %q delay %d, want 5 and 7", got.ServiceFeePercent, got.SettlementDelayDays)
	}
	if want := checkoutNow.Add(time.Hour); !got.AbandonAt.Equal(want) || got.AbandonAt.Location() != time.UTC {
		t.Errorf("abandon_at = %v, want %v in UTC", got.AbandonAt, want)
	}
}

func TestCheckoutDecideChannelsAndTerms(t *testing.T) {
	for ch := range domain.Channels {
		t.Run("channel "+ch, func(t *testing.T) {
			got, err := refCheckout(func(c *domain.Checkout) { c.Channel = ch }).Decide("sal_1", "cus_1", checkoutTerms, checkoutIDs(), checkoutNow)
			if err != nil || got.Channel != ch {
				t.Fatalf("channel %q: got %q, %v", ch, got.Channel, err)
			}
		})
	}
	t.Run("abandon_at follows the store's terms and is UTC", func(t *testing.T) {
		terms := checkoutTerms
		terms.AbandonAfter = 15 * time.Minute
		terms.ServiceFeePercent, terms.SettlementDelayDays = "2.5", 0
		now := checkoutNow.In(time.FixedZone("UTC+2", 2*3600))
		got, err := refCheckout(nil).Decide("sal_1", "cus_1", terms, checkoutIDs(), now)
		if err != nil {
			t.Fatal(err)
		}
		if want := checkoutNow.Add(15 * time.Minute); !got.AbandonAt.Equal(want) || got.AbandonAt.Location() != time.UTC {
			t.Errorf("abandon_at = %v, want %v in UTC", got.AbandonAt, want)
		}
		if got.ServiceFeePercent != "2.5" || got.SettlementDelayDays != 0 {
			t.Errorf("terms fee %q delay %d, want 2.5 and 0", got.ServiceFeePercent, got.SettlementDelayDays)
		}
	})
	t.Run("ids is not called when every file has an id", func(t *testing.T) {
		cmd := refCheckout(func(c *domain.Checkout) {
			c.Product.Files = []events.ProductFile{{ID: "fil_a", Name: "a", URL: "https://x.example/a"}}
		})
		ids := func(string) string { t.Error("ids called"); return "" }
		if _, err := cmd.Decide("sal_1", "cus_1", checkoutTerms, ids, checkoutNow); err != nil {
			t.Fatal(err)
		}
	})
}
