package sip

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"dirigent/internal/testrun"
)

// callerMedia is the caller's RTP endpoint: a real UDP socket that
// answers dirigent's hold audio with its own 20 ms packets (SSRC
// callerSSRC) and counts what comes back.
type callerMedia struct {
	conn *net.UDPConn
	mu   sync.Mutex
	// first SSRC heard is dirigent's hold audio
	holdSSRC   uint32
	hold, echo int // packets of hold audio, and of our own audio come back
	other      int // packets from any other source (e.g. a softphone)
	otherSSRC  uint32
	arrivals   []time.Time // of hold audio, for pacing
	dirigent   *net.UDPAddr
	done       chan struct{}
}

const callerSSRC = 0xCA11E5

func newCallerMedia(t *testing.T) *callerMedia {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	m := &callerMedia{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() {
		close(m.done)
		conn.Close()
	})
	go m.receive()
	go m.send()
	return m
}

func (m *callerMedia) port() string { return strconv.Itoa(m.conn.LocalAddr().(*net.UDPAddr).Port) }

func (m *callerMedia) receive() {
	buf := make([]byte, 1500)
	for {
		n, src, err := m.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		now := time.Now()
		m.mu.Lock()
		if m.dirigent == nil {
			m.dirigent = src
			m.holdSSRC = p.SSRC
		}
		switch p.SSRC {
		case m.holdSSRC:
			m.hold++
			m.arrivals = append(m.arrivals, now)
		case callerSSRC:
			m.echo++
		default:
			m.other++
			m.otherSSRC = p.SSRC
		}
		m.mu.Unlock()
	}
}

// send starts once dirigent's audio has arrived (symmetric RTP: the
// caller sends to where dirigent sends from) and stops after 30 s.
func (m *callerMedia) send() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = 0xd5 // A-law silence
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: callerSSRC}, Payload: payload}
	for i := 0; i < 1500; i++ {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		m.mu.Lock()
		dst := m.dirigent
		m.mu.Unlock()
		if dst == nil {
			continue
		}
		p.SequenceNumber++
		p.Timestamp += 160
		b, _ := p.Marshal()
		m.conn.WriteToUDP(b, dst)
	}
}

func (m *callerMedia) counts() (hold, echo, other int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hold, m.echo, m.other
}

// TestCallToSippAgent: a sipp caller calls the trunk number, hears hold
// audio, the router offers the call to anna, whose phone (sipp,
// registered with digest auth, echoing RTP) answers; audio goes both
// ways through dirigent's relay; anna hangs up, both legs end, the
// contact records wait, talk and outcome, and anna is in wrap-up.
func TestCallToSippAgent(t *testing.T) {
	s := startSite(t, testConfig(), "")
	agent := s.sipp(t, "agent-register.xml", "-oocsf", "testdata/agent-answer.xml", "-rtp_echo",
		"-p", strconv.Itoa(freePort(t)), "-mp", strconv.Itoa(freePort(t)),
		"-s", testUser, "-au", testUser, "-ap", testPass,
		"-d", "1500", "-m", "1")
	testrun.Eventually(t, 5*time.Second, "anna's phone registered", func() bool { return len(s.ch.registrar.contacts("anna")) == 1 })
	if err := s.router.SetPresence("anna", 1, ""); err != nil { // available
		t.Fatal(err)
	}

	media := newCallerMedia(t)
	caller := s.sipp(t, "caller.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1",
		"-key", "dialled", testNumber, "-key", "caller", "03055512345", "-key", "mip", "127.0.0.1", "-key", "mport", media.port())
	caller.wait(t, 20*time.Second)

	hold, echo, _ := media.counts()
	if hold == 0 {
		t.Errorf("the caller heard no hold audio")
	}
	if echo == 0 {
		t.Errorf("none of the caller's audio came back through the agent's echo: relay broken in one direction at least")
	}
	if n := s.counter(t, "dirigent_sip_rtp_packets_relayed_total", nil); n < 2 {
		t.Errorf("relayed %v packets", n)
	}
	var ct = s.callerContact(t, "03055512345")
	testrun.Eventually(t, 5*time.Second, "the call's contact completed", func() bool {
		ct = s.callerContact(t, "03055512345")
		return ct != nil && !ct.End.IsZero()
	})
	if ct.Agent != "anna" || ct.Outcome != outcomeAnswered || ct.Queue != "support" || ct.Answered.IsZero() || !ct.Answered.After(ct.Start) || !ct.End.After(ct.Answered) {
		t.Errorf("contact = %+v", ct)
	}
	if talk := ct.End.Sub(ct.Answered); talk < time.Second {
		t.Errorf("talk time %s, the agent talked 1.5 s", talk)
	}
	a := s.router.Agents()[0]
	if a.Wrapping != 1 {
		t.Errorf("anna not in wrap-up: %+v", a)
	}
	testrun.Eventually(t, 5*time.Second, "the call counted as answered", func() bool {
		return s.counter(t, "dirigent_sip_calls_total", map[string]string{"outcome": "answered"}) == 1
	})
	_ = agent
}

// TestCallOverTCP: the caller's trunk speaks SIP over TCP; the call is
// answered, bridged to anna's (UDP) phone, and the agent's BYE reaches
// the caller over its TCP connection.
func TestCallOverTCP(t *testing.T) {
	s := startSite(t, testConfig(), "")
	s.registerAgent(t, "agent-answer.xml", "-d", "500")
	s.available(t, "anna")
	media := newCallerMedia(t)
	s.sipp(t, "caller.xml", "-t", "t1", "-p", strconv.Itoa(freeTCPAndUDPPort(t)), "-m", "1",
		"-key", "dialled", testNumber, "-key", "caller", "03055570001", "-key", "mip", "127.0.0.1", "-key", "mport", media.port()).wait(t, 20*time.Second)
	if hold, echo, _ := media.counts(); hold == 0 || echo == 0 {
		t.Errorf("hold audio %d packets, echoed %d", hold, echo)
	}
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055570001")
		return ct != nil && ct.Outcome == outcomeAnswered && ct.Note == "hung up by agent"
	})
}
