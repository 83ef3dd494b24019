package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

// HTTP Basic as clients send it (RFC 7617): the key as user name with an empty password, with the colon
// (curl -u, Stripe's libraries) or without it (4Geeks' examples, Django REST Framework clients).
func TestBasicAuthAsClientsSendIt(t *testing.T) {
	m := startMain(t, t.TempDir(), nil)
	c := client{t, "http://" + m.HTTPAddr}
	_, live, _ := createStore(t, c, "basic")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header string
		want         int
		message      string // a part of the 401's message
	}{
		{"key and colon", "Basic " + b64(live+":"), 200, ""},
		{"key without colon", "Basic " + b64(live), 200, ""},
		{"lower-case scheme", "basic " + b64(live), 200, ""},
		{"echo $KEY | base64", "Basic " + b64(live+"\n"), 200, ""},
		{"echo $KEY: | base64", "Basic " + b64(live+":\n"), 200, ""},
		{"key with a password", "Basic " + b64(live+":secret"), 401, "the password is empty"},
		{"not base64", "Basic " + live, 401, ""},
		{"empty", "Basic ", 401, ""},
		{"another key", "Basic " + b64("sk_live_notakey0000000000000000000000000000"), 401, ""},
	} {
		r := c.do("GET", "/v1/store", tc.header, nil)
		if msg, _ := field(r.body, "error.message").(string); r.status != tc.want || !strings.Contains(msg, tc.message) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.raw, tc.want, tc.message)
		}
	}
}
