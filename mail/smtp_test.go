package mail

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/internal/certfile"
	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/internal/testsite"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// site is a running mail channel with the parts it works with.
type site struct {
	ch      *Channel
	st      *store.Store
	journey *journey.Journey
	router  *router.Router
	offers  chan router.Offer
}

func startSMTP(t *testing.T, cfg SMTPConfig) (*Channel, *store.Store) {
	t.Helper()
	s := startSite(t, Config{SMTP: cfg})
	return s.ch, s.st
}

func startSite(t testing.TB, chcfg Config) *site {
	t.Helper()
	s := newSite(t, chcfg)
	testrun.Start(t, s.ch.Run)
	return s
}

// newSite is startSite without the channel's Run: no SMTP, and nothing
// processes stored mail but the test.
func newSite(t testing.TB, chcfg Config) *site {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	ts := testsite.New(t, testsite.Options{
		Logger:  logger,
		Intents: []journey.IntentRule{{Name: "billing", Queue: "billing", Subject: []string{"rechnung"}}},
		Router: router.Config{
			Skills: []string{"support"},
			Agents: []router.AgentSpec{{ID: "anna", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 2}}},
			Queues: []router.QueueSpec{
				{Name: "support", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Email}},
				{Name: "billing", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Email}},
			},
		},
	})
	offers := make(chan router.Offer, 100)
	ts.Wire(testsite.Hooks{OnOffer: func(o router.Offer) { offers <- o }})
	cfg := &chcfg.SMTP
	cfg.Listen = "127.0.0.1:0"
	cfg.Hostname = "dirigent.test"
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 64 << 10
	}
	if cfg.MaxConnectionsPerIP == 0 {
		cfg.MaxConnectionsPerIP = 10
	}
	if cfg.MessagesPerMinutePerIP == 0 {
		cfg.MessagesPerMinutePerIP = 100
	}
	chcfg.Smarthost.From, chcfg.Smarthost.Hostname, chcfg.DefaultQueue = "support@example.com", "dirigent.test", "support"
	ch, err := New(chcfg, Deps{
		Logger: logger, Store: ts.Store, Journey: ts.Journey, Router: ts.Router, Registerer: prometheus.NewRegistry(), DrainTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return &site{ch: ch, st: ts.Store, journey: ts.Journey, router: ts.Router, offers: offers}
}

// swaks sends one message with Debian's swaks and returns its transcript.
func swaks(t *testing.T, addr net.Addr, args ...string) (string, error) {
	t.Helper()
	bin := testpeer.Require(t, "swaks", "swaks")
	host, port, _ := net.SplitHostPort(addr.String())
	cmd := exec.Command(bin, append([]string{"--server", host, "--port", port, "--from", "joe@example.org", "--helo", "client.test", "--timeout", "20"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSMTPStoresBeforeAcknowledging(t *testing.T) {
	s, st := startSMTP(t, SMTPConfig{Addresses: []string{"Support@Example.com"}, Domains: []string{"tickets.example.com"}})
	out, err := swaks(t, s.SMTPAddr(), "--to", "support@example.com", "--header", "Subject: Rechnung falsch", "--body", "Guten Tag, meine Rechnung stimmt nicht.")
	if err != nil || !strings.Contains(out, "<-  250") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if _, err := swaks(t, s.SMTPAddr(), "--to", "anyone@tickets.example.com", "--body", "x"); err != nil {
		t.Errorf("a whole domain: %v", err)
	}
	waitProcessed(t, st, 2)
	m, raw, err := st.Mail(1)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "joe@example.org" || len(m.Recipients) != 1 || m.Source != "smtp" || m.Remote != "127.0.0.1" ||
		!strings.Contains(string(raw), "Subject: Rechnung falsch") || !strings.Contains(string(raw), "meine Rechnung stimmt nicht") {
		t.Errorf("stored %+v\n%s", m, raw)
	}
}

func TestSMTPRefusals(t *testing.T) {
	s, st := startSMTP(t, SMTPConfig{Addresses: []string{"support@example.com"}, MessagesPerMinutePerIP: 2})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown recipient", []string{"--to", "nobody@example.com"}, "<** 550 5.1.1 No such user here"},
		{"too large", []string{"--to", "support@example.com", "--body", strings.Repeat("0123456789abcdef\n", 5000)}, "<** 552"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := swaks(t, s.SMTPAddr(), tt.args...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("want %q, got %v:\n%s", tt.want, err, out)
			}
		})
	}
	// Two messages a minute from one address, then 450.
	for i := range 3 {
		out, err := swaks(t, s.SMTPAddr(), "--to", "support@example.com", "--body", "hi")
		if i < 2 && err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, out)
		}
		if i == 2 && (err == nil || !strings.Contains(out, "<** 450 4.7.1")) {
			t.Errorf("third message a minute: %v\n%s", err, out)
		}
	}
	waitProcessed(t, st, 2)
	if n, _ := st.MailCount(); n != 2 {
		t.Errorf("%d mails stored, want the 2 accepted ones", n)
	}
}

func TestSMTPConnectionLimit(t *testing.T) {
	s, _ := startSMTP(t, SMTPConfig{Addresses: []string{"support@example.com"}, MaxConnectionsPerIP: 1})
	first, err := net.Dial("tcp", s.SMTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// The session, and so the count, starts with the greeting's answer.
	r := bufio.NewReader(first)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220") {
		t.Fatalf("greeting %q %v", line, err)
	}
	fmt.Fprintf(first, "EHLO client.test\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	out, err := swaks(t, s.SMTPAddr(), "--to", "support@example.com")
	if err == nil || !strings.Contains(out, "421 4.7.0 Too many connections") {
		t.Errorf("second connection: %v\n%s", err, out)
	}
}

func TestSMTPStartTLS(t *testing.T) {
	testpeer.RequirePerl(t, "Net::SSLeay", "libnet-ssleay-perl")
	pair, err := certfile.Load(testpeer.SelfSigned(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	s, st := startSMTP(t, SMTPConfig{Addresses: []string{"support@example.com"}, TLS: pair.ServerConfig()})
	out, err := swaks(t, s.SMTPAddr(), "--to", "support@example.com", "--tls", "--body", "verschlüsselt")
	if err != nil || !strings.Contains(out, "TLS started") || !strings.Contains(out, "<~  250") {
		t.Fatalf("swaks --tls: %v\n%s", err, out)
	}
	waitProcessed(t, st, 1)
}

// A stop right after the start (a failed start elsewhere in the daemon,
// a quick Ctrl-C) must neither hang, waiting on a listener the SMTP
// server had not registered yet, nor leave files or sockets open.
func TestStopRightAfterStart(t *testing.T) {
	fds := func() int {
		d, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(d)
	}
	before := fds()
	for range 100 {
		t.Run("start-stop", func(t *testing.T) {
			startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
		})
	}
	if after := fds(); after > before+2 {
		t.Errorf("%d open files after 100 starts and stops, %d before", after, before)
	}
}
