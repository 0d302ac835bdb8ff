package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// DefaultName is the file name errors use for the embedded default.
const DefaultName = "(embedded default)"

//go:embed default.toml
var defaultTOML []byte

// Config is the whole configuration of one dirigent process.
type Config struct {
	Daemon  Daemon   `toml:"daemon"`
	Log     Log      `toml:"log"`
	Storage Storage  `toml:"storage"`
	Control Control  `toml:"control"`
	Desk    Desk     `toml:"desk"`
	SIP     SIP      `toml:"sip"`
	Mail    Mail     `toml:"mail"`
	Chat    Chat     `toml:"chat"`
	Routing Routing  `toml:"routing"`
	Journey Journey  `toml:"journey"`
	Skills  []string `toml:"skills"`
	Agents  []Agent  `toml:"agents"`
	Queues  []Queue  `toml:"queues"`
	Intents []Intent `toml:"intents"`
	Actions []Action `toml:"next_best_actions"`

	file string
	pos  positions
}

// Daemon holds process-wide settings.
type Daemon struct {
	// DrainTimeout bounds a graceful stop: work in progress gets this long
	// to finish after SIGTERM before the process exits anyway.
	DrainTimeout Duration `toml:"drain_timeout"`
}

// Log selects the slog handler.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Storage locates the bbolt file.
type Storage struct {
	// Dir holds dirigent.db. Empty means $STATE_DIRECTORY (set by systemd's
	// StateDirectory=) or ./dirigent-data.
	Dir string `toml:"dir"`
	// LockTimeout is how long a starting daemon waits for the file lock
	// before it gives up because another dirigent holds the store.
	LockTimeout Duration `toml:"lock_timeout"`
}

// Control is the local admin socket (backups and other admin commands).
type Control struct {
	// Socket is a unix socket path. Empty means $RUNTIME_DIRECTORY/control.sock
	// (systemd's RuntimeDirectory=) or control.sock in the storage dir.
	Socket string `toml:"socket"`
}

// Desk is the HTTP server: agent desktop, API, /metrics, /healthz, /readyz.
type Desk struct {
	Listen string `toml:"listen"`
	// TLSCert and TLSKey (PEM files) have the desk speak HTTPS; a reload
	// reads them again.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// APITokens let other systems (a web shop, a survey tool) use the API.
	APITokens []APIToken `toml:"api_tokens"`
	// Desk logins: every agent id logs in as an agent; these names also
	// (or only) log in as supervisors (wallboard) and admins (skills and
	// presence of others). Passwords are set with `dirigent passwd NAME`.
	Supervisors []string `toml:"supervisors"`
	Admins      []string `toml:"admins"`
	// AwayReasons an agent picks from when going away.
	AwayReasons []string `toml:"away_reasons"`
	// WrapCodes an agent ends a task with; the code becomes the contact's
	// outcome (journey.resolved_outcomes says which ones resolve).
	WrapCodes []string `toml:"wrap_codes"`
	// SessionTimeout logs a desk session out after this long without a
	// request.
	SessionTimeout Duration `toml:"session_timeout"`
	// TrustedProxies are the reverse proxies (addresses or CIDRs) in front
	// of the desk whose X-Forwarded-For names the browser's address.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// APIToken is one system's bearer token, stored as its SHA-256 so that the
// file does not hold the secret (`dirigent token new NAME` makes both).
type APIToken struct {
	Name   string `toml:"name"`
	SHA256 string `toml:"sha256"`
}

// SIP is the voice channel: its listeners, the agents' phones, the trunks
// calls come in on, and what callers hear.
type SIP struct {
	// Listen is served over UDP and TCP on the same address.
	Listen string `toml:"listen"`
	// TLSListen, with TLSCert and TLSKey (PEM files), adds SIP over TLS.
	TLSListen string `toml:"tls_listen"`
	TLSCert   string `toml:"tls_cert"`
	TLSKey    string `toml:"tls_key"`
	// Realm is the digest authentication realm phones are challenged in.
	Realm string `toml:"realm"`
	// MediaIP is the address put into SDP for RTP (the address phones
	// and trunks reach dirigent at). Default: the listen address, or
	// 127.0.0.1 when that is unspecified.
	MediaIP string `toml:"media_ip"`
	// RTPPortMin and RTPPortMax bound the UDP ports used for RTP.
	RTPPortMin int `toml:"rtp_port_min"`
	RTPPortMax int `toml:"rtp_port_max"`
	// MaxExpires caps a registration's lifetime; MinExpires is the
	// shortest accepted (shorter gets 423 Interval Too Brief).
	MaxExpires Duration `toml:"max_expires"`
	MinExpires Duration `toml:"min_expires"`
	// HoldAudio is a WAV file (8 kHz, 16-bit, mono) callers hear while
	// they wait; empty: the shipped default. QueueHoldAudio overrides it
	// per queue.
	HoldAudio      string            `toml:"hold_audio"`
	QueueHoldAudio map[string]string `toml:"queue_hold_audio"`
	// DeskURL is the agent desktop's address; the agent's phone gets
	// DeskURL/contacts/<id> in a Call-Info header.
	DeskURL string `toml:"desk_url"`
	// AvailableOnRegister makes an offline agent available when one of
	// its phones registers, and offline when the last one goes: for sites
	// whose agents work from their phones alone.
	AvailableOnRegister bool `toml:"available_on_register"`
	// Users are the agents' phones (SIP accounts) that register here.
	Users []SIPUser `toml:"users"`
	// Trunks are the PBXs and providers calls come in from.
	Trunks []SIPTrunk `toml:"trunks"`
	// Numbers are the dialled numbers calls are taken for, beyond the
	// dialled numbers of [[intents]].
	Numbers []SIPNumber `toml:"numbers"`
	// IVR menus callers choose from with their keypad.
	IVR []SIPMenu `toml:"ivr"`
}

// TLSOn reports whether SIP over TLS is served: on tls_listen only.
func (s *SIP) TLSOn() bool { return s.TLSListen != "" }

// SIPUser is one agent's SIP account. An agent may have several phones
// (contacts) registered under one user.
type SIPUser struct {
	User     string `toml:"user"`
	Password string `toml:"password"`
	Agent    string `toml:"agent"`
}

// SIPTrunk is a peer allowed to send calls: by source address (CIDRs)
// and/or by digest credentials. With both, both must hold.
type SIPTrunk struct {
	Name     string   `toml:"name"`
	CIDRs    []string `toml:"cidrs"`
	User     string   `toml:"user"`
	Password string   `toml:"password"`
}

// SIPNumber is a dialled number and where its calls go: an IVR menu,
// or a queue (and intent).
type SIPNumber struct {
	Number string `toml:"number"`
	Queue  string `toml:"queue"`
	Intent string `toml:"intent"`
	IVR    string `toml:"ivr"`
}

// SIPMenu is an IVR menu: a prompt, then a digit chooses the queue.
type SIPMenu struct {
	Name string `toml:"name"`
	// Prompt is a WAV file; empty: the shipped default prompt.
	Prompt string `toml:"prompt"`
	// Timeout after the prompt without a digit sends the call to Default.
	Timeout Duration          `toml:"timeout"`
	Default string            `toml:"default"`
	Digits  map[string]string `toml:"digits"` // digit → queue
}

// Mail is the e-mail channel.
type Mail struct {
	SMTPListen string `toml:"smtp_listen"`
	// Hostname is the name the SMTP server greets with.
	Hostname string `toml:"hostname"`
	// Mail for these addresses, or any address at these domains, is
	// accepted; other recipients get 550.
	Addresses []string `toml:"addresses"`
	Domains   []string `toml:"domains"`
	// MaxMessageBytes: larger messages get 552.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// Limits per sending IP address: open connections, and messages per
	// minute.
	MaxConnectionsPerIP    int `toml:"max_connections_per_ip"`
	MessagesPerMinutePerIP int `toml:"messages_per_minute_per_ip"`
	// TLSCert and TLSKey (PEM files) enable STARTTLS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Queue takes mail that no intent rule sends elsewhere. Default: the
	// first queue that takes email.
	Queue string `toml:"queue"`
	// Replies go out through the site's mail server (host:port), with
	// SmarthostTLS "starttls" (default, required), "tls" (port 465) or
	// "none" (only on a trusted network), and a login when User is set.
	Smarthost         string `toml:"smarthost"`
	SmarthostTLS      string `toml:"smarthost_tls"`
	SmarthostUser     string `toml:"smarthost_user"`
	SmarthostPassword string `toml:"smarthost_password"`
	// SmarthostMaxBytes is the largest message the smarthost takes (its
	// SIZE): a reply with files beyond it is refused on the desk, not
	// bounced later. Default 10,000,000 (Postfix takes 10,240,000).
	SmarthostMaxBytes int `toml:"smarthost_max_bytes"`
	// From is the address replies come from. Default: the first of
	// Addresses.
	From string `toml:"from"`
	// IMAP mailboxes to fetch customer mail from.
	IMAP []IMAPMailbox `toml:"imap"`
	// AutoAck, when set, is sent at once to the sender of every new
	// conversation, with its ticket tag ({tag} in the text is replaced by
	// it) — never to automatic mail, and at most once an hour per sender.
	AutoAck string `toml:"auto_ack"`
}

// IMAPMailbox is a mailbox dirigent fetches from (IDLE where the server
// has it, else polling every Poll).
type IMAPMailbox struct {
	Name     string   `toml:"name"`
	Server   string   `toml:"server"` // host:port
	TLS      string   `toml:"tls"`    // tls (default, port 993), starttls or none
	User     string   `toml:"user"`
	Password string   `toml:"password"`
	Folder   string   `toml:"folder"`  // default INBOX
	MoveTo   string   `toml:"move_to"` // move fetched mail here; empty: mark it \Seen
	Poll     Duration `toml:"poll"`    // default 60s
}

// Routing tunes the universal queue for all queues.
type Routing struct {
	// OfferTimeout is how long an offer waits for the agent (a phone rings).
	OfferTimeout Duration `toml:"offer_timeout"`
	// MaxMissedOffers consecutive missed or declined offers set the agent
	// away ("missed offers"). 0 turns this off.
	MaxMissedOffers int `toml:"max_missed_offers"`
	// RetryDelay: an agent who missed or declined a task is not offered
	// that task again for this long.
	RetryDelay Duration `toml:"retry_delay"`
	// VoiceBlocksOthers: an agent on a call gets no mails or messages.
	VoiceBlocksOthers bool `toml:"voice_blocks_others"`
	// A task's priority is its queue's priority, plus TierWeight per
	// customer value tier, plus RepeatBoost for a repeat contact, plus
	// AgingPerMinute for every minute it has waited.
	TierWeight     float64 `toml:"tier_weight"`
	RepeatBoost    float64 `toml:"repeat_boost"`
	AgingPerMinute float64 `toml:"aging_per_minute"`
}

// Journey configures customer identification.
type Journey struct {
	// Region is the ISO 3166 country (e.g. "DE") whose national phone
	// numbers ("030 123456") come without a country code.
	Region string `toml:"region"`
	// RepeatWindow: a contact this soon after an unresolved one, on any
	// channel, is a repeat contact.
	RepeatWindow Duration `toml:"repeat_window"`
	// ResolvedOutcomes are the contact outcomes (wrap-up results) that
	// count as resolved; any other outcome, or none, is unresolved.
	ResolvedOutcomes []string `toml:"resolved_outcomes"`
	// MinConfidence: a learned intent is used, when no rule matched, only
	// with at least this probability.
	MinConfidence float64 `toml:"min_confidence"`
	// RetrainInterval: how often the learned model is rebuilt from the
	// contacts in the store.
	RetrainInterval Duration `toml:"retrain_interval"`
	// LearnedPriority ranks the learned next best action among the rules'.
	LearnedPriority int `toml:"learned_priority"`
	// TextRetention: what customers wrote (mail and chat text) is dropped
	// from contacts older than this; the rest of the contact stays. Zero
	// keeps texts for ever.
	TextRetention Duration `toml:"text_retention"`
}

// Intent is a recognised concern and the queue it goes to. A contact has
// the first intent, in file order, one of whose lists matches it.
type Intent struct {
	Name  string `toml:"name"`
	Queue string `toml:"queue"`
	// Words or phrases, matched case-insensitively within the subject or
	// body of a mail or message.
	Subject []string `toml:"subject"`
	Body    []string `toml:"body"`
	// Recipients are addresses a mail was sent to (support@…, billing@…).
	Recipients []string `toml:"recipients"`
	// Dialled are numbers a caller dialled.
	Dialled []string `toml:"dialled"`
}

// Action is a next-best-action rule: when every condition given holds for
// a contact, the agent is shown Text with Reason. Higher priority first.
type Action struct {
	Text     string `toml:"action"`
	Reason   string `toml:"reason"`
	Priority int    `toml:"priority"`
	// Conditions; an omitted one always holds.
	Intents      []string `toml:"intents"`
	Channels     []string `toml:"channels"`
	MinTier      int      `toml:"min_tier"`
	Repeat       *bool    `toml:"repeat"`
	LastOutcomes []string `toml:"last_outcomes"`
	OpenContact  *bool    `toml:"open_contact"`
}

// Agent is a person who takes tasks.
type Agent struct {
	ID     string         `toml:"id"`
	Name   string         `toml:"name"`
	Skills map[string]int `toml:"skills"` // skill → proficiency 1–5
	// Capacity is how many tasks of each channel the agent handles at once.
	Capacity Capacity `toml:"capacity"`
}

// Capacity per channel. A zero in the file is taken as given (the agent
// takes no tasks of that channel); a missing key gets the default.
type Capacity struct {
	Voice   int `toml:"voice"`
	Email   int `toml:"email"`
	Message int `toml:"message"`
}

// Queue is a named routing target.
type Queue struct {
	Name string `toml:"name"`
	// Skills are required skills with their minimum proficiency (1–5).
	Skills   map[string]int `toml:"skills"`
	Channels []string       `toml:"channels"`
	Priority int            `toml:"priority"`
	// A task answered within ServiceLevelThreshold counts towards the
	// service level; ServiceLevelTarget is the share aimed for (0.8 = 80 %).
	ServiceLevelThreshold Duration `toml:"service_level_threshold"`
	ServiceLevelTarget    float64  `toml:"service_level_target"`
	Strategy              string   `toml:"strategy"`
	WrapUp                Duration `toml:"wrap_up"`
	// MaxWait is how long a task may wait; then it moves to OverflowQueue,
	// or is canceled when that is empty. Zero means no limit.
	MaxWait       Duration `toml:"max_wait"`
	OverflowQueue string   `toml:"overflow_queue"`
	// LastAgentWait is how long a task waits for the customer's previous
	// agent (strategy last-agent, or any repeat contact).
	LastAgentWait Duration `toml:"last_agent_wait"`
	// Widening relaxes the required skills for tasks that have waited.
	Widening []Widening `toml:"widening"`
}

// Widening is one step of a queue's widening: after a task has waited
// After in the queue, Skills replace the queue's required skills (a lower
// minimum proficiency, or other skills).
type Widening struct {
	After  Duration       `toml:"after"`
	Skills map[string]int `toml:"skills"`
}

// Channels a task can arrive on.
var Channels = []string{"voice", "email", "message"}

// Strategies pick an agent among those who are free and qualified.
var Strategies = []string{"longest-idle", "most-skilled", "last-agent", "least-occupied", "round-robin"}

// Default capacities (DESIGN.md): one call, three mails, two chats at once.
const (
	DefaultVoiceCapacity   = 1
	DefaultEmailCapacity   = 3
	DefaultMessageCapacity = 2
)

// Duration is a time.Duration written as a Go duration string ("30s", "5m").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"30s\" or \"5m\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the embedded default configuration: loopback listeners on
// unprivileged ports and a small demo site, enough for a first try.
func Default() (*Config, error) {
	return Parse(DefaultName, defaultTOML)
}

// DefaultTOML returns the text of the embedded default configuration.
func DefaultTOML() []byte { return bytes.Clone(defaultTOML) }

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	return load(path, false)
}

// LoadToServe is Load that also reads the files the configuration names
// (the listeners' certificates and keys), as a start or reload needs
// them; their problems come with the others.
func LoadToServe(path string) (*Config, error) {
	return load(path, true)
}

func load(path string, files bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return parse(path, data, files)
}

// Parse decodes and validates data; name is used in error messages. The
// returned error joins every problem found, each an *Error.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, false)
}

func parse(name string, data []byte, files bool) (*Config, error) {
	c := &Config{file: name}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, errors.Join(syntaxError(name, err))
	}
	c.pos = scanPositions(data)
	errs := c.decode(doc)
	c.applyDefaults()
	errs = append(errs, c.problems()...)
	if files {
		errs = append(errs, c.fileProblems()...)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int { return a.(*Error).Line - b.(*Error).Line })
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func syntaxError(name string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return &Error{File: name, Line: line, Key: strings.Join(de.Key(), "."), Msg: strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return &Error{File: name, Msg: err.Error()}
}

// File is the name the configuration was loaded from.
func (c *Config) File() string { return c.file }

func (c *Config) applyDefaults() {
	if c.Daemon.DrainTimeout.Duration == 0 {
		c.Daemon.DrainTimeout.Duration = 30 * time.Second
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Storage.Dir == "" {
		c.Storage.Dir = firstPath(os.Getenv("STATE_DIRECTORY"), "dirigent-data")
	}
	if c.Storage.LockTimeout.Duration == 0 {
		c.Storage.LockTimeout.Duration = 2 * time.Second
	}
	if c.Control.Socket == "" {
		if rd := firstPath(os.Getenv("RUNTIME_DIRECTORY"), ""); rd != "" {
			c.Control.Socket = filepath.Join(rd, "control.sock")
		} else {
			c.Control.Socket = filepath.Join(c.Storage.Dir, "control.sock")
		}
	}
	if !c.given("routing.offer_timeout") {
		c.Routing.OfferTimeout.Duration = 20 * time.Second
	}
	if !c.given("routing.max_missed_offers") {
		c.Routing.MaxMissedOffers = 3
	}
	if !c.given("routing.retry_delay") {
		c.Routing.RetryDelay.Duration = 5 * time.Second
	}
	if !c.given("routing.voice_blocks_others") {
		c.Routing.VoiceBlocksOthers = true
	}
	if !c.given("routing.tier_weight") {
		c.Routing.TierWeight = 10
	}
	if !c.given("routing.repeat_boost") {
		c.Routing.RepeatBoost = 20
	}
	if !c.given("routing.aging_per_minute") {
		c.Routing.AgingPerMinute = 1
	}
	if c.Journey.Region == "" {
		c.Journey.Region = "DE"
	}
	if !c.given("journey.repeat_window") {
		c.Journey.RepeatWindow.Duration = 72 * time.Hour
	}
	if !c.given("journey.resolved_outcomes") {
		c.Journey.ResolvedOutcomes = []string{"resolved"}
	}
	if !c.given("journey.min_confidence") {
		c.Journey.MinConfidence = 0.6
	}
	if c.Journey.RetrainInterval.Duration == 0 {
		c.Journey.RetrainInterval.Duration = time.Hour
	}
	if c.Desk.Listen == "" {
		c.Desk.Listen = "127.0.0.1:8080"
	}
	if !c.given("desk.away_reasons") {
		c.Desk.AwayReasons = []string{"break", "lunch", "meeting", "training"}
	}
	if !c.given("desk.wrap_codes") {
		c.Desk.WrapCodes = []string{"resolved", "unresolved", "callback", "escalated"}
	}
	if c.Desk.SessionTimeout.Duration == 0 {
		c.Desk.SessionTimeout.Duration = 12 * time.Hour
	}
	if c.SIP.Listen == "" {
		c.SIP.Listen = "127.0.0.1:5060"
	}
	if c.SIP.Realm == "" {
		c.SIP.Realm = "dirigent"
	}
	if c.SIP.RTPPortMin == 0 && c.SIP.RTPPortMax == 0 {
		c.SIP.RTPPortMin, c.SIP.RTPPortMax = 16384, 32767
	}
	if c.SIP.MaxExpires.Duration == 0 {
		c.SIP.MaxExpires.Duration = time.Hour
	}
	if c.SIP.MinExpires.Duration == 0 {
		c.SIP.MinExpires.Duration = time.Minute
	}
	for i := range c.SIP.IVR {
		if c.SIP.IVR[i].Timeout.Duration == 0 {
			c.SIP.IVR[i].Timeout.Duration = 8 * time.Second
		}
	}
	if c.Mail.SMTPListen == "" {
		c.Mail.SMTPListen = "127.0.0.1:2525"
	}
	if c.Mail.Hostname == "" {
		c.Mail.Hostname = "dirigent"
	}
	if c.Mail.SmarthostTLS == "" {
		c.Mail.SmarthostTLS = "starttls"
	}
	if c.Mail.SmarthostMaxBytes == 0 {
		c.Mail.SmarthostMaxBytes = 10_000_000
	}
	for i := range c.Mail.IMAP {
		mb := &c.Mail.IMAP[i]
		if mb.TLS == "" {
			mb.TLS = "tls"
		}
		if mb.Folder == "" {
			mb.Folder = "INBOX"
		}
		if mb.Poll.Duration == 0 {
			mb.Poll.Duration = time.Minute
		}
	}
	if c.Mail.From == "" && len(c.Mail.Addresses) > 0 {
		c.Mail.From = c.Mail.Addresses[0]
	}
	if c.Mail.MaxMessageBytes == 0 {
		c.Mail.MaxMessageBytes = 25 << 20
	}
	if c.Mail.MaxConnectionsPerIP == 0 {
		c.Mail.MaxConnectionsPerIP = 20
	}
	if c.Mail.MessagesPerMinutePerIP == 0 {
		c.Mail.MessagesPerMinutePerIP = 120
	}
	for i := range c.Agents {
		cp := &c.Agents[i].Capacity
		at := fmt.Sprintf("agents[%d].capacity.", i)
		c.setUnlessGiven(&cp.Voice, at+"voice", DefaultVoiceCapacity)
		c.setUnlessGiven(&cp.Email, at+"email", DefaultEmailCapacity)
		c.setUnlessGiven(&cp.Message, at+"message", DefaultMessageCapacity)
	}
	for i := range c.Queues {
		q := &c.Queues[i]
		if len(q.Channels) == 0 {
			q.Channels = append([]string(nil), Channels...)
		}
		if c.Mail.Queue == "" && slices.Contains(q.Channels, "email") {
			c.Mail.Queue = q.Name
		}
		if q.Strategy == "" {
			q.Strategy = "longest-idle"
		}
		if q.ServiceLevelThreshold.Duration == 0 {
			q.ServiceLevelThreshold.Duration = 20 * time.Second
		}
		if q.ServiceLevelTarget == 0 {
			q.ServiceLevelTarget = 0.8
		}
		if !c.given(fmt.Sprintf("queues[%d].last_agent_wait", i)) {
			q.LastAgentWait.Duration = 30 * time.Second
		}
	}
	c.chatDefaults() // after the queues' channels: it picks a queue taking messages
}

// setUnlessGiven sets *p to v unless the file has the key: an explicit 0
// must stay 0.
func (c *Config) setUnlessGiven(p *int, key string, v int) {
	if !c.given(key) {
		*p = v
	}
}

// given reports whether the file sets key, so that an explicit zero or
// false is kept rather than replaced by the default.
func (c *Config) given(key string) bool {
	_, ok := c.pos[key]
	return ok
}

// firstPath returns the first entry of a colon-separated list such as
// systemd's $STATE_DIRECTORY, or def when the list is empty.
func firstPath(list, def string) string {
	if first, _, _ := strings.Cut(list, ":"); first != "" {
		return first
	}
	return def
}

// StorePath is the bbolt file inside the storage dir.
func (c *Config) StorePath() string { return filepath.Join(c.Storage.Dir, "dirigent.db") }
