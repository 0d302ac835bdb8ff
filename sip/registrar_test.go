package sip

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"dirigent/internal/testrun"
	"dirigent/router"
)

// TestRegistrationSurvivesRestart: a phone registered with sipp is in
// the store, and a registrar built from the store (as after a restart)
// rings it; once expired it is gone.
func TestRegistrationSurvivesRestart(t *testing.T) {
	s := startSite(t, testConfig(), "")
	s.registerAgent(t, "agent-answer.xml")
	saved, err := s.st.SIPRegistrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(saved[testUser]) != 1 || !strings.HasPrefix(saved[testUser][0].Contact, "sip:anna@127.0.0.1:") {
		t.Fatalf("stored registrations: %+v", saved)
	}
	restarted := &Channel{cfg: s.ch.cfg, deps: s.ch.deps, metrics: s.ch.metrics}
	r, err := newRegistrar(restarted)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.contacts("anna"); len(got) != 1 || got[0].Contact != saved[testUser][0].Contact {
		t.Fatalf("after a restart anna's phones are %+v", got)
	}
	// sipp asked for 300 s: 10 minutes later the phone is gone.
	restarted.deps.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	if got := r.contacts("anna"); len(got) != 0 {
		t.Errorf("expired contacts still rung: %+v", got)
	}
}

// answer computes what a phone sends for a challenge.
func answer(t *testing.T, challenge, user, password string, nc int) string {
	t.Helper()
	ch, err := digest.ParseChallenge(challenge)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:dirigent.test", Username: user, Password: password, Count: nc, Cnonce: "c0ffee"})
	if err != nil {
		t.Fatal(err)
	}
	return cr.String()
}

// TestDigestNonces: the right password passes once per nonce count; a
// replay, a wrong password, a nonce not ours and a stale nonce do not,
// and the stale one is told apart so the phone can retry silently.
func TestDigestNonces(t *testing.T) {
	clock := testrun.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	n := newNonces(clock.Now)
	pw := func(u string) (string, bool) { return "geheim", u == "anna" }
	verify := func(header string) error {
		cr, err := parseCredentials(header)
		if err != nil {
			return err
		}
		return n.verify(cr, "dirigent.test", "REGISTER", pw)
	}
	chal := n.challenge("dirigent.test", false)
	if err := verify(answer(t, chal, "anna", "geheim", 1)); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := verify(answer(t, chal, "anna", "geheim", 1)); !errors.Is(err, errBadDigest) {
		t.Errorf("replayed nonce count: %v", err)
	}
	if err := verify(answer(t, chal, "anna", "geheim", 2)); err != nil {
		t.Errorf("next nonce count: %v", err)
	}
	if err := verify(answer(t, chal, "anna", "falsch", 3)); !errors.Is(err, errBadDigest) {
		t.Errorf("wrong password: %v", err)
	}
	if err := verify(answer(t, chal, "mallory", "geheim", 1)); !errors.Is(err, errUnknownUser) {
		t.Errorf("unknown user: %v", err)
	}
	other := newNonces(clock.Now).challenge("dirigent.test", false)
	if err := verify(answer(t, other, "anna", "geheim", 1)); !errors.Is(err, errBadDigest) {
		t.Errorf("a nonce another process issued: %v", err)
	}
	clock.Add(nonceLifetime + time.Second)
	if err := verify(answer(t, chal, "anna", "geheim", 4)); !errors.Is(err, errStaleNonce) {
		t.Errorf("stale nonce: %v", err)
	}
	if c, _ := digest.ParseChallenge(n.challenge("dirigent.test", true)); !c.Stale {
		t.Errorf("challenge after a stale nonce lacks stale=true")
	}
}

// TestAvailableOnRegister: with available_on_register, anna's phone
// registering makes her available, and the phone unregistering (expiry
// here) offline again.
func TestAvailableOnRegister(t *testing.T) {
	cfg := testConfig()
	cfg.AvailableOnRegister = true
	s := startSite(t, cfg, "")
	if p := s.router.Agents()[0].Presence; p != router.Offline {
		t.Fatalf("anna starts %s", p)
	}
	s.registerAgent(t, "agent-answer.xml")
	testrun.Eventually(t, 5*time.Second, "anna available", func() bool { return s.router.Agents()[0].Presence == router.Available })
	s.ch.deps.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	s.ch.registrar.expire(context.Background())
	if p := s.router.Agents()[0].Presence; p != router.Offline {
		t.Errorf("anna with no phone is %s", p)
	}
}

// TestSetAccounts: a reload's accounts apply at once. A new password
// forgets the phone registered with the old one (anna goes offline with
// available_on_register), refuses the old password and takes the new;
// an account removed is refused and forgotten; a new account registers.
// A trunk removed takes no more calls.
func TestSetAccounts(t *testing.T) {
	cfg := testConfig()
	cfg.AvailableOnRegister = true
	s := startSite(t, cfg, "")
	s.registerAgent(t, "agent-answer.xml")
	testrun.Eventually(t, 5*time.Second, "anna available", func() bool { return s.router.Agents()[0].Presence == router.Available })
	refused := func(user, password string) {
		t.Helper()
		s.sipp(t, "register-refused.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-s", user, "-au", user, "-ap", password, "-timeout", "10s", "-timeout_error").wait(t, 15*time.Second)
	}
	register := func(user, password string) {
		t.Helper()
		s.sipp(t, "agent-register.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-s", user, "-au", user, "-ap", password)
		testrun.Eventually(t, 5*time.Second, user+"'s phone registered", func() bool { return len(s.ch.registrar.contacts("anna")) == 1 })
	}
	registered := func(what string, want int) {
		t.Helper()
		saved, err := s.st.SIPRegistrations()
		if err != nil {
			t.Fatal(err)
		}
		stored := 0
		for _, regs := range saved {
			stored += len(regs)
		}
		if got := len(s.ch.registrar.contacts("anna")); got != want || stored != want {
			t.Errorf("%s: anna has %d phones, %d stored; want %d", what, got, stored, want)
		}
		if got := s.counter(t, "dirigent_sip_registrations", nil); got != float64(want) {
			t.Errorf("%s: dirigent_sip_registrations %v, want %d", what, got, want)
		}
	}

	users := []User{{User: testUser, Password: "neu-geheim", Agent: "anna"}}
	if err := s.ch.SetAccounts(context.Background(), users, cfg.Trunks); err != nil {
		t.Fatal(err)
	}
	registered("after a new password", 0)
	if p := s.router.Agents()[0].Presence; p != router.Offline {
		t.Errorf("anna with her phone forgotten is %s", p)
	}
	refused(testUser, testPass)
	register(testUser, "neu-geheim")
	registered("registered with the new password", 1)
	testrun.Eventually(t, 5*time.Second, "anna available again", func() bool { return s.router.Agents()[0].Presence == router.Available })

	// The same accounts again change nothing.
	if err := s.ch.SetAccounts(context.Background(), users, cfg.Trunks); err != nil {
		t.Fatal(err)
	}
	registered("after the same accounts again", 1)

	users = []User{{User: "anna-desk", Password: "tisch", Agent: "anna"}}
	if err := s.ch.SetAccounts(context.Background(), users, []Trunk{{Name: "carrier", CIDRs: []string{"192.0.2.0/24"}}}); err != nil {
		t.Fatal(err)
	}
	registered("after her account was removed", 0)
	refused(testUser, "neu-geheim")
	register("anna-desk", "tisch")
	registered("registered to the new account", 1)
	s.send(t, request{Name: "removed-trunk", Method: "INVITE", User: testNumber, Headers: "Content-Type: application/sdp\n", Body: goodSDP, Expect: 403}).wait(t, 15*time.Second)

	if err := s.ch.SetAccounts(context.Background(), nil, []Trunk{{Name: "bad", CIDRs: []string{"not an address"}}}); err == nil {
		t.Error("a trunk with a bad address was taken")
	}
	registered("after accounts refused", 1)
}

// A REGISTER authenticated against an account a reload then changed
// binds nothing: the phone is challenged again, against the account as
// it is now.
func TestRegisterAuthenticatedBeforeAReload(t *testing.T) {
	s := startSite(t, testConfig(), "")
	r := s.ch.registrar
	var account *User
	if pw, ok := r.password(&account)(testUser); !ok || pw != testPass {
		t.Fatalf("anna's password: %q %v", pw, ok)
	}
	if err := s.ch.SetAccounts(context.Background(), []User{{User: testUser, Password: "neu", Agent: "anna"}}, nil); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "127.0.0.1"})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: testUser, Host: "127.0.0.1", Port: 5099}})
	res, err := r.bind(context.Background(), account, req)
	if err != nil || res.StatusCode != sip.StatusUnauthorized || res.GetHeader("WWW-Authenticate") == nil {
		t.Fatalf("bind after the reload: %v, %v", res, err)
	}
	if n := len(r.contacts("anna")); n != 0 {
		t.Errorf("%d phones bound", n)
	}
}
