package cimd

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// specialUse are the special-purpose address blocks of RFC 6890 and its IANA registries that a
// document fetch must never reach: this host, private networks, shared address space (RFC 6598),
// loopback, link-local, documentation and benchmarking ranges, multicast and reserved space, and
// the IPv6 transition prefixes that embed an IPv4 address of any of those (NAT64, 6to4, Teredo).
var specialUse = func() []netip.Prefix {
	var prefixes []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
		"2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	return prefixes
}()

// specialUseAddr reports whether ip lies in a special-use block. An IPv4-mapped IPv6 address is
// judged as the IPv4 address it carries.
func specialUseAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range specialUse {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errSpecialUse refuses a connection to a special-use address.
var errSpecialUse = errors.New("the address is special-use (RFC 6890)")

// dialGuard is a net.Dialer Control hook: it runs on the address about to be dialled, after name
// resolution, so a name that resolves to a special-use address is refused as an IP literal is,
// whatever the DNS answers at the time of the fetch. allowLoopback lets loopback addresses through,
// and nothing else special.
func dialGuard(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		if allowLoopback && ip.Unmap().IsLoopback() {
			return nil
		}
		if specialUseAddr(ip) {
			return errSpecialUse
		}
		return nil
	}
}
