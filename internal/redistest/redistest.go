// Package redistest runs real redis-server processes for the tests of the Redis store, of the
// Caddy module on it, and end to end: on a free loopback port, in a directory of their own, killed
// at cleanup, and able to be killed, restarted and paused as outages are.
package redistest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/freeport"
)

// Config says how to run a server.
type Config struct {
	// Persist keeps the data in an append-only file, so that the server killed and started again
	// has all it acknowledged.
	Persist bool
	// Password, if set, is required of clients.
	Password string
	// TLS makes the server speak TLS only, with a self-signed certificate.
	TLS bool
}

// Server is a redis-server a test started.
type Server struct {
	Config
	tb     testing.TB
	bin    string
	dir    string
	port   int
	args   []string
	cmd    *exec.Cmd
	exited chan error // Wait's result, once the process has gone
}

// Start starts a redis-server for tb, killed at cleanup. Without redis-server installed, tb is
// skipped, or failed when CI=true: CI must test what, the code that uses Redis.
func Start(tb testing.TB, what string, cfg Config) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server is not installed, and CI=true: %s must be tested (%v)", what, err)
		}
		tb.Skipf("redis-server is not installed: skipping the tests of %s (with CI=true this fails)", what)
	}
	s := &Server{Config: cfg, tb: tb, bin: bin, dir: tb.TempDir(), port: FreePort(tb)}
	appendOnly := "no"
	if s.Persist {
		appendOnly = "yes"
	}
	// appendfsync always: what Redis acknowledged is on disk, so a kill cannot bring back a refresh
	// token that tokengate was told had rotated (everysec, the default, may lose a second).
	s.args = []string{
		"--bind", "127.0.0.1", "--dir", s.dir, "--logfile", "redis.log",
		"--save", "", "--appendonly", appendOnly, "--appendfsync", "always",
	}
	if s.Password != "" {
		s.args = append(s.args, "--requirepass", s.Password)
	}
	if s.TLS {
		cert, key := selfSigned(tb, s.dir)
		s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no")
	} else {
		s.args = append(s.args, "--port", strconv.Itoa(s.port))
	}
	tb.Cleanup(s.Kill)
	s.Restart()
	return s
}

// FreePort returns a loopback port that nothing listened on a moment ago: where a Redis URL must
// name a port no server answers on.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return freeport.Port(tb)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is what the Redis store opens, with the password when the server requires one.
func (s *Server) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr()}
	if s.Password != "" {
		u.User = url.UserPassword("", s.Password)
	}
	if s.TLS {
		// The certificate is self-signed, and a URL cannot name a CA to trust.
		u.Scheme, u.RawQuery = "rediss", "skip_verify=true"
	}
	return u.String()
}

// TLSConfig is how a test client speaks to the server: nil for plain TCP.
func (s *Server) TLSConfig() *tls.Config {
	if !s.TLS {
		return nil
	}
	return &tls.Config{InsecureSkipVerify: true} // self-signed; the test only needs TLS spoken
}

// selfSigned writes a self-signed certificate and its key for 127.0.0.1 into dir.
func selfSigned(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: pkcs8}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return certFile, keyFile
}

// Restart runs the server (again after Kill, on the same port and directory) and waits until it
// answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	s.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(s.cmd, s.exited)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-s.exited:
			s.cmd = nil
			s.tb.Fatalf("redis-server exited (%v): %s", err, s.Log())
		default:
		}
		if s.pong() {
			return
		}
	}
	s.tb.Fatalf("redis-server on %s did not answer within 10s: %s", s.Addr(), s.Log())
}

// pong reports whether the server answers PING (not -LOADING, nor an auth error).
func (s *Server) pong() bool {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.TLS {
		c, err = tls.DialWithDialer(d, "tcp", s.Addr(), s.TLSConfig())
	} else {
		c, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	cmd := "PING\r\n"
	if s.Password != "" {
		cmd = fmt.Sprintf("AUTH %s\r\n", s.Password) + cmd
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		switch {
		case err != nil:
			return false
		case line == "+PONG\r\n":
			return true
		case line != "+OK\r\n":
			return false
		}
	}
}

// Log is what the server wrote to its log file.
func (s *Server) Log() []byte {
	data, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return data
}

// Kill sends SIGKILL, as a crash would: Redis saves nothing and says goodbye to no one. Killing a
// killed server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Pause stops the server without closing its connections, as a partition would: it accepts
// connections but answers nothing until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("signal redis-server: %v", err)
	}
}
