package store

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

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server that a test started on a free loopback port. It is killed
// at cleanup.
type redisServer struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string
	redisConfig
	cmd    *exec.Cmd
	exited chan error // Wait's result, once the process has gone
	// admin inspects the server behind the store's back; it reconnects after a restart.
	admin *redis.Client
}

// redisConfig says how to run a test's redis-server.
type redisConfig struct {
	// persist fsyncs every write to an append-only file, so that the server killed and started
	// again has all its data.
	persist bool
	// password, if set, is required of clients.
	password string
	// tls makes the server speak TLS only, with a self-signed certificate.
	tls bool
}

// startRedis starts a redis-server for tb. Without redis-server installed, tb is skipped, or
// failed when CI=true: CI must test the Redis backend.
func startRedis(tb testing.TB, cfg redisConfig) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server is not installed, and CI=true: the Redis backend must be tested (%v)", err)
		}
		tb.Skip("redis-server is not installed: skipping the Redis backend's tests (with CI=true this fails)")
	}
	s := &redisServer{tb: tb, bin: bin, dir: tb.TempDir(), port: freePort(tb), redisConfig: cfg}
	appendOnly := "no"
	if s.persist {
		appendOnly = "yes"
	}
	s.args = []string{
		"--bind", "127.0.0.1", "--dir", s.dir, "--logfile", "redis.log",
		"--save", "", "--appendonly", appendOnly, "--appendfsync", "always",
	}
	if s.password != "" {
		s.args = append(s.args, "--requirepass", s.password)
	}
	if s.tls {
		cert, key := selfSigned(tb, s.dir)
		s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no")
	} else {
		s.args = append(s.args, "--port", strconv.Itoa(s.port))
	}
	tb.Cleanup(s.kill)
	s.start()
	opts := &redis.Options{Addr: s.addr(), Password: s.password, DisableIdentity: true, TLSConfig: s.tlsConfig()}
	s.admin = redis.NewClient(opts)
	tb.Cleanup(func() { s.admin.Close() })
	return s
}

// freePort returns a loopback port that nothing listened on a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// url returns the URL a store opens, with the password when the server requires one.
func (s *redisServer) url() string {
	u := url.URL{Scheme: "redis", Host: s.addr()}
	if s.password != "" {
		u.User = url.UserPassword("", s.password)
	}
	if s.tls {
		// The certificate is self-signed, and a URL cannot name a CA to trust.
		u.Scheme, u.RawQuery = "rediss", "skip_verify=true"
	}
	return u.String()
}

// tlsConfig is how a test client speaks to the server: nil for plain TCP.
func (s *redisServer) tlsConfig() *tls.Config {
	if !s.tls {
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

// start runs the server (again, on the same port and directory) and waits until it answers.
func (s *redisServer) start() {
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
			s.tb.Fatalf("redis-server exited (%v): %s", err, s.log())
		default:
		}
		if s.pong() {
			return
		}
	}
	s.tb.Fatalf("redis-server on %s did not answer within 10s: %s", s.addr(), s.log())
}

// pong reports whether the server answers PING (not -LOADING, nor an auth error).
func (s *redisServer) pong() bool {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.tls {
		c, err = tls.DialWithDialer(d, "tcp", s.addr(), s.tlsConfig())
	} else {
		c, err = d.Dial("tcp", s.addr())
	}
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	cmd := "PING\r\n"
	if s.password != "" {
		cmd = fmt.Sprintf("AUTH %s\r\n", s.password) + cmd
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

func (s *redisServer) log() []byte {
	data, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return data
}

// kill kills the server with SIGKILL: it gets no chance to save or say goodbye.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// pause stops the server without closing its connections, as a partition would: it accepts
// connections but answers nothing until resume.
func (s *redisServer) pause() { s.signal(syscall.SIGSTOP) }

func (s *redisServer) resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig os.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("signal redis-server: %v", err)
	}
}

// flush empties the server, so that the next store opened on it starts with nothing.
func (s *redisServer) flush(tb testing.TB) {
	tb.Helper()
	if err := s.admin.FlushAll(ctx).Err(); err != nil {
		tb.Fatalf("FLUSHALL: %v", err)
	}
}

// open opens a Redis store on the server and closes it at cleanup.
func (s *redisServer) open(tb testing.TB, now func() time.Time) *Redis {
	tb.Helper()
	r, err := OpenRedis(s.url(), now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}
