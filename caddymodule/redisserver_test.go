package caddymodule

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// redisServer is a redis-server that a test started on a free loopback port, killed at cleanup.
// (store/redisserver_test.go has the fuller one the store's own tests use.)
type redisServer struct {
	tb       testing.TB
	dir      string
	addr     string // 127.0.0.1:<port>
	password string
	cmd      *exec.Cmd
	exited   chan error
}

// startRedis starts a redis-server that requires password, if one is given. Without redis-server
// installed, tb is skipped, or failed when CI=true: CI must test the Redis store.
func startRedis(tb testing.TB, password string) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server is not installed, and CI=true: the Redis store must be tested (%v)", err)
		}
		tb.Skip("redis-server is not installed: skipping the Redis store's tests (with CI=true this fails)")
	}
	s := &redisServer{tb: tb, dir: tb.TempDir(), addr: freeAddress(tb), password: password, exited: make(chan error, 1)}
	_, port, _ := net.SplitHostPort(s.addr)
	args := []string{"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--logfile", "redis.log", "--save", "", "--appendonly", "no"}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	tb.Cleanup(s.kill)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-s.exited:
			s.cmd = nil
			tb.Fatalf("redis-server exited (%v): %s", err, s.log())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return s
		}
	}
	tb.Fatalf("redis-server on %s did not listen within 10s: %s", s.addr, s.log())
	return nil
}

// url is the server's URL with its password; client names a connection, which makes the URLs of
// two would-be instances differ so that they do not share one pooled store in this process.
func (s *redisServer) url(client string) string {
	u := url.URL{Scheme: "redis", Host: s.addr, Path: "/0", RawQuery: url.Values{"client_name": {client}}.Encode()}
	if s.password != "" {
		u.User = url.UserPassword("", s.password)
	}
	return u.String()
}

func (s *redisServer) log() []byte {
	data, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return data
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

func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}
