package webhooksout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Defaults of SenderConfig.
const (
	// DefaultTimeout bounds one attempt from dialling to the end of the response body (DESIGN.md: 2xx
	// within 15 s is success; the spec recommends 15 to 30 s).
	DefaultTimeout = 15 * time.Second
	// SnippetBytes is how much of a response body an Attempt keeps for the delivery log.
	SnippetBytes = 4 << 10
	// drainBytes is how much more of a response body is read, and thrown away, so the connection can
	// be reused; a longer body closes the connection instead of being read to its end.
	drainBytes = 64 << 10
	// MaxErrorBytes bounds Attempt.Error.
	MaxErrorBytes = 512
)

// SenderConfig configures a Sender; its zero value is the production setting with version "dev".
type SenderConfig struct {
	// AllowPrivate lets webhooks go to loopback, private, link-local and the other refused ranges
	// (LEDGER_WEBHOOK_ALLOW_PRIVATE, for development and tests); metadata addresses stay refused.
	AllowPrivate bool
	// Timeout bounds one attempt, from dialling to the end of the body read; zero is DefaultTimeout.
	Timeout time.Duration
	// Version goes into the User-Agent, ledger-webhooks/<Version>; empty is "dev".
	Version string
}

// Sender sends webhook attempts. Its client checks every address it connects to with CheckAddr, after
// name resolution and on every connection (so a name that resolves to 127.0.0.1, now or after a DNS
// change, is refused), uses no proxy from the environment (the proxy's address is not the receiver's),
// follows no redirect, and bounds each attempt by the timeout. A Sender is safe for concurrent use; one
// attempt never waits for another (connections are per host, with no limit on their number).
type Sender struct {
	client    *http.Client
	userAgent string
}

// NewSender returns a Sender configured by cfg.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	dialer := &net.Dialer{
		Timeout:   cfg.Timeout,
		KeepAlive: 30 * time.Second,
		Control:   dialControl(cfg.AllowPrivate),
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Sender{
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		userAgent: "ledger-webhooks/" + cfg.Version,
	}
}

// dialControl refuses, before the connection is made, an address CheckAddr refuses. It runs on the
// resolved address of every connection attempt, each of a name's addresses in turn.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" {
			return fmt.Errorf("network %s is refused", network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("address %q: %v", address, err)
		}
		return CheckAddr(ap.Addr(), allowPrivate)
	}
}

// Attempt is the outcome of one delivery attempt, as the delivery log keeps it.
type Attempt struct {
	// At is when the attempt started.
	At time.Time
	// StatusCode is the receiver's HTTP status, 0 when none came (refused address, connection error,
	// timeout).
	StatusCode int
	// DurationMS is the attempt's wall time in milliseconds, until the body was read.
	DurationMS int64
	// Error says why the attempt failed, at most MaxErrorBytes bytes of valid UTF-8; empty on success.
	Error string
	// BodySnippet is the first SnippetBytes bytes of the response body, as valid UTF-8 (invalid bytes,
	// a character cut at the end included, become U+FFFD).
	BodySnippet string
	// Success is true for a 2xx status only (a 3xx is not followed and fails), received within the
	// timeout; the body after it does not change the outcome.
	Success bool
}

// Send posts body to endpointURL with headers (Sign's, plus Content-Type: application/json unless
// headers has one) and User-Agent ledger-webhooks/<version>, and returns the outcome. It never returns
// an error: everything that went wrong is in Attempt.Error. It returns once ctx is done or the
// timeout passes, whichever is first.
func (s *Sender) Send(ctx context.Context, endpointURL string, headers http.Header, body []byte) (a Attempt) {
	start := time.Now()
	a.At = start
	defer func() { a.DurationMS = time.Since(start).Milliseconds() }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpointURL, bytes.NewReader(body))
	if err != nil {
		a.Error = bound(err.Error())
		return a
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", s.userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		a.Error = bound(describeErr(err))
		return a
	}
	defer resp.Body.Close()
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 {
		// 101 Switching Protocols hands over the raw connection, which no timeout covers; any 1xx as a
		// final answer is not an acknowledgement. Closed unread.
		a.Error = fmt.Sprintf("HTTP %d: not a final answer", resp.StatusCode)
		return a
	}
	snippet, err := io.ReadAll(io.LimitReader(resp.Body, SnippetBytes))
	if err == nil {
		// What is left is read only up to a bound: a longer body closes the connection instead.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	}
	a.BodySnippet = strings.ToValidUTF8(string(snippet), "\uFFFD")
	// The status decides: a 2xx whose body then stalls or breaks has been acknowledged all the same.
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.Success = true
		return a
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.Error = fmt.Sprintf("HTTP %d: redirects are not followed (Location: %s)", resp.StatusCode, resp.Header.Get("Location"))
	default:
		a.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		a.Error += "; reading the response: " + describeErr(err)
	}
	a.Error = bound(a.Error)
	return a
}

// describeErr words a client error for the delivery log, which the store reads: what happened, without
// what the ledger's network looks like. A refused address is not named (a store could otherwise map the
// ledger's internal names to addresses), a failed lookup does not name the ledger's resolver, and a
// connection error does not name the ledger's own address.
func describeErr(err error) string {
	var ae *AddressError
	if errors.As(err, &ae) {
		return "the host's address is refused: " + ae.Range
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timed out: no complete answer within the timeout"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		switch {
		case dns.IsNotFound:
			return "lookup " + dns.Name + ": no such host"
		case dns.IsTimeout:
			return "lookup " + dns.Name + ": timed out"
		}
		// dns.Err may be the resolver exchange's socket error, which names the ledger's addresses.
		return "lookup " + dns.Name + ": temporary failure"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		msg := op.Op
		if op.Addr != nil {
			msg += " " + op.Addr.String()
		}
		inner := op.Err
		var sys *os.SyscallError
		if errors.As(inner, &sys) {
			inner = sys.Err
		}
		return msg + ": " + inner.Error()
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled: the ledger stopped during the attempt"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// bound cuts s to MaxErrorBytes bytes at a character boundary.
func bound(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxErrorBytes {
		return s
	}
	cut := MaxErrorBytes - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
