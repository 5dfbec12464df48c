// Package caddyproc runs the Caddy binary built with tokengate for the benchmarks: its own
// directory, a free port, a readiness wait, a stop that leaves no process behind, and the CPU it used.
package caddyproc

import (
	"bytes"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Caddy is a Caddy process Start runs.
type Caddy struct {
	cmd     *exec.Cmd
	logFile *os.File
}

// Start writes caddyfile to dir/Caddyfile and runs bin on it, with HOME and the XDG directories in
// dir (so Caddy's storage and autosave stay there) and its output in dir/caddy.log. It waits up to
// 30 s for a GET of ready to answer 200; the error then holds the log.
func Start(bin, dir, caddyfile, ready string) (*Caddy, error) {
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
	c := &Caddy{cmd: cmd, logFile: logFile}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
	}
	c.Stop()
	out, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("caddy did not serve %s within 30s:\n%s", ready, out)
}

// Stop interrupts Caddy and waits for it to exit, killing it after 10 s.
func (c *Caddy) Stop() {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	c.logFile.Close()
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: 100 a second on every Linux
// architecture Go runs on.
const userHZ = 100

// CPU is the CPU time, user and system, Caddy has used so far (Linux: /proc/<pid>/stat). On a
// shared machine, the CPU a request costs varies less than the rate.
func (c *Caddy) CPU() (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields counted are after it.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", c.cmd.Process.Pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime and stime, fields 14 and 15 of proc(5)
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
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
