package deploy_test

// Docker is not available where these files are written, so this test is what checks them: the NATS
// configs through nats-server's own parser, compose.yaml and the Kubernetes manifests as YAML, and
// every LEDGER_* name they use against the configuration table of the repository's README.md.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

var natsNodes = []string{"nats-1", "nats-2", "nats-3"}

func TestNatsConfigs(t *testing.T) {
	for _, node := range natsNodes {
		t.Run(node, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join("nats", node+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			if opts.ServerName != node {
				t.Errorf("server_name %q, want %q", opts.ServerName, node)
			}
			if !opts.JetStream {
				t.Error("JetStream is not enabled")
			}
			if !opts.SyncAlways {
				t.Error("jetstream sync_interval is not always (SyncAlways false)")
			}
			if opts.StoreDir != "/data" {
				t.Errorf("store_dir %q, want /data (the compose volume)", opts.StoreDir)
			}
			if opts.Port != 4222 || opts.HTTPPort != 8222 {
				t.Errorf("client port %d and monitoring port %d, want 4222 and 8222", opts.Port, opts.HTTPPort)
			}
			if opts.Cluster.Name != "ledger" || opts.Cluster.Port != 6222 {
				t.Errorf("cluster %q on port %d, want ledger on 6222", opts.Cluster.Name, opts.Cluster.Port)
			}
			var routes []string
			for _, r := range opts.Routes {
				routes = append(routes, r.String())
			}
			var want []string
			for _, other := range natsNodes {
				if other != node {
					want = append(want, "nats://"+other+":6222")
				}
			}
			slices.Sort(routes)
			if !slices.Equal(routes, want) {
				t.Errorf("routes %v, want the two other nodes %v", routes, want)
			}
		})
	}
}

// compose is the part of the compose file this test checks.
type compose struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Build   struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Environment     map[string]string                     `yaml:"environment"`
		Volumes         []string                              `yaml:"volumes"`
		Ports           []string                              `yaml:"ports"`
		DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
		Healthcheck     *struct{ Test []string }              `yaml:"healthcheck"`
		StopGracePeriod string                                `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeFile(t *testing.T) {
	var c compose
	decode(t, "compose.yaml", &c)

	for _, node := range natsNodes {
		s, ok := c.Services[node]
		if !ok {
			t.Errorf("no service %s", node)
			continue
		}
		if !natsImageAtLeast212(s.Image) {
			t.Errorf("%s: image %q, want nats 2.12 or newer (the ledger appends atomic batches)", node, s.Image)
		}
		conf := "./nats/" + node + ".conf:/etc/nats/nats.conf:ro"
		if !slices.Contains(s.Volumes, conf) || !slices.Contains(s.Command, "/etc/nats/nats.conf") {
			t.Errorf("%s: does not run with its own config %s (volumes %v, command %v)", node, conf, s.Volumes, s.Command)
		}
		if !slices.Contains(s.Volumes, node+"-data:/data") {
			t.Errorf("%s: JetStream's /data is not on the named volume %s-data: %v", node, node, s.Volumes)
		}
		if _, ok := c.Volumes[node+"-data"]; !ok {
			t.Errorf("volume %s-data is not declared", node)
		}
		if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s: no healthcheck on the monitoring port's /healthz", node)
		}
	}

	l, ok := c.Services["ledger"]
	if !ok {
		t.Fatal("no service ledger")
	}
	if df := filepath.Join(l.Build.Context, l.Build.Dockerfile); filepath.Clean(df) != filepath.Join("..", "deploy", "Dockerfile") {
		t.Errorf("ledger is built from %s, want deploy/Dockerfile with the repository root as context", df)
	}
	var urls []string
	for _, u := range strings.Split(l.Environment["LEDGER_NATS_URL"], ",") {
		urls = append(urls, strings.TrimSpace(u))
	}
	if want := []string{"nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"}; !slices.Equal(urls, want) {
		t.Errorf("LEDGER_NATS_URL lists %v, want %v", urls, want)
	}
	if r := l.Environment["LEDGER_NATS_REPLICAS"]; r != "3" {
		t.Errorf("LEDGER_NATS_REPLICAS %q, want 3", r)
	}
	if _, ok := l.Environment["LEDGER_ADMIN_TOKEN"]; !ok {
		t.Error("LEDGER_ADMIN_TOKEN is not passed through")
	}
	for _, node := range natsNodes {
		if l.DependsOn[node].Condition != "service_healthy" {
			t.Errorf("ledger does not wait for %s to be healthy", node)
		}
	}
	if !slices.Contains(l.Ports, "8080:8080") {
		t.Errorf("port 8080 is not published: %v", l.Ports)
	}
	if !slices.Contains(l.Volumes, "ledger-data:/data") {
		t.Errorf("the ledger's /data is not on a named volume: %v", l.Volumes)
	}
	checkLedgerEnv(t, "compose.yaml", l.Environment)
	shutdown := durationOr(t, l.Environment["LEDGER_SHUTDOWN_TIMEOUT"], 15*time.Second)
	if grace, err := time.ParseDuration(l.StopGracePeriod); err != nil || grace <= shutdown {
		t.Errorf("stop_grace_period %q must exceed LEDGER_SHUTDOWN_TIMEOUT %s, or SIGKILL cuts the drain short", l.StopGracePeriod, shutdown)
	}
}

// natsImageAtLeast212 accepts nats:2.12-alpine, nats:2.13.1, ... and rejects latest or older tags.
func natsImageAtLeast212(image string) bool {
	tag, ok := strings.CutPrefix(image, "nats:")
	if !ok {
		return false
	}
	m := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(tag)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 2 || major == 2 && minor >= 12
}

// k8sObject is the part of a Kubernetes object this test checks.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Service
		ClusterIP string           `yaml:"clusterIP"`
		Selector  yaml.Node        `yaml:"selector"`
		Ports     []k8sServicePort `yaml:"ports"`
		// StatefulSet
		ServiceName string `yaml:"serviceName"`
		Replicas    int    `yaml:"replicas"`
		Template    struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func TestDeployKubernetes(t *testing.T) {
	objs := map[string]k8sObject{} // by kind/name
	f, err := os.Open(filepath.Join("k8s", "ledger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("k8s/ledger.yaml: %v", err)
		}
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	sts, ok := objs["StatefulSet/ledger"]
	if !ok {
		t.Fatalf("no StatefulSet ledger among %v", keys(objs))
	}
	if len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("StatefulSet has %d containers, want 1", len(sts.Spec.Template.Spec.Containers))
	}
	ctr := sts.Spec.Template.Spec.Containers[0]

	// The environment: a ConfigMap, plus the admin token from a Secret.
	if len(ctr.EnvFrom) != 1 {
		t.Fatalf("envFrom %v, want the one ConfigMap", ctr.EnvFrom)
	}
	cm, ok := objs["ConfigMap/"+ctr.EnvFrom[0].ConfigMapRef.Name]
	if !ok {
		t.Fatalf("the container's ConfigMap %q is not in the file", ctr.EnvFrom[0].ConfigMapRef.Name)
	}
	env := maps.Clone(cm.Data)
	var token bool
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
			continue
		}
		if e.Name == "LEDGER_ADMIN_TOKEN" && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "" {
			token = true
		}
		env[e.Name] = "(from a secret)"
	}
	if !token {
		t.Error("LEDGER_ADMIN_TOKEN does not come from a Secret")
	}
	if _, inCM := cm.Data["LEDGER_ADMIN_TOKEN"]; inCM {
		t.Error("the admin token is in the ConfigMap")
	}
	checkLedgerEnv(t, "k8s/ledger.yaml", env)
	if env["LEDGER_NATS_REPLICAS"] != "3" || len(strings.Split(env["LEDGER_NATS_URL"], ",")) != 3 {
		t.Errorf("LEDGER_NATS_URL %q and LEDGER_NATS_REPLICAS %q: want three servers and three replicas",
			env["LEDGER_NATS_URL"], env["LEDGER_NATS_REPLICAS"])
	}

	// The HTTP port: the address the ledger listens on, the container port, the probes and the Services agree.
	_, port, err := net.SplitHostPort(env["LEDGER_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("LEDGER_HTTP_ADDR: %v", err)
	}
	if len(ctr.Ports) != 1 || strconv.Itoa(ctr.Ports[0].ContainerPort) != port {
		t.Fatalf("container ports %v, want one on %s", ctr.Ports, port)
	}
	portName := ctr.Ports[0].Name
	if p := ctr.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != portName {
		t.Errorf("readiness probe %+v, want GET /readyz on %s", p, portName)
	}
	if p := ctr.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != portName {
		t.Errorf("liveness probe %+v, want GET /healthz on %s", p, portName)
	}
	var headless, api bool
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		var sel map[string]string
		if err := o.Spec.Selector.Decode(&sel); err != nil || !subset(sel, sts.Spec.Template.Metadata.Labels) || len(sel) == 0 {
			t.Errorf("Service %s selects %v, not the ledger pods %v", o.Metadata.Name, sel, sts.Spec.Template.Metadata.Labels)
		}
		for _, p := range o.Spec.Ports {
			if p.TargetPort != portName {
				t.Errorf("Service %s targets port %q, want %q", o.Metadata.Name, p.TargetPort, portName)
			}
		}
		if o.Spec.ClusterIP == "None" {
			headless = headless || o.Metadata.Name == sts.Spec.ServiceName
		} else {
			api = true
		}
	}
	if !headless || !api {
		t.Errorf("want a headless Service named by serviceName %q (found: %t) and a Service for the API (found: %t)", sts.Spec.ServiceName, headless, api)
	}

	// Every replica keeps its own read store on its own claim, mounted at the data dir.
	var claim string
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == env["LEDGER_DATA_DIR"] {
			claim = m.Name
		}
	}
	if claim == "" || len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Metadata.Name != claim {
		t.Errorf("LEDGER_DATA_DIR %q is not on a volumeClaimTemplate (mount %q)", env["LEDGER_DATA_DIR"], claim)
	}
	if ctr.Resources.Requests["cpu"] == "" || ctr.Resources.Requests["memory"] == "" {
		t.Errorf("resource requests %v, want cpu and memory", ctr.Resources.Requests)
	}
	shutdown := durationOr(t, env["LEDGER_SHUTDOWN_TIMEOUT"], 15*time.Second)
	if grace := time.Duration(sts.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %s must exceed LEDGER_SHUTDOWN_TIMEOUT %s", grace, shutdown)
	}

	// The NATS URLs name the pods of the Helm release the values file configures.
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
				Merge    struct{ Name string }
			}
			Jetstream struct {
				Enabled   bool
				FileStore struct {
					Enabled bool
					PVC     struct{ Enabled bool } `yaml:"pvc"`
				} `yaml:"fileStore"`
				Merge struct {
					SyncInterval string `yaml:"sync_interval"`
				}
			}
		}
	}
	decode(t, filepath.Join("k8s", "nats-values.yaml"), &values)
	cl, js := values.Config.Cluster, values.Config.Jetstream
	if !cl.Enabled || cl.Replicas != 3 || cl.Merge.Name != "ledger" {
		t.Errorf("nats-values.yaml cluster %+v, want enabled, 3 replicas, named ledger", cl)
	}
	if !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.Merge.SyncInterval != "always" {
		t.Errorf("nats-values.yaml jetstream %+v, want enabled, file store on a PVC, sync_interval always", js)
	}
	var want []string
	for i := range cl.Replicas {
		want = append(want, fmt.Sprintf("nats://nats-%d.nats-headless:4222", i))
	}
	if got := strings.Split(env["LEDGER_NATS_URL"], ","); !slices.Equal(got, want) {
		t.Errorf("LEDGER_NATS_URL %v, want the chart's pods %v", got, want)
	}
}

func TestDeployDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, want := range []string{
		"FROM golang:" + goVersion[1] + " AS build",
		"CGO_ENABLED=0 go build",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"COPY --from=build /out/ledger /ledger",
		`ENTRYPOINT ["/ledger"]`,
		`CMD ["serve"]`,
		`VOLUME ["/data"]`,
		"LEDGER_HTTP_ADDR=0.0.0.0:8080",
		"LEDGER_DATA_DIR=/data",
		"EXPOSE 8080 4222",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestDeployEnvNamesDocumented: every LEDGER_* name anywhere in the deployment files is a setting of the
// configuration table in README.md; a typo would otherwise be silently ignored by the ledger.
func TestDeployEnvNamesDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile(`(?m)^\|\s*(LEDGER_[A-Z_]+)\s*\|`)
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	if len(documented) < 5 {
		t.Fatalf("found only %v in README.md's configuration table", keys(documented))
	}
	name := regexp.MustCompile(`LEDGER_[A-Z_]*[A-Z]`)
	files := []string{"Dockerfile", "compose.yaml", "README.md"}
	more, _ := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	files = append(files, more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			for _, n := range name.FindAllString(string(line), -1) {
				if !documented[n] {
					t.Errorf("%s:%d: %s is not in README.md's configuration table", f, i+1, n)
				}
			}
		}
	}
}

// composeVar matches compose's ${NAME:-default}, ${NAME-default} and ${NAME}; composeDefault resolves them
// to what they give with NAME unset.
var composeVar = regexp.MustCompile(`\$\{[A-Z_][A-Z0-9_]*(?::?-([^}]*))?\}`)

func composeDefault(v string) string {
	return composeVar.ReplaceAllString(v, "$1")
}

// checkLedgerEnv checks the values the ledger would parse, as its config does. In a container the
// default public URL would be the listen address (http://0.0.0.0:8080), so it must be set.
func checkLedgerEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if _, ok := env["LEDGER_PUBLIC_URL"]; !ok {
		t.Errorf("%s: LEDGER_PUBLIC_URL is not set; download links would point at the listen address", where)
	}
	for k, v := range env {
		v = composeDefault(v)
		var err error
		switch k {
		case "LEDGER_HTTP_ADDR":
			_, _, err = net.SplitHostPort(v)
		case "LEDGER_PUBLIC_URL":
			if u, e := url.Parse(v); e != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				err = errors.New("want an absolute http(s) URL")
			}
		case "LEDGER_ADMIN_TOKEN":
			if v != "" && v != "(from a secret)" && len(v) < 24 {
				err = errors.New("shorter than 24 characters")
			}
		case "LEDGER_NATS_URL":
			for _, u := range strings.Split(v, ",") {
				if p, e := url.Parse(u); e != nil || p.Scheme != "nats" || p.Port() == "" {
					err = errors.Join(err, fmt.Errorf("%q is not nats://host:port", u))
				}
			}
		case "LEDGER_NATS_REPLICAS":
			var n int
			if n, err = strconv.Atoi(v); err == nil && (n < 1 || n > 5) {
				err = errors.New("want 1 to 5")
			}
		case "LEDGER_READY_MAX_LAG":
			_, err = strconv.ParseUint(v, 10, 64)
		case "LEDGER_SHUTDOWN_TIMEOUT", "LEDGER_DOWNLOAD_TTL":
			_, err = time.ParseDuration(v)
		case "LEDGER_SYNC_ALWAYS":
			_, err = strconv.ParseBool(v)
		case "LEDGER_LOG_LEVEL":
			if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(v)) {
				err = errors.New("want debug, info, warn or error")
			}
		}
		if err != nil {
			t.Errorf("%s: %s=%q: %v", where, k, v, err)
		}
	}
}

func durationOr(t *testing.T, s string, def time.Duration) time.Duration {
	t.Helper()
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func decode(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
