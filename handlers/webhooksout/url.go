package webhooksout

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/salesledger/ledger/domain"
)

// MaxURLLength is the longest endpoint URL accepted, in bytes.
const MaxURLLength = 2048

// ValidateURL checks an endpoint URL when it is created or changed. It returns a *domain.ValidationError
// naming the field "url" (a 422) when raw is longer than MaxURLLength, is not an absolute http or https
// URL with a host, carries user information (user:password@, which would be sent to the receiver and
// shown in the delivery log), names a host by an IP address that CheckAddr refuses, writes an IPv4
// address in a form other than dotted decimal (127.1, 0x7f.0.0.1, 2130706433: resolvers read them as
// addresses, so they would slip past the literal check), or names localhost or a name under .localhost
// (RFC 6761: always the loopback). It does not resolve names: a name that resolves to a refused address
// is refused when the connection is made (Sender), which is also what catches DNS rebinding.
func ValidateURL(raw string, allowPrivate bool) error {
	var v domain.ValidationError
	if err := checkURL(raw, allowPrivate); err != nil {
		var ae *AddressError
		if errors.As(err, &ae) {
			v.Add("url", "The url field names "+ae.Addr.String()+", "+ae.Range+": webhooks are not sent to such addresses.")
		} else {
			v.Add("url", "The url field "+err.Error()+".")
		}
	}
	return v.Err()
}

func checkURL(raw string, allowPrivate bool) error {
	if len(raw) > MaxURLLength {
		return errors.New("must be at most 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must be an http or https URL")
	}
	if u.User != nil {
		return errors.New("must not carry a user name or password")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("must name a port from 1 to 65535")
		}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return errors.New("must name a host")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if err := CheckAddr(addr, allowPrivate); err != nil {
			return err
		}
		return nil
	}
	if strings.HasPrefix(u.Host, "[") {
		return errors.New("must name a host: the bracketed address is not an IPv6 address")
	}
	if endsInNumber(host) {
		return errors.New("must write an IPv4 address in dotted decimal (a.b.c.d)")
	}
	if !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return errors.New("must not name localhost (loopback, RFC 6761)")
	}
	return nil
}

// endsInNumber reports whether host's last label is a number, decimal or 0x hexadecimal: no top-level
// domain is, so such a host is an IPv4 address in one of the shorthand forms resolvers accept (the
// WHATWG URL standard's "ends in a number" rule).
func endsInNumber(host string) bool {
	last := host[strings.LastIndex(host, ".")+1:]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}
