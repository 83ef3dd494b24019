package domain

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/salesledger/ledger/events"
)

// maxFiles is the most files a product snapshot may have.
const maxFiles = 50

// Checkout is the command that starts a sale.
type Checkout struct {
	Product  events.Product
	Customer events.CustomerRef
	Discount *events.Discount
	Campaign *events.Campaign
	Channel  string
	Shipping *events.Shipping
	Context  *events.SaleContext
	// Metadata is the store's own JSON object for the sale (nil: none); see Metadata.
	Metadata json.RawMessage
}

// StoreTerms are the store's settings a sale is started under.
type StoreTerms struct {
	Store               events.StoreRef
	ServiceFeePercent   string
	SettlementDelayDays int
	AbandonAfter        time.Duration
}

// Decide validates the checkout and returns the sale_started event. ids makes new prefixed ids (files
// without one). Every failing field is reported at once, by its JSON path (product.price.amount).
//
// Amounts: original_amount is the product price; the discount is a percentage of it (rounded half-even
// to the currency's minor unit) or a fixed amount in minor units, never more than the price; amount is
// original minus discount.
func (c Checkout) Decide(saleID, customerID string, terms StoreTerms, ids func(prefix string) string, now time.Time) (events.SaleStarted, error) {
	var v ValidationError
	p := c.Product
	c.checkLengths(&v)
	if strings.TrimSpace(p.ID) == "" {
		v.Add("product.id", "The product id is required.")
	}
	if strings.TrimSpace(p.Name) == "" {
		v.Add("product.name", "The product name is required.")
	}
	if strings.TrimSpace(p.Type) == "" {
		v.Add("product.type", "The product type is required.")
	}
	price, priceErr := NewMoney(p.Price.Amount, p.Price.Currency)
	switch {
	case p.Price.Currency == "":
		v.Add("product.price.currency", "The price currency is required.")
	case len(p.Price.Currency) > 3:
		v.Add("product.price.currency", "The price currency must be a three-letter ISO 4217 code.")
	case priceErr != nil:
		v.Add("product.price.currency", fmt.Sprintf("The currency %q is not an active ISO 4217 code (withdrawn codes such as MRO or HRK, and codes without a minor unit such as XAU, are refused).", p.Price.Currency))
	}
	switch {
	case p.Price.Amount < 0:
		v.Add("product.price.amount", "The price amount may not be negative.")
	case p.Price.Amount > MaxAmount:
		v.Add("product.price.amount", fmt.Sprintf("The price amount may be at most %d minor units.", MaxAmount))
	}
	if len(p.Files) > maxFiles {
		// Only the count: one message per file of a body full of them would make the answer as large.
		v.Add("product.files", fmt.Sprintf("A product may have at most %d files.", maxFiles))
	} else {
		for i, f := range p.Files {
			if strings.TrimSpace(f.Name) == "" {
				v.Add(fmt.Sprintf("product.files.%d.name", i), "The file name is required.")
			}
			if len(f.URL) > MaxURLLen {
				continue // reported by checkLengths; not worth parsing
			}
			if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.Add(fmt.Sprintf("product.files.%d.url", i), "The file url must be an absolute http(s) URL.")
			}
			if f.Size < 0 {
				v.Add(fmt.Sprintf("product.files.%d.size", i), "The file size may not be negative.")
			}
		}
	}
	if l := p.Licence; l != nil {
		if l.MaxActivations < 1 || l.MaxActivations > 10000 {
			v.Add("product.licence.max_activations", "The max_activations must be between 1 and 10000.")
		}
		if l.ExpiresInDays != nil && (*l.ExpiresInDays < 1 || *l.ExpiresInDays > 36500) {
			v.Add("product.licence.expires_in_days", "The expires_in_days must be between 1 and 36500.")
		}
	}
	email := NormalizeEmail(c.Customer.Email)
	switch {
	case email == "":
		v.Add("customer.email", "The customer email is required.")
	case len(email) > maxEmailLen || len(strings.TrimSpace(c.Customer.Email)) > maxEmailLen:
		v.Add("customer.email", fmt.Sprintf("The customer email must be at most %d characters.", maxEmailLen))
	case !ValidEmail(email):
		v.Add("customer.email", "The customer email must be a valid email address.")
	}
	metadata := Metadata(&v, "metadata", c.Metadata)
	channel := c.Channel
	if channel == "" {
		channel = "api"
	}
	if _, ok := Channels[channel]; !ok {
		v.Add("channel", "The channel must be one of store, affiliate, discover, widget, api.")
	}
	// The discount's own fields are checked whatever the price; its amount only against a valid price.
	discount := Money{Amount: 0, Currency: price.Currency}
	priceOK := priceErr == nil && p.Price.Amount >= 0 && p.Price.Amount <= MaxAmount
	if d := c.Discount; d != nil {
		if strings.TrimSpace(d.Code) == "" {
			v.Add("discount.code", "The discount code is required.")
		}
		switch {
		case len(d.Value) > MaxDecimalLen:
			v.Add("discount.value", fmt.Sprintf("The discount value must be at most %d characters.", MaxDecimalLen))
		case d.Type == "percentage":
			pct, err := ParsePercent(d.Value)
			switch {
			case err != nil:
				v.Add("discount.value", "A percentage discount must be a decimal from 0 to 100.")
			case priceOK:
				if discount, err = price.Percent(pct); err != nil {
					v.Add("discount.value", "The discount cannot be applied to this price.")
				}
			}
		case d.Type == "fixed":
			n, err := strconv.ParseInt(d.Value, 10, 64)
			switch {
			case err != nil || n < 0:
				v.Add("discount.value", "A fixed discount must be a non-negative integer amount in minor units.")
			case priceOK && n > price.Amount:
				v.Add("discount.value", "The discount may not be larger than the price.")
			default:
				discount.Amount = n
			}
		}
		if d.Type != "percentage" && d.Type != "fixed" {
			v.Add("discount.type", "The discount type must be percentage or fixed.")
		}
	}
	if err := v.Err(); err != nil {
		return events.SaleStarted{}, err
	}
	amount, err := price.Sub(discount)
	if err != nil {
		return events.SaleStarted{}, err
	}
	files := make([]events.ProductFile, len(p.Files))
	for i, f := range p.Files {
		if f.ID == "" {
			f.ID = ids(PrefixFile)
		}
		files[i] = f
	}
	p.Files = files
	p.Price.Currency = price.Currency
	cust := c.Customer
	cust.ID, cust.Email, cust.EmailAsTyped = customerID, email, typedEmail(strings.TrimSpace(c.Customer.Email), email)
	return events.SaleStarted{
		SaleID:              saleID,
		Store:               terms.Store,
		Product:             p,
		Customer:            cust,
		Discount:            c.Discount,
		Campaign:            c.Campaign,
		Channel:             channel,
		Shipping:            c.Shipping,
		Context:             c.Context,
		Metadata:            metadata,
		OriginalAmount:      events.Amount{Amount: price.Amount, Currency: price.Currency},
		DiscountAmount:      events.Amount{Amount: discount.Amount, Currency: price.Currency},
		Amount:              events.Amount{Amount: amount.Amount, Currency: price.Currency},
		ServiceFeePercent:   terms.ServiceFeePercent,
		SettlementDelayDays: terms.SettlementDelayDays,
		AbandonAt:           now.Add(terms.AbandonAfter).UTC(),
	}, nil
}

// checkLengths reports every text field of the checkout longer than its limit (see limits.go), by its
// JSON path.
func (c Checkout) checkLengths(v *ValidationError) {
	p := c.Product
	type field struct {
		path, value string
		limit       int
	}
	fields := []field{
		{"product.id", p.ID, MaxIDLen}, {"product.name", p.Name, MaxNameLen}, {"product.type", p.Type, MaxKeywordLen},
		{"product.instructions", p.Instructions, MaxTextLen},
		{"customer.id", c.Customer.ID, MaxIDLen}, {"customer.first_name", c.Customer.FirstName, MaxNameLen},
		{"customer.last_name", c.Customer.LastName, MaxNameLen}, {"customer.phone", c.Customer.Phone, MaxPhoneLen},
	}
	for i, f := range p.Files[:min(len(p.Files), maxFiles)] {
		at := fmt.Sprintf("product.files.%d.", i)
		fields = append(fields, field{at + "id", f.ID, MaxIDLen}, field{at + "name", f.Name, MaxNameLen},
			field{at + "type", f.Type, MaxKeywordLen}, field{at + "url", f.URL, MaxURLLen})
	}
	if d := c.Discount; d != nil {
		fields = append(fields, field{"discount.code", d.Code, MaxKeywordLen})
	}
	if cp := c.Campaign; cp != nil {
		fields = append(fields, field{"campaign.id", cp.ID, MaxIDLen}, field{"campaign.name", cp.Name, MaxNameLen})
	}
	country := func(at string, co *events.Country) {
		if co != nil {
			fields = append(fields, field{at + ".code", co.Code, 3}, field{at + ".name", co.Name, MaxKeywordLen})
		}
	}
	if s := c.Shipping; s != nil {
		fields = append(fields, field{"shipping.address", s.Address, maxAddressLen}, field{"shipping.city", s.City, maxCityLen},
			field{"shipping.state", s.State, maxStateLen}, field{"shipping.zip", s.Zip, maxZipLen})
		country("shipping.country", s.Country)
	}
	if x := c.Context; x != nil {
		// 45 characters hold any IPv6 address in text, IPv4-mapped ones included; 35 any BCP 47 tag in use.
		fields = append(fields, field{"context.ip_address", x.IPAddress, 45}, field{"context.device_type", x.DeviceType, MaxKeywordLen},
			field{"context.locale", x.Locale, 35})
		country("context.country", x.Country)
	}
	for _, f := range fields {
		tooLong(v, f.path, f.value, f.limit)
	}
}
