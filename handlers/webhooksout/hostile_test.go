package webhooksout

// Hostile inputs found by an attack review: tricky hosts, receivers that misbehave, error texts that
// would tell a store about the ledger's network.

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAttackURLsAcceptedAtCreation: tricky URLs, some of which ValidateURL lets through with private
// addresses refused (names are not resolved at creation; TestAttackDialRefusesTrickyHosts checks the
// dial-time guard). Those naming a cloud metadata or credentials address, directly or inside an IPv6
// translation prefix, are refused even with private addresses allowed.
func TestAttackURLsAcceptedAtCreation(t *testing.T) {
	for _, u := range []string{
		"http://localhost../",
		"http://LOCALHOST./",
		"http://ｌｏｃａｌｈｏｓｔ/",
		"http://１２７.０.０.１/",
		"http://127.0.0.1.nip.io/",
		"http://[::ffff:127.0.0.1]/",
		"http://[::ffff:7f00:1]/",
		"http://[64:ff9b::a9fe:a9fe]/",
		"http://[2002:a9fe:a9fe::]/",
		"http://[fe80::1%25eth0]/",
		"http://0/",
		"http://0x7f000001/",
		"http://127.0.0.1:0/",
		"http://metadata.google.internal/",
		"http://169.254.170.2/v2/credentials",
		"http://100.100.100.200/latest/meta-data/",
		"http://[fd00:ec2::23]/",
		"http://169.254.170.23/",
		"http://192.0.2.1/",
		"http://%31%32%37.0.0.1/",
		"http://127.0.0.1%2e/",
		"http://example.com@127.0.0.1/",
		"http://127.0.0.1#@example.com/",
		"http://127.0.0.1\\@example.com/",
	} {
		errPriv := ValidateURL(u, false)
		errAllow := ValidateURL(u, true)
		t.Logf("%-45q private refused: %v | allowed: %v", u, errPriv, errAllow)
		for _, credentials := range []string{"169.254.170.2", "100.100.100.200", "fd00:ec2::23", "169.254.170.23", "a9fe:a9fe"} {
			if strings.Contains(u, credentials) && errAllow == nil {
				t.Errorf("%s is accepted with private addresses allowed", u)
			}
		}
	}
}

// TestAttackDialRefusesTrickyHosts: with private addresses refused, no trick reaches a loopback
// listener.
func TestAttackDialRefusesTrickyHosts(t *testing.T) {
	hit := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- r.Host }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	s := NewSender(SenderConfig{Timeout: 2 * time.Second})
	host, _ := os.Hostname()
	for _, h := range []string{"localhost..", "LOCALHOST.", "ｌｏｃａｌｈｏｓｔ", "１２７.０.０.１", "[::ffff:127.0.0.1]", "[::1]", "0", "0.0.0.0", "127.1", host, "localhost6"} {
		a := s.Send(context.Background(), "http://"+h+":"+port+"/", nil, []byte("{}"))
		t.Logf("%-22s -> status %d error %q", h, a.StatusCode, a.Error)
		if a.StatusCode != 0 || a.Success {
			t.Errorf("%s reached the loopback listener", h)
		}
	}
	select {
	case h := <-hit:
		t.Errorf("the loopback listener was reached (Host %s)", h)
	default:
	}
}

// TestAttackErrorsRevealTheLedgersNetwork: the delivery log (readable with the store's key) shows the
// address a name resolved to when it is refused, and the resolver's address on a failed lookup: a
// store learns the ledger's internal DNS answers (internal names' private addresses) and its resolver.
// Expected: a refusal that does not name the internal address (or at least is a conscious choice).
func TestAttackErrorsRevealTheLedgersNetwork(t *testing.T) {
	s := NewSender(SenderConfig{Timeout: 3 * time.Second})
	host, _ := os.Hostname()
	for _, u := range []string{"http://" + host + "/", "http://no-such-name.invalid/", "http://internal-db.corp.example/"} {
		a := s.Send(context.Background(), u, nil, []byte("{}"))
		t.Logf("%s -> %q", u, a.Error)
		for _, leak := range []string{"127.", "10.", "192.168.", "172."} {
			if strings.Contains(a.Error, leak) {
				t.Errorf("the delivery log's error for %s names an internal address: %q", u, a.Error)
				break
			}
		}
	}
}

// rawReceiver listens on loopback and hands each connection, its request read, to answer; connections
// are closed when the test ends.
func rawReceiver(t *testing.T, answer func(conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = http.ReadRequest(bufio.NewReader(conn))
				answer(conn)
				<-done // held open until the test ends
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/"
}

// TestAttackSwitchingProtocols: a receiver answering 101 and then holding the connection open does not
// hold the attempt: a 1xx is no final answer, and the attempt fails at once (were it read, Send would
// return only when the test ends).
func TestAttackSwitchingProtocols(t *testing.T) {
	url := rawReceiver(t, func(conn net.Conn) {
		conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	})
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	a := s.Send(context.Background(), url, nil, []byte("{}"))
	if a.Success || a.StatusCode != 101 || !strings.Contains(a.Error, "HTTP 101") {
		t.Errorf("101 answer: %+v", a)
	}
}

// TestAttackTrickleHeaders: a 200 whose headers trickle a byte every 100 ms (12 s for all of them) is cut
// at the 2 s timeout.
func TestAttackTrickleHeaders(t *testing.T) {
	url := rawReceiver(t, func(conn net.Conn) {
		for _, b := range []byte("HTTP/1.1 200 OK\r\nX-Slow: " + strings.Repeat("a", 100) + "\r\n\r\n") {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	s := NewSender(SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	a := s.Send(context.Background(), url, nil, []byte("{}"))
	if a.Success || !strings.Contains(a.Error, "timed out") {
		t.Errorf("trickled headers: %+v", a)
	}
}

var _ = netip.Addr{}
