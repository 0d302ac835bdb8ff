// Package clientaddr finds the address of an HTTP client that reaches a
// listener through the site's reverse proxies, for the limits counted
// per address (desk logins, chats). It trusts X-Forwarded-For only from
// the proxies it is given; anyone else could write any address into it.
// It imports nothing of dirigent.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For is believed.
type Proxies []netip.Prefix

// ParseProxies reads addresses and CIDRs ("192.0.2.10", "10.0.0.0/8",
// "::1").
func ParseProxies(list []string) (Proxies, error) {
	var ps Proxies
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR", s)
			}
			a = a.WithZone("")
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// Addresses are compared unmapped: ::ffff:192.0.2.1 is 192.0.2.1.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

func (ps Proxies) trusted(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of is the address r came from: its peer's, or, where the peer is one
// of the proxies, the nearest address in X-Forwarded-For that is not (the
// header's entries are read from the right, as each proxy appends the
// address it was reached from). An entry that is no address ends the
// search at the proxy that wrote it.
func (ps Proxies) Of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	from, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	from = from.Unmap().WithZone("")
	if !ps.trusted(from) {
		return from.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		from = a
		if !ps.trusted(a) {
			break
		}
	}
	return from.String()
}

// parseHop reads one X-Forwarded-For entry: an address, some proxies
// add a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}
