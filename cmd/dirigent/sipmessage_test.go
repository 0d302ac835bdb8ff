package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
)

// TestSIPMessageThroughTheDaemon: a customer's phone behind the trunk
// writes a SIP MESSAGE (sipp) in English (Accept-Language: en); it
// becomes a chat offered to anna, who accepts it and answers on the
// desk's JSON API; the answer reaches the phone as a SIP MESSAGE to the
// address it wrote from, as do dirigent's notices, in English. Then what
// must be refused is, with the right code.
func TestSIPMessageThroughTheDaemon(t *testing.T) {
	sipp := testpeer.Require(t, "sipp", "sip-tester")
	d, _ := deskDaemon(t, "", "", `[[sip.trunks]]
name = "pbx"
cidrs = ["127.0.0.1/32"]
[[sip.users]]
user = "anna"
password = "geheim"
agent = "anna"
`)
	anna := loginDesk(t, d.desk, "anna")
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)

	// The phone's trace shows what reached it.
	trace := filepath.Join(t.TempDir(), "phone.log")
	phone := exec.Command(sipp, d.sip, "-sf", "../../sip/testdata/message-chat.xml", "-oocsf", "../../sip/testdata/message-answer.xml",
		"-i", "127.0.0.1", "-p", freeUDPPort(t), "-s", "support", "-trace_msg", "-message_file", trace, "-nostdin", "-m", "1",
		"-key", "caller", "03055560001", "-key", "text", "Hello, my bill is wrong.", "-key", "accept_language", "en-GB, en;q=0.9, de;q=0.5")
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		phone.Process.Kill()
		phone.Wait()
	})

	var offers struct {
		Offers []struct {
			ID      uint64 `json:"id"`
			Channel string `json:"channel"`
		} `json:"offers"`
	}
	testrun.Eventually(t, 15*time.Second, "the SIP MESSAGE offered to anna", func() bool {
		anna.do(t, http.MethodGet, "/api/desk/offers", nil, &offers)
		return len(offers.Offers) > 0
	})
	o := offers.Offers[0]
	if o.Channel != "message" {
		t.Fatalf("offer %+v", o)
	}
	id := strconv.FormatUint(o.ID, 10)
	anna.do(t, http.MethodPost, "/api/desk/offers/"+id+"/accept", nil, nil)
	anna.do(t, http.MethodPost, "/api/desk/tasks/"+id+"/chat", map[string]any{"text": "Guten Tag, ich sehe nach."}, nil)
	// The answer went to the address the phone wrote from, and the phone
	// acknowledged it (dirigent's answer to the desk waited for that).
	answer := "MESSAGE sip:03055560001@127.0.0.1:"
	if log := mustRead(t, trace); !strings.Contains(log, answer) || !strings.Contains(log, "Guten Tag, ich sehe nach.") ||
		!strings.Contains(log, "SIP/2.0 200 OK") {
		t.Fatalf("the phone's trace lacks the answer:\n%s", log)
	}
	// Once the chat has ended, an answer is refused with 409.
	anna.do(t, http.MethodPost, "/api/desk/tasks/"+id+"/chat/end", nil, nil)
	// The phone was told, in its language, that someone will answer and
	// that the chat has ended.
	queued, ended := "Someone will be with you shortly.", "The chat has ended."
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log := mustRead(t, trace)
		if strings.Contains(log, queued) && strings.Contains(log, ended) {
			if strings.Contains(log, "Gleich ist jemand") || strings.Contains(log, "Der Chat ist beendet") {
				t.Errorf("the phone also got German notices:\n%s", log)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone's trace lacks the English notices %q and %q:\n%s", queued, ended, log)
		}
	}
	if code, answer := anna.try(t, http.MethodPost, "/api/desk/tasks/"+id+"/chat", map[string]any{"text": "Noch etwas?"}); code != http.StatusConflict {
		t.Errorf("an answer to an ended chat: %d %s", code, answer)
	}
	_, metrics := get(t, d.desk+"/metrics")
	for _, want := range []string{
		`dirigent_sip_messages_total{direction="in",result="accepted"} 1`,
		`dirigent_sip_messages_total{direction="out",result="failed"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "dirigent_sip_messages_total"))
		}
	}

	for _, c := range []struct {
		name, from, headers, body string
		expect                    int
	}{
		{"json", "127.0.0.1", "Content-Type: application/json\n", `{"text":"Hallo"}`, 415},
		{"latin1", "127.0.0.1", "Content-Type: text/plain;charset=ISO-8859-1\n", "Gr\xfc\xdfe", 415},
		{"empty", "127.0.0.1", "Content-Type: text/plain\n", "", 400},
		{"control", "127.0.0.1", "Content-Type: text/plain\n", "Hallo\x07", 400},
		{"too-large", "127.0.0.1", "Content-Type: text/plain\n", strings.Repeat("Hallo ", 1000), 413},
		// Not the trunk's address: only an authenticated SIP account may write.
		{"stranger", "127.0.0.2", "Content-Type: text/plain\n", "Hallo", 401},
	} {
		scenario := sippScenario(t, "../../sip/testdata/request.xml.tmpl",
			map[string]any{"Name": c.name, "Method": "MESSAGE", "User": "support", "Headers": c.headers, "Body": c.body, "Expect": c.expect})
		out, err := exec.Command(sipp, d.sip, "-sf", scenario, "-i", c.from, "-p", freeUDPPort(t), "-nostdin", "-m", "1",
			"-timeout", "10s", "-timeout_error").CombinedOutput()
		if err != nil {
			t.Errorf("%s: sipp expecting %d: %v\n%s", c.name, c.expect, err, out)
		}
	}
	// One of the SIP accounts writes from anywhere with its credentials,
	// as itself only.
	for _, c := range []struct{ user, password, expect string }{
		{"anna", "geheim", "202"},
		{"anna", "falsch", "403"},
		{"bob", "geheim", "403"},
	} {
		scenario := sippScenario(t, "../../sip/testdata/message-auth.xml.tmpl", map[string]any{"Expect": c.expect})
		out, err := exec.Command(sipp, d.sip, "-sf", scenario, "-i", "127.0.0.2", "-p", freeUDPPort(t),
			"-au", c.user, "-ap", c.password, "-key", "user", c.user,
			"-nostdin", "-m", "1", "-timeout", "10s", "-timeout_error").CombinedOutput()
		if err != nil {
			t.Errorf("%s with password %s, expecting %s: %v\n%s", c.user, c.password, c.expect, err, out)
		}
	}
}

// sippScenario writes the sipp scenario of a template filled with data
// and returns its path.
func sippScenario(t *testing.T, tmplPath string, data any) string {
	t.Helper()
	tmpl := template.Must(template.ParseFiles(tmplPath))
	f, err := os.CreateTemp(t.TempDir(), "*.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tmpl.Execute(f, data); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// freeUDPPort is a loopback UDP port free a moment ago, for a sipp.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.LocalAddr().(*net.UDPAddr).Port)
}

// deskClient is a desk login used over the JSON API, as the page does.
type deskClient struct {
	base string
	http *http.Client
	csrf string
}

func loginDesk(t *testing.T, base, user string) *deskClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &deskClient{base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	c.do(t, http.MethodPost, "/api/desk/login", map[string]any{"user": user, "password": deskPassword}, &me)
	c.csrf = me.CSRFToken
	return c
}

// do sends body as JSON and decodes the answer into out (when not nil);
// anything but 2xx fails the test.
func (c *deskClient) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	code, answer := c.try(t, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// try sends body as JSON and returns the answer's status and body.
func (c *deskClient) try(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd.Reset(b)
	}
	req, err := http.NewRequest(method, c.base+path, &rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var answer bytes.Buffer
	answer.ReadFrom(res.Body)
	return res.StatusCode, answer.Bytes()
}
