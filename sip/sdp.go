package sip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
)

const (
	samplesPerPacket = 160 // 20 ms at 8 kHz
	ptime            = 20 * time.Millisecond
	// ptDTMF is the telephone-event payload type dirigent offers; in an
	// answer it takes the one the offer used.
	ptDTMF = 101
)

// errNoCodec: the offer has no codec dirigent speaks (488).
var errNoCodec = errors.New("no common codec: dirigent speaks PCMU and PCMA (G.711) only")

// mediaOffer is what dirigent takes from a peer's SDP.
type mediaOffer struct {
	addr   *net.UDPAddr // where to send RTP; nil while on hold (0.0.0.0)
	codecs []uint8      // PCMU/PCMA payload types, in the peer's order of preference
	dtmf   uint8        // telephone-event payload type; 0: none
	hold   bool         // sendonly or inactive: the peer put the call on hold
}

// maxSDPBytes bounds a session description; real ones are under 2 KiB.
const maxSDPBytes = 16 << 10

// parseSDP reads a peer's session description: the first audio stream on
// RTP/AVP, its address and which of PCMU, PCMA and telephone-event it
// offers. A description that is not SDP, or has no usable audio stream,
// is an error (400); one without G.711 is errNoCodec (488).
func parseSDP(body []byte) (*mediaOffer, error) {
	if len(body) == 0 {
		return nil, errors.New("no session description")
	}
	if len(body) > maxSDPBytes {
		return nil, fmt.Errorf("session description of %d bytes is too large", len(body))
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("malformed session description: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue // a refused stream
		}
		if !strings.HasPrefix(strings.Join(md.MediaName.Protos, "/"), "RTP/AVP") {
			continue
		}
		m := &mediaOffer{}
		ci := md.ConnectionInformation
		if ci == nil {
			ci = sd.ConnectionInformation
		}
		if ci == nil || ci.Address == nil {
			return nil, errors.New("audio stream without a connection address")
		}
		ip := net.ParseIP(ci.Address.Address)
		if ip == nil {
			return nil, fmt.Errorf("connection address %q is not an IP address", ci.Address.Address)
		}
		port := md.MediaName.Port.Value
		if port <= 0 || port > 65535 {
			return nil, fmt.Errorf("audio port %d out of range", port)
		}
		if !ip.IsUnspecified() {
			m.addr = &net.UDPAddr{IP: ip, Port: port}
		}
		names := map[uint8]string{}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, name, ok := strings.Cut(a.Value, " ")
				n, err := strconv.ParseUint(pt, 10, 7)
				if ok && err == nil {
					names[uint8(n)] = strings.ToLower(name)
				}
			case "sendonly", "inactive":
				m.hold = true
			}
		}
		for _, f := range md.MediaName.Formats {
			n, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			pt := uint8(n)
			name, mapped := names[pt]
			switch {
			case pt == ptPCMU && (!mapped || strings.HasPrefix(name, "pcmu/8000")),
				pt == ptPCMA && (!mapped || strings.HasPrefix(name, "pcma/8000")):
				m.codecs = append(m.codecs, pt)
			case strings.HasPrefix(name, "telephone-event/8000") && m.dtmf == 0:
				m.dtmf = pt
			}
		}
		if len(m.codecs) == 0 {
			return nil, errNoCodec
		}
		return m, nil
	}
	return nil, errors.New("no RTP audio stream in the session description")
}

var sdpVersion atomic.Uint64

// buildSDP describes dirigent's side of an audio stream: ip:port, codecs
// in order of preference, telephone-event when dtmf is set.
func buildSDP(ip net.IP, port int, codecs []uint8, dtmf uint8) []byte {
	id := uint64(time.Now().Unix()) + sdpVersion.Add(1)
	ipv := "IP4"
	if ip.To4() == nil {
		ipv = "IP6"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=dirigent %d %d IN %s %s\r\ns=dirigent\r\nc=IN %s %s\r\nt=0 0\r\n", id, id, ipv, ip, ipv, ip)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP", port)
	for _, c := range codecs {
		fmt.Fprintf(&b, " %d", c)
	}
	if dtmf != 0 {
		fmt.Fprintf(&b, " %d", dtmf)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		name := "PCMU"
		if c == ptPCMA {
			name = "PCMA"
		}
		fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", c, name)
	}
	if dtmf != 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmf, dtmf)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}
