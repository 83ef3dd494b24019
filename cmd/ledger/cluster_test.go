package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/events/jetstream"
)

// TestThreeNodeCluster runs the ledger against a real three-node JetStream cluster (what deploy/compose.yaml
// and the NATS Helm chart set up): the LEDGER stream gets three replicas, and when the stream's leader
// goes away the ledger keeps accepting writes and serving reads once the two others elected a new one.
//
// On failure the test prints the ledger's and the servers' logs; CLUSTER_TEST_LOGS=1 prints them always.
func TestThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster")
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("ledger and nats-server logs:\n%s", logs.String())
		}
	})
	servers := startJetStreamCluster(t, 3, logs)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	m := startMainLogged(t, t.TempDir(), logs, func(c *Config) {
		c.NATSURL = strings.Join(urls, ",")
		c.NATSReplicas = 3
	})
	if m.ns != nil {
		t.Fatal("an embedded server started although LEDGER_NATS_URL was set")
	}

	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger is ready once the stream exists; its raft group may still be electing a leader.
	waitForStream(t, js, jetstream.StreamName, 10*time.Second, "a leader", func(si *natsjs.StreamInfo) bool {
		return si.Cluster != nil && si.Cluster.Leader != ""
	})

	c := client{t, "http://" + m.HTTPAddr}
	id, live, _ := createStore(t, c, "clustered")
	waitForStore(t, c, live, id, 15*time.Second)

	info := waitForStream(t, js, jetstream.StreamName, 10*time.Second, "3 replicas, all current", func(si *natsjs.StreamInfo) bool {
		if si.Config.Replicas != 3 || si.Cluster == nil || si.Cluster.Leader == "" || len(si.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range si.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})

	// The download links' signing key, the email-claim key, the customer-cursor key and the payment
	// processor's and webhook dispatcher's consumer names are shared by all ledger replicas through a
	// bucket as replicated as the log; so are the data subjects' keys.
	waitForStream(t, js, "KV_ledger_secrets", 10*time.Second, "3 replicas", func(si *natsjs.StreamInfo) bool {
		return si.Config.Replicas == 3 && si.State.Msgs == 5
	})
	waitForStream(t, js, "KV_ledger_keys", 10*time.Second, "3 replicas", func(si *natsjs.StreamInfo) bool {
		return si.Config.Replicas == 3
	})

	// Take the stream's leader away: the two others hold a quorum and elect a new one.
	leader := info.Cluster.Leader
	var stopped bool
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("stream leader %q is none of the cluster's servers", leader)
	}
	start := time.Now()
	// A create that fails during the failover may still have been stored (its acknowledgement lost), so
	// every attempt uses a fresh slug: a retry is then never refused as taken.
	var id2, live2 string
	deadline := start.Add(25 * time.Second)
	for attempt := 1; ; attempt++ {
		r := c.do("POST", "/v1/admin/stores", "Bearer "+adminToken,
			strings.NewReader(fmt.Sprintf(`{"name":"After failover","slug":"after-failover-%d"}`, attempt)))
		if r.status == http.StatusCreated {
			d := r.body["data"].(map[string]any)
			id2 = d["store"].(map[string]any)["id"].(string)
			live2 = d["keys"].(map[string]any)["live"].(string)
			break
		}
		if r.status < 500 || time.Now().After(deadline) {
			t.Fatalf("creating a store %s after stopping the stream leader %s: %d %s",
				time.Since(start).Round(time.Millisecond), leader, r.status, r.raw)
		}
		t.Logf("attempt %d after %s: %d %s", attempt, time.Since(start).Round(time.Millisecond), r.status, r.raw)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("write accepted %s after stopping the stream leader %s", time.Since(start).Round(time.Millisecond), leader)
	waitForStore(t, c, live2, id2, 20*time.Second)
	waitForStore(t, c, live, id, 5*time.Second) // and the first store is still there
	t.Logf("read back %s after stopping the stream leader", time.Since(start).Round(time.Millisecond))

	info = waitForStream(t, js, jetstream.StreamName, 10*time.Second, "a new leader", func(si *natsjs.StreamInfo) bool {
		return si.Cluster != nil && si.Cluster.Leader != "" && si.Cluster.Leader != leader
	})
	if info.Config.Replicas != 3 {
		t.Errorf("after the failover the LEDGER stream has %d replicas configured, want 3", info.Config.Replicas)
	}
}

// startMainLogged is startMain with the ledger's log kept in logs, to be shown when the test fails.
func startMainLogged(t *testing.T, dir string, logs io.Writer, tweak func(*Config)) *Main {
	t.Helper()
	cfg, err := loadConfig("serve", nil, func(k string) string {
		return map[string]string{
			"LEDGER_DATA_DIR":    dir,
			"LEDGER_HTTP_ADDR":   "127.0.0.1:0",
			"LEDGER_NATS_LISTEN": "off",
			"LEDGER_ADMIN_TOKEN": adminToken,
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tweak(&cfg)
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// startJetStreamCluster starts n in-process nats-servers with JetStream, clustered as "ledger" with
// routes to one another. It returns once the JetStream meta group has a leader that sees all n peers
// and the route mesh has settled.
func startJetStreamCluster(t *testing.T, n int, logs io.Writer) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freeLocalPort(t)
	}
	var lastRouteEvent atomic.Int64
	servers := make([]*server.Server, n)
	for i := range servers {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
			}
		}
		opts := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "ledger", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:      true,
			NoSigs:     true,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.SetLoggerV2(&serverLog{w: logs, name: opts.ServerName, lastRouteEvent: &lastRouteEvent}, false, false, false)
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready for connections", s.Name())
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// A server that dialled a peer before the peer listened retries every second, and the extra route
		// it then opens is closed as a duplicate; traffic sent over it meanwhile is lost. Wait until the
		// routes have been quiet for longer than that retry interval.
		settled := time.Since(time.Unix(0, lastRouteEvent.Load())) > 1200*time.Millisecond
		for _, s := range servers {
			if settled && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n {
				return servers
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 20s the cluster did not settle with a JetStream meta leader seeing %d peers", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeLocalPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLocalPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitForStream polls a stream's info until ok accepts it. A request can be lost while the cluster
// changes, so each attempt has its own short timeout.
func waitForStream(t *testing.T, js natsjs.JetStream, name string, within time.Duration, want string, ok func(*natsjs.StreamInfo) bool) *natsjs.StreamInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var info *natsjs.StreamInfo
		st, err := js.Stream(ctx, name)
		if err == nil {
			info, err = st.Info(ctx)
		}
		cancel()
		if err == nil && ok(info) {
			return info
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("stream %s info: %v", name, err)
			}
			t.Fatalf("within %s stream %s did not get %s: config replicas %d, cluster %+v", within, name, want, info.Config.Replicas, info.Cluster)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForStore polls GET /v1/store with a store key until the projection serves the store.
func waitForStore(t *testing.T, c client, key, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := c.do("GET", "/v1/store", "Bearer "+key, nil)
		if r.status == http.StatusOK {
			if got := r.body["data"].(map[string]any)["id"]; got != id {
				t.Fatalf("GET /v1/store: store %v, want %s", got, id)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/store: still %d %s after %s", r.status, r.raw, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverLog writes a nats-server's notices, warnings and errors to w, and notes when routes last changed.
type serverLog struct {
	w              io.Writer
	name           string
	lastRouteEvent *atomic.Int64
}

func (l *serverLog) logf(level, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(strings.ToLower(msg), "route") {
		l.lastRouteEvent.Store(time.Now().UnixNano())
	}
	fmt.Fprintf(l.w, "%s %s [%s] %s\n", time.Now().Format("15:04:05.000"), l.name, level, msg)
}

func (l *serverLog) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  {}
func (l *serverLog) Tracef(format string, v ...any)  {}
