package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// maxRTPPacket bounds what is read from an RTP socket; G.711 at 20 ms is
// 172 bytes.
const maxRTPPacket = 1500

// ports hands out RTP ports from the configured range, even ones as RTP
// wants (RTCP would take the odd one above; dirigent sends none).
type ports struct {
	ip       net.IP
	min, max int
	next     atomic.Int64
}

// listen binds the first free port from where the last call left off,
// trying the whole range once before giving up: a busy site may have a
// long run of ports in use with free ones after it. The next call starts
// after the port found, so it does not walk that run again.
func (p *ports) listen() (*net.UDPConn, error) {
	first := p.min + p.min%2 // RTP takes even ports (RFC 3550, section 11)
	span := int64(p.max-first)/2 + 1
	if span <= 0 {
		return nil, errors.New("empty RTP port range")
	}
	start := p.next.Add(1)
	for i := range span {
		port := first + 2*int((start+i)%span)
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: p.ip, Port: port})
		if err == nil {
			if i > 0 {
				// Unless a concurrent call moved on already.
				p.next.CompareAndSwap(start, start+i)
			}
			return conn, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("RTP port %d: %w", port, err) // the same for every port
		}
	}
	return nil, fmt.Errorf("no free RTP port in %d–%d", p.min, p.max)
}

// mediaLeg is one call leg's RTP: dirigent's socket and the peer's
// address. The peer's address comes from its SDP and is then latched to
// where its RTP actually comes from (symmetric RTP), so phones behind NAT
// that announce private addresses are still reached.
type mediaLeg struct {
	conn *net.UDPConn
	c    *Channel

	mu      sync.Mutex
	remote  netip.AddrPort // invalid until known
	latched bool
	pt      uint8 // the codec agreed with this peer
	dtmf    uint8 // the peer's telephone-event payload type, 0: none
	peer    *mediaLeg
	onDigit func(byte)

	// Outgoing stream state for what dirigent itself plays.
	ssrc uint32
	seq  uint16
	ts   uint32

	// Incoming sequence tracking for loss counting.
	lastSeq  uint16
	haveSeq  bool
	received atomic.Int64 // RTP packets received from the peer
	relayed  atomic.Int64 // packets of this peer relayed to the other leg
	played   atomic.Int64 // packets dirigent played to this peer

	lastEvent uint32 // timestamp of the last telephone-event reported
	closed    chan struct{}
	once      sync.Once
}

func (c *Channel) newMediaLeg() (*mediaLeg, error) {
	conn, err := c.ports.listen()
	if err != nil {
		return nil, err
	}
	l := &mediaLeg{conn: conn, c: c, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), closed: make(chan struct{})}
	go l.read()
	return l, nil
}

func (l *mediaLeg) port() int { return l.conn.LocalAddr().(*net.UDPAddr).Port }

func (l *mediaLeg) close() {
	l.once.Do(func() {
		close(l.closed)
		l.conn.Close()
	})
}

// setRemote takes the peer's address from its SDP, unless RTP from the
// peer has already shown where it really is.
func (l *mediaLeg) setRemote(addr *net.UDPAddr, pt, dtmf uint8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.latched && addr != nil {
		l.remote = addr.AddrPort()
	}
	l.pt, l.dtmf = pt, dtmf
}

// bridge relays RTP between a and b both ways.
func bridge(a, b *mediaLeg) {
	a.mu.Lock()
	a.peer = b
	a.mu.Unlock()
	b.mu.Lock()
	b.peer = a
	b.mu.Unlock()
}

// read receives the peer's RTP: it latches the peer's address, counts
// losses, reports telephone-events and relays to the bridged leg.
func (l *mediaLeg) read() {
	buf := make([]byte, maxRTPPacket)
	var h rtp.Header
	for {
		n, src, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		hn, err := h.Unmarshal(buf[:n])
		if err != nil || h.Version != 2 {
			continue // not RTP (an RTCP packet or noise)
		}
		l.received.Add(1)
		l.mu.Lock()
		if !l.latched || l.remote != src {
			l.remote, l.latched = src, true
		}
		if l.haveSeq {
			if gap := h.SequenceNumber - l.lastSeq; gap > 1 && gap < 1000 {
				l.c.metrics.rtpLost.Add(float64(gap - 1))
			}
		}
		l.lastSeq, l.haveSeq = h.SequenceNumber, true
		peer, pt, dtmf, onDigit := l.peer, l.pt, l.dtmf, l.onDigit
		var digit byte
		if dtmf != 0 && h.PayloadType == dtmf && onDigit != nil {
			if d, ok := parseTelephoneEvent(buf[hn:n]); ok && h.Timestamp != l.lastEvent {
				l.lastEvent, digit = h.Timestamp, d
			}
		}
		l.mu.Unlock()
		if digit != 0 {
			onDigit(digit)
		}
		if peer == nil {
			continue
		}
		peer.forward(buf[:n], hn, h.PayloadType, pt, dtmf)
		l.relayed.Add(1)
		l.c.metrics.rtpRelayed.Inc()
	}
}

// forward sends a packet the other leg's peer sent, with the payload type
// (and, between PCMU and PCMA, the payload) translated to this leg's.
func (l *mediaLeg) forward(pkt []byte, hn int, inPT, fromPT, fromDTMF uint8) {
	l.mu.Lock()
	remote, pt, dtmf := l.remote, l.pt, l.dtmf
	l.mu.Unlock()
	if !remote.IsValid() {
		return
	}
	switch {
	case inPT == fromDTMF && fromDTMF != 0:
		if dtmf == 0 {
			return // this peer does not take telephone-events
		}
		pkt[1] = pkt[1]&0x80 | dtmf
	case inPT == ptPCMU || inPT == ptPCMA:
		transcode(pkt[hn:], inPT, pt)
		pkt[1] = pkt[1]&0x80 | pt
	default:
		return // comfort noise or codecs not agreed: not relayed
	}
	l.conn.WriteToUDPAddrPort(pkt, remote)
}

// playFrame sends the next 20 ms of a sound as one RTP packet; skipped
// frames (a late tick) advance the timestamp so the receiver's clock
// stays right.
func (l *mediaLeg) playFrame(payload []byte, frames uint32, buf []byte) {
	l.mu.Lock()
	remote, pt := l.remote, l.pt
	l.seq++
	l.ts += frames * samplesPerPacket
	h := rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: l.seq, Timestamp: l.ts, SSRC: l.ssrc}
	l.mu.Unlock()
	if !remote.IsValid() {
		return
	}
	n, err := h.MarshalTo(buf)
	if err != nil {
		return
	}
	n += copy(buf[n:], payload)
	if _, err := l.conn.WriteToUDPAddrPort(buf[:n], remote); err == nil {
		l.played.Add(1)
		l.c.metrics.rtpSent.Inc()
	}
}

// player plays a sound to a leg in a loop (hold audio) or once (a
// prompt, then done is closed).
type player struct {
	leg   *mediaLeg
	snd   *sound
	pos   int
	loop  bool
	done  chan struct{}
	frame uint64 // the pacer's frame count when this player last sent
}

// The scheduling the pacer's thread got, as logged and in the metric
// dirigent_sip_hold_audio_scheduling.
const (
	schedRealtime = "realtime" // SCHED_FIFO at pacerPriority
	schedNice     = "nice"     // SCHED_OTHER at nice pacerNice
	schedNormal   = "normal"   // neither was allowed
)

const (
	pacerPriority = 10  // SCHED_FIFO; the unit's LimitRTPRIO= allows it
	pacerNice     = -10 // the fallback; the unit's LimitNICE= allows it
)

// pacer sends every playing stream's next packet every 20 ms, all
// streams from one loop. The loop sleeps until absolute deadlines (start
// + n × 20 ms on the monotonic clock), so lateness never accumulates;
// when a tick ends after the next deadline, the deadlines passed are
// skipped and each stream's timestamp advances by the frames missed, so
// the audio's clock never drifts from the wall clock and the thread
// sleeps between any two ticks. Streams are served in a fixed order, so
// each keeps its place within the tick and its spacing stays 20 ms.
//
// The loop has its own OS thread at real-time priority where the
// process may raise it (RLIMIT_RTPRIO, which the unit's LimitRTPRIO=
// sets, or CAP_SYS_NICE), and sleeps in the kernel (clock_nanosleep)
// rather than on a Go timer: the kernel wakes that thread itself, before
// any ordinary work, however busy the machine. What it cannot bypass is
// the Go scheduler: the goroutine needs a P (a scheduler slot) after
// every sleep, and the runtime takes the P away again from a goroutine
// it sees running on one for 10 ms without passing through the scheduler,
// which the pacer, getting Ps back on the system-call fast path, always
// seems to be. Either way it then waits until an ordinary thread of the
// process hands it a P, and on a machine with more runnable threads than
// cores that thread waits for a core: that is the tail of the pacing
// (BENCHMARKS.md).
type pacer struct {
	mu      sync.Mutex
	players []*player
	start   time.Time
}

func newPacer() *pacer { return &pacer{} }

func (p *pacer) add(pl *player) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl.frame = p.frameAt(time.Now())
	p.players = append(p.players, pl)
}

func (p *pacer) remove(pl *player) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.players, pl); i >= 0 {
		p.players = slices.Delete(p.players, i, i+1)
	}
}

func (p *pacer) frameAt(t time.Time) uint64 {
	if p.start.IsZero() {
		return 0
	}
	return uint64(t.Sub(p.start) / ptime)
}

// run paces until stop is closed, logging once which scheduling its
// thread got and keeping m's pacer metrics.
func (p *pacer) run(stop <-chan struct{}, log *slog.Logger, m *metrics) {
	// Never unlocked: when run returns, the goroutine ends on its locked
	// thread and the runtime ends the thread too, rather than hand a
	// real-time thread to other goroutines.
	runtime.LockOSThread()
	policy, err := raisePriority()
	m.holdScheduling.WithLabelValues(policy).Set(1)
	switch policy {
	case schedRealtime:
		log.Info("hold audio paced by a real-time thread", "scheduling", "SCHED_FIFO", "priority", pacerPriority)
	case schedNice:
		log.Warn("hold audio paced without real-time priority: callers may hear gaps while the machine is busy (LimitRTPRIO=10 or CAP_SYS_NICE allows it)",
			"scheduling", "nice", "nice", pacerNice, "reason", err)
	default:
		log.Warn("hold audio paced at normal priority: callers may hear gaps while the machine is busy (LimitRTPRIO=10 or CAP_SYS_NICE allows real-time priority)",
			"scheduling", "normal", "reason", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		p.runTicker(stop, m)
		return
	}
	p.mu.Lock()
	p.start = time.Now()
	p.mu.Unlock()
	buf := make([]byte, maxRTPPacket)
	var list []*player
	for next := ts.Nano() + int64(ptime); ; {
		deadline := unix.NsecToTimespec(next)
		for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &deadline, nil) == unix.EINTR {
		}
		select {
		case <-stop:
			return
		default:
		}
		p.mu.Lock()
		frame := p.frameAt(time.Now())
		list = append(list[:0], p.players...)
		p.mu.Unlock()
		for _, pl := range list {
			p.step(pl, frame, buf)
		}
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		done := ts.Nano()
		m.holdLateness.Observe(float64(done-next) / 1e9)
		// Deadlines already passed are skipped (frameAt counts their
		// frames), so the thread sleeps before every tick: a real-time
		// thread that never blocked would be killed at LimitRTTIME.
		next += int64(ptime)
		if done >= next {
			next += (done - next + int64(ptime)) / int64(ptime) * int64(ptime)
		}
	}
}

// runTicker is run's fallback on a Go ticker.
func (p *pacer) runTicker(stop <-chan struct{}, m *metrics) {
	t := time.NewTicker(ptime)
	defer t.Stop()
	p.mu.Lock()
	p.start = time.Now()
	p.mu.Unlock()
	buf := make([]byte, maxRTPPacket)
	var list []*player
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			frame := p.frameAt(now)
			list = append(list[:0], p.players...)
			p.mu.Unlock()
			for _, pl := range list {
				p.step(pl, frame, buf)
			}
			m.holdLateness.Observe(time.Since(now).Seconds())
		}
	}
}

// raisePriority makes the calling OS thread a real-time thread
// (SCHED_FIFO, low priority 10), so it preempts ordinary work the moment
// its sleep ends, as telephony and audio servers run their timing
// threads; failing that, nice -10; failing that, nothing. The thread
// sleeps most of every period, so it cannot starve the machine, and
// threads it might start fall back to normal scheduling
// (SCHED_FLAG_RESET_ON_FORK; the runtime starts them from another thread
// anyway while this one is locked). err says why real time was refused.
func raisePriority() (policy string, err error) {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: pacerPriority, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	if err = unix.SchedSetAttr(0, &attr, 0); err == nil {
		return schedRealtime, nil
	}
	err = fmt.Errorf("SCHED_FIFO %d: %w", pacerPriority, err)
	attr = unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: pacerNice, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	if errNice := unix.SchedSetAttr(0, &attr, 0); errNice != nil {
		return schedNormal, errors.Join(err, fmt.Errorf("nice %d: %w", pacerNice, errNice))
	}
	return schedNice, err
}

func (p *pacer) step(pl *player, frame uint64, buf []byte) {
	frames := uint32(1)
	if frame > pl.frame {
		frames = uint32(min(frame-pl.frame, 50))
	}
	pl.frame = frame
	pl.leg.mu.Lock()
	pt := pl.leg.pt
	pl.leg.mu.Unlock()
	data := pl.snd.payload(pt)
	if pl.pos+samplesPerPacket > len(data) {
		if !pl.loop {
			p.remove(pl)
			close(pl.done)
			return
		}
		pl.pos = 0
	}
	pl.leg.playFrame(data[pl.pos:pl.pos+samplesPerPacket], frames, buf)
	pl.pos += samplesPerPacket
}
