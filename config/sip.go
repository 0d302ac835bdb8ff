package config

import (
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// sipProblems checks the [sip] section: listeners, accounts naming
// defined agents, trunks that can be told apart, numbers and menus naming
// defined queues.
func (c *Config) sipProblems(bad func(key, format string, args ...any)) {
	s := &c.SIP
	if s.TLSOn() {
		if err := checkListen(s.TLSListen); err != nil {
			bad("sip.tls_listen", "%v", err)
		}
		if s.TLSCert == "" || s.TLSKey == "" {
			bad("sip.tls_listen", "needs tls_cert and tls_key")
		}
	}
	if s.MediaIP != "" && net.ParseIP(s.MediaIP) == nil {
		bad("sip.media_ip", "%q is not an IP address", s.MediaIP)
	}
	if s.RTPPortMin < 1024 || s.RTPPortMax > 65535 || s.RTPPortMax-s.RTPPortMin < 2 {
		bad("sip.rtp_port_min", "RTP ports %d–%d: want a range within 1024–65535 of at least two ports", s.RTPPortMin, s.RTPPortMax)
	}
	if s.MinExpires.Duration < time.Second || s.MaxExpires.Duration < s.MinExpires.Duration {
		bad("sip.max_expires", "want 1s ≤ min_expires ≤ max_expires")
	}
	queues := map[string]bool{}
	for _, q := range c.Queues {
		if slices.Contains(q.Channels, "voice") {
			queues[q.Name] = true
		}
	}
	checkQueue := func(key, name string) {
		if !queues[name] {
			bad(key, "undefined queue %q, or it does not take voice", name)
		}
	}
	checkWAV := func(key, path string) {
		if path == "" {
			return
		}
		if _, err := os.Stat(path); err != nil {
			bad(key, "%v", err)
		}
	}
	checkWAV("sip.hold_audio", s.HoldAudio)
	for _, q := range sortedKeys(s.QueueHoldAudio) {
		checkQueue("sip.queue_hold_audio."+q, q)
		checkWAV("sip.queue_hold_audio."+q, s.QueueHoldAudio[q])
	}
	agents := map[string]bool{}
	for _, a := range c.Agents {
		agents[a.ID] = true
	}
	users := map[string]bool{}
	for i, u := range s.Users {
		at := fmt.Sprintf("sip.users[%d]", i)
		switch {
		case u.User == "" || !sipToken(u.User):
			bad(at+".user", "%q: want a SIP user name (letters, digits, - _ . !)", u.User)
		case users[u.User]:
			bad(at+".user", "user %q is defined twice", u.User)
		}
		users[u.User] = true
		if u.Password == "" {
			bad(at+".password", "missing")
		}
		if !agents[u.Agent] {
			bad(at+".agent", "undefined agent %q", u.Agent)
		}
	}
	trunks := map[string]bool{}
	for i, t := range s.Trunks {
		at := fmt.Sprintf("sip.trunks[%d]", i)
		if t.Name == "" || !namePattern.MatchString(t.Name) {
			bad(at+".name", "trunk name %q must be lower-case letters, digits, '-' or '_'", t.Name)
		} else if trunks[t.Name] {
			bad(at+".name", "trunk %q is defined twice", t.Name)
		}
		trunks[t.Name] = true
		checkAddrs(at+".cidrs", t.CIDRs, netAddr, bad)
		if len(t.CIDRs) == 0 && t.User == "" {
			bad(at, "accepts nothing: give cidrs, user and password, or both")
		}
		if (t.User == "") != (t.Password == "") {
			bad(at+".password", "user and password go together")
		}
	}
	menus := map[string]bool{}
	for _, m := range s.IVR {
		menus[m.Name] = true
	}
	seen := map[string]bool{}
	for i, m := range s.IVR {
		at := fmt.Sprintf("sip.ivr[%d]", i)
		if m.Name == "" || !namePattern.MatchString(m.Name) {
			bad(at+".name", "menu name %q must be lower-case letters, digits, '-' or '_'", m.Name)
		} else if seen[m.Name] {
			bad(at+".name", "menu %q is defined twice", m.Name)
		}
		seen[m.Name] = true
		checkWAV(at+".prompt", m.Prompt)
		if m.Timeout.Duration < time.Second {
			bad(at+".timeout", "at least 1s")
		}
		checkQueue(at+".default", m.Default)
		for _, d := range sortedKeys(m.Digits) {
			if len(d) != 1 || !slices.Contains([]byte("0123456789*#"), d[0]) {
				bad(at+".digits."+d, "%q is not a keypad key (0–9, * or #)", d)
			}
			checkQueue(at+".digits."+d, m.Digits[d])
		}
	}
	numbers := map[string]bool{}
	for i, n := range s.Numbers {
		at := fmt.Sprintf("sip.numbers[%d]", i)
		if _, err := phonenumbers.Parse(n.Number, c.Journey.Region); err != nil {
			bad(at+".number", "%q is not a phone number", n.Number)
		} else if numbers[n.Number] {
			bad(at+".number", "number %q is defined twice", n.Number)
		}
		numbers[n.Number] = true
		switch {
		case n.IVR != "":
			if !menus[n.IVR] {
				bad(at+".ivr", "undefined menu %q", n.IVR)
			}
		case n.Queue != "":
			checkQueue(at+".queue", n.Queue)
		default:
			bad(at, "goes nowhere: give queue or ivr")
		}
	}
}

// sipToken reports whether s may stand unquoted as the user part of a
// SIP URI, so that headers built from it stay well-formed.
func sipToken(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-' || r == '_' || r == '.' || r == '!' || r == '~' || r == '+':
		default:
			return false
		}
	}
	return true
}
