package handlers

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countingListener counts the connections open below the limit: one is counted from Accept until its
// own Close, which the limit's wrapper calls before it frees the slot. So peak is exact.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// TestConnLimitCapsOpenConnections: with a cap of 3, three connections that stall in their headers hold
// every slot; six more clients wait, none is accepted beyond the cap, and each is served once the
// read-header timeout frees a slot. Nothing here depends on how fast the machine is: the stalled
// connections' timeout is what lets the others in, whenever it fires.
func TestConnLimitCapsOpenConnections(t *testing.T) {
	const capacity = 3
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: base}
	limit := NewConnLimit(capacity, prometheus.NewRegistry())
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 200 * time.Millisecond,
		ConnState:         limit.ConnState,
	}
	go func() { _ = srv.Serve(limit.Listener(counted)) }()
	defer srv.Close()
	addr := base.Addr().String()

	for range capacity {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil { // no end of headers
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := client.Get("http://" + addr + "/")
			if err != nil {
				errs <- err
				return
			}
			res.Body.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a client waiting for a slot was not served: %v", err)
	}
	if p := counted.peak.Load(); p > capacity {
		t.Fatalf("%d connections were open at once, cap %d", p, capacity)
	}
}

// TestConnLimitClosesIdleAtCap: keep-alive connections idle at the cap are closed, so they free their
// slots without waiting for the idle timeout (an hour here). Which one is closed depends on when each
// went idle (the server marks it idle a moment after the answer is sent); that one is, does not.
func TestConnLimitClosesIdleAtCap(t *testing.T) {
	const capacity = 3
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := NewConnLimit(capacity, prometheus.NewRegistry())
	srv := &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }),
		IdleTimeout: time.Hour,
		ConnState:   limit.ConnState,
	}
	go func() { _ = srv.Serve(limit.Listener(ln)) }()
	defer srv.Close()

	var idle []net.Conn
	for range capacity {
		c := keepAlive(t, ln.Addr().String())
		defer c.Close()
		idle = append(idle, c)
	}
	if !anyClosed(idle, 20*time.Second) {
		t.Fatal("every idle connection is still open at the cap")
	}
}

// anyClosed reports whether the peer closes one of conns within guard (a hang guard: a closed one
// reports at once). It reads from them, so use it on connections that expect nothing more.
func anyClosed(conns []net.Conn, guard time.Duration) bool {
	closed := make(chan bool, len(conns))
	for _, c := range conns {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(guard))
			_, err := c.Read(make([]byte, 1))
			closed <- err == io.EOF
		}()
	}
	for range conns {
		if <-closed {
			return true
		}
	}
	return false
}

// keepAlive opens a connection, makes one request on it and leaves it open and idle.
func keepAlive(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_ = c.SetReadDeadline(time.Time{})
	return c
}
