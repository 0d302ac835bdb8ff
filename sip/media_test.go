package sip

import (
	"math/rand/v2"
	"net"
	"testing"
)

// occupyRTPPorts binds the first taken even ports of a range of span even
// ports on 127.0.0.1 (a range nobody else uses, found by trying) and
// returns the range's first port.
func occupyRTPPorts(t *testing.T, span, taken int) (min int) {
	t.Helper()
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
try:
	for range 20 {
		min = 20000 + 2*rand.IntN(15000)
		var held []*net.UDPConn
		for i := range span {
			lo.Port = min + 2*i
			c, err := net.ListenUDP("udp", lo)
			if err != nil { // someone else's port: another range
				for _, c := range held {
					c.Close()
				}
				continue try
			}
			if i < taken {
				held = append(held, c)
			} else {
				c.Close()
			}
		}
		t.Cleanup(func() {
			for _, c := range held {
				c.Close()
			}
		})
		return min
	}
	t.Fatal("no free range of RTP ports on 127.0.0.1")
	return 0
}

// A long run of ports in use (a busy site) does not make a call fail
// while free ports remain further on in the range.
func TestRTPPortPastALongTakenRun(t *testing.T) {
	const span, taken = 128, 100
	min := occupyRTPPorts(t, span, taken)
	p := &ports{ip: net.IPv4(127, 0, 0, 1), min: min, max: min + 2*span - 2}
	conn, err := p.listen()
	if err != nil {
		t.Fatalf("%d of %d ports taken: %v", taken, span, err)
	}
	defer conn.Close()
	got := conn.LocalAddr().(*net.UDPAddr).Port
	if got < min+2*taken || got > min+2*span-2 || got%2 != 0 {
		t.Errorf("port %d, want a free one of %d–%d", got, min+2*taken, min+2*span-2)
	}
	// The next call starts after it, not at the start of the taken run.
	conn2, err := p.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if got2 := conn2.LocalAddr().(*net.UDPAddr).Port; got2 != got+2 {
		t.Errorf("next port %d, want %d", got2, got+2)
	}
}

func TestRTPPortsAllTaken(t *testing.T) {
	const span = 80
	min := occupyRTPPorts(t, span, span)
	p := &ports{ip: net.IPv4(127, 0, 0, 1), min: min, max: min + 2*span - 2}
	if conn, err := p.listen(); err == nil {
		conn.Close()
		t.Fatalf("port %v handed out from a full range", conn.LocalAddr())
	}
}

// The range is inclusive, and RTP takes its even ports only: from an odd
// rtp_port_min the first port is the next even one, and rtp_port_max is
// used when even.
func TestRTPPortsEvenWithinTheRange(t *testing.T) {
	min := occupyRTPPorts(t, 1, 0)
	p := &ports{ip: net.IPv4(127, 0, 0, 1), min: min - 1, max: min}
	conn, err := p.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.LocalAddr().(*net.UDPAddr).Port; got != min {
		t.Errorf("port %d of %d–%d, want %d", got, min-1, min, min)
	}
}
