package webhooksout_test

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/handlers/webhooksout"
)

func TestValidateURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		// ok without allowPrivate; okPrivate with it.
		ok, okPrivate bool
	}{
		{"https://shop.example.com/hooks/ledger", true, true},
		{"http://shop.example.com:8080/hooks?x=1", true, true},
		{"HTTPS://Shop.Example.com/", true, true},
		{"https://8.8.8.8/hook", true, true},
		{"https://[2606:4700:4700::1111]/hook", true, true},
		{"https://shop.example.com./hook", true, true},
		{"https://" + strings.Repeat("a", 2040) + ".com", false, false},

		{"https://127.0.0.1/hook", false, true},
		{"http://[::1]:8080/hook", false, true},
		{"http://10.0.0.5/hook", false, true},
		{"http://192.168.0.1/", false, true},
		{"http://[fe80::1%25eth0]/", false, true},
		{"http://localhost:3000/hook", false, true},
		{"http://LOCALHOST./hook", false, true},
		{"http://api.localhost/hook", false, true},
		{"http://169.254.169.254/latest/meta-data/", false, false},
		{"http://[fd00:ec2::254]/", false, false},

		{"http://2130706433/", false, false}, // 127.0.0.1 as one number
		{"http://127.1/", false, false},      // shorthand
		{"http://0x7f.0.0.1/", false, false}, // hexadecimal
		{"http://0177.0.0.1/", false, false}, // octal
		{"http://example.0x10/", false, false},

		{"ftp://shop.example.com/", false, false},
		{"file:///etc/passwd", false, false},
		{"javascript:alert(1)", false, false},
		{"mailto:a@example.com", false, false},
		{"//shop.example.com/hook", false, false},
		{"/hook", false, false},
		{"", false, false},
		{"https://", false, false},
		{"https://:443/", false, false},
		{"https://user:pass@shop.example.com/", false, false},
		{"https://user@shop.example.com/", false, false},
		{"https://[not-an-ip]/", false, false},
		{"https://shop.example.com/\x00", false, false},
	} {
		for _, allow := range []bool{false, true} {
			want := tt.ok
			if allow {
				want = tt.okPrivate
			}
			err := webhooksout.ValidateURL(tt.url, allow)
			if (err == nil) != want {
				t.Errorf("ValidateURL(%.60q, allowPrivate %v) = %v, want ok %v", tt.url, allow, err, want)
				continue
			}
			var ve *domain.ValidationError
			if err != nil && (!errors.As(err, &ve) || len(ve.Fields["url"]) != 1 || len(ve.Fields) != 1) {
				t.Errorf("ValidateURL(%.60q) = %#v, want a ValidationError on url alone", tt.url, err)
			}
		}
	}
}

// Whatever ValidateURL accepts is an http(s) URL with a host and no user information, and a literal
// address in it passes CheckAddr.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://shop.example.com/h", "http://127.0.0.1/", "http://[::ffff:7f00:1]/", "http://0x7f.1/",
		"https://u@h/", "http://[fe80::1%25en0]:80/", "http://localhost./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if webhooksout.ValidateURL(raw, false) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q (%v)", raw, err)
		}
		if addr, err := netip.ParseAddr(u.Hostname()); err == nil && webhooksout.CheckAddr(addr, false) != nil {
			t.Fatalf("accepted %q, a refused address", raw)
		}
	})
}
