package webhooksout

// Second attack review (see cmd/ledger/webhooks_out_attack2_test.go). Each test's comment describes the
// fault as the review found it; the test holds the fix (it failed before it).

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAttack2DescribeErrNamesResolver: describeErr promises that "a failed lookup does not name the
// ledger's resolver", but returns "lookup <name>: " + DNSError.Err, and Go's own resolver (the one the
// Sender uses: net.Dialer with no Resolver, pure Go on Linux by default) fills Err with the socket error
// of the exchange with the nameserver: "read udp <ledger's address>:<port>-><resolver>:53: read:
// connection refused" (only timeouts are mapped before, by describeErr's net.Error check). The delivery
// log, which the store reads, then names the ledger's own address and its resolver's.
// Here the resolver is a closed UDP port on 127.0.0.1 (a resolver that is down or refuses), reached
// through a client built like Sender's; the error goes through describeErr as Send would pass it.
// Expected: no IP address in the attempt's error.
func TestAttack2DescribeErrNamesResolver(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close() // nothing answers there: ICMP port unreachable, "connection refused"
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", dead)
	}}
	dialer := &net.Dialer{Timeout: 2 * time.Second, Resolver: resolver, Control: dialControl(false)}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext}}
	_, err = client.Post("https://receiver.example.com/hooks", "application/json", strings.NewReader("{}"))
	if err == nil {
		t.Fatal("the request succeeded")
	}
	msg := bound(describeErr(err))
	t.Logf("raw error: %v", err)
	t.Logf("attempt error as recorded: %s", msg)
	if regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`).MatchString(msg) {
		t.Fatalf("the attempt's error names addresses of the ledger's network: %q", msg)
	}
}

// TestAttack2CredentialAddressesNotAlwaysRefused: "the cloud credentials services are refused always"
// is a list, and it misses some: the GCE metadata server's IPv6 address (fd20:ce::254), Tencent Cloud's
// metadata server (169.254.0.23, metadata.tencentyun.com, which hands out CAM role credentials) are
// refused only as private/link-local, so LEDGER_WEBHOOK_ALLOW_PRIVATE opens them; Azure's WireServer
// (168.63.129.16, a platform address outside every refused range) is allowed even in production.
// Expected: refused whatever allowPrivate says.
func TestAttack2CredentialAddressesNotAlwaysRefused(t *testing.T) {
	for _, c := range []struct {
		addr         string
		allowPrivate bool
	}{
		{"fd20:ce::254", true},
		{"169.254.0.23", true},
		{"168.63.129.16", false},
		{"168.63.129.16", true},
	} {
		if err := CheckAddr(netip.MustParseAddr(c.addr), c.allowPrivate); err == nil {
			t.Errorf("CheckAddr(%s, allowPrivate=%v) = nil: a cloud metadata/platform address is reachable", c.addr, c.allowPrivate)
		}
	}
}
