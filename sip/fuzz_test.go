package sip

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// FuzzParseSDP: any body a trunk or phone sends either parses into a
// usable offer or is an error; never a panic, never an offer without
// codecs.
func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(goodSDP))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"))
	f.Add([]byte("v=0\r\nm=audio 99999 RTP/AVP 0\r\n"))
	f.Add([]byte("v=0\nthis is not sdp\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSDP(body)
		if err != nil {
			if m != nil {
				t.Fatal("offer and error")
			}
			return
		}
		if len(m.codecs) == 0 {
			t.Fatal("offer without codecs")
		}
		for _, c := range m.codecs {
			if c != ptPCMU && c != ptPCMA {
				t.Fatalf("codec %d", c)
			}
		}
		if m.addr != nil && (m.addr.Port <= 0 || m.addr.Port > 65535) {
			t.Fatalf("port %d", m.addr.Port)
		}
	})
}

// FuzzDigest: any Authorization header is parsed and verified without a
// panic, and only the right password for a nonce of ours passes.
func FuzzDigest(f *testing.F) {
	n := newNonces(time.Now)
	f.Add(`Digest username="anna", realm="r", nonce="` + n.issue() + `", uri="sip:r", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="x"`)
	f.Add(`Digest username="anna"`)
	f.Add(`Basic YW5uYTpnZWhlaW0=`)
	f.Add(`Digest username="a\"b", nonce=, nc=zz`)
	f.Fuzz(func(t *testing.T, header string) {
		cr, err := parseCredentials(header)
		if err != nil {
			return
		}
		err = n.verify(cr, "r", "REGISTER", func(u string) (string, bool) { return "geheim", u == "anna" })
		if err == nil && cr.Username != "anna" {
			t.Fatalf("user %q passed", cr.Username)
		}
	})
}

// FuzzDTMF: SIP INFO bodies and telephone-event payloads give a keypad
// key or nothing.
func FuzzDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Add("Application/DTMF-Relay; charset=x", []byte("signal = 11"))
	f.Add("text/plain", []byte{0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		for _, got := range []func() (byte, bool){
			func() (byte, bool) { return parseDTMFInfo(ct, body) },
			func() (byte, bool) { return parseTelephoneEvent(body) },
		} {
			if d, ok := got(); ok && strings.IndexByte(keypad, d) < 0 {
				t.Fatalf("key %q", d)
			}
		}
	})
}

// FuzzScreenDatagram: whatever arrives over UDP either goes on to sipgo
// as a parsable message or is dropped, with at most a 400 that sipgo
// itself can parse back.
func FuzzScreenDatagram(f *testing.F) {
	f.Add([]byte("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\nCSeq: x\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add(bytes.Repeat([]byte("A"), 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := sip.NewParser()
		reply, pass := screenDatagram(data, p)
		if pass && reply != nil {
			t.Fatal("passed with a reply")
		}
		if reply != nil {
			res, err := sip.NewParser().ParseSIP(reply)
			if err != nil {
				t.Fatalf("our 400 does not parse: %v\n%q", err, reply)
			}
			if r, ok := res.(*sip.Response); !ok || r.StatusCode != 400 {
				t.Fatalf("reply %v", res)
			}
		}
	})
}

// FuzzParseWAV: configured audio files are read or refused with a
// reason.
func FuzzParseWAV(f *testing.F) {
	f.Add(defaultHold[:4096])
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseWAV(b)
		if err == nil && (len(s.pcmu) == 0 || len(s.pcmu)%samplesPerPacket != 0 || len(s.pcma) != len(s.pcmu)) {
			t.Fatalf("sound of %d samples", len(s.pcmu))
		}
		if err != nil && errors.Unwrap(err) == nil && err.Error() == "" {
			t.Fatal("error without a reason")
		}
	})
}
