package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Chat is the web chat (and SIP MESSAGE) entrance of the message channel.
type Chat struct {
	// Listen is the customer-facing HTTP listener of the widget and its
	// WebSocket, apart from the desk so that a site can expose only it.
	Listen string `toml:"listen"`
	// TLSCert and TLSKey (PEM files) have the widget and its WebSocket
	// served over HTTPS (pages on https sites need wss); a reload reads
	// them again.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// AllowedOrigins are the web sites (scheme://host[:port]) whose pages
	// may open a chat; empty allows only pages served by Listen itself.
	AllowedOrigins []string `toml:"allowed_origins"`
	// Queue takes chats whose widget names no queue taking messages and
	// that no intent rule sends elsewhere. Default: the first queue that
	// takes messages; none turns the chat off.
	Queue string `toml:"queue"`
	// TimeZone the opening hours are in (an IANA name); default the
	// system's.
	TimeZone string `toml:"time_zone"`
	// Limits: bytes per message, messages per minute per session, open
	// sessions per customer IP address.
	MaxMessageBytes   int `toml:"max_message_bytes"`
	MessagesPerMinute int `toml:"messages_per_minute"`
	MaxSessionsPerIP  int `toml:"max_sessions_per_ip"`
	// TrustedProxies are the reverse proxies (addresses or CIDRs) in front
	// of Listen whose X-Forwarded-For names the customer's address.
	TrustedProxies []string `toml:"trusted_proxies"`
	// IdleTimeout ends a session whose customer is gone and in which
	// nobody wrote for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// Queues set opening hours and texts per queue.
	Queues []ChatQueue `toml:"queues"`
}

// On reports whether the chat runs: only while a queue takes its
// messages.
func (c *Chat) On() bool { return c.Queue != "" }

// ChatQueue is how one queue answers chats: when it is open, and what a
// customer reads when it is closed or nobody is there.
type ChatQueue struct {
	Name string `toml:"name"`
	// Hours such as "Mo-Fr 08:00-18:00; Sa 09:00-13:00"; empty: always.
	Hours string `toml:"hours"`
	// Texts in German and English; empty: the built-in ones.
	ClosedDE string `toml:"closed_message_de"`
	ClosedEN string `toml:"closed_message_en"`
	NobodyDE string `toml:"nobody_message_de"`
	NobodyEN string `toml:"nobody_message_en"`
}

// Location is the time zone of the chat's opening hours.
func (c Chat) Location() *time.Location {
	if c.TimeZone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.Local // Validate has reported it
	}
	return loc
}

func (c *Config) chatDefaults() {
	ch := &c.Chat
	if ch.Listen == "" {
		ch.Listen = "127.0.0.1:8081"
	}
	if ch.Queue == "" {
		for _, q := range c.Queues {
			if slices.Contains(q.Channels, "message") {
				ch.Queue = q.Name
				break
			}
		}
	}
	if ch.MaxMessageBytes == 0 {
		ch.MaxMessageBytes = 4096
	}
	if ch.MessagesPerMinute == 0 {
		ch.MessagesPerMinute = 30
	}
	if ch.MaxSessionsPerIP == 0 {
		ch.MaxSessionsPerIP = 10
	}
	if ch.IdleTimeout.Duration == 0 {
		ch.IdleTimeout.Duration = 30 * time.Minute
	}
}

// chatProblems checks the [chat] section.
func (c *Config) chatProblems(bad func(key, format string, args ...any)) {
	ch := &c.Chat
	if err := checkListen(ch.Listen); err != nil {
		bad("chat.listen", "%v", err)
	}
	for i, o := range ch.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			bad(fmt.Sprintf("chat.allowed_origins[%d]", i), "%q is not an origin: want scheme://host[:port], e.g. https://www.example.com", o)
		}
	}
	messageQueues := map[string]bool{}
	for _, q := range c.Queues {
		if slices.Contains(q.Channels, "message") {
			messageQueues[q.Name] = true
		}
	}
	if c.given("chat.queue") && !messageQueues[ch.Queue] {
		bad("chat.queue", "undefined queue %q, or it does not take messages", ch.Queue)
	}
	if ch.TimeZone != "" {
		if _, err := time.LoadLocation(ch.TimeZone); err != nil {
			bad("chat.time_zone", "unknown time zone %q (want an IANA name such as Europe/Berlin)", ch.TimeZone)
		}
	}
	if ch.MaxMessageBytes < 64 || ch.MaxMessageBytes > 1<<20 {
		bad("chat.max_message_bytes", "%d out of range 64–1048576", ch.MaxMessageBytes)
	}
	if ch.MessagesPerMinute < 1 {
		bad("chat.messages_per_minute", "at least 1")
	}
	if ch.MaxSessionsPerIP < 1 {
		bad("chat.max_sessions_per_ip", "at least 1")
	}
	checkAddrs("chat.trusted_proxies", ch.TrustedProxies, netipAddr, bad)
	if ch.IdleTimeout.Duration < time.Minute {
		bad("chat.idle_timeout", "at least 1m")
	}
	seen := map[string]bool{}
	for i, q := range ch.Queues {
		at := fmt.Sprintf("chat.queues[%d]", i)
		switch {
		case !messageQueues[q.Name]:
			bad(at+".name", "undefined queue %q, or it does not take messages", q.Name)
		case seen[q.Name]:
			bad(at+".name", "queue %q is listed twice", q.Name)
		}
		seen[q.Name] = true
		if _, err := ParseHours(q.Hours, time.UTC); err != nil {
			bad(at+".hours", "%v", err)
		}
	}
}

// OpeningHours says when a queue is open, in one time zone.
type OpeningHours struct {
	loc  *time.Location
	days [7][][2]int // by time.Weekday: [from, to) in minutes of the day
}

var weekdays = map[string]time.Weekday{
	"mo": time.Monday, "tu": time.Tuesday, "di": time.Tuesday, "we": time.Wednesday, "mi": time.Wednesday,
	"th": time.Thursday, "do": time.Thursday, "fr": time.Friday, "sa": time.Saturday, "su": time.Sunday, "so": time.Sunday,
}

// ParseHours reads opening hours such as "Mo-Fr 08:00-18:00; Sa
// 09:00-13:00": rules separated by ";", each days (a day, a range Mo-Fr,
// or a list Mo,We) and one or more times HH:MM-HH:MM (24:00 ends the day).
// Days are German or English two-letter abbreviations. Empty is always
// open (nil).
func ParseHours(s string, loc *time.Location) (*OpeningHours, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	h := &OpeningHours{loc: loc}
	for rule := range strings.SplitSeq(s, ";") {
		fields := strings.Fields(rule)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%q: want days and times, e.g. \"Mo-Fr 08:00-18:00\"", strings.TrimSpace(rule))
		}
		days, err := parseDays(fields[0])
		if err != nil {
			return nil, err
		}
		for _, span := range fields[1:] {
			from, to, ok := strings.Cut(span, "-")
			f, err1 := parseClock(from)
			t, err2 := parseClock(to)
			if !ok || err1 != nil || err2 != nil || f >= t {
				return nil, fmt.Errorf("%q: want a time span HH:MM-HH:MM with the start before the end", span)
			}
			for _, d := range days {
				h.days[d] = append(h.days[d], [2]int{f, t})
			}
		}
	}
	return h, nil
}

func parseDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for part := range strings.SplitSeq(strings.ToLower(s), ",") {
		from, to, isRange := strings.Cut(part, "-")
		f, ok1 := weekdays[from]
		t, ok2 := weekdays[to]
		if !ok1 || isRange && !ok2 {
			return nil, fmt.Errorf("%q: want days such as Mo, Mo-Fr or Sa,So (German or English)", s)
		}
		if !isRange {
			out = append(out, f)
			continue
		}
		for d := f; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == t {
				break
			}
		}
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(hh) != 2 || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}

// Open reports whether t falls within the hours; nil hours are always
// open.
func (h *OpeningHours) Open(t time.Time) bool {
	if h == nil {
		return true
	}
	t = t.In(h.loc)
	m := t.Hour()*60 + t.Minute()
	for _, span := range h.days[t.Weekday()] {
		if m >= span[0] && m < span[1] {
			return true
		}
	}
	return false
}
