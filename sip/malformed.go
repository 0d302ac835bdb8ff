package sip

import (
	"bytes"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// maxDatagram is the largest SIP message taken over UDP; a larger one
// (or one cut off at the read buffer) is refused with 400.
const maxDatagram = 16 << 10

// screenDatagram checks a UDP datagram before sipgo parses it, because
// sipgo drops what it cannot parse without a word. A request that is too
// large or does not parse gets a 400 built from whatever header lines
// can be found, so the sender learns why instead of retransmitting; the
// datagram is then dropped. It returns the reply to send (nil: none) and
// whether to hand the datagram on.
func screenDatagram(data []byte, parser *sip.Parser) (reply []byte, pass bool) {
	if len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return nil, true // keep-alive
	}
	if len(data) <= maxDatagram && bytes.HasPrefix(data, []byte("SIP/2.0 ")) {
		// A response: nothing could be answered to a broken one, so it
		// is left to sipgo, which drops what it cannot parse, and half
		// the traffic is parsed once instead of twice.
		return nil, true
	}
	reason := ""
	if len(data) > maxDatagram {
		reason = "Message Too Large"
	} else if _, err := parser.ParseSIP(data); err != nil {
		reason = "Malformed Message"
	}
	if reason == "" {
		return nil, true
	}
	return badRequest(data, reason, parser), false
}

// badRequest answers a request that could not be parsed with what RFC
// 3261 8.2 needs to match it: its Via, From, To, Call-ID and CSeq lines.
// Header lines that are malformed themselves are left out. Responses,
// and what does not look like a request at all, get nothing.
func badRequest(data []byte, reason string, parser *sip.Parser) []byte {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	if len(lines) < 2 {
		return nil
	}
	first := strings.Fields(lines[0])
	if len(first) != 3 || first[2] != "SIP/2.0" || strings.HasPrefix(first[0], "SIP/") || first[0] == "ACK" {
		return nil
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 400 " + reason + "\r\n")
	copied := false
	for _, l := range lines[1:] {
		name, _, ok := strings.Cut(l, ":")
		if !ok || len(l) > 1024 {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			if _, err := parser.ParseSIP([]byte("SIP/2.0 400 X\r\n" + l + "\r\nContent-Length: 0\r\n\r\n")); err != nil {
				continue
			}
			b.WriteString(l + "\r\n")
			copied = true
		}
	}
	if !copied {
		return nil
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}
