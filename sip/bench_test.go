package sip

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// BenchmarkHoldAudio500Callers: 500 callers (sipp, 100 new calls a
// second) wait in the queue with nobody available, each hearing hold
// audio; one UDP socket takes every stream (SDP of all calls names it)
// and records when each stream's packets arrive (kernel receive timestamps). Reported: the p99 and
// the largest deviation of packet spacing from 20 ms over the seconds
// when all 500 were up, and the streams' packet loss.
func BenchmarkHoldAudio500Callers(b *testing.B) {
	const callers = 500
	s := startSite(b, testConfig(), "")
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadBuffer(8 << 20)
	type stream struct {
		last time.Time
		seq  uint16
		gaps []time.Duration
		lost int
	}
	var mu sync.Mutex
	streams := map[uint32]*stream{}
	measuring := false
	// The kernel stamps each packet as it arrives, so the receiver's own
	// scheduling does not count against dirigent.
	if raw, err := conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1) })
	}
	go func() {
		buf := make([]byte, 1500)
		oob := make([]byte, 128)
		var h rtp.Header
		for {
			n, oobn, _, _, err := conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				return
			}
			now := time.Now()
			// One control message: SO_TIMESTAMPNS, a struct timespec after
			// the cmsghdr (16 bytes on 64-bit Linux). Parsed by hand: the
			// receiver must not allocate, or its garbage would count
			// against dirigent's pacing.
			if oobn >= 32 {
				sec := int64(binary.LittleEndian.Uint64(oob[16:24]))
				nsec := int64(binary.LittleEndian.Uint64(oob[24:32]))
				now = time.Unix(sec, nsec)
			}
			if _, err := h.Unmarshal(buf[:n]); err != nil {
				continue
			}
			mu.Lock()
			st := streams[h.SSRC]
			if st == nil {
				st = &stream{}
				streams[h.SSRC] = st
			} else if measuring {
				st.gaps = append(st.gaps, now.Sub(st.last))
				if d := h.SequenceNumber - st.seq; d > 1 {
					st.lost += int(d - 1)
				}
			}
			st.last, st.seq = now, h.SequenceNumber
			mu.Unlock()
		}
	}()
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	b.ResetTimer()
	caller := s.sipp(b, "caller-hangup.xml", "-p", strconv.Itoa(freePort(b)), "-m", strconv.Itoa(callers), "-r", "100", "-l", strconv.Itoa(callers),
		"-d", "12000", "-key", "dialled", testNumber, "-key", "caller", "03055540000", "-key", "mip", "127.0.0.1", "-key", "mport", port)
	deadline := time.Now().Add(20 * time.Second)
	for s.counter(b, "dirigent_sip_active_calls", nil) < callers {
		if time.Now().After(deadline) {
			b.Fatalf("only %v calls up", s.counter(b, "dirigent_sip_active_calls", nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	measuring = true
	mu.Unlock()
	ticks0, late0 := lateTicks(b, s)
	time.Sleep(4 * time.Second)
	ticks1, late1 := lateTicks(b, s)
	mu.Lock()
	measuring = false
	var all []time.Duration
	lost, packets := 0, 0
	for _, st := range streams {
		for _, g := range st.gaps {
			all = append(all, (g - ptime).Abs())
		}
		lost += st.lost
		packets += len(st.gaps)
	}
	n := len(streams)
	mu.Unlock()
	b.StopTimer()
	caller.wait(b, 30*time.Second)
	if n < callers || len(all) == 0 {
		b.Fatalf("%d streams heard", n)
	}
	slices.Sort(all)
	p99 := all[len(all)*99/100]
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-jitter-ms")
	b.ReportMetric(float64(all[len(all)*9/10].Microseconds())/1000, "p90-jitter-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-jitter-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-jitter-ms")
	b.ReportMetric(float64(lost)/float64(packets+lost)*100, "loss-%")
	b.ReportMetric(float64(n), "streams")
	// The pacer's own view (dirigent_sip_hold_audio_tick_lateness_seconds):
	// ticks whose last packet left more than 5 ms after the deadline, and
	// whether its thread got real-time priority.
	b.ReportMetric((late1-late0)/max(ticks1-ticks0, 1)*100, "ticks-late-5ms-%")
	b.ReportMetric(s.counter(b, "dirigent_sip_hold_audio_scheduling", map[string]string{"policy": schedRealtime}), "realtime")
}

// lateTicks reads the pacer's tick lateness histogram: ticks so far, and
// those that ended more than 5 ms after their deadline.
func lateTicks(b *testing.B, s *site) (ticks, late float64) {
	mfs, err := s.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dirigent_sip_hold_audio_tick_lateness_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		ticks = float64(h.GetSampleCount())
		late = ticks
		for _, bk := range h.GetBucket() {
			if bk.GetUpperBound() == .005 {
				late = ticks - float64(bk.GetCumulativeCount())
			}
		}
	}
	return ticks, late
}
