package webhooksout_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/salesledger/ledger/handlers/webhooksout"
)

// receiver is a real HTTP server on 127.0.0.1 that counts its requests and answers with h.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

var private = webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: true, Version: "1.2.3"})

func TestSendSignedDelivery(t *testing.T) {
	secret := webhooksout.NewSecret()
	wh := verifier(t, secret)
	type seen struct {
		verifyErr              error
		userAgent, contentType string
		method                 string
	}
	got := make(chan seen, 1)
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{wh.Verify(body, r.Header), r.UserAgent(), r.Header.Get("Content-Type"), r.Method}
		w.WriteHeader(http.StatusNoContent)
	})
	body := []byte(`{"id":"evt_1","type":"sale.completed"}`)
	a := private.Send(context.Background(), srv.URL+"/hook", webhooksout.Sign("evt_1", time.Now(), body, mustKey(t, secret)), body)
	if !a.Success || a.StatusCode != http.StatusNoContent || a.Error != "" {
		t.Fatalf("attempt = %+v, want a 204 success", a)
	}
	if a.At.IsZero() || a.DurationMS < 0 || a.DurationMS > 5000 {
		t.Errorf("At %v, DurationMS %d", a.At, a.DurationMS)
	}
	s := <-got
	if s.verifyErr != nil {
		t.Errorf("the receiver's official library refuses the delivery: %v", s.verifyErr)
	}
	if s.userAgent != "ledger-webhooks/1.2.3" || s.contentType != "application/json" || s.method != http.MethodPost {
		t.Errorf("receiver saw %s with User-Agent %q, Content-Type %q", s.method, s.userAgent, s.contentType)
	}
}

func TestSendStatuses(t *testing.T) {
	for _, tt := range []struct {
		status  int
		success bool
	}{
		{200, true}, {201, true}, {202, true}, {299, true},
		{300, false}, {304, false}, {400, false}, {404, false}, {410, false}, {429, false}, {500, false}, {503, false},
	} {
		srv, _ := receiver(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tt.status)
			io.WriteString(w, "answer")
		})
		a := private.Send(context.Background(), srv.URL, nil, []byte("{}"))
		if a.StatusCode != tt.status || a.Success != tt.success || (a.Error == "") != tt.success {
			t.Errorf("status %d: attempt %+v, want success %v", tt.status, a, tt.success)
		}
		if tt.status != 304 && a.BodySnippet != "answer" {
			t.Errorf("status %d: snippet %q", tt.status, a.BodySnippet)
		}
	}
}

func TestSendRefusesLoopbackUnlessAllowed(t *testing.T) {
	srv, n := receiver(t, func(http.ResponseWriter, *http.Request) {})
	strict := webhooksout.NewSender(webhooksout.SenderConfig{})
	a := strict.Send(context.Background(), srv.URL, nil, []byte("{}"))
	if a.Success || a.StatusCode != 0 || strings.Contains(a.Error, "127.0.0.1") || !strings.Contains(a.Error, "loopback") {
		t.Errorf("attempt to %s = %+v, want refused as loopback", srv.URL, a)
	}
	if n.Load() != 0 {
		t.Fatalf("the receiver got %d requests: the address was connected to", n.Load())
	}
	if a := private.Send(context.Background(), srv.URL, nil, []byte("{}")); !a.Success {
		t.Errorf("with private addresses allowed: %+v", a)
	}
}

// A name is checked on what it resolves to, when connecting: localhost resolves to 127.0.0.1 (or ::1),
// as a rebinding name would after passing a check at creation.
func TestSendRefusesNameResolvingToLoopback(t *testing.T) {
	srv, n := receiver(t, func(http.ResponseWriter, *http.Request) {})
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	a := webhooksout.NewSender(webhooksout.SenderConfig{}).Send(context.Background(), byName, nil, []byte("{}"))
	if a.Success || a.StatusCode != 0 || !strings.Contains(a.Error, "loopback") {
		t.Errorf("attempt to %s = %+v, want refused as loopback", byName, a)
	}
	if n.Load() != 0 {
		t.Fatalf("the receiver got %d requests", n.Load())
	}
	// The name does resolve and connect: the refusal above is the address check, not a lookup failure.
	if a := private.Send(context.Background(), byName, nil, []byte("{}")); !a.Success {
		t.Errorf("%s with private addresses allowed: %+v", byName, a)
	}
}

func TestSendRefusesMetadataEvenWhenPrivateAllowed(t *testing.T) {
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"} {
		a := private.Send(context.Background(), u, nil, nil)
		if a.Success || !strings.Contains(a.Error, "metadata") {
			t.Errorf("%s: %+v, want refused as metadata", u, a)
		}
		if a.DurationMS > 1000 {
			t.Errorf("%s: took %d ms; the refusal is before connecting", u, a.DurationMS)
		}
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	target, hits := receiver(t, func(http.ResponseWriter, *http.Request) {})
	for _, code := range []int{301, 302, 303, 307, 308} {
		srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", code)
		})
		a := private.Send(context.Background(), srv.URL, nil, []byte("{}"))
		if a.Success || a.StatusCode != code || !strings.Contains(a.Error, "redirect") || !strings.Contains(a.Error, "/elsewhere") {
			t.Errorf("%d: attempt %+v, want a failure naming the redirect", code, a)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the redirect target got %d requests", hits.Load())
	}
}

// A receiver that never stops sending: the attempt keeps SnippetBytes of it and returns at once,
// without reading to the end (which would also have run into the timeout).
func TestSendBoundsResponseBody(t *testing.T) {
	done := make(chan int64, 1)
	srv, _ := receiver(t, func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		var written int64
		for {
			n, err := w.Write(chunk)
			written += int64(n)
			if err != nil || written > 1<<30 {
				done <- written
				return
			}
		}
	})
	s := webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: true, Timeout: 10 * time.Second})
	a := s.Send(context.Background(), srv.URL, nil, []byte("{}"))
	if !a.Success || a.Error != "" || len(a.BodySnippet) != webhooksout.SnippetBytes {
		t.Fatalf("attempt: success %v, error %q, snippet of %d bytes", a.Success, a.Error, len(a.BodySnippet))
	}
	if a.DurationMS > 5000 {
		t.Errorf("took %d ms", a.DurationMS)
	}
	select {
	case written := <-done:
		if written > 1<<30 {
			t.Errorf("the receiver wrote %d bytes without its connection being closed", written)
		}
	case <-time.After(5 * time.Second):
		t.Error("the receiver is still writing 5 s after the attempt: its connection was not closed")
	}
}

func TestSendSnippetIsValidUTF8(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("a", webhooksout.SnippetBytes-1)+"é\xff")
	})
	a := private.Send(context.Background(), srv.URL, nil, nil)
	if !utf8.ValidString(a.BodySnippet) || !strings.HasSuffix(a.BodySnippet, "\uFFFD") {
		t.Errorf("snippet ends %q", a.BodySnippet[len(a.BodySnippet)-8:])
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	s := webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: true, Timeout: 300 * time.Millisecond})

	srv, _ := receiver(t, hang)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	a := s.Send(context.Background(), srv.URL, nil, []byte("{}"))
	if a.Success || a.StatusCode != 0 || !strings.Contains(a.Error, "timed out") {
		t.Errorf("hanging receiver: %+v, want a timeout", a)
	}
	if a.DurationMS < 300 || a.DurationMS > 3000 {
		t.Errorf("hanging receiver: %d ms, want about the 300 ms timeout", a.DurationMS)
	}

	// A context ending first ends the attempt too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	a = webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: true}).Send(ctx, srv.URL, nil, nil)
	if a.Success || a.DurationMS > 3000 || a.Error == "" {
		t.Errorf("cancelled context: %+v", a)
	}
}

// A 2xx is an acknowledgement: a body that then stalls past the timeout does not undo it.
func TestSendSuccessWithStallingBody(t *testing.T) {
	release := make(chan struct{})
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	s := webhooksout.NewSender(webhooksout.SenderConfig{AllowPrivate: true, Timeout: 300 * time.Millisecond})
	a := s.Send(context.Background(), srv.URL, nil, nil)
	if !a.Success || a.StatusCode != 200 || a.BodySnippet != "ok" {
		t.Errorf("attempt %+v, want a 200 success with snippet ok", a)
	}
}

func TestSendBoundsError(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/"+strings.Repeat("é", 10000))
		w.WriteHeader(http.StatusFound)
	})
	a := private.Send(context.Background(), srv.URL, nil, nil)
	if len(a.Error) > webhooksout.MaxErrorBytes || !utf8.ValidString(a.Error) || !strings.HasPrefix(a.Error, "HTTP 302") {
		t.Errorf("error of %d bytes, valid UTF-8 %v: %.40q", len(a.Error), utf8.ValidString(a.Error), a.Error)
	}
	for _, bad := range []string{"://nowhere", "ftp://example.com/", ""} {
		if a := private.Send(context.Background(), bad, nil, nil); a.Success || a.Error == "" {
			t.Errorf("Send(%q) = %+v", bad, a)
		}
	}
}
