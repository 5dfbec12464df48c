// Package freeport finds a loopback TCP port nothing listens on, for tests that must name a
// server's port before the server starts. For tests only.
package freeport

import (
	"net"
	"testing"
)

// Port is a port of 127.0.0.1 that was free a moment ago. The listener that found it is closed
// again, so another process may take the port first: a race tests accept.
func Port(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
