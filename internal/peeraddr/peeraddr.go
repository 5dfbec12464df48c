// Package peeraddr names the address a request comes from when nothing better is known: the TCP
// peer. The throttles count failures per address with it: wrong client secrets, passwords and
// user codes.
package peeraddr

import (
	"net"
	"net/http"
)

// Of is the TCP peer's address without the port, or RemoteAddr whole when it has none.
func Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
