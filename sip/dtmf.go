package sip

import (
	"bufio"
	"bytes"
	"strings"
)

// keypad maps RFC 4733 event codes 0–15 to keys.
const keypad = "0123456789*#ABCD"

// parseTelephoneEvent reads an RFC 4733 telephone-event payload and
// returns its key. All packets of one key press share an RTP timestamp;
// the caller reports each timestamp once.
func parseTelephoneEvent(p []byte) (byte, bool) {
	if len(p) < 4 || p[0] >= 16 {
		return 0, false
	}
	return keypad[p[0]], true
}

// maxInfoBody bounds a SIP INFO body with a key press.
const maxInfoBody = 1024

// parseDTMFInfo reads the key of a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func parseDTMFInfo(contentType string, body []byte) (byte, bool) {
	if len(body) > maxInfoBody {
		return 0, false
	}
	ct, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	switch strings.TrimSpace(ct) {
	case "application/dtmf-relay":
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				return key(strings.TrimSpace(v))
			}
		}
	case "application/dtmf":
		return key(strings.TrimSpace(string(body)))
	}
	return 0, false
}

func key(s string) (byte, bool) {
	if len(s) != 1 {
		// Some phones send the event code: "10" for *, "11" for #.
		switch s {
		case "10":
			return '*', true
		case "11":
			return '#', true
		}
		return 0, false
	}
	c := s[0]
	if c >= 'a' && c <= 'd' {
		c -= 'a' - 'A'
	}
	if strings.IndexByte(keypad, c) < 0 {
		return 0, false
	}
	return c, true
}
