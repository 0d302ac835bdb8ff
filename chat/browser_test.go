package chat

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dirigent/internal/testpeer"
)

// page is one headless Chromium tab.
type page struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func newPage(t *testing.T) *page {
	t.Helper()
	ctx := testpeer.Chromium(t, 1024, 768)
	return &page{t: t, ctx: ctx, shots: t.ArtifactDir()}
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition until it holds (30 s against a
// hang, not a speed requirement).
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("waiting for %s (%s): %v", what, cond, err)
	}
}

func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
}

// TestWidgetInTheBrowser: a shop's page on another loopback origin
// embeds the widget with its one script tag; the customer starts a chat
// in German, writes, and the agent (driven through the Go API, as the
// desk will) takes it, types and answers; the answer appears in the page.
// A reload resumes the chat with its history; the customer ends it.
// Screenshots go to the test's artifact directory (go test -artifacts).
func TestWidgetInTheBrowser(t *testing.T) {
	testpeer.Require(t, "chromium", "chromium")
	shop := httptest.NewUnstartedServer(nil)
	shopOrigin := "http://" + shop.Listener.Addr().String()
	s := startSite(t, func(c *Config, _ *Deps) { c.AllowedOrigins = []string{shopOrigin} })
	shop.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Beispiel-Shop</title></head>
<body><h1>Beispiel-Shop</h1><p>Unsere Router blinken in allen Farben.</p>
<script src="http://%s/widget.js" data-queue="support" async></script></body></html>`, s.ch.Addr())
	})
	shop.Start()
	defer shop.Close()
	s.available(t, "anna")

	p := newPage(t)
	t.Logf("screenshots in %s", p.shots)
	p.do("open the shop", chromedp.Navigate(shopOrigin+"/"), chromedp.WaitVisible("#dg-chat-button"))
	p.shot("01-shop-with-widget")
	if label := p.text("#dg-chat-start"); label != "Chat starten" {
		t.Errorf("the page is German, the widget says %q", label)
	}
	p.do("open the chat", chromedp.Click("#dg-chat-button"), chromedp.WaitVisible("#dg-chat-intro"))
	// An address the browser lets through but dirigent cannot use (no dot
	// in the domain) is refused, and the form comes back.
	p.do("a bad address", chromedp.SendKeys("#dg-chat-email", "joe@example"), chromedp.Click("#dg-chat-start"))
	p.waitFor("the refusal", `document.querySelector(".dg-error-identity") !== null && !document.getElementById("dg-chat-intro").hidden`)
	if text := p.text(".dg-error-identity"); !strings.HasPrefix(text, "Diese E-Mail-Adresse") {
		t.Errorf("the refusal on a German page reads %q", text)
	}
	p.shot("01b-bad-address")
	p.do("introduce", chromedp.Evaluate[chromedp.Void](`document.getElementById("dg-chat-email").value = ""`),
		chromedp.SendKeys("#dg-chat-name", "Joe Kunde"), chromedp.SendKeys("#dg-chat-email", "joe@example.com"), chromedp.Click("#dg-chat-start"))
	p.waitFor("the session", `(localStorage.getItem(Object.keys(localStorage).find(k => k.startsWith("dirigent-chat:"))) || "").includes("token")`)
	p.do("write", chromedp.WaitVisible("#dg-chat-input"), chromedp.SendKeys("#dg-chat-input", "Mein Router blinkt rot.\r"))
	p.waitFor("the acknowledgement", `document.querySelector(".dg-customer:not(.dg-pending)") !== null`)
	p.shot("02-customer-wrote")

	e := s.event(t, "message")
	if e.Text != "Mein Router blinkt rot." {
		t.Fatalf("the agent side got %+v", e)
	}
	o := s.offer(t)
	if err := s.router.Accept(o.TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the agent joined", `document.getElementById("dg-chat-log").textContent.includes("Anna Adler ist jetzt für Sie da.")`)
	if err := s.ch.Typing(bg, e.ConversationID, "anna", true); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the agent typing", `document.getElementById("dg-chat-status").textContent === "Anna Adler schreibt …"`)
	p.shot("03-agent-typing")
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Guten Tag! Bitte ziehen Sie einmal den Stecker."); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the answer", `[...document.querySelectorAll(".dg-agent")].some(m => m.textContent.includes("Bitte ziehen Sie einmal den Stecker."))`)
	p.shot("04-agent-answered")

	// A network blip: the server drops the connection, the agent answers
	// meanwhile, and the widget reconnects by itself and gets exactly
	// what it missed.
	s.ch.dropConnections()
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Sind Sie noch da?"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the missed answer", `[...document.querySelectorAll(".dg-agent")].some(m => m.textContent.includes("Sind Sie noch da?"))`)
	if n := p.count(".dg-agent"); n != 2 {
		t.Errorf("%d agent messages in the page after the blip, want 2", n)
	}

	// The customer types; the agent side hears it.
	p.do("type", chromedp.SendKeys("#dg-chat-input", "Mo"))
	for ev := s.event(t, "typing"); !ev.Active || ev.Agent != "anna"; ev = s.event(t, "typing") {
		t.Logf("typing event %+v", ev) // earlier typing, before anna took the chat
	}

	// A reload resumes the chat with everything said so far.
	p.do("reload", chromedp.Reload(), chromedp.WaitVisible("#dg-chat-button"), chromedp.Click("#dg-chat-button"))
	p.waitFor("the history", `document.querySelectorAll(".dg-customer, .dg-agent").length === 3`)
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Hat es geholfen?"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the answer after the reload", `document.querySelectorAll(".dg-agent").length === 3`)
	p.shot("05-resumed")

	p.do("end", chromedp.Click("#dg-chat-end"))
	p.waitFor("the end", `document.querySelector(".dg-notice-ended") !== null`)
	p.shot("06-ended")
	c, err := s.st.Contact(e.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Joe Kunde: Mein Router blinkt rot.", "Anna Adler: Hat es geholfen?"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("transcript lacks %q:\n%s", want, c.Text)
		}
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+"`"+sel+"`"+`).textContent`))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (p *page) count(sel string) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
	if err != nil {
		p.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}
