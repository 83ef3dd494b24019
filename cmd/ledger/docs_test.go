package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docBlock is one ```sh block of a markdown file.
type docBlock struct {
	file string
	line int
	code string
}

// skipMarker, on the line before a block, keeps the docs test from running it (it needs a tool the test
// does not have, such as the nats CLI).
const skipMarker = "<!-- docs test: not run"

// shBlocks returns the ```sh blocks of a markdown file in order; with section set, only those under
// that "## " heading.
func shBlocks(t *testing.T, path, section string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	var cur *docBlock
	in := section == ""
	prev := ""
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		case section != "" && strings.HasPrefix(line, "## "):
			in = line == "## "+section
		case in && line == "```sh" && !strings.HasPrefix(prev, skipMarker):
			cur = &docBlock{file: filepath.Base(path), line: i + 1}
		}
		prev = line
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no sh blocks (section %q)", path, section)
	}
	return blocks
}

// startLine is the README's start command: its exports configure the ledger the test starts itself.
var (
	startLine = regexp.MustCompile(`(?m)^\./ledger &`)
	exportRE  = regexp.MustCompile(`(?m)^export (LEDGER_[A-Z_]+)=(\S+)$`)
	httpRE    = regexp.MustCompile(`^HTTP (\d{3}) (\S+) (\S+)$`)
)

// runDocBlocks runs the blocks in order in one bash, against the ledger at addr (for localhost:8080),
// with env added, in a scratch directory holding avatar.png and avatar.jpg. Every request must be
// answered 2xx or 3xx and every block must succeed.
func runDocBlocks(t *testing.T, blocks []docBlock, addr string, env map[string]string) {
	t.Helper()
	var script strings.Builder
	// Every curl reports its status on stderr, after the block's marker.
	script.WriteString("set -euo pipefail\ncurl() { command curl -w '%{stderr}HTTP %{http_code} %{method} %{url}\\n' \"$@\"; }\n")
	for i, b := range blocks {
		code := strings.ReplaceAll(b.code, "localhost:8080", addr)
		if startLine.MatchString(code) {
			// The test started the ledger; keep only the exports.
			code = strings.Join(exportRE.FindAllString(code, -1), "\n") + "\n"
		}
		fmt.Fprintf(&script, "echo '::block %d' >&2; echo '::block %d'\n%s", i, i, code)
	}
	script.WriteString("echo '::done' >&2\n")

	dir := t.TempDir()
	writeImages(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	outs := splitBlocks(stdout.String())
	block, requests := -1, map[int]int{}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if n, ok := strings.CutPrefix(line, "::block "); ok {
			block, _ = strconv.Atoi(n)
			continue
		}
		m := httpRE.FindStringSubmatch(line)
		if m == nil || block < 0 {
			continue
		}
		requests[block]++
		if status, _ := strconv.Atoi(m[1]); status < 200 || status >= 400 {
			b := blocks[block]
			t.Errorf("%s:%d: %s %s answered %s:\n%s\noutput:\n%s", b.file, b.line, m[2], m[3], m[1], b.code, outs[block])
		}
	}
	if runErr != nil || !strings.Contains(stderr.String(), "::done") {
		b := blocks[max(block, 0)]
		t.Fatalf("%s:%d: the block failed (%v):\n%s\nstderr:\n%s\nstdout:\n%s", b.file, b.line, runErr, b.code,
			lastLines(stderr.String(), 20), outs[max(block, 0)])
	}
	for i, b := range blocks {
		t.Logf("%s:%d: %d requests", b.file, b.line, requests[i])
		if strings.Contains(b.code, "curl ") && requests[i] == 0 && !startLine.MatchString(b.code) {
			t.Errorf("%s:%d: the block made no request (host not substituted?):\n%s", b.file, b.line, b.code)
		}
	}
}

func splitBlocks(out string) map[int]string {
	m := map[int]string{}
	block := -1
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "::block "); ok {
			block, _ = strconv.Atoi(n)
			continue
		}
		m[block] += line + "\n"
	}
	return m
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeImages puts the photos the examples upload in dir.
func writeImages(t *testing.T, dir string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		img.Set(x, x, color.RGBA{200, 40, 40, 255})
	}
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, img, nil); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"avatar.png": pngBuf.Bytes(), "avatar.jpg": jpgBuf.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// The README's quick start and docs/api.md's examples, run as written, in order, against a real ledger:
// the docs cannot drift from what the ledger does.
func TestDocsExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "openssl", "xxd", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; the documented examples need it", tool)
		}
	}
	t.Run("README quick start", func(t *testing.T) {
		blocks := shBlocks(t, "../../README.md", "Quick start")
		settings := map[string]string{}
		for _, b := range blocks {
			if startLine.MatchString(b.code) {
				for _, m := range exportRE.FindAllStringSubmatch(b.code, -1) {
					settings[m[1]] = m[2]
				}
			}
		}
		if settings["LEDGER_ADMIN_TOKEN"] == "" || settings["LEDGER_GATEWAY_SECRETS"] == "" {
			t.Fatalf("the quick start's start block sets %v; want the admin token and a gateway secret", settings)
		}
		m := startMain(t, t.TempDir(), func(c *Config) {
			c.AdminToken = settings["LEDGER_ADMIN_TOKEN"]
			c.gatewaySecretsRaw = settings["LEDGER_GATEWAY_SECRETS"]
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
		runDocBlocks(t, blocks, m.HTTPAddr, nil)
	})
	t.Run("docs/api.md", func(t *testing.T) {
		// api.md says, at the top, which admin token variable and gateway secret its examples use.
		doc, err := os.ReadFile("../../docs/api.md")
		if err != nil {
			t.Fatal(err)
		}
		secret := regexp.MustCompile("`LEDGER_GATEWAY_SECRETS=(standard=whsec_[A-Za-z0-9+/=]+)`").FindSubmatch(doc)
		if secret == nil {
			t.Fatal("docs/api.md does not say which gateway secret its examples are signed with")
		}
		m := startMain(t, t.TempDir(), func(c *Config) {
			c.gatewaySecretsRaw = string(secret[1])
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
		runDocBlocks(t, shBlocks(t, "../../docs/api.md", ""), m.HTTPAddr, map[string]string{"ADMIN_TOKEN": adminToken})
	})
}
