package main

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dirigent/internal/testpeer"
)

// deskPassword is every test login's password.
const deskPassword = "lange-geheime-phrase"

// deskDaemon starts dirigent with the agent anna, the supervisor sven, a
// next-best-action rule for mail, replies going to smarthost (none when
// empty), SIP on sipListen (any port when empty) and extra configuration,
// and sets both logins' passwords with `dirigent passwd`.
func deskDaemon(t *testing.T, smarthost, sipListen, extra string) (*runningDaemon, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, extra+`[[agents]]
id = "anna"
name = "Anna"
skills = { support = 3 }
[[next_best_actions]]
action = "Check the last invoice"
reason = "Mail about an invoice"
priority = 50
channels = ["email"]
`)
	setInConfig(t, cfgPath, "desk", "supervisors = [\"sven\"]\nadmins = [\"sven\"]\n")
	if sipListen != "" {
		writeFile(t, cfgPath, strings.Replace(mustRead(t, cfgPath), "[sip]\nlisten = \"127.0.0.1:0\"\n", "[sip]\nlisten = \""+sipListen+"\"\n", 1))
	}
	if smarthost != "" {
		setInConfig(t, cfgPath, "mail", "smarthost = \""+smarthost+"\"\nsmarthost_tls = \"none\"\n")
	}
	d := startDaemon(t, cfgPath)
	for _, user := range []string{"anna", "sven"} {
		if code, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, user); code != 0 || out != "password of "+user+" set; 0 desk session(s) with the old one ended\n" {
			t.Fatalf("dirigent passwd %s: exit %d\n%s", user, code, out)
		}
	}
	return d, cfgPath
}

// deskSinkDir makes a directory smtp-sink can write to after dropping
// root (t.TempDir's parent is private to root).
func deskSinkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dirigent-desk-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sunk waits for the one message in the sink's dir.
func sunk(t *testing.T, dir string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(files) == 1 {
			raw, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			return string(raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages arrived at the sink, want 1", len(files))
		}
	}
}

// sendMail sends a customer's mail into dirigent with swaks; extra are
// more of swaks's arguments (attachments).
func sendMail(t *testing.T, smtpAddr, from, subject, body string, extra ...string) {
	t.Helper()
	swaks := testpeer.Require(t, "swaks", "swaks")
	host, port, _ := strings.Cut(smtpAddr, ":")
	args := append([]string{"--server", host, "--port", port, "--from", from, "--to", "support@example.com",
		"--header", "From: Joe Kunde <" + from + ">", "--header", "Subject: " + subject, "--body", body}, extra...)
	out, err := exec.Command(swaks, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
}

// browserSession is one headless Chromium with one tab.
type browserSession struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots
}

// newBrowser starts Debian's Chromium at 1366×768 with a fresh profile.
func newBrowser(t *testing.T, shots string) *browserSession {
	t.Helper()
	ctx := testpeer.Chromium(t, 1366, 768)
	return &browserSession{t: t, ctx: ctx, dir: shots}
}

// do runs actions, each bounded so a broken page fails the test rather
// than hanging it.
func (b *browserSession) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browserSession, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func (b *browserSession) waitFor(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

// shot saves a screenshot of the viewport.
func (b *browserSession) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// login logs user in through the form, with the keyboard: the password
// field is submitted with Enter.
func (b *browserSession) login(base, user string) {
	b.t.Helper()
	b.do("open "+base, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-user"))
	b.do("log in "+user,
		chromedp.SendKeys("#login-user", user),
		chromedp.SendKeys("#login-password", deskPassword+"\r"),
		chromedp.WaitVisible("#logout"),
	)
}

// press sends key presses to the focused element.
func (b *browserSession) press(what, keys string, opts ...chromedp.KeyOption) {
	b.t.Helper()
	b.do(what, chromedp.KeyEvent(keys, opts...))
}

// TestDeskInTheBrowser: an agent logs in, goes available, a mail arrives
// over SMTP, the offer appears and is accepted, the journey and the next
// best action show, the reply arrives at the receiving server, wrap-up
// ends it; a supervisor sees the counts change. All in Debian's Chromium,
// by keyboard. Screenshots go to the test's artifact directory (kept with
// go test -artifacts).
func TestDeskInTheBrowser(t *testing.T) {
	testpeer.Require(t, "chromium", "chromium")
	sinkDir := deskSinkDir(t)
	// A mail returned to its queue comes back to anna after a second.
	d, _ := deskDaemon(t, testpeer.SMTPSink(t, "", sinkDir), "", "[routing]\nretry_delay = \"1s\"\n")
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)

	agent := newBrowser(t, shots)
	super := newBrowser(t, shots)

	// Keyboard: Tab walks the login form in order, and focus is visible.
	agent.do("open the desk", chromedp.Navigate(d.desk+"/"), chromedp.WaitVisible("#login-user"))
	agent.waitFor("the login field focused", `document.activeElement && document.activeElement.id === "login-user"`)
	agent.press("tab", "\t")
	if id := eval[string](agent, `document.activeElement.id`); id != "login-password" {
		t.Errorf("Tab from the user field went to %q, want login-password", id)
	}
	agent.press("tab", "\t")
	if id := eval[string](agent, `document.activeElement.id`); id != "login-submit" {
		t.Errorf("Tab from the password field went to %q, want login-submit", id)
	}
	if outline := eval[string](agent, `getComputedStyle(document.activeElement).outlineStyle`); outline == "none" {
		t.Error("the focused button has no visible outline")
	}
	// A wrong password is refused on the page.
	agent.do("wrong password", chromedp.SendKeys("#login-user", "anna"), chromedp.SendKeys("#login-password", "falsch-falsch\r"))
	agent.waitFor("the login error", `document.getElementById("login-error").textContent === "wrong user name or password"`)
	agent.shot("01-login-refused")
	agent.do("clear the form", chromedp.Evaluate[chromedp.Void](`document.getElementById("login-form").reset()`))
	agent.login(d.desk, "anna")
	agent.shot("02-agent-logged-in")

	super.login(d.desk, "sven")
	super.waitFor("the wallboard", `document.querySelector('#board-queues tr[data-queue="support"]') !== null`)
	super.waitFor("anna offline", `document.querySelector('#board-presence [data-presence="offline"]').textContent.endsWith(": 1")`)
	// The language switch: the wallboard in German.
	super.do("German", chromedp.SetValue("#lang", "de"), chromedp.Evaluate[chromedp.Void](`document.getElementById("lang").dispatchEvent(new Event("change"))`))
	super.waitFor("German captions", `document.querySelector("#board-queues caption").textContent === "Warteschlangen"`)
	super.shot("03-wallboard-before")

	// Available, by keyboard: focus the button, press Enter.
	agent.do("available", chromedp.Focus("#presence-available"))
	agent.press("enter", "\r")
	agent.waitFor("presence available", `document.getElementById("presence-now").textContent === "Available"`)
	super.waitFor("anna available on the wallboard", `document.querySelector('#board-presence [data-presence="available"]').textContent.endsWith(": 1")`)

	invoice := filepath.Join(t.TempDir(), "rechnung.pdf")
	writeFile(t, invoice, "%PDF-1.4\n"+strings.Repeat("Posten\n", 300))
	sendMail(t, d.smtp, "joe@example.org", "Rechnung falsch", "Meine Rechnung vom November ist zu hoch.", "--attach-type", "application/pdf", "--attach", "@"+invoice)
	agent.waitFor("the offer", `document.getElementById("offer-accept") !== null`)
	// The customer card is on screen while the offer waits.
	agent.waitFor("the customer card", `document.getElementById("customer-name").textContent === "Joe Kunde"`)
	if live := eval[string](agent, `document.getElementById("announce").getAttribute("aria-live")`); live != "assertive" {
		t.Errorf("offer announcement region aria-live=%q", live)
	}
	agent.waitFor("the offer announced", `document.getElementById("announce").textContent.includes("support")`)
	agent.waitFor("a countdown", `/^\d+ s$/.test(document.querySelector(".countdown").textContent)`)
	agent.shot("04-offer")
	super.waitFor("one waiting", `document.querySelector('#board-queues tr[data-queue="support"] .waiting').textContent === "1"`)
	super.shot("05-wallboard-offered")

	// Accept with the shortcut Alt+A.
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	// Accepting moves the focus to the task (for keyboard users); type
	// only after that.
	agent.waitFor("the task in progress", `!document.getElementById("reply-send").disabled && document.getElementById("offer-accept") === null && document.activeElement.id === "detail"`)
	agent.waitFor("the next best action", `document.getElementById("nba").textContent.includes("Check the last invoice") && document.getElementById("nba").textContent.includes("Mail about an invoice")`)
	agent.waitFor("the journey", `document.getElementById("journey").textContent.includes("Rechnung falsch")`)
	agent.waitFor("the mail thread", `document.getElementById("thread").textContent.includes("Meine Rechnung vom November ist zu hoch.")`)
	// Its attachment is a download link with its size, and the link
	// serves it.
	attachment := `document.querySelector('#thread .attachments a[download="rechnung.pdf"]')`
	agent.waitFor("the attachment", attachment+` !== null && `+attachment+`.textContent === "📎 rechnung.pdf (2 kB)"`)
	agent.waitFor("the attachment in the journey", `document.querySelector('#journey .attachments a[download="rechnung.pdf"]') !== null`)
	agent.waitFor("the attachment downloaded", `(window.attachmentStatus ??= fetch(`+attachment+`.href).then((r) => r.blob()).then((b) => window.attachmentSize = b.size), window.attachmentSize === 2109)`)
	super.waitFor("answered 1, waiting 0", `document.querySelector('#board-queues tr[data-queue="support"] .answered').textContent === "1" && document.querySelector('#board-queues tr[data-queue="support"] .waiting').textContent === "0"`)
	super.waitFor("anna busy", `document.querySelector('#board-presence [data-presence="busy"]').textContent.endsWith(": 1")`)
	// Answered in time: the service level meets the queue's target, which
	// stands beside it.
	super.waitFor("the service level met", `document.querySelector('#board-queues tr[data-queue="support"] .sl-15m').classList.contains("sl-met")`)
	if goal := eval[string](super, `document.querySelector('#board-queues tr[data-queue="support"] .sl-target').textContent`); goal != "80 % in 20 s" {
		t.Errorf("the support queue's service-level target on the wallboard: %q", goal)
	}

	// The supervisor returns anna's mail to the queue from the wallboard,
	// by keyboard: it leaves her screen and, nobody else being there,
	// comes back to her after routing.retry_delay (1 s here). It counts
	// as answered once.
	returnMail := `#board-agents tr[data-agent="anna"] button.return-task[data-task="1"]`
	super.waitFor("the return button", `document.querySelector('`+returnMail+`') !== null && document.querySelector('`+returnMail+`').getAttribute("aria-label") === "Zurück in die Warteschlange: E-Mail #1"`)
	super.do("return the mail", chromedp.Focus(returnMail))
	super.press("return", "\r")
	super.waitFor("told", `document.getElementById("status").textContent === "Aufgabe #1 ist zurück in ihrer Warteschlange."`)
	// The keyboard focus stays on anna's row, through the board's redraws.
	super.waitFor("the ↩ gone", `document.querySelector('`+returnMail+`') === null`)
	if row := eval[string](super, `document.activeElement.closest('tr') ? document.activeElement.closest('tr').dataset.agent : document.activeElement.tagName`); row != "anna" {
		t.Errorf("the focus went to %q, not anna's row", row)
	}
	agent.waitFor("the mail gone", `document.getElementById("tasks").textContent === "No tasks."`)
	agent.waitFor("the mail offered again", `document.getElementById("offer-accept") !== null`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("the mail in progress again", `!document.getElementById("reply-send").disabled && document.activeElement.id === "detail"`)
	super.waitFor("answered still 1", `document.querySelector('#board-queues tr[data-queue="support"] .answered').textContent === "1" && document.querySelector('#board-presence [data-presence="busy"]').textContent.endsWith(": 1")`)
	if row := eval[string](super, `document.activeElement.closest('tr') ? document.activeElement.closest('tr').dataset.agent : document.activeElement.tagName`); row != "anna" {
		t.Errorf("after the board's redraws the focus is on %q, not anna's row", row)
	}
	super.shot("06-wallboard-answered")

	// The page fits 1366×768 without sideways scrolling.
	if w := eval[float64](agent, `document.documentElement.scrollWidth`); w > 1366 {
		t.Errorf("the agent page is %v px wide at 1366×768", w)
	}
	agent.shot("07-task")

	// Reply, typed and sent from the keyboard, with the corrected invoice
	// attached (Chromium's file chooser, filled as a person would).
	corrected := filepath.Join(t.TempDir(), "rechnung-korrigiert.pdf")
	writeFile(t, corrected, "%PDF-1.4\nkorrigiert\n")
	// A draft and its file stay with their task: looking up a customer
	// meanwhile puts them aside (they cannot go to someone else), and
	// they are back with the task.
	agent.do("a draft", chromedp.SendKeys("#reply-text", "Entwurf"), chromedp.SetUploadFiles("#reply-files", []string{corrected}))
	agent.do("look up a customer", chromedp.SendKeys("#search-q", "kunde\r"))
	agent.do("show them", chromedp.WaitVisible("#search-results button"), chromedp.Focus("#search-results button"))
	agent.press("show", "\r")
	agent.waitFor("the customer, outside the task, without the draft", `document.getElementById("wrap-form").hidden && document.getElementById("reply-text").value === "" && document.getElementById("reply-files").files.length === 0`)
	agent.do("back to the task", chromedp.Evaluate[chromedp.Void](`document.getElementById("search-q").value = ""`), chromedp.Focus("#tasks button"))
	agent.press("open", "\r")
	agent.waitFor("the task again, with its draft", `!document.getElementById("reply-send").disabled && document.getElementById("reply-text").value === "Entwurf" && document.getElementById("reply-files").files.length === 1`)
	agent.do("the draft cleared", chromedp.Evaluate[chromedp.Void](`document.getElementById("reply-text").value = ""`))
	// A file that would make the reply larger than the mail server takes
	// is refused before it is read and sent.
	huge := filepath.Join(t.TempDir(), "scan.pdf")
	if err := os.WriteFile(huge, nil, 0o644); err != nil || os.Truncate(huge, 8_000_000) != nil {
		t.Fatal("a large file")
	}
	agent.do("a large file", chromedp.SetUploadFiles("#reply-files", []string{huge}), chromedp.SendKeys("#reply-text", "x"), chromedp.Focus("#reply-send"))
	agent.press("send it", "\r")
	agent.waitFor("told it is too large", `document.getElementById("status").textContent.includes("(10 MB)") && document.getElementById("status").classList.contains("error")`)
	agent.do("the large file dropped", chromedp.SetUploadFiles("#reply-files", []string{}), chromedp.Evaluate[chromedp.Void](`document.getElementById("reply-text").value = ""`))
	agent.do("type the reply", chromedp.SendKeys("#reply-text", "Guten Tag, wir haben die Rechnung korrigiert."),
		chromedp.SetUploadFiles("#reply-files", []string{corrected}), chromedp.Focus("#reply-send"))
	agent.press("send", "\r")
	agent.waitFor("the reply in the thread", `document.getElementById("thread").textContent.includes("wir haben die Rechnung korrigiert")`)
	agent.waitFor("its file in the thread", `document.querySelector('#thread li.out .attachments a[download="rechnung-korrigiert.pdf"]') !== null && document.getElementById("reply-files").files.length === 0`)
	// How it stands with the mail server: waiting, or sent already.
	agent.waitFor("its delivery", `/^(Waiting to be sent to joe@example.org|Sent .+ to joe@example.org)$/.test(document.querySelector('#thread li.out .delivery').textContent)`)
	agent.shot("08-replied")
	msg := sunk(t, sinkDir)
	for _, want := range []string{"To: <joe@example.org>", "Subject: Re: Rechnung falsch [#DG-1]", "In-Reply-To: <", "wir haben die Rechnung korrigiert",
		"Content-Disposition: attachment; filename=rechnung-korrigiert.pdf", base64.StdEncoding.EncodeToString([]byte("%PDF-1.4\nkorrigiert\n"))} {
		if !strings.Contains(msg, want) {
			t.Errorf("the reply at the sink lacks %q:\n%s", want, msg)
		}
	}

	// The link a phone shows for the contact opens the desk on its task,
	// still logged in after the page is loaded anew.
	agent.do("open the contact's link", chromedp.Navigate(d.desk+"/contacts/1"))
	agent.waitFor("the task from the link", `document.getElementById("customer-name").textContent === "Joe Kunde" && !document.getElementById("wrap-form").hidden`)

	// Wrap-up ends it.
	agent.do("wrap-up", chromedp.SetValue("#wrap-code", "resolved"), chromedp.SendKeys("#wrap-note", "Rechnung korrigiert"), chromedp.Focus("#wrap-send"))
	agent.press("finish", "\r")
	agent.waitFor("the task gone", `!document.getElementById("detail-empty").hidden && document.getElementById("tasks").textContent === "No tasks."`)
	agent.shot("09-wrapped-up")
	super.waitFor("anna available again", `document.querySelector('#board-presence [data-presence="available"]').textContent.endsWith(": 1")`)
	super.shot("09-wallboard-after")

	// Customer search, and the customer's card and journey outside a task.
	agent.do("search", chromedp.SendKeys("#search-q", "kunde\r"))
	agent.waitFor("a search result", `document.getElementById("search-results").textContent.includes("email:joe@example.org")`)
	agent.do("show the customer", chromedp.Focus("#search-results button"))
	agent.press("show", "\r")
	agent.waitFor("the customer's journey", `document.getElementById("customer-name").textContent === "Joe Kunde" && document.getElementById("journey").textContent.includes("Rechnung falsch") && document.getElementById("wrap-form").hidden`)
	agent.shot("10-customer")

	// The supervisor, also an admin, sees queues and skills, changes
	// anna's skills and sends her to lunch from the wallboard.
	super.waitFor("the admin tables", `document.querySelector('#admin-queues tbody').textContent.includes("support 1") && document.querySelector('#admin-agents tr[data-agent="anna"] .skills').textContent === "support 3"`)
	super.waitFor("the admin form", `!document.getElementById("admin").hidden && document.querySelector('#admin-skills input[name="support"]') !== null`)
	super.do("support 5", chromedp.Evaluate[chromedp.Void](`document.querySelector('#admin-skills input[name="support"]').value = "5"`), chromedp.Focus("#admin-skills-save"))
	super.press("save skills", "\r")
	if line := d.waitLog(t, "agent skills changed on the desk"); line["agent"] != "anna" || line["by"] != "sven" {
		t.Errorf("skills change logged as %v", line)
	}
	super.waitFor("the new skills shown", `document.querySelector('#admin-agents tr[data-agent="anna"] .skills').textContent === "support 5"`)
	super.do("away for lunch", chromedp.SetValue("#admin-presence", "away"), chromedp.SetValue("#admin-reason", "lunch"), chromedp.Focus("#admin-presence-save"))
	super.press("set presence", "\r")
	agent.waitFor("anna told she is away", `document.getElementById("presence-now").textContent === "Away (lunch)"`)
	super.waitFor("anna away on the wallboard", `document.querySelector('#board-presence [data-presence="away"]').textContent.endsWith(": 1")`)
	super.shot("11-admin")

	// A service level below the target is marked by a sign and words, not
	// colour alone, with a decimal where whole percents would show the
	// target itself (the wallboard drawn from a board the test makes up).
	below := eval[string](super, `renderBoard({queues: [{queue: "late", waiting: 0, longest_wait_seconds: 0, service_level_target: 0.8, service_level_threshold_seconds: 20,
		last_15m: {service_level: 0.5}, today: {service_level: 0.7996, asa_seconds: 3, abandon_rate: 0, answered: 10}}], agents: [], by_presence: {}});
		const row = document.querySelector('#board-queues tr[data-queue="late"]');
		[".sl-15m", ".sl-today"].map((c) => row.querySelector(c).className + ": " + row.querySelector(c).textContent).join(" | ")`)
	if below != "num sl-below sl-15m: 50 % ▼ (unter dem Ziel) | num sl-below sl-today: 79,9 % ▼ (unter dem Ziel)" {
		t.Errorf("service levels below target drawn as %q", below)
	}

	_, metrics := get(t, d.desk+"/metrics")
	for _, want := range []string{
		`dirigent_router_service_level_target_ratio{queue="support"} 0.8`,
		`dirigent_router_service_level_threshold_seconds{queue="support"} 20`,
		`dirigent_desk_wrap_ups_total{code="resolved"} 1`,
		`dirigent_desk_replies_total 1`,
		`dirigent_desk_offers_total{event="accepted"} 2`, // the mail, and again after it was returned
		`dirigent_desk_logins_total{result="ok"} 2`,
		`dirigent_desk_logins_total{result="refused"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// sipPort returns a port free on 127.0.0.1 for both UDP and TCP, as the
// SIP listener takes both.
func sipPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			tcp.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// TestDeskCallInTheBrowser: while anna's phone (sipp) rings with a call,
// her desk already shows the caller's customer card; when the caller
// hangs up, the offer leaves the desk.
func TestDeskCallInTheBrowser(t *testing.T) {
	sipp := testpeer.Require(t, "sipp", "sip-tester")
	testpeer.Require(t, "chromium", "chromium")
	sipListen := "127.0.0.1:" + strconv.Itoa(sipPort(t))
	d, _ := deskDaemon(t, "", sipListen, `[[sip.users]]
user = "anna"
password = "geheim-sip"
agent = "anna"
[[sip.trunks]]
name = "pbx"
cidrs = ["127.0.0.0/8"]
[[sip.numbers]]
number = "+49301234500"
queue = "support"
`)
	agent := availableInTheBrowser(t, d)

	testdata := filepath.Join("..", "..", "sip", "testdata")
	run := func(name string, args ...string) chan error {
		cmd := exec.Command(sipp, append([]string{sipListen, "-i", "127.0.0.1", "-nostdin", "-p", strconv.Itoa(sipPort(t))}, args...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			err := <-done
			if t.Failed() {
				t.Logf("sipp %s: %v\n%s", name, err, out.String())
			}
			done <- err
		})
		return done
	}
	// anna's phone: registers, then rings with every call until it is
	// canceled.
	run("phone", "-sf", filepath.Join(testdata, "agent-register.xml"), "-oocsf", filepath.Join(testdata, "agent-ring-cancel.xml"),
		"-mp", strconv.Itoa(sipPort(t)), "-s", "anna", "-au", "anna", "-ap", "geheim-sip", "-m", "1")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, m := get(t, d.desk+"/metrics"); strings.Contains(m, "dirigent_sip_registrations 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("anna's phone did not register")
		}
	}
	// Erika calls, hears hold audio, and hangs up after 8 s.
	caller := run("caller", "-sf", filepath.Join(testdata, "caller-hangup.xml"), "-m", "1", "-d", "8000",
		"-key", "dialled", "+49301234500", "-key", "caller", "03055510001", "-key", "mip", "127.0.0.1", "-key", "mport", strconv.Itoa(sipPort(t)))

	agent.waitFor("the call on offer with the caller's card", `document.querySelector("#offers .ringing") !== null &&
		document.querySelector("#offers li").textContent.startsWith("call") &&
		document.getElementById("offer-accept") === null &&
		document.getElementById("customer-name").textContent === "Erika Mustermann" &&
		`+cardIdentities+` === "phone:+493055510001"`)
	agent.shot("call-1-ringing")
	select {
	case err := <-caller:
		caller <- err
		t.Fatalf("the caller hung up before the desk was checked: %v", err)
	default:
	}
	agent.waitFor("the offer gone after the caller hung up", `document.querySelector("#offers .ringing") === null && !document.getElementById("detail-empty").hidden`)
	agent.shot("call-2-caller-hung-up")
	select {
	case err := <-caller:
		caller <- err
		if err != nil {
			t.Errorf("caller: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("the caller's sipp did not finish")
	}
}

// TestDeskChatInTheBrowser: a customer chats through the widget's
// WebSocket; the chat is offered on anna's desk, accepted with Alt+A, and
// answered from the desk's chat pane; the customer's next message shows
// live; anna ends the chat and wraps up.
func TestDeskChatInTheBrowser(t *testing.T) {
	testpeer.Require(t, "chromium", "chromium")
	d, _ := deskDaemon(t, "", "", "")
	if d.chat == "" || d.chat == "off" {
		t.Fatalf("chat address %q", d.chat)
	}
	agent := availableInTheBrowser(t, d)

	customer := dialChat(t, d.chat)
	customer.send(map[string]any{"type": "hello", "lang": "de", "queue": "support", "name": "Klara Kunde", "email": "klara@example.org"})
	customer.until("welcome")
	customer.send(map[string]any{"type": "message", "id": "m1", "text": "Hallo, mein Paket fehlt."})

	agent.waitFor("the chat on offer", `document.getElementById("offer-accept") !== null && document.querySelector("#offers li").textContent.startsWith("message")`)
	agent.waitFor("the customer card", `document.getElementById("customer-name").textContent === "Klara Kunde"`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("the chat pane", `!document.getElementById("chat-card").hidden && document.getElementById("chat").textContent.includes("mein Paket fehlt") && document.activeElement.id === "detail"`)
	if joined := customer.until("agent_joined"); joined["name"] == "" {
		t.Errorf("agent_joined %v", joined)
	}

	agent.do("type an answer", chromedp.SendKeys("#chat-text", "Ich sehe sofort nach."), chromedp.Focus("#chat-send"))
	agent.press("send", "\r")
	for {
		m := customer.until("message")
		if m["from"] == "agent" {
			if m["text"] != "Ich sehe sofort nach." {
				t.Errorf("the customer got %v", m)
			}
			break
		}
	}
	customer.send(map[string]any{"type": "message", "id": "m2", "text": "Danke, Sendung 4711."})
	agent.waitFor("the customer's answer, live", `document.getElementById("chat").textContent.includes("Sendung 4711")`)
	agent.shot("chat-1-talking")

	agent.do("end the chat", chromedp.Focus("#chat-end"))
	agent.press("end", "\r")
	for {
		if n := customer.until("notice"); n["code"] == "ended" {
			break
		}
	}
	agent.do("wrap-up", chromedp.SetValue("#wrap-code", "resolved"), chromedp.Focus("#wrap-send"))
	agent.press("finish", "\r")
	agent.waitFor("the task gone", `!document.getElementById("detail-empty").hidden && document.getElementById("tasks").textContent === "No tasks."`)
	agent.shot("chat-2-wrapped-up")
}

// TestDeskStuckReplyInTheBrowser: a reply the mail server refuses (a real
// smtp-sink refusing every recipient for now, 450) shows on anna's desk as
// not sent, with the server's answer, and she stops it with the button
// beside it.
func TestDeskStuckReplyInTheBrowser(t *testing.T) {
	d, _ := deskDaemon(t, testpeer.SMTPSink(t, "", deskSinkDir(t), "-r", "rcpt"), "", "")
	agent := repliedInTheBrowser(t, d, "joe@example.org")
	agent.waitFor("the refusal in the thread", `document.querySelector('#thread li.out .delivery.error') !== null && document.querySelector('#thread li.out .delivery.error').textContent.includes("smarthost answered 450") && document.querySelector('#thread li.out button.give-up') !== null`)
	// Focused by the page's own lookup: the thread may be drawn anew
	// between a lookup of chromedp's and its focus (a delivery event).
	agent.do("stop sending", chromedp.Evaluate[chromedp.Void](`document.querySelector("#thread li.out button.give-up").focus()`))
	agent.press("stop", "\r")
	agent.waitFor("stopped", `document.getElementById("status").textContent === "The reply will not be sent." && document.querySelector('#thread li.out .delivery').textContent.startsWith("Not sent: stopped") && document.querySelector('#thread li.out button.give-up') === null`)
	agent.shot("stuck-reply-stopped")
}

// TestDeskBounceInTheBrowser: a reply that bounces (a real Postfix takes
// it, and then sends its bounce: no such user) shows on the thread on
// anna's screen as sent, then, live, as not delivered; the bounce comes to
// her as an offer, and taken, its thread shows her reply, why, and the
// bounce; she sends the reply again to another address, which Postfix
// takes.
func TestDeskBounceInTheBrowser(t *testing.T) {
	agent := repliedInTheBrowser(t, deskBehindPostfix(t), "joe@bounce.example")
	agent.waitFor("the reply sent", `document.querySelector('#thread li.out .delivery') !== null && document.querySelector('#thread li.out .delivery').textContent.startsWith("Sent")`)
	agent.waitFor("the reply not delivered", `document.querySelector('#thread li.out .delivery.error') !== null && document.querySelector('#thread li.out .delivery.error').textContent.startsWith("Not delivered (")`)
	agent.waitFor("the bounce offered", `document.getElementById("offer-accept") !== null`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("the bounce taken, with its thread", `document.getElementById("offer-accept") === null && document.querySelectorAll("#thread > li").length === 3`)
	note := eval[string](agent, `document.querySelector('#thread li.out .delivery.error').textContent`)
	if !strings.HasPrefix(note, "Not delivered (") || !strings.HasSuffix(note, `): joe@bounce.example: unknown user: "joe"`) {
		t.Errorf("the reply's note: %q", note)
	}
	if eval[bool](agent, `document.querySelector('#thread li.out button.give-up') !== null`) {
		t.Error("a bounced reply offers to stop its tries")
	}
	if meta, text := eval[string](agent, `document.querySelector('#thread > li:last-child .meta').textContent`), eval[string](agent, `document.querySelector('#thread > li:last-child pre').textContent`); !strings.HasSuffix(meta, "returned by the mail system: a reply was not delivered") || !strings.Contains(text, `<joe@bounce.example>: unknown user: "joe"`) {
		t.Errorf("the bounce in the thread: %q: %q", meta, text)
	}
	agent.shot("bounce-taken")
	// Joe gave another address by phone: anna sends there.
	agent.do("reply to another address", chromedp.Evaluate[chromedp.Void](`document.getElementById("reply-to").value = "known@example.org"; document.getElementById("reply-text").value = "Hier noch einmal."`), chromedp.Focus("#reply-send"))
	agent.press("send", "\r")
	agent.waitFor("queued for the other address", `document.getElementById("status").textContent === "Reply queued for known@example.org." && document.getElementById("reply-to").value === ""`)
	agent.waitFor("sent there", `document.querySelectorAll('#thread li.out').length === 2 && document.querySelectorAll('#thread li.out')[1].querySelector('.delivery').textContent.startsWith("Sent") && document.querySelectorAll('#thread li.out')[1].querySelector('.delivery').textContent.endsWith(" to known@example.org")`)
	agent.shot("sent-to-another-address")
}

// TestDeskUnlinkInTheBrowser: the CRM gave Joe a mistyped second address,
// a stranger's; the stranger's mail comes to anna as Joe's. She takes the
// address from Joe on the card, by keyboard (asked once more; "Keep"
// first, then "Remove", the focus kept while the card is drawn anew), the
// journey says she did, and the stranger's next mail is someone else's: a
// customer of that address alone, with no history of Joe's (and no
// button: a customer's only identity is not taken on the desk). A
// supervisor takes a number on a card looked up outside any task, and
// that card's journey says so.
func TestDeskUnlinkInTheBrowser(t *testing.T) {
	d, cfgPath := deskDaemon(t, "", "", "[[agents]]\nid = \"sven\"\nskills = { support = 1 }\n")
	csv := filepath.Join(t.TempDir(), "crm.csv")
	writeFile(t, csv, "crm_id;name;email\nK-7;Joe Kunde;joe@example.org|joe@exampel.org\n")
	if out, err := dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, csv).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	agent := availableInTheBrowser(t, d)
	sendMail(t, d.smtp, "joe@exampel.org", "Werbung", "Kaufen Sie jetzt!")
	agent.waitFor("the offer", `document.getElementById("offer-accept") !== null`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("Joe's card with both addresses", `document.activeElement.id === "detail" && `+cardIdentities+` === "email:joe@exampel.org,email:joe@example.org"`)
	stranger := `#customer-identities button.unlink[data-identity="email:joe@exampel.org"]`
	if label := eval[string](agent, `document.querySelector('`+stranger+`').getAttribute("aria-label")`); label != "email:joe@exampel.org: not this customer's" {
		t.Errorf("the button's label: %q", label)
	}
	agent.do("not this customer", chromedp.Focus(stranger))
	agent.press("ask", "\r")
	agent.waitFor("asked once more", `document.activeElement.classList.contains("unlink-yes") && document.querySelector("#customer-identities li.unlinking").textContent.startsWith("Remove email:joe@exampel.org from this customer?")`)
	agent.shot("unlink-1-asked")
	agent.press("to Keep", "\t")
	agent.press("keep", "\r")
	agent.waitFor("kept, the focus back on the button", `document.querySelector("#customer-identities li.unlinking") === null && document.activeElement.dataset.identity === "email:joe@exampel.org"`)
	agent.press("ask again", "\r")
	agent.waitFor("asked again", `document.activeElement.classList.contains("unlink-yes")`)
	agent.do("draw the card anew", chromedp.Evaluate[chromedp.Void](`renderDetail()`))
	if !eval[bool](agent, `document.activeElement.classList.contains("unlink-yes") && document.activeElement.getAttribute("aria-describedby") === "unlink-question"`) {
		t.Error("the focus left the question when the card was drawn anew")
	}
	agent.press("remove", "\r")
	agent.waitFor("taken", `document.getElementById("status").textContent === "email:joe@exampel.org is no longer this customer's." && `+cardIdentities+` === "email:joe@example.org"`)
	agent.waitFor("the journey telling who took it", `document.querySelector("#journey > li").textContent.endsWith(" anna removed email:joe@exampel.org from this customer")`)
	agent.shot("unlink-2-taken")
	agent.do("wrap-up", chromedp.SetValue("#wrap-code", "resolved"), chromedp.Focus("#wrap-send"))
	agent.press("finish", "\r")
	agent.waitFor("the task gone", `document.getElementById("tasks").textContent === "No tasks."`)

	sendMail(t, d.smtp, "joe@exampel.org", "Werbung", "Letzte Chance!")
	agent.waitFor("the next offer", `document.getElementById("offer-accept") !== null`)
	agent.waitFor("someone else's card", cardIdentities+` === "email:joe@exampel.org" && document.querySelectorAll("#journey > li").length === 1`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("taken, with no button for the only identity", `document.getElementById("offer-accept") === null && document.querySelector("#customer-identities button") === null`)

	// An admin gives Joe a number; sven (agent and supervisor), on Joe's
	// card looked up outside any task, takes it again, and the journey on
	// that card says so.
	if out, err := dirigentCmd(t, nil, "customer", "link", "--config", cfgPath, "1", "phone:+4930555000").CombinedOutput(); err != nil {
		t.Fatalf("customer link: %v\n%s", err, out)
	}
	super := newBrowser(t, t.ArtifactDir())
	super.login(d.desk, "sven")
	super.do("search", chromedp.SendKeys("#search-q", "kunde\r"))
	super.do("show the customer", chromedp.WaitVisible("#search-results button"), chromedp.Focus("#search-results button"))
	super.press("show", "\r")
	super.waitFor("Joe's card outside any task", `document.getElementById("wrap-form").hidden && document.getElementById("journey").textContent.includes("admin added phone:+4930555000 to this customer")`)
	super.do("not this customer", chromedp.Focus(`#customer-identities button.unlink[data-identity="phone:+4930555000"]`))
	super.press("ask", "\r")
	super.waitFor("asked", `document.activeElement.classList.contains("unlink-yes")`)
	super.press("remove", "\r")
	super.waitFor("the card's journey telling who took it", `document.querySelector("#journey > li").textContent.endsWith(" sven removed phone:+4930555000 from this customer")`)
}

// cardIdentities is a JavaScript expression: the identities on the
// customer card, "a,b".
const cardIdentities = `[...document.querySelectorAll("#customer-identities .identity")].map((e) => e.textContent).join()`

// repliedInTheBrowser: anna, available in Chromium, takes the mail of
// the customer at from, and sends a reply.
func repliedInTheBrowser(t *testing.T, d *runningDaemon, from string) *browserSession {
	t.Helper()
	agent := availableInTheBrowser(t, d)
	sendMail(t, d.smtp, from, "Adresse", "Bitte antworten.")
	agent.waitFor("the offer", `document.getElementById("offer-accept") !== null`)
	agent.press("Alt+A", "a", chromedp.KeyModifiers(chromedp.ModifierAlt))
	agent.waitFor("the mail taken", `!document.getElementById("reply-send").disabled && document.getElementById("offer-accept") === null && document.activeElement.id === "detail"`)
	// Set, not typed: chromedp's SendKeys reads the node's attributes
	// while its DOM events may still change them (a data race in the
	// library under -race), and typing is not what these tests are about.
	agent.do("reply", chromedp.Evaluate[chromedp.Void](`document.getElementById("reply-text").value = "Gern."`), chromedp.Focus("#reply-send"))
	agent.press("send", "\r")
	return agent
}

// availableInTheBrowser: anna logs in to Chromium and goes available, by
// keyboard; screenshots go to the test's artifact directory.
func availableInTheBrowser(t *testing.T, d *runningDaemon) *browserSession {
	t.Helper()
	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)
	agent := newBrowser(t, shots)
	agent.login(d.desk, "anna")
	agent.do("available", chromedp.Focus("#presence-available"))
	agent.press("enter", "\r")
	agent.waitFor("presence available", `document.getElementById("presence-now").textContent === "Available"`)
	return agent
}
