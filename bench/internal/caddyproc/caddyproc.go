// Package caddyproc runs the Caddy binary built with tokengate for the benchmarks: its own
// directory, a free port, a readiness wait, and a stop that leaves no process behind.
package caddyproc

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Start writes caddyfile to dir/Caddyfile and runs bin on it, with HOME and the XDG directories in
// dir (so Caddy's storage and autosave stay there) and its output in dir/caddy.log. It waits up to
// 30 s for a GET of ready to answer 200; the error then holds the log. stop interrupts Caddy and
// waits for it to exit, killing it after 10 s.
func Start(bin, dir, caddyfile, ready string) (stop func(), err error) {
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "caddy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", config)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
	}
	stop()
	out, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("caddy did not serve %s within 30s:\n%s", ready, out)
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago. A benchmark cannot run
// without one, so it exits the program when none can be had.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
