package config

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate reports every bad value and every reference to an undefined
// skill or queue, joined; nil when the configuration is usable.
func (c *Config) Validate() error {
	return errors.Join(c.problems()...)
}

// fileProblems reads the certificates and keys the listeners will serve,
// as the daemon will read them: a key the daemon's user cannot read stops
// check-config, a start and a reload as a configuration error (a start
// then exits 2, and systemd does not restart it in a loop). Admin
// commands do not read them.
func (c *Config) fileProblems() []error {
	var errs []error
	for _, tc := range c.certificates() {
		if tc.cert == "" || tc.key == "" || !tc.served {
			continue
		}
		if _, err := tls.LoadX509KeyPair(tc.cert, tc.key); err != nil {
			errs = append(errs, c.errorf(tc.section+".tls_key", "certificate %s with key %s: %v", tc.cert, tc.key, err))
		}
	}
	return errs
}

// certificate is a section's certificate and key files, and whether its
// listener serves them: SIP only on sip.tls_listen, the chat only while
// a queue takes messages (else it is off).
type certificate struct {
	section, cert, key string
	served             bool
}

func (c *Config) certificates() []certificate {
	return []certificate{
		{"sip", c.SIP.TLSCert, c.SIP.TLSKey, c.SIP.TLSOn()},
		{"mail", c.Mail.TLSCert, c.Mail.TLSKey, true},
		{"desk", c.Desk.TLSCert, c.Desk.TLSKey, true},
		{"chat", c.Chat.TLSCert, c.Chat.TLSKey, c.Chat.On()},
	}
}

func (c *Config) problems() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errorf(key, format, args...))
	}

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	if c.Daemon.DrainTimeout.Duration < 0 {
		bad("daemon.drain_timeout", "must not be negative")
	}
	if c.Storage.LockTimeout.Duration < 0 {
		bad("storage.lock_timeout", "must not be negative")
	}
	listeners := map[string]string{
		"desk.listen":      c.Desk.Listen,
		"sip.listen":       c.SIP.Listen,
		"mail.smtp_listen": c.Mail.SMTPListen,
	}
	for _, key := range sortedKeys(listeners) {
		if other := listeners[key]; other == c.Chat.Listen && !strings.HasSuffix(other, ":0") {
			bad("chat.listen", "%s is already %s", other, key)
		}
	}
	for _, key := range sortedKeys(listeners) {
		if err := checkListen(listeners[key]); err != nil {
			bad(key, "%v", err)
		}
	}

	if c.Routing.OfferTimeout.Duration <= 0 {
		bad("routing.offer_timeout", "must be positive")
	}
	if c.Routing.MaxMissedOffers < 0 {
		bad("routing.max_missed_offers", "must not be negative (0 turns auto-away off)")
	}
	if c.Routing.RetryDelay.Duration < 0 {
		bad("routing.retry_delay", "must not be negative")
	}

	if phonenumbers.GetCountryCodeForRegion(c.Journey.Region) == 0 {
		bad("journey.region", "%q is not an ISO 3166 country code such as DE, AT or CH", c.Journey.Region)
	}
	if p := c.Journey.MinConfidence; p < 0 || p > 1 {
		bad("journey.min_confidence", "%v out of range: a probability from 0 to 1", p)
	}
	if c.Journey.RetrainInterval.Duration < time.Minute {
		bad("journey.retrain_interval", "at least 1m: retraining reads every contact")
	}
	if r := c.Journey.TextRetention.Duration; r < 0 || r > 0 && r < 24*time.Hour {
		bad("journey.text_retention", "at least 24h, or 0s to keep texts for ever")
	}
	if c.Journey.RepeatWindow.Duration < 0 {
		bad("journey.repeat_window", "must not be negative (0 turns repeat-contact detection off)")
	}

	// checkName reports a missing, malformed or repeated name.
	checkName := func(key, what, name string, seen map[string]bool) {
		switch {
		case name == "":
			bad(key, "missing")
		case !namePattern.MatchString(name):
			bad(key, "%s %q must be lower-case letters, digits, '-' or '_'", what, name)
		case seen[name]:
			bad(key, "%s %q is defined twice", what, name)
		}
		seen[name] = true
	}

	for i, a := range c.Mail.Addresses {
		if at := strings.LastIndexByte(a, '@'); at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " <>") {
			bad(fmt.Sprintf("mail.addresses[%d]", i), "%q is not an e-mail address", a)
		}
	}
	for i, d := range c.Mail.Domains {
		if d == "" || strings.ContainsAny(d, "@ ") || !strings.Contains(d, ".") && d != "localhost" {
			bad(fmt.Sprintf("mail.domains[%d]", i), "%q is not a domain", d)
		}
	}
	if c.Mail.MaxMessageBytes < 1024 {
		bad("mail.max_message_bytes", "at least 1024")
	}
	if c.Mail.SmarthostMaxBytes < 1<<16 {
		bad("mail.smarthost_max_bytes", "at least 65536")
	}
	if c.Mail.MaxConnectionsPerIP < 1 {
		bad("mail.max_connections_per_ip", "at least 1")
	}
	if c.Mail.MessagesPerMinutePerIP < 1 {
		bad("mail.messages_per_minute_per_ip", "at least 1")
	}
	if c.Mail.Smarthost != "" {
		if _, _, err := net.SplitHostPort(c.Mail.Smarthost); err != nil {
			bad("mail.smarthost", "%q: want host:port, e.g. mail.example.com:587", c.Mail.Smarthost)
		}
		if c.Mail.From == "" {
			bad("mail.from", "missing: the address replies come from")
		}
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, c.Mail.SmarthostTLS) {
		bad("mail.smarthost_tls", "%q: want starttls, tls or none", c.Mail.SmarthostTLS)
	}
	mailboxes := map[string]bool{}
	for i, mb := range c.Mail.IMAP {
		at := fmt.Sprintf("mail.imap[%d]", i)
		checkName(at+".name", "mailbox", mb.Name, mailboxes)
		if _, _, err := net.SplitHostPort(mb.Server); err != nil {
			bad(at+".server", "%q: want host:port, e.g. imap.example.com:993", mb.Server)
		}
		if !slices.Contains([]string{"tls", "starttls", "none"}, mb.TLS) {
			bad(at+".tls", "%q: want tls, starttls or none", mb.TLS)
		}
		if mb.User == "" {
			bad(at+".user", "missing")
		}
		if mb.Poll.Duration < 5*time.Second {
			bad(at+".poll", "at least 5s")
		}
	}
	for _, tc := range c.certificates() {
		switch {
		case tc.cert == "" && tc.key == "":
		case tc.key == "":
			bad(tc.section+".tls_cert", "needs tls_key too")
		case tc.cert == "":
			bad(tc.section+".tls_key", "needs tls_cert too")
		}
	}

	tokenNames := map[string]bool{}
	for i, tok := range c.Desk.APITokens {
		at := fmt.Sprintf("desk.api_tokens[%d]", i)
		checkName(at+".name", "token", tok.Name, tokenNames)
		if b, err := hex.DecodeString(tok.SHA256); err != nil || len(b) != sha256.Size {
			bad(at+".sha256", "want the 64 hex digits `dirigent token new` prints")
		}
	}
	for _, list := range []struct {
		key, what string
		names     []string
	}{
		{"desk.supervisors", "login", c.Desk.Supervisors},
		{"desk.admins", "login", c.Desk.Admins},
		{"desk.away_reasons", "away reason", c.Desk.AwayReasons},
		{"desk.wrap_codes", "wrap-up code", c.Desk.WrapCodes},
	} {
		seen := map[string]bool{}
		for i, n := range list.names {
			checkName(fmt.Sprintf("%s[%d]", list.key, i), list.what, n, seen)
		}
	}
	if len(c.Desk.WrapCodes) == 0 {
		bad("desk.wrap_codes", "at least one code: agents end every task with one")
	}
	if c.Desk.SessionTimeout.Duration < time.Minute {
		bad("desk.session_timeout", "at least 1m")
	}
	checkAddrs("desk.trusted_proxies", c.Desk.TrustedProxies, netipAddr, bad)

	skills := map[string]bool{}
	for i, s := range c.Skills {
		key := fmt.Sprintf("skills[%d]", i)
		switch {
		case !namePattern.MatchString(s):
			bad(key, "skill name %q must be lower-case letters, digits, '-' or '_'", s)
		case skills[s]:
			bad(key, "skill %q is defined twice", s)
		}
		skills[s] = true
	}
	checkSkills := func(at string, m map[string]int) {
		for _, s := range sortedKeys(m) {
			key := at + "." + s
			if !skills[s] {
				bad(key, "undefined skill %q (define it in skills)", s)
			}
			if p := m[s]; p < 1 || p > 5 {
				bad(key, "proficiency %d out of range 1–5", p)
			}
		}
	}

	agents := map[string]bool{}
	for i, a := range c.Agents {
		at := fmt.Sprintf("agents[%d]", i)
		checkName(at+".id", "agent", a.ID, agents)
		checkSkills(at+".skills", a.Skills)
		for ch, n := range map[string]int{"voice": a.Capacity.Voice, "email": a.Capacity.Email, "message": a.Capacity.Message} {
			if n < 0 || n > 100 {
				bad(at+".capacity."+ch, "capacity %d out of range 0–100", n)
			}
		}
	}

	queues := map[string]bool{}
	for _, q := range c.Queues {
		queues[q.Name] = true
	}
	seen := map[string]bool{}
	for i, q := range c.Queues {
		at := fmt.Sprintf("queues[%d]", i)
		checkName(at+".name", "queue", q.Name, seen)
		checkSkills(at+".skills", q.Skills)
		for j, ch := range q.Channels {
			if !slices.Contains(Channels, ch) {
				bad(fmt.Sprintf("%s.channels[%d]", at, j), "unknown channel %q (want %s)", ch, strings.Join(Channels, ", "))
			}
		}
		if !slices.Contains(Strategies, q.Strategy) {
			bad(at+".strategy", "unknown strategy %q (want %s)", q.Strategy, strings.Join(Strategies, ", "))
		}
		if q.ServiceLevelThreshold.Duration < 0 {
			bad(at+".service_level_threshold", "must not be negative")
		}
		if t := q.ServiceLevelTarget; t <= 0 || t > 1 {
			bad(at+".service_level_target", "%v out of range: a share above 0 and at most 1 (0.8 = 80 %%)", t)
		}
		if q.WrapUp.Duration < 0 {
			bad(at+".wrap_up", "must not be negative")
		}
		if q.MaxWait.Duration < 0 {
			bad(at+".max_wait", "must not be negative")
		}
		if q.LastAgentWait.Duration < 0 {
			bad(at+".last_agent_wait", "must not be negative")
		}
		var after time.Duration
		for j, w := range q.Widening {
			wat := fmt.Sprintf("%s.widening[%d]", at, j)
			if w.After.Duration <= after {
				bad(wat+".after", "each widening step must come later than the one before (and after 0s)")
			}
			after = w.After.Duration
			if len(w.Skills) == 0 {
				bad(wat+".skills", "missing: the skills required from this step on")
			}
			checkSkills(wat+".skills", w.Skills)
		}
		switch {
		case q.OverflowQueue == "":
		case !queues[q.OverflowQueue]:
			bad(at+".overflow_queue", "undefined queue %q", q.OverflowQueue)
		case q.OverflowQueue == q.Name:
			bad(at+".overflow_queue", "a queue cannot overflow into itself")
		case q.MaxWait.Duration == 0:
			bad(at+".overflow_queue", "needs max_wait: without a limit nothing ever overflows")
		}
	}
	if c.given("mail.queue") {
		i := slices.IndexFunc(c.Queues, func(q Queue) bool { return q.Name == c.Mail.Queue })
		switch {
		case i < 0:
			bad("mail.queue", "undefined queue %q", c.Mail.Queue)
		case !slices.Contains(c.Queues[i].Channels, "email"):
			bad("mail.queue", "queue %q does not take email (see its channels)", c.Mail.Queue)
		}
	} else if c.Mail.Queue == "" && len(c.Mail.Addresses)+len(c.Mail.Domains) > 0 {
		bad("mail.queue", "mail is accepted but no queue takes email")
	}

	intents := map[string]bool{}
	for i, in := range c.Intents {
		at := fmt.Sprintf("intents[%d]", i)
		checkName(at+".name", "intent", in.Name, intents)
		if !queues[in.Queue] {
			bad(at+".queue", "undefined queue %q", in.Queue)
		}
		if len(in.Subject)+len(in.Body)+len(in.Recipients)+len(in.Dialled) == 0 {
			bad(at, "matches nothing: give subject, body, recipients or dialled")
		}
		for j, d := range in.Dialled {
			if _, err := phonenumbers.Parse(d, c.Journey.Region); err != nil {
				bad(fmt.Sprintf("%s.dialled[%d]", at, j), "%q is not a phone number", d)
			}
		}
	}
	c.sipProblems(bad)
	c.chatProblems(bad)
	for i, a := range c.Actions {
		at := fmt.Sprintf("next_best_actions[%d]", i)
		if strings.TrimSpace(a.Text) == "" {
			bad(at+".action", "missing: the text the agent sees")
		}
		if strings.TrimSpace(a.Reason) == "" {
			bad(at+".reason", "missing: why the agent should do it")
		}
		for j, name := range a.Intents {
			if !intents[name] {
				bad(fmt.Sprintf("%s.intents[%d]", at, j), "undefined intent %q", name)
			}
		}
		for j, ch := range a.Channels {
			if !slices.Contains(Channels, ch) {
				bad(fmt.Sprintf("%s.channels[%d]", at, j), "unknown channel %q (want %s)", ch, strings.Join(Channels, ", "))
			}
		}
	}
	return errs
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: want host:port, e.g. 127.0.0.1:8080 or [::]:5060", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("listen address %q: host must be an IP address or empty for all", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("listen address %q: port must be 0–65535", addr)
	}
	return nil
}

// checkAddrs reports each entry of the list at key that valid refuses:
// netAddr for what the net package parses (SIP trunks), netipAddr for
// net/netip (trusted proxies), each as its user parses it.
func checkAddrs(key string, list []string, valid func(string) bool, bad func(key, format string, args ...any)) {
	for i, s := range list {
		if !valid(s) {
			bad(fmt.Sprintf("%s[%d]", key, i), "%q is not an address or CIDR such as 192.0.2.0/24", s)
		}
	}
}

func netAddr(s string) bool {
	_, _, err := net.ParseCIDR(s)
	return err == nil || net.ParseIP(s) != nil
}

func netipAddr(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == "" // a zone names a link, not a proxy
}
