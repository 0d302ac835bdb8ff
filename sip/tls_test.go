package sip

import (
	"testing"
	"time"

	"dirigent/internal/certfile"
	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/router"
)

// TestCallToBaresipOverTLS: anna's baresip registers over TLS, checking
// dirigent's certificate; a caller's call rings it over that connection,
// baresip answers, audio flows both ways, and the contact is complete.
func TestCallToBaresipOverTLS(t *testing.T) {
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	cert, key := testpeer.SelfSigned(t, t.TempDir())
	pair, err := certfile.Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = pair.ServerConfig()
	s := startSite(t, cfg, "")
	s.startBaresip(t, cert)
	if g := s.ch.registrar.contacts("anna"); len(g) != 1 || g[0].Transport != "TLS" && g[0].Transport != "tls" {
		t.Fatalf("anna's registration %+v, want one over TLS", g)
	}
	// anna becomes available a second into the call, so the caller's
	// first audio is the hold audio and baresip's is told apart from it.
	go func() {
		time.Sleep(time.Second)
		s.router.SetPresence("anna", router.Available, "")
	}()
	media := s.call(t, "caller-hangup.xml", "03055510006", "-d", "4000")
	if _, _, other := media.counts(); other == 0 {
		t.Errorf("the caller heard nothing from baresip")
	}
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510006")
		return ct != nil && ct.Outcome == outcomeAnswered && ct.Agent == "anna"
	})
}
