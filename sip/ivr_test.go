package sip

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"

	"dirigent/internal/testrun"
)

// sendDigit sends key as an RFC 4733 telephone-event (payload type 101,
// as caller.xml offers): three packets of one event, the last marked
// end, as phones send them.
func (m *callerMedia) sendDigit(t *testing.T, key byte) {
	t.Helper()
	m.mu.Lock()
	dst := m.dirigent
	m.mu.Unlock()
	if dst == nil {
		t.Fatal("no audio from dirigent yet")
	}
	code := byte(len(keypad))
	for i := range keypad {
		if keypad[i] == key {
			code = byte(i)
		}
	}
	for i := range 3 {
		flags := byte(10) // volume
		if i == 2 {
			flags |= 0x80
		}
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: uint16(30000 + i), Timestamp: 777, SSRC: callerSSRC, Marker: i == 0},
			Payload: []byte{code, flags, 0, byte(160 * (i + 1))}}
		b, _ := p.Marshal()
		m.conn.WriteToUDP(b, dst)
	}
}

// ivrConfig adds the IVR number +49301234501 whose menu plays a half
// second tone as its prompt.
func ivrConfig(t *testing.T) Config {
	cfg := testConfig()
	cfg.Numbers = append(cfg.Numbers, Number{Number: "+49301234501", IVR: "main"})
	prompt := filepath.Join(t.TempDir(), "prompt.wav")
	if err := os.WriteFile(prompt, toneWAV(440, 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Menus = []Menu{{Name: "main", Prompt: prompt, Timeout: time.Second, Default: "support", Digits: map[string]string{"2": "billing"}}}
	return cfg
}

// toneWAV is an 8 kHz mono 16-bit WAV file of n samples of a sine.
func toneWAV(hz float64, n int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, le, v)
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(2*n))
	for i := range n {
		binary.Write(&b, le, int16(8000*math.Sin(2*math.Pi*hz*float64(i)/8000)))
	}
	return b.Bytes()
}

// TestIVRTelephoneEvent: a caller to the IVR number hears the prompt,
// presses 2 (RFC 4733) and waits in the billing queue.
func TestIVRTelephoneEvent(t *testing.T) {
	s := startSite(t, ivrConfig(t), "")
	media := newCallerMedia(t)
	caller := s.sipp(t, "caller-hangup.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "2500",
		"-key", "dialled", "+49301234501", "-key", "caller", "03055520001", "-key", "mip", "127.0.0.1", "-key", "mport", media.port())
	testrun.Eventually(t, 5*time.Second, "the prompt plays", func() bool { h, _, _ := media.counts(); return h >= 10 })
	media.sendDigit(t, '2')
	testrun.Eventually(t, 5*time.Second, "the call waits in billing", func() bool {
		for _, q := range s.router.Stats() {
			if q.Queue == "billing" && q.Waiting == 1 {
				return true
			}
		}
		return false
	})
	caller.wait(t, 10*time.Second)
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055520001")
		return ct != nil && ct.Queue == "billing" && ct.Outcome == outcomeAbandoned
	})
}

// TestIVRInfoAndTimeout: a key sent as SIP INFO (application/dtmf-relay)
// chooses the queue too; a caller who presses nothing goes to the
// menu's default queue once the prompt and the timeout have passed.
func TestIVRInfoAndTimeout(t *testing.T) {
	s := startSite(t, ivrConfig(t), "")
	media := newCallerMedia(t)
	caller := s.sipp(t, "caller-info.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1",
		"-key", "dialled", "+49301234501", "-key", "caller", "03055520002", "-key", "mip", "127.0.0.1", "-key", "mport", media.port())
	caller.wait(t, 15*time.Second)
	testrun.Eventually(t, 5*time.Second, "the INFO caller's contact completed", func() bool {
		ct := s.callerContact(t, "03055520002")
		return ct != nil && ct.Queue == "billing" && !ct.End.IsZero()
	})

	media2 := newCallerMedia(t)
	// Prompt and timeout take 1.5 s.
	silent := s.sipp(t, "caller-hangup.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "3000",
		"-key", "dialled", "+49301234501", "-key", "caller", "03055520003", "-key", "mip", "127.0.0.1", "-key", "mport", media2.port())
	testrun.Eventually(t, 5*time.Second, "the silent caller waits in support", func() bool {
		for _, q := range s.router.Stats() {
			if q.Queue == "support" && q.Waiting == 1 {
				return true
			}
		}
		return false
	})
	silent.wait(t, 15*time.Second)
}
