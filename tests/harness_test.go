// Package tests runs tokengate end to end: a real Caddy built by xcaddy (bin/caddy), real HTTP, and
// real OAuth 2.0 / OpenID Connect client libraries. Every test sees the product only as a user does,
// through its Caddyfile and its endpoints.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/freeport"
)

const (
	// startTimeout bounds how long a Caddy may take to serve after it was started.
	startTimeout = 20 * time.Second
	// stopTimeout is how long a Caddy may take to stop after SIGTERM before it is killed.
	stopTimeout = 10 * time.Second
)

// caddyBin is the Caddy under test: $CADDY_BIN, or bin/caddy built by TestMain.
var caddyBin string

// TestMain builds bin/caddy from the repository root (the build is skipped when nothing changed),
// unless CADDY_BIN names a binary already built, as `make -f xcaddy.mk test` does.
func TestMain(m *testing.M) {
	caddyBin = os.Getenv("CADDY_BIN")
	if caddyBin == "" {
		root, err := filepath.Abs("..")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		build := exec.Command("make", "-f", "xcaddy.mk", "build")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building Caddy with tokengate: %v\n", err)
			os.Exit(2)
		}
		caddyBin = filepath.Join(root, "bin", "caddy")
	}
	os.Exit(m.Run())
}

// Caddy is one Caddy process started by startCaddy. Its Caddyfile may use these placeholders, which
// keep their values across Restart and Reload:
//
//	{{PORT}}, {{PORT2}}  two free loopback ports
//	{{BASE}}, {{BASE2}}  http://127.0.0.1:{{PORT}}, http://127.0.0.1:{{PORT2}}
//	{{DATA}}             a directory of this instance's own, e.g. for `store bolt {{DATA}}/tokengate.db`
//
// The harness adds the global options `admin 127.0.0.1:<free port>`, `auto_https off`,
// `default_bind 127.0.0.1` and `grace_period 1s`, and points HOME and the XDG directories at the
// instance's directory, so Caddy's own data (and a default bolt store) is private to the test.
type Caddy struct {
	// Base is {{BASE}}: the URL of the first site, without a trailing slash.
	Base string
	// Admin is the address of Caddy's admin endpoint, as `caddy reload --address` takes it.
	Admin string

	bin     string            // the Caddy binary it runs
	env     []string          // added to its environment
	dir     string            // HOME and XDG directories; {{DATA}} is dir/data
	vars    *strings.Replacer // the placeholders above
	config  string            // path of the Caddyfile last started or reloaded
	log     *syncBuffer       // stdout and stderr of every process this Caddy ran
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	exitErr error         // cmd's exit status, once exited is closed
}

// startCaddy writes caddyfile (placeholders filled) into a new temporary directory, runs Caddy on it
// and waits until it serves. The process is stopped when the test ends; its output is printed if the
// test failed.
func startCaddy(t *testing.T, caddyfile string) *Caddy {
	t.Helper()
	return startCaddyBinary(t, caddyBin, caddyfile)
}

// startCaddyBinary is startCaddy with another Caddy binary (one built with more modules), and env
// ("NAME=value") added to the process's environment.
func startCaddyBinary(t *testing.T, bin, caddyfile string, env ...string) *Caddy {
	t.Helper()
	dir := t.TempDir()
	port, port2 := freePort(t), freePort(t)
	c := &Caddy{
		Base:  "http://127.0.0.1:" + port,
		Admin: "127.0.0.1:" + freePort(t),
		bin:   bin,
		dir:   dir,
		env:   env,
		vars: strings.NewReplacer(
			"{{PORT}}", port,
			"{{PORT2}}", port2,
			"{{BASE}}", "http://127.0.0.1:"+port,
			"{{BASE2}}", "http://127.0.0.1:"+port2,
			"{{DATA}}", filepath.Join(dir, "data"),
		),
		log: &syncBuffer{},
	}
	for _, sub := range []string{"data", "xdg-data", "xdg-config"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("Caddy output (%s):\n%s", c.Base, c.log.String())
		}
	})
	c.writeConfig(t, caddyfile)
	c.start(t)
	return c
}

// URL returns the address of path on the first site.
func (c *Caddy) URL(path string) string {
	return c.Base + path
}

// Restart stops Caddy and starts it again on the same Caddyfile, ports and data directory: what
// survives is what tokengate persisted.
func (c *Caddy) Restart(t *testing.T) {
	t.Helper()
	c.stop(t)
	c.log.WriteString("\n----- restart -----\n")
	c.start(t)
}

// Kill ends Caddy with SIGKILL, as a crash or a power cut would: nothing is flushed, closed or
// answered. Restart then starts it again on what it had persisted.
func (c *Caddy) Kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing Caddy: %v", err)
	}
	<-c.exited
	c.log.WriteString("\n----- killed -----\n")
}

// Reload replaces the running configuration with caddyfile (placeholders filled, the same ports)
// through `caddy reload`, as an operator would. It fails the test when Caddy refuses the new config.
func (c *Caddy) Reload(t *testing.T, caddyfile string) {
	t.Helper()
	c.writeConfig(t, caddyfile)
	out, err := c.command("reload", "--address", c.Admin, "--config", c.config, "--adapter", "caddyfile").CombinedOutput()
	c.log.WriteString("\n----- reload -----\n")
	c.log.Write(out)
	if err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	c.waitServing(t)
}

// writeConfig fills the placeholders of caddyfile, adds the harness's global options and writes the
// result to a new file, which later starts and reloads use.
func (c *Caddy) writeConfig(t *testing.T, caddyfile string) {
	t.Helper()
	globals := fmt.Sprintf("\n\tadmin %s\n\tauto_https off\n\tdefault_bind 127.0.0.1\n\tgrace_period 1s\n", c.Admin)
	filled := withGlobals(c.vars.Replace(caddyfile), globals)
	files, _ := filepath.Glob(filepath.Join(c.dir, "Caddyfile*"))
	c.config = filepath.Join(c.dir, "Caddyfile"+strconv.Itoa(len(files)))
	if err := os.WriteFile(c.config, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withGlobals adds globals to the global options block of caddyfile (after any leading comments),
// or gives caddyfile a global block holding them.
func withGlobals(caddyfile, globals string) string {
	rest := caddyfile
	for {
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		if strings.HasPrefix(trimmed, "#") {
			_, rest, _ = strings.Cut(trimmed, "\n")
			continue
		}
		if body, ok := strings.CutPrefix(trimmed, "{"); ok {
			return caddyfile[:len(caddyfile)-len(trimmed)] + "{" + globals + body
		}
		return "{" + globals + "}\n" + caddyfile
	}
}

// command prepares a bin/caddy invocation in this instance's private environment.
func (c *Caddy) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(),
		"HOME="+c.dir,
		"XDG_DATA_HOME="+filepath.Join(c.dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(c.dir, "xdg-config"),
	)
	cmd.Env = append(cmd.Env, c.env...)
	return cmd
}

// start runs `caddy run` on the current Caddyfile and waits until it serves.
func (c *Caddy) start(t *testing.T) {
	t.Helper()
	cmd := c.command("run", "--adapter", "caddyfile", "--config", c.config)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", caddyBin, err)
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func() {
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	c.waitServing(t)
}

// waitServing waits until the admin endpoint answers (Caddy answers it only once the config is
// running) and every address the HTTP servers listen on accepts connections. It fails at once when
// Caddy exits instead (the cleanup prints Caddy's output).
func (c *Caddy) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !c.serving() {
		select {
		case <-c.exited:
			t.Fatalf("Caddy exited before serving: %v", c.exitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy did not serve within %v", startTimeout)
		}
	}
}

// serving reports whether the admin endpoint answers and every listener of the running config
// accepts connections.
func (c *Caddy) serving() bool {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + c.Admin + "/config/apps/http/servers")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var servers map[string]struct {
		Listen []string `json:"listen"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&servers) != nil {
		return false
	}
	for _, server := range servers {
		for _, listen := range server.Listen {
			// A listener is [network/]host:port; with default_bind 127.0.0.1 the host is loopback.
			_, port, err := net.SplitHostPort(listen[strings.Index(listen, "/")+1:])
			if err != nil {
				return false
			}
			conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
			if err != nil {
				return false
			}
			conn.Close()
		}
	}
	return true
}

// stop sends SIGTERM, kills Caddy if it has not exited after stopTimeout, and waits for it to go.
// Stopping a stopped Caddy does nothing.
func (c *Caddy) stop(t *testing.T) {
	t.Helper()
	if c.cmd == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("stopping Caddy: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		t.Errorf("Caddy did not stop within %v of SIGTERM; killing it", stopTimeout)
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(freeport.Port(t))
}

// caddyAdapt runs `caddy adapt` on caddyfile in a private environment and returns its combined output
// and error.
func caddyAdapt(t *testing.T, caddyfile string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBin, "adapt", "--adapter", "caddyfile", "--config", path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// syncBuffer is a bytes.Buffer that a process's stdout and stderr may write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Upstream is a stand-in for a legacy app behind bearer_auth: it answers every request with what it
// received, as JSON (an Echo), and counts the requests that reached it.
type Upstream struct {
	*httptest.Server

	mu       sync.Mutex
	requests int
}

// Echo is what Upstream saw of one request.
type Echo struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

// upstreamAPISite is a Caddyfile site that serves tokengate's endpoints and passes /api/* to the
// Upstream at {{UPSTREAM}} for tokens of the audience api, naming their subject in X-User.
const upstreamAPISite = `{{BASE}} {
	tokengate
	bearer_auth /api/* {
		audience api
		header sub X-User
	}
	reverse_proxy /api/* {{UPSTREAM}}
}
`

// apiReadGuard opens a bearer_auth block that lets to /api/* the tokens for api with the scope
// api.read and passes on their sub as X-User; the site adds more headers and closes the block.
const apiReadGuard = `	bearer_auth /api/* {
		audience api
		scope api.read
		header sub X-User
`

// startUpstream starts an Upstream on a loopback port, closed when the test ends.
func startUpstream(t *testing.T) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests++
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Echo{Method: r.Method, Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(u.Close)
	return u
}

// Requests returns how many requests reached the upstream so far.
func (u *Upstream) Requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests
}

// testContext returns a context that ends with the test, and at the latest after a minute, so a
// hung server fails one test instead of the whole run.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
