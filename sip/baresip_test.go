package sip

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/router"
)

// startBaresip runs baresip, a real softphone, as anna's phone: it
// registers with digest auth, answers every call at once and plays what
// it hears back (the aubridge module joins its speaker to its
// microphone), re-encoded under its own SSRC. It registers over UDP, or
// over TLS with tlsCA (a PEM file it trusts for dirigent's certificate).
func (s *site) startBaresip(t *testing.T, tlsCA string) *bytes.Buffer {
	t.Helper()
	bin := testpeer.Require(t, "baresip", "baresip")
	dir := t.TempDir()
	port := freeTCPAndUDPPort(t)
	rtp := freePort(t) &^ 1
	config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
sip_trans_def		udp
audio_player		aubridge,loop
audio_source		aubridge,loop
audio_alert		aubridge,loop
rtp_ports		%d-%d
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module_app		account.so
module_app		menu.so
`, port, rtp, rtp+10)
	registrar := fmt.Sprintf("127.0.0.1:%d;transport=udp", s.ch.Addr().Port)
	if tlsCA != "" {
		config += "sip_cafile\t\t" + tlsCA + "\n"
		registrar = s.ch.TLSAddr().String() + ";transport=tls"
	}
	account := fmt.Sprintf("<sip:%s@%s>;auth_pass=%s;answermode=auto;regint=300;audio_codecs=PCMU,PCMA\n",
		testUser, registrar, testPass)
	for name, text := range map[string]string{"config": config, "accounts": account, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-f", dir, "-v")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("baresip:\n%s", out.String())
		}
	})
	testrun.Eventually(t, 10*time.Second, "baresip registered", func() bool { return len(s.ch.registrar.contacts("anna")) == 1 })
	return &out
}

// TestCallToBaresipAgent: the sipp caller's call goes to anna's baresip,
// which answers by itself; the caller hears hold audio, then baresip's
// audio, and baresip gets the caller's; the caller hangs up, both legs
// end, the contact is complete.
func TestCallToBaresipAgent(t *testing.T) {
	s := startSite(t, testConfig(), "")
	s.startBaresip(t, "")
	// anna becomes available a second into the call, so the caller hears
	// hold audio first (baresip answers within milliseconds).
	go func() {
		time.Sleep(time.Second)
		s.router.SetPresence("anna", router.Available, "")
	}()
	media := s.call(t, "caller-hangup.xml", "03055510005", "-d", "4000")
	hold, _, other := media.counts()
	if hold == 0 {
		t.Errorf("the caller heard no hold audio")
	}
	if other == 0 {
		t.Errorf("the caller heard nothing from baresip")
	}
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510005")
		return ct != nil && ct.Outcome == outcomeAnswered && ct.Agent == "anna" && !ct.Answered.IsZero() && ct.Note == "hung up by caller"
	})
	if n := s.counter(t, "dirigent_sip_rtp_packets_relayed_total", nil); n < 50 {
		t.Errorf("relayed only %v packets in a 4 s call", n)
	}
}

// freeTCPAndUDPPort returns a port free on 127.0.0.1 for both TCP and
// UDP at the moment (baresip listens on both).
func freeTCPAndUDPPort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
}
