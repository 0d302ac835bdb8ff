package sip

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"dirigent/internal/testrun"
)

// request is one request sent by sipp from a scenario the test writes,
// with the response it must get.
type request struct {
	Name, Method, User, Headers, Body string
	Expect                            int
}

func (s *site) send(t *testing.T, r request) *sippRun {
	t.Helper()
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", "request.xml.tmpl")))
	path := filepath.Join(s.dir, r.Name+".xml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(f, r); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run := s.sipp(t, path, "-p", strconv.Itoa(freePort(t)), "-m", "1", "-timeout", "10s", "-timeout_error")
	return run
}

const goodSDP = `v=0
o=caller 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 40000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`

// TestRejectedRequests: what dirigent must refuse, refused with the
// right code and counted, and the daemon still answers afterwards.
func TestRejectedRequests(t *testing.T) {
	cfg := testConfig()
	cfg.Trunks = append(cfg.Trunks, Trunk{Name: "carrier", CIDRs: []string{"192.0.2.0/24"}})
	s := startSite(t, cfg, "")
	sdpHeaders := "Content-Type: application/sdp\n"
	cases := []struct {
		req    request
		reason string
	}{
		{request{Name: "unknown-number", Method: "INVITE", User: "+49309999999", Headers: sdpHeaders, Body: goodSDP, Expect: 404}, "number"},
		{request{Name: "malformed-sdp", Method: "INVITE", User: testNumber, Headers: sdpHeaders, Body: "v=0\nthis is not sdp\n", Expect: 400}, "sdp"},
		{request{Name: "no-sdp", Method: "INVITE", User: testNumber, Expect: 400}, "sdp"},
		{request{Name: "codec-mismatch", Method: "INVITE", User: testNumber, Headers: sdpHeaders,
			Body: strings.Replace(strings.Replace(goodSDP, "RTP/AVP 0", "RTP/AVP 18", 1), "0 PCMU/8000", "18 G729/8000", 1), Expect: 488}, "codec"},
		{request{Name: "malformed-cseq", Method: "OPTIONS", User: testNumber, Headers: "CSeq: one two three\n", Expect: 400}, "malformed"},
		{request{Name: "oversized", Method: "OPTIONS", User: testNumber, Headers: "X-Padding: " + strings.Repeat("x", 20000) + "\n", Expect: 400}, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.req.Name, func(t *testing.T) {
			before := s.counter(t, "dirigent_sip_rejected_total", map[string]string{"reason": c.reason})
			s.send(t, c.req).wait(t, 15*time.Second)
			testrun.Eventually(t, 5*time.Second, "the refusal counted", func() bool {
				return s.counter(t, "dirigent_sip_rejected_total", map[string]string{"reason": c.reason}) > before
			})
		})
	}
	// Still serving.
	s.send(t, request{Name: "options", Method: "OPTIONS", User: testNumber, Expect: 200}).wait(t, 10*time.Second)
}

// TestUnknownTrunk: an INVITE from an address no trunk has is refused
// with 403 and counted.
func TestUnknownTrunk(t *testing.T) {
	cfg := testConfig()
	cfg.Trunks = []Trunk{{Name: "carrier", CIDRs: []string{"192.0.2.0/24"}}}
	s := startSite(t, cfg, "")
	s.send(t, request{Name: "unknown-trunk", Method: "INVITE", User: testNumber, Headers: "Content-Type: application/sdp\n", Body: goodSDP, Expect: 403}).wait(t, 15*time.Second)
	testrun.Eventually(t, 5*time.Second, "the refusal counted", func() bool {
		return s.counter(t, "dirigent_sip_rejected_total", map[string]string{"reason": "trunk"}) == 1
	})
}

// TestRegisterBadPassword: an agent's phone with a wrong password is
// challenged and then refused (403); an unknown user too; neither is
// registered.
func TestRegisterBadPassword(t *testing.T) {
	s := startSite(t, testConfig(), "")
	for _, c := range []struct{ user, password string }{{testUser, "wrong"}, {"mallory", testPass}} {
		r := s.sipp(t, "register-refused.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-s", c.user, "-au", c.user, "-ap", c.password, "-timeout", "10s", "-timeout_error")
		r.wait(t, 15*time.Second)
	}
	if n := len(s.ch.registrar.contacts("anna")); n != 0 {
		t.Errorf("%d contacts registered", n)
	}
	testrun.Eventually(t, 5*time.Second, "both refusals counted", func() bool {
		return s.counter(t, "dirigent_sip_register_requests_total", map[string]string{"result": "forbidden"}) == 2
	})
}

// TestTrunkDigest: a trunk with credentials challenges the INVITE (407)
// and takes it with the right ones; a wrong password is refused (403)
// and counted.
func TestTrunkDigest(t *testing.T) {
	cfg := testConfig()
	cfg.Trunks = []Trunk{{Name: "carrier", CIDRs: []string{"127.0.0.0/8"}, User: "carrier", Password: "trunkpw"}}
	s := startSite(t, cfg, "")
	media := newCallerMedia(t)
	s.sipp(t, "caller-auth.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "500", "-au", "carrier", "-ap", "trunkpw",
		"-key", "dialled", testNumber, "-key", "caller", "03055550001", "-key", "mip", "127.0.0.1", "-key", "mport", media.port()).wait(t, 15*time.Second)
	if h, _, _ := media.counts(); h == 0 {
		t.Errorf("the authenticated caller heard no hold audio")
	}
	s.sipp(t, "caller-auth-refused.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-au", "carrier", "-ap", "wrong",
		"-key", "dialled", testNumber, "-key", "caller", "03055550002", "-key", "mip", "127.0.0.1", "-key", "mport", media.port()).wait(t, 15*time.Second)
	testrun.Eventually(t, 5*time.Second, "the refusal counted", func() bool {
		return s.counter(t, "dirigent_sip_rejected_total", map[string]string{"reason": "auth"}) == 1
	})
}
