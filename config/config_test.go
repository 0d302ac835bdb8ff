package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseErrors feeds snippets and compares every message, in order.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{
			name: "syntax error stops at its line",
			toml: "[desk]\nlisten = \"127.0.0.1:8080\"\nbroken = \n",
			want: []string{`t.toml:3: unexpected character U+000A at start of value`},
		},
		{
			name: "unknown keys everywhere",
			toml: "colour = 1\n[log]\nlevl = \"info\"\n[[agents]]\nid = \"a\"\nfavourite = \"tea\"\n",
			want: []string{
				`t.toml:1: colour: unknown key (known here: agents, chat, control, daemon, desk, intents, journey, log, mail, next_best_actions, queues, routing, sip, skills, storage)`,
				`t.toml:3: log.levl: unknown key (known here: format, level)`,
				`t.toml:6: agents[0].favourite: unknown key (known here: capacity, id, name, skills)`,
			},
		},
		{
			name: "wrong types",
			toml: "skills = \"support\"\n[desk]\nlisten = 8080\n[storage]\nlock_timeout = 5\n",
			want: []string{
				`t.toml:1: skills: want an array, got string "support"`,
				`t.toml:3: desk.listen: want a string, got integer 8080`,
				`t.toml:5: storage.lock_timeout: want a string, got integer 5`,
			},
		},
		{
			name: "bad values",
			toml: "[journey]\nregion = \"de\"\n[log]\nlevel = \"loud\"\nformat = \"xml\"\n[daemon]\ndrain_timeout = \"soon\"\n[sip]\nlisten = \"pbx:5060\"\n[mail]\nsmtp_listen = \"127.0.0.1:99999\"\n",
			want: []string{
				`t.toml:2: journey.region: "de" is not an ISO 3166 country code such as DE, AT or CH`,
				`t.toml:4: log.level: unknown level "loud" (want debug, info, warn or error)`,
				`t.toml:5: log.format: unknown format "xml" (want text or json)`,
				`t.toml:7: daemon.drain_timeout: not a duration (want e.g. "30s" or "5m"): "soon"`,
				`t.toml:9: sip.listen: listen address "pbx:5060": host must be an IP address or empty for all`,
				`t.toml:11: mail.smtp_listen: listen address "127.0.0.1:99999": port must be 0–65535`,
			},
		},
		{
			name: "dangling references and duplicates",
			toml: `skills = ["billing", "billing", "Sales"]

[[agents]]
id = "anna"
skills = { billing = 6, sales = 2 }

[[agents]]
id = "anna"
capacity = { voice = -1 }

[[queues]]
name = "billing"
skills = { billing = 0 }
channels = ["voice", "fax"]
strategy = "fastest"
service_level_target = 80.0
overflow_queue = "nowhere"

[[queues]]
name = "billing"
overflow_queue = "billing"
max_wait = "1m"
`,
			want: []string{
				`t.toml:1: skills[1]: skill "billing" is defined twice`,
				`t.toml:1: skills[2]: skill name "Sales" must be lower-case letters, digits, '-' or '_'`,
				`t.toml:5: agents[0].skills.billing: proficiency 6 out of range 1–5`,
				`t.toml:5: agents[0].skills.sales: undefined skill "sales" (define it in skills)`,
				`t.toml:8: agents[1].id: agent "anna" is defined twice`,
				`t.toml:9: agents[1].capacity.voice: capacity -1 out of range 0–100`,
				`t.toml:13: queues[0].skills.billing: proficiency 0 out of range 1–5`,
				`t.toml:14: queues[0].channels[1]: unknown channel "fax" (want voice, email, message)`,
				`t.toml:15: queues[0].strategy: unknown strategy "fastest" (want longest-idle, most-skilled, last-agent, least-occupied, round-robin)`,
				`t.toml:16: queues[0].service_level_target: 80 out of range: a share above 0 and at most 1 (0.8 = 80 %)`,
				`t.toml:17: queues[0].overflow_queue: undefined queue "nowhere"`,
				`t.toml:20: queues[1].name: queue "billing" is defined twice`,
				`t.toml:21: queues[1].overflow_queue: a queue cannot overflow into itself`,
			},
		},
		{
			name: "missing names are reported at their table",
			toml: "[[queues]]\nchannels = [\"email\"]\n\n[[agents]]\nname = \"Nobody\"\n",
			want: []string{
				`t.toml:1: queues[0].name: missing`,
				`t.toml:4: agents[0].id: missing`,
			},
		},
		{
			name: "routing and widening",
			toml: `skills = ["a"]
[routing]
offer_timeout = "0s"
max_missed_offers = -1
[[queues]]
name = "q"
[[queues.widening]]
after = "1m"
skills = { a = 1 }
[[queues.widening]]
after = "30s"
skills = { b = 1 }
`,
			want: []string{
				`t.toml:3: routing.offer_timeout: must be positive`,
				`t.toml:4: routing.max_missed_offers: must not be negative (0 turns auto-away off)`,
				`t.toml:11: queues[0].widening[1].after: each widening step must come later than the one before (and after 0s)`,
				`t.toml:12: queues[0].widening[1].skills.b: undefined skill "b" (define it in skills)`,
			},
		},
		{
			name: "api tokens",
			toml: "[[desk.api_tokens]]\nname = \"shop\"\nsha256 = \"abc\"\n[[desk.api_tokens]]\nname = \"shop\"\nsha256 = \"" + strings.Repeat("ab", 32) + "\"\n",
			want: []string{
				`t.toml:3: desk.api_tokens[0].sha256: want the 64 hex digits ` + "`dirigent token new`" + ` prints`,
				`t.toml:5: desk.api_tokens[1].name: token "shop" is defined twice`,
			},
		},
		{
			name: "desk logins, away reasons and wrap-up codes",
			toml: "[desk]\nsupervisors = [\"Anna\"]\nadmins = [\"root\", \"root\"]\naway_reasons = [\"\"]\nwrap_codes = []\nsession_timeout = \"1s\"\ntrusted_proxies = [\"10.0.0.1\", \"proxy\", \"10.0.0.1/08\", \"fe80::1%eth0\"]\n",
			want: []string{
				`t.toml:2: desk.supervisors[0]: login "Anna" must be lower-case letters, digits, '-' or '_'`,
				`t.toml:3: desk.admins[1]: login "root" is defined twice`,
				`t.toml:4: desk.away_reasons[0]: missing`,
				`t.toml:5: desk.wrap_codes: at least one code: agents end every task with one`,
				`t.toml:6: desk.session_timeout: at least 1m`,
				`t.toml:7: desk.trusted_proxies[1]: "proxy" is not an address or CIDR such as 192.0.2.0/24`,
				`t.toml:7: desk.trusted_proxies[2]: "10.0.0.1/08" is not an address or CIDR such as 192.0.2.0/24`,
				`t.toml:7: desk.trusted_proxies[3]: "fe80::1%eth0" is not an address or CIDR such as 192.0.2.0/24`,
			},
		},
		{
			name: "intents and next best actions",
			toml: `[[queues]]
name = "q"
[[intents]]
name = "billing"
queue = "nope"
dialled = ["call me"]
[[intents]]
name = "empty"
queue = "q"
[[next_best_actions]]
action = "Offer a refund"
intents = ["billing", "sales"]
channels = ["fax"]
repeat = "yes"
`,
			want: []string{
				`t.toml:5: intents[0].queue: undefined queue "nope"`,
				`t.toml:6: intents[0].dialled[0]: "call me" is not a phone number`,
				`t.toml:7: intents[1]: matches nothing: give subject, body, recipients or dialled`,
				`t.toml:10: next_best_actions[0].reason: missing: why the agent should do it`,
				`t.toml:12: next_best_actions[0].intents[1]: undefined intent "sales"`,
				`t.toml:13: next_best_actions[0].channels[0]: unknown channel "fax" (want voice, email, message)`,
				`t.toml:14: next_best_actions[0].repeat: want true or false, got string "yes"`,
			},
		},
		{
			name: "mail",
			toml: "[mail]\naddresses = [\"support\"]\ndomains = [\"ex ample.com\"]\nqueue = \"calls\"\ntls_cert = \"c.pem\"\nsmarthost_max_bytes = 1000\n[[queues]]\nname = \"calls\"\nchannels = [\"voice\"]\n",
			want: []string{
				`t.toml:2: mail.addresses[0]: "support" is not an e-mail address`,
				`t.toml:3: mail.domains[0]: "ex ample.com" is not a domain`,
				`t.toml:4: mail.queue: queue "calls" does not take email (see its channels)`,
				`t.toml:5: mail.tls_cert: needs tls_key too`,
				`t.toml:6: mail.smarthost_max_bytes: at least 65536`,
			},
		},
		{
			name: "tls certificates",
			toml: "[desk]\ntls_key = \"k.pem\"\n[chat]\ntls_cert = \"c.pem\"\n",
			want: []string{
				`t.toml:2: desk.tls_key: needs tls_cert too`,
				`t.toml:4: chat.tls_cert: needs tls_key too`,
			},
		},
		{
			name: "imap mailboxes",
			toml: "[[mail.imap]]\nname = \"service\"\nserver = \"imap.example.com\"\ntls = \"ssl\"\npoll = \"1s\"\n[[mail.imap]]\nname = \"service\"\nserver = \"imap.example.com:993\"\nuser = \"u\"\n",
			want: []string{
				`t.toml:1: mail.imap[0].user: missing`,
				`t.toml:3: mail.imap[0].server: "imap.example.com": want host:port, e.g. imap.example.com:993`,
				`t.toml:4: mail.imap[0].tls: "ssl": want tls, starttls or none`,
				`t.toml:5: mail.imap[0].poll: at least 5s`,
				`t.toml:7: mail.imap[1].name: mailbox "service" is defined twice`,
			},
		},
		{
			name: "sip",
			toml: `[sip]
media_ip = "pbx"
rtp_port_min = 100
[[sip.users]]
user = "an na"
password = "x"
agent = "ghost"
[[sip.trunks]]
name = "pbx"
cidrs = ["10.0.0.0/33"]
[[sip.numbers]]
number = "+49301234500"
queue = "mails"
[[sip.numbers]]
number = "+49301234501"
ivr = "nope"
[[sip.ivr]]
name = "main"
default = "calls"
digits = { "12" = "calls" }
[[queues]]
name = "calls"
channels = ["voice"]
[[queues]]
name = "mails"
channels = ["email"]
`,
			want: []string{
				`t.toml:2: sip.media_ip: "pbx" is not an IP address`,
				`t.toml:3: sip.rtp_port_min: RTP ports 100–0: want a range within 1024–65535 of at least two ports`,
				`t.toml:5: sip.users[0].user: "an na": want a SIP user name (letters, digits, - _ . !)`,
				`t.toml:7: sip.users[0].agent: undefined agent "ghost"`,
				`t.toml:10: sip.trunks[0].cidrs[0]: "10.0.0.0/33" is not an address or CIDR such as 192.0.2.0/24`,
				`t.toml:13: sip.numbers[0].queue: undefined queue "mails", or it does not take voice`,
				`t.toml:16: sip.numbers[1].ivr: undefined menu "nope"`,
				`t.toml:20: sip.ivr[0].digits.12: "12" is not a keypad key (0–9, * or #)`,
			},
		},
		{
			name: "mail without a queue for it",
			toml: "[mail]\naddresses = [\"support@example.com\"]\n",
			want: []string{`t.toml:1: mail.queue: mail is accepted but no queue takes email`},
		},
		{
			name: "overflow needs max_wait",
			toml: "[[queues]]\nname = \"a\"\n[[queues]]\nname = \"b\"\noverflow_queue = \"a\"\n",
			want: []string{`t.toml:5: queues[1].overflow_queue: needs max_wait: without a limit nothing ever overflows`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// LoadToServe reads the certificates Parse only names, sip's only with
// sip.tls_listen and the chat's only while a queue takes messages
// (without, they are not served), and reports what is wrong with them
// together with the file's other problems.
func TestLoadToServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.toml")
	text := "[log]\nlevel = \"loud\"\n[mail]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n[sip]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n" +
		"[chat]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n" // no queue takes messages: the chat is off
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || strings.Contains(err.Error(), "certificate") {
		t.Errorf("Load: %v; want only the log level", err)
	}
	want := path + ":2: log.level: unknown level \"loud\" (want debug, info, warn or error)\n" +
		path + ":5: mail.tls_key: certificate /nonexistent/c.pem with key /nonexistent/k.pem: open /nonexistent/c.pem: no such file or directory"
	if _, err := LoadToServe(path); err == nil || err.Error() != want {
		t.Errorf("LoadToServe: %v\nwant %s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/dirigent:/var/lib/other")
	t.Setenv("RUNTIME_DIRECTORY", "")
	c, err := Parse("t.toml", []byte(`skills = ["s"]
[[agents]]
id = "a"
capacity = { email = 0 }
[[queues]]
name = "q"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Agents[0].Capacity; got != (Capacity{Voice: 1, Email: 0, Message: 2}) {
		t.Errorf("capacity = %+v, want voice 1, an explicit email 0, message 2", got)
	}
	q := c.Queues[0]
	if q.Strategy != "longest-idle" || q.ServiceLevelThreshold.Duration != 20*time.Second || q.ServiceLevelTarget != 0.8 || len(q.Channels) != 3 {
		t.Errorf("queue defaults = %+v", q)
	}
	if c.StorePath() != "/var/lib/dirigent/dirigent.db" {
		t.Errorf("StorePath = %q, want the first $STATE_DIRECTORY entry", c.StorePath())
	}
	if c.Control.Socket != "/var/lib/dirigent/control.sock" {
		t.Errorf("Control.Socket = %q", c.Control.Socket)
	}
	if c.Desk.Listen != "127.0.0.1:8080" || c.SIP.Listen != "127.0.0.1:5060" || c.Mail.SMTPListen != "127.0.0.1:2525" {
		t.Errorf("listeners = %q %q %q", c.Desk.Listen, c.SIP.Listen, c.Mail.SMTPListen)
	}

	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("RUNTIME_DIRECTORY", "/run/dirigent")
	c, err = Parse("t.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Dir != "dirigent-data" || c.Control.Socket != "/run/dirigent/control.sock" {
		t.Errorf("without systemd dirs: dir %q socket %q", c.Storage.Dir, c.Control.Socket)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Queues) == 0 || len(c.Agents) == 0 {
		t.Error("the embedded default should give a first try a queue and an agent")
	}
}

// The packaged example documents every key; it must stay loadable.
func TestPackagedExampleIsValid(t *testing.T) {
	if _, err := Load(filepath.Join("..", "packaging", "dirigent.toml")); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml: open") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultTOML())
	if data, err := os.ReadFile(filepath.Join("..", "packaging", "dirigent.toml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("[[queues]]\nname = 1\n[[queues.x]]\na.b.c = [1, {d = 2}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				if _, ok := e.(*Error); !ok {
					t.Fatalf("problem %T %v is not a *config.Error", e, e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}
