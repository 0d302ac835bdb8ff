package clientaddr

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	proxies, err := ParseProxies([]string{"127.0.0.1", "10.0.0.0/8", "::1", "::ffff:192.0.2.0/120", "::ffff:0.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy in between", "198.51.100.7:5000", nil, "198.51.100.7"},
		{"a stranger's header is not believed", "198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"behind the proxy", "127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"behind two proxies", "127.0.0.1:5000", []string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"what the client wrote itself is not believed", "127.0.0.1:5000", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"headers read as one list", "127.0.0.1:5000", []string{"1.2.3.4", "203.0.113.9,10.0.0.1"}, "203.0.113.9"},
		{"a proxy that adds ports", "127.0.0.1:5000", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 client, mapped proxy", "[::ffff:192.0.2.5]:5000", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv6 proxy", "[::1]:5000", []string{"2001:db8::2"}, "2001:db8::2"},
		{"a short mapped prefix is no IPv4 one", "198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"no header: the proxy itself", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"only proxies: the farthest", "127.0.0.1:5000", []string{"10.0.0.2, 10.0.0.1"}, "10.0.0.2"},
		{"garbage ends the search at the proxy that wrote it", "127.0.0.1:5000", []string{"203.0.113.9, unknown, 10.0.0.1"}, "10.0.0.1"},
		{"empty entry", "127.0.0.1:5000", []string{""}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := proxies.Of(r); got != tc.want {
				t.Errorf("Of = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseProxiesRefuses(t *testing.T) {
	for _, s := range []string{"", "localhost", "10.0.0.0/33", "192.0.2.1:80", "fe80::/129", "10.0.0.1/08"} {
		if _, err := ParseProxies([]string{s}); err == nil || !strings.Contains(err.Error(), "is not an address or CIDR") {
			t.Errorf("ParseProxies(%q) = %v", s, err)
		}
	}
}

// FuzzOf checks Of against the rule spelled out once more, simply: the
// peer, unless it is a proxy; then the first entry from the right of all
// X-Forwarded-For values that is not a proxy, where reading stops at an
// entry that is no address (its writer, the last proxy read, is the
// answer), and the farthest proxy when all are proxies.
func FuzzOf(f *testing.F) {
	f.Add("127.0.0.1:1", "203.0.113.9, 10.0.0.1", "")
	f.Add("[::1]:1", "[2001:db8::1]:4711,garbage", "10.0.0.2")
	f.Add("198.51.100.7:5000", "1.2.3.4", "")
	f.Add("[::ffff:127.0.0.1]:1", "1.2.3.4, 203.0.113.9", "10.1.1.1, ::ffff:10.2.2.2")
	proxies, err := ParseProxies([]string{"127.0.0.0/8", "::1", "10.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, first, second string) {
		header := http.Header{}
		for _, v := range []string{first, second} {
			if v != "" {
				header.Add("X-Forwarded-For", v)
			}
		}
		got := proxies.Of(&http.Request{RemoteAddr: peer, Header: header})
		host, _, err := net.SplitHostPort(peer)
		if err != nil {
			return // no address: Of answers with the peer's text, unchecked
		}
		from, err := netip.ParseAddr(host)
		if err != nil {
			return
		}
		want := from.Unmap().WithZone("")
		if proxies.trusted(want) {
			var entries []string
			for _, v := range header.Values("X-Forwarded-For") {
				entries = append(entries, strings.Split(v, ",")...)
			}
		walk:
			for i := len(entries) - 1; i >= 0; i-- {
				e := strings.TrimSpace(entries[i])
				a, err := netip.ParseAddr(e)
				if err != nil {
					ap, err := netip.ParseAddrPort(e)
					if err != nil {
						break walk
					}
					a = ap.Addr()
				}
				want = a.Unmap().WithZone("")
				if !proxies.trusted(want) {
					break walk
				}
			}
		}
		if got != want.String() {
			t.Fatalf("Of(%q, %q, %q) = %s, want %s", peer, first, second, got, want)
		}
	})
}
