package sip

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPacerStepDoesNotAllocate: a tick sends hundreds of packets; garbage
// made there would be collected with help from the pacer's own real-time
// thread (GC assists), ahead of the machine's other work.
func TestPacerStepDoesNotAllocate(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leg := &mediaLeg{conn: conn, c: &Channel{metrics: m}, remote: sink.LocalAddr().(*net.UDPAddr).AddrPort(), pt: ptPCMU, closed: make(chan struct{})}
	pl := &player{leg: leg, snd: &sound{pcmu: make([]byte, 8000), pcma: make([]byte, 8000)}, loop: true, done: make(chan struct{})}
	p := newPacer()
	buf := make([]byte, maxRTPPacket)
	var frame uint64
	if allocs := testing.AllocsPerRun(200, func() {
		frame++
		p.step(pl, frame, buf)
	}); allocs != 0 {
		t.Errorf("step allocates %.1f times per packet", allocs)
	}
	if got := leg.played.Load(); got == 0 {
		t.Error("no packet played")
	}
}

// TestPacerReportsItsScheduling: exactly one scheduling is reported as
// the pacer's, and its lateness histogram counts ticks.
func TestPacerReportsItsScheduling(t *testing.T) {
	s := startSite(t, testConfig(), "")
	var sum float64
	var ticks uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sum = 0
		for _, p := range []string{schedRealtime, schedNice, schedNormal} {
			sum += s.counter(t, "dirigent_sip_hold_audio_scheduling", map[string]string{"policy": p})
		}
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "dirigent_sip_hold_audio_tick_lateness_seconds" {
				ticks = mf.GetMetric()[0].GetHistogram().GetSampleCount()
			}
		}
		if sum == 1 && ticks > 0 {
			return
		}
	}
	t.Errorf("scheduling gauges sum to %v (want 1), %d ticks counted", sum, ticks)
}
