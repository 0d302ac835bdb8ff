package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"dirigent/internal/clientaddr"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

var bg = context.Background()

// A chat from hello to the end: the first message is stored, acknowledged
// and becomes a task that the router offers; the agent accepts through
// the router, and the two write, type and end; the transcript becomes the
// contact's text.
func TestChatWithAnAgent(t *testing.T) {
	s := startSite(t, nil)
	s.available(t, "anna")
	b := s.dial(t, nil)
	b.send(hello(map[string]any{"name": "Joe Kunde", "email": "joe@example.com", "queue": "support"}))
	w := b.until(FrameWelcome)
	if w.Session == "" || w.Resumed || w.Lang != "de" || w.Queue != "support" {
		t.Fatalf("welcome %+v", w)
	}
	b.send(message("m1", "Hallo, mein Router blinkt rot."))
	ack := b.until(FrameMessage)
	if ack.ID != "m1" || ack.Seq != 1 || ack.From != "customer" || ack.Text != "Hallo, mein Router blinkt rot." {
		t.Fatalf("acknowledgement %+v", ack)
	}
	if n := b.until(FrameNotice); n.Code != "queued" || !strings.Contains(n.Text, "Gleich ist jemand") {
		t.Fatalf("notice %+v", n)
	}
	e := s.event(t, "message")
	if e.Text != "Hallo, mein Router blinkt rot." || e.TaskID == 0 || e.ConversationID == 0 || e.Agent != "" {
		t.Fatalf("event %+v", e)
	}
	o := s.offer(t)
	if o.TaskID != e.TaskID || o.Agent != "anna" || o.Channel != router.Message || o.Queue != "support" {
		t.Fatalf("offer %+v, event %+v", o, e)
	}
	contact, err := s.st.Contact(e.TaskID)
	if err != nil || contact.Channel != "message" || contact.ConversationID != e.ConversationID || contact.Queue != "support" {
		t.Fatalf("contact %+v, %v", contact, err)
	}
	sub, cancel := s.ch.Subscribe("anna", 10)
	defer cancel()
	if err := s.router.Accept(o.TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	if j := b.until(FrameAgentJoined); j.Name != "Anna Adler" {
		t.Fatalf("joined %+v", j)
	}
	if err := s.ch.Typing(bg, e.ConversationID, "anna", true); err != nil {
		t.Fatal(err)
	}
	if ty := b.until(FrameTyping); !ty.Active || ty.Name != "Anna Adler" {
		t.Fatalf("typing %+v", ty)
	}
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Bitte einmal aus- und einschalten."); err != nil {
		t.Fatal(err)
	}
	if m := b.until(FrameMessage); m.From != "agent" || m.Seq != 2 || m.Name != "Anna Adler" || m.Text != "Bitte einmal aus- und einschalten." {
		t.Fatalf("agent message %+v", m)
	}
	b.send(map[string]any{"type": "typing", "active": true})
	b.send(message("m2", "Geht wieder, danke!"))
	for _, want := range []string{"typing", "message"} {
		select {
		case ev := <-sub:
			if ev.Kind != want || ev.Agent != "anna" {
				t.Fatalf("subscribed event %+v, want %s", ev, want)
			}
			if want == "message" && ev.Text != "Geht wieder, danke!" {
				t.Fatalf("subscribed message %+v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event for anna", want)
		}
	}
	if err := s.ch.End(bg, e.ConversationID, "anna"); err != nil {
		t.Fatal(err)
	}
	frames, _ := b.closedWith()
	if len(frames) == 0 || frames[len(frames)-1].Code != "ended" {
		t.Fatalf("frames before close: %+v", frames)
	}
	if err := s.ch.Send(bg, e.ConversationID, "anna", "noch etwas"); !errors.Is(err, ErrEnded) {
		t.Fatalf("send after end: %v", err)
	}
	// The router keeps it with anna for her wrap-up.
	if err := s.router.ReturnTask(e.TaskID, "anna", "by sven"); !errors.Is(err, router.ErrWrongState) {
		t.Errorf("the ended chat returned to its queue: %v", err)
	}
	contact, err = s.st.Contact(e.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Joe Kunde: Hallo, mein Router blinkt rot.", "Anna Adler: Bitte einmal aus- und einschalten.", "Joe Kunde: Geht wieder, danke!"} {
		if !strings.Contains(contact.Text, want) {
			t.Errorf("transcript lacks %q:\n%s", want, contact.Text)
		}
	}
	if contact.End.IsZero() || contact.Agent != "anna" {
		t.Errorf("contact after the end: %+v", contact)
	}
	msgs, err := s.ch.Transcript(e.ConversationID)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("transcript %+v, %v", msgs, err)
	}
	if got := counterValue(s.ch.metrics.messages.WithLabelValues("in")); got != 2 {
		t.Errorf("messages in = %v", got)
	}
	if got := counterValue(s.ch.metrics.messages.WithLabelValues("out")); got != 1 {
		t.Errorf("messages out = %v", got)
	}
}

// TestChatOfARemovedAgent: when a reload removes the agent of a chat,
// the customer is told that someone else takes over, and of nobody being
// free while so; the next agent joins as the first did.
func TestChatOfARemovedAgent(t *testing.T) {
	s := startSite(t, nil)
	s.available(t, "anna")
	b := s.chatting(t, nil)
	b.send(message("m1", "Hallo?"))
	if n := b.until(FrameNotice); n.Code != "queued" {
		t.Fatalf("notice %+v", n)
	}
	o := s.offer(t)
	if err := s.router.Accept(o.TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	b.until(FrameAgentJoined)
	if err := s.router.RemoveAgent("anna"); err != nil {
		t.Fatal(err)
	}
	if n := b.until(FrameNotice); n.Code != "returned" || !strings.Contains(n.Text, "Gleich übernimmt jemand anderes") {
		t.Fatalf("notice %+v", n)
	}
	if n := b.until(FrameNotice); n.Code != "nobody" {
		t.Fatalf("then %+v", n)
	}
	if err := s.router.SetAgent(router.AgentSpec{ID: "bert", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 2}}); err != nil {
		t.Fatal(err)
	}
	s.available(t, "bert")
	if again := s.offer(t); again.TaskID != o.TaskID || again.Agent != "bert" {
		t.Fatalf("offer %+v", again)
	}
	if err := s.router.Accept(o.TaskID, "bert"); err != nil {
		t.Fatal(err)
	}
	if j := b.until(FrameAgentJoined); j.Name != "bert" {
		t.Errorf("joined %+v", j)
	}
}

// A browser that lost its connection resumes with its token and gets
// what it missed; a message sent again after a lost acknowledgement is
// stored once.
func TestResumeAfterReconnect(t *testing.T) {
	s := startSite(t, nil)
	s.available(t, "anna")
	b := s.dial(t, nil)
	b.send(map[string]any{"type": "hello"}) // naming no language
	first := b.until(FrameWelcome)
	if first.Lang != "de" {
		t.Errorf("language %q of a hello naming none, want de as for SIP peers", first.Lang)
	}
	token := first.Session
	b.send(message("m1", "Ist jemand da?"))
	b.until(FrameMessage)
	e := s.event(t, "message")
	b.close()

	for _, text := range []string{"Ja, ich bin da.", "Worum geht es?"} {
		if err := s.ch.Send(bg, e.ConversationID, "anna", text); err != nil {
			t.Fatal(err)
		}
	}
	b2 := s.dial(t, nil)
	b2.send(hello(map[string]any{"session": token, "last_seq": 1}))
	w := b2.until(FrameWelcome)
	if !w.Resumed || w.Session != token || w.Seq != 3 {
		t.Fatalf("welcome %+v", w)
	}
	for _, want := range []string{"Ja, ich bin da.", "Worum geht es?"} {
		if m := b2.until(FrameMessage); m.Text != want || m.From != "agent" {
			t.Fatalf("missed message %+v, want %q", m, want)
		}
	}
	// The page never saw the acknowledgement of m1 and sends it again.
	b2.send(message("m1", "Ist jemand da?"))
	if ack := b2.until(FrameMessage); ack.ID != "m1" || ack.Seq != 1 {
		t.Fatalf("repeated message acknowledged as %+v", ack)
	}
	msgs, err := s.ch.Transcript(e.ConversationID)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("transcript %+v, %v", msgs, err)
	}
	// A second tab resuming the same session takes it over.
	b3 := s.chatting(t, map[string]any{"session": token, "last_seq": 3})
	b2.closedWith()
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Hallo?"); err != nil {
		t.Fatal(err)
	}
	if m := b3.until(FrameMessage); m.Text != "Hallo?" {
		t.Fatalf("after takeover %+v", m)
	}
	// A token of an ended chat starts a new one.
	if err := s.ch.End(bg, e.ConversationID, "anna"); err != nil {
		t.Fatal(err)
	}
	b4 := s.dial(t, nil)
	b4.send(hello(map[string]any{"session": token, "last_seq": 3}))
	if w := b4.until(FrameWelcome); w.Resumed || w.Session == token {
		t.Fatalf("welcome after end %+v", w)
	}
}

// Bad frames get an error frame and close their own connection only;
// other chats go on.
func TestBadFramesCloseOnlyThatSession(t *testing.T) {
	s := startSite(t, nil)
	s.available(t, "anna")
	good := s.chatting(t, nil)

	for _, tc := range []struct {
		name   string
		frames [][]byte
		code   string
	}{
		{"not JSON", [][]byte{[]byte(`{"type":"hello"}`), []byte(`hello?`)}, "syntax"},
		{"unknown type", [][]byte{[]byte(`{"type":"hello"}`), []byte(`{"type":"admin"}`)}, "type"},
		{"unknown field", [][]byte{[]byte(`{"type":"hello"}`), []byte(`{"type":"end","force":true}`)}, "field"},
		{"too large", [][]byte{[]byte(`{"type":"hello"}`), []byte(`{"type":"message","id":"x","text":"` + strings.Repeat("ä", 51) + `"}`)}, "too_large"},
		{"no hello", [][]byte{[]byte(`{"type":"message","id":"x","text":"hi"}`)}, "hello"},
		{"second hello", [][]byte{[]byte(`{"type":"hello"}`), []byte(`{"type":"hello"}`)}, "hello"},
		{"bad e-mail", [][]byte{[]byte(`{"type":"hello","email":"not an address"}`)}, "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.dial(t, nil)
			for _, f := range tc.frames {
				b.send(f)
			}
			frames, status := b.closedWith()
			last := frames[len(frames)-1]
			if last.Type != FrameError || last.Code != tc.code || last.Text == "" {
				t.Fatalf("frames %+v, want an error %s last", frames, tc.code)
			}
			if status != websocket.StatusNormalClosure {
				t.Errorf("close status %v", status)
			}
		})
	}
	// Beyond even the frame size limit, the library closes with 1009.
	huge := s.chatting(t, nil)
	huge.send([]byte(`{"type":"message","id":"x","text":"` + strings.Repeat("x", 10000) + `"}`))
	if _, status := huge.closedWith(); status != websocket.StatusMessageTooBig {
		t.Errorf("huge frame closed with %v", status)
	}

	good.send(message("g1", "Ich bin noch da."))
	if ack := good.until(FrameMessage); ack.ID != "g1" {
		t.Fatalf("the good session after the bad ones: %+v", ack)
	}
	if got := counterValue(s.ch.metrics.rejected.WithLabelValues("syntax")); got != 1 {
		t.Errorf("rejected syntax = %v", got)
	}
}

// Messages beyond the rate are refused without closing the chat, and
// connections beyond the per-address limit are turned away.
func TestLimits(t *testing.T) {
	s := startSite(t, func(c *Config, _ *Deps) { c.MessagesPerMinute = 3; c.MaxSessionsPerIP = 2 })
	b := s.chatting(t, nil)
	for i := range 3 {
		b.send(message(string(rune('a'+i)), "Nachricht"))
		if ack := b.until(FrameMessage); ack.ID != string(rune('a'+i)) {
			t.Fatalf("ack %+v", ack)
		}
	}
	b.send(message("d", "eine zu viel"))
	if e := b.until(FrameError); e.Code != "rate" || e.ID != "d" {
		t.Fatalf("error %+v", e)
	}
	msgs, _ := s.ch.Transcript(s.event(t, "message").ConversationID)
	if len(msgs) != 3 {
		t.Fatalf("stored %d messages, want 3", len(msgs))
	}

	second := s.chatting(t, nil)
	third := s.dial(t, nil)
	frames, _ := third.closedWith()
	if len(frames) != 1 || frames[0].Code != "sessions" {
		t.Fatalf("third connection from one address got %+v", frames)
	}
	second.close()
	second.closedWith()
	// A closed connection frees its place (the server notices the close
	// asynchronously, so try for a while).
	deadline := time.Now().Add(10 * time.Second)
	for {
		again := s.dial(t, nil)
		again.send(hello(nil))
		f := <-again.frames
		if f.Type == FrameWelcome {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("place not freed: %+v", f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Behind the site's reverse proxy every customer comes from its
// address: sessions are counted per address its X-Forwarded-For names,
// and only its.
func TestSessionsCountedBehindTrustedProxy(t *testing.T) {
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	// The server turns a connection away at once, before its hello; one
	// it lets in waits for the hello, and so says nothing (10 s).
	refused := func(b *browser) bool {
		select {
		case f := <-b.frames:
			return f.Type == FrameError && f.Code == "sessions"
		case <-time.After(10 * time.Second):
			return false
		}
	}
	proxies, err := clientaddr.ParseProxies([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	s := startSite(t, func(c *Config, _ *Deps) { c.MaxSessionsPerIP = 1; c.TrustedProxies = proxies })
	anna := s.dial(t, from("203.0.113.1"))
	anna.send(hello(nil))
	anna.until(FrameWelcome)
	bert := s.dial(t, from("203.0.113.2"))
	bert.send(hello(nil))
	bert.until(FrameWelcome)
	if !refused(s.dial(t, from("203.0.113.1"))) {
		t.Error("a second chat from 203.0.113.1 was let in")
	}

	// Without trusted proxies the header is anyone's to write: ignored.
	s = startSite(t, func(c *Config, _ *Deps) { c.MaxSessionsPerIP = 1 })
	first := s.dial(t, from("203.0.113.1"))
	first.send(hello(nil))
	first.until(FrameWelcome)
	if !refused(s.dial(t, from("203.0.113.2"))) {
		t.Error("a header from an untrusted peer made a second chat from 127.0.0.1 its own address")
	}
}

// Only pages of the allowed origins (or of the chat's own address) may
// open chats.
func TestOriginAllowList(t *testing.T) {
	s := startSite(t, func(c *Config, _ *Deps) { c.AllowedOrigins = []string{"https://www.example.com"} })
	_, resp, err := s.tryDial(http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v, %v", err, resp)
	}
	for _, origin := range []string{"https://www.example.com", "http://" + s.ch.Addr().String()} {
		b, _, err := s.tryDial(http.Header{"Origin": {origin}})
		if err != nil {
			t.Fatalf("origin %s: %v", origin, err)
		}
		b.ws.CloseNow()
	}
	resp, err = http.Get("http://" + s.ch.Addr().String() + "/widget.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(string(js), ".dg-chat-button") || strings.Contains(string(js), "/*CSS*/") {
		t.Fatalf("widget.js: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(js))
	}
}

// Outside the opening hours the customer is told at once, in the queue's
// own words; when nobody is available, the built-in text says so; the
// message stays a task either way.
func TestClosedAndNobodyAvailable(t *testing.T) {
	var mu sync.Mutex
	open := false
	s := startSite(t, func(c *Config, _ *Deps) {
		c.Queues = map[string]QueueSettings{"support": {
			Open:   func(time.Time) bool { mu.Lock(); defer mu.Unlock(); return open },
			Closed: Texts{DE: "Wir sind Mo–Fr 8–18 Uhr für Sie da."},
		}}
	})
	s.available(t, "anna")
	b := s.chatting(t, nil)
	if n := b.until(FrameNotice); n.Code != "closed" || n.Text != "Wir sind Mo–Fr 8–18 Uhr für Sie da." {
		t.Fatalf("closed notice %+v", n)
	}
	b.send(message("m1", "Bitte um Rückruf"))
	b.until(FrameMessage)
	e := s.event(t, "message")
	if _, err := s.st.Contact(e.TaskID); err != nil {
		t.Fatalf("the message is no contact: %v", err)
	}
	// Open, but the only agent for chats is away; bert takes no chats.
	mu.Lock()
	open = true
	mu.Unlock()
	if err := s.router.SetPresence("anna", router.Away, "lunch"); err != nil {
		t.Fatal(err)
	}
	s.available(t, "bert")
	en := s.dial(t, nil)
	en.send(map[string]any{"type": "hello", "lang": "en"})
	en.until(FrameWelcome)
	if n := en.until(FrameNotice); n.Code != "nobody" || !strings.Contains(n.Text, "Nobody is free") {
		t.Fatalf("nobody notice %+v", n)
	}
	en.send(message("x", "Hello?"))
	en.until(FrameMessage)
	s.event(t, "message")
	waiting := 0
	for _, q := range s.router.Stats() {
		waiting += q.Waiting
	}
	if waiting != 2 { // anna's offer of the first went back when she went away
		t.Fatalf("%d tasks waiting, want both chats", waiting)
	}
	// The customer asks for the transcript by mail.
	en.send(map[string]any{"type": "transcript", "email": "Ann@Example.com"})
	if n := en.until(FrameNotice); n.Code != "transcript" || !strings.Contains(n.Text, "ann@example.com") {
		t.Fatalf("transcript notice %+v", n)
	}
	// A reload gives bert chats: the next customer hears of nobody being
	// free no more, neither at hello nor after the first message (its
	// notice is the first one it gets).
	if err := s.router.SetAgent(router.AgentSpec{ID: "bert", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 2}}); err != nil {
		t.Fatal(err)
	}
	third := s.chatting(t, nil)
	third.send(message("y", "Hallo?"))
	if n := third.until(FrameNotice); n.Code != "queued" {
		t.Errorf("with bert taking chats, notice %+v", n)
	}
}

// A customer who gives the e-mail address of earlier mail is that
// customer: the chat joins their journey beside the mail, and the
// transcript is its contact's text and goes out by mail when asked.
func TestIdentifiedChatJoinsTheJourney(t *testing.T) {
	type mailed struct{ to, subject, text string }
	sent := make(chan mailed, 1)
	s := startSite(t, func(_ *Config, d *Deps) {
		d.SendTranscript = func(_ context.Context, to, subject, text string) error {
			sent <- mailed{to, subject, text}
			return nil
		}
	})
	joe, _, err := s.journey.Identify(bg, "email", "Joe Kunde <joe@example.com>", "Joe Kunde")
	if err != nil {
		t.Fatal(err)
	}
	earlier := &store.Contact{CustomerID: joe.ID, Channel: "email", Direction: "in", Start: time.Now().Add(-time.Hour).UTC(), Subject: "Rechnung", Text: "Meine Rechnung stimmt nicht."}
	if err := s.st.AppendContact(bg, earlier); err != nil {
		t.Fatal(err)
	}
	b := s.chatting(t, map[string]any{"email": "JOE@example.com", "name": "Joe"})
	b.send(message("m1", "Es geht noch mal um die Rechnung."))
	b.until(FrameMessage)
	e := s.event(t, "message")
	b.send(map[string]any{"type": "transcript", "email": "joe@example.com"})
	b.until(FrameNotice)
	b.send(map[string]any{"type": "end"})
	frames, _ := b.closedWith()
	if frames[len(frames)-1].Code != "ended" {
		t.Fatalf("end: %+v", frames)
	}
	contact, err := s.st.Contact(e.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if contact.CustomerID != joe.ID || contact.Intent != "billing" || contact.Queue != "billing" {
		t.Fatalf("chat contact %+v, customer %d", contact, joe.ID)
	}
	entries, err := s.st.Journey(joe.ID, time.Time{}, 10)
	if err != nil || len(entries) != 2 || entries[0].Contact.ID != contact.ID || entries[1].Contact.ID != earlier.ID {
		t.Fatalf("journey %+v, %v", entries, err)
	}
	if !strings.Contains(contact.Text, "Joe: Es geht noch mal um die Rechnung.") || contact.End.IsZero() {
		t.Fatalf("transcript contact %+v", contact)
	}
	jc, err := s.journey.ContextFor(joe.ID, time.Now())
	if err != nil || len(jc.Recent) != 2 {
		t.Fatalf("context %+v, %v", jc, err)
	}
	select {
	case m := <-sent:
		if m.to != "joe@example.com" || !strings.HasPrefix(m.subject, "Ihr Chat mit uns vom ") || m.text != contact.Text {
			t.Fatalf("mailed %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("transcript not mailed")
	}
}

// SIP MESSAGE from a peer is the same conversation model: a task, the
// agent's answers go back to the peer, later messages continue it.
func TestInboundFromSIP(t *testing.T) {
	type reply struct{ to, text string }
	replies := make(chan reply, 10)
	s := startSite(t, func(_ *Config, d *Deps) {
		d.SIPReply = func(_ context.Context, to, text string) error { replies <- reply{to, text}; return nil }
	})
	s.available(t, "anna")
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:joe@pbx.example.com", ReplyTo: "sip:joe@192.0.2.7:5062", Text: "Hallo per SIP"}); err != nil {
		t.Fatal(err)
	}
	e := s.event(t, "message")
	o := s.offer(t)
	if o.TaskID != e.TaskID || o.Channel != router.Message {
		t.Fatalf("offer %+v event %+v", o, e)
	}
	if err := s.router.Accept(o.TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Guten Tag!"); err != nil {
		t.Fatal(err)
	}
	for {
		r := <-replies
		if r.text == "Guten Tag!" {
			if r.to != "sip:joe@192.0.2.7:5062" {
				t.Fatalf("reply to %q", r.to)
			}
			break
		}
	}
	// The phone moved: answers follow its latest message.
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:joe@pbx.example.com", ReplyTo: "sip:joe@192.0.2.8:5060", Text: "Noch eine Frage"}); err != nil {
		t.Fatal(err)
	}
	if e2 := s.event(t, "message"); e2.ConversationID != e.ConversationID || e2.Agent != "anna" {
		t.Fatalf("second message %+v, first %+v", e2, e)
	}
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Gern."); err != nil {
		t.Fatal(err)
	}
	for r := range replies {
		if r.text == "Gern." {
			if r.to != "sip:joe@192.0.2.8:5060" {
				t.Fatalf("reply after the move to %q", r.to)
			}
			break
		}
	}
	for _, tc := range []struct {
		text string
		want error
	}{
		{"\x00", ErrMessageText},
		{" ", ErrMessageSize},
		{strings.Repeat("x", 5000), ErrMessageSize},
	} {
		if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:joe@pbx.example.com", Text: tc.text}); !errors.Is(err, tc.want) {
			t.Errorf("Inbound(%.10q) = %v, want %v", tc.text, err, tc.want)
		}
	}
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:@", Text: "Hallo"}); !errors.Is(err, journey.ErrBadIdentity) {
		t.Errorf("unusable identity: %v", err)
	}
	// Without a SIP reply path the answer is kept and the caller told.
	s2 := startSite(t, nil)
	if err := s2.ch.Inbound(bg, "sip", PeerMessage{From: "+49 30 123456", Text: "Hallo"}); err != nil {
		t.Fatal(err)
	}
	e3 := s2.event(t, "message")
	if err := s2.ch.Send(bg, e3.ConversationID, "anna", "Antwort"); !errors.Is(err, ErrNoSIPReply) {
		t.Fatalf("send without SIP: %v", err)
	}
	if msgs, _ := s2.ch.Transcript(e3.ConversationID); len(msgs) != 2 {
		t.Fatalf("transcript %+v", msgs)
	}
}

// TestSIPNoticesInOrder: the notices of a SIP peer's chat reach it in the
// order they were given, however long one takes to deliver: "queued",
// and when its agent is removed, "someone else takes over", then "nobody
// is free".
func TestSIPNoticesInOrder(t *testing.T) {
	texts := make(chan string, 10)
	s := startSite(t, func(_ *Config, d *Deps) {
		d.SIPReply = func(_ context.Context, _, text string) error {
			if strings.Contains(text, "übernimmt") {
				time.Sleep(100 * time.Millisecond) // a slow phone: the next notice is given meanwhile
			}
			texts <- text
			return nil
		}
	})
	s.available(t, "anna")
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:joe@pbx.example.com", Text: "Hallo per SIP"}); err != nil {
		t.Fatal(err)
	}
	if err := s.router.Accept(s.offer(t).TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	if err := s.router.RemoveAgent("anna"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case text := <-texts:
			got = append(got, text)
		case <-time.After(10 * time.Second):
			t.Fatalf("notices %q, want three", got)
		}
	}
	for i, want := range []string{"Gleich ist jemand für Sie da", "übernimmt", "niemand"} {
		if !strings.Contains(got[i], want) {
			t.Errorf("notices in the order %q", got)
		}
	}
}

// TestSIPNoticesDropped: notices still waiting for a slow phone are not
// sent once its customer is erased (nor one given after), nor once the
// channel stops (which waits for the one on its way only).
func TestSIPNoticesDropped(t *testing.T) {
	for _, how := range []string{"erased", "stopping"} {
		t.Run(how, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			calling, release := make(chan struct{}, 10), make(chan struct{})
			s := startSite(t, func(_ *Config, d *Deps) {
				d.SIPReply = func(_ context.Context, _, text string) error {
					calling <- struct{}{}
					<-release // the phone answers once the test has queued more
					mu.Lock()
					defer mu.Unlock()
					sent = append(sent, text)
					return nil
				}
			})
			s.available(t, "anna")
			if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:joe@pbx.example.com", Text: "Hallo per SIP"}); err != nil {
				t.Fatal(err)
			}
			o := s.offer(t)
			<-calling // the "queued" notice is on its way
			if err := s.router.Accept(o.TaskID, "anna"); err != nil {
				t.Fatal(err)
			}
			if err := s.router.RemoveAgent("anna"); err != nil { // "returned" and "nobody" wait
				t.Fatal(err)
			}
			if how == "erased" {
				c, err := s.st.Contact(o.TaskID)
				if err != nil {
					t.Fatal(err)
				}
				s.ch.mu.Lock()
				sess := s.ch.byPeer["sip:joe@pbx.example.com"]
				s.ch.mu.Unlock()
				s.ch.ForgetCustomer(c.CustomerID)
				// A notice of the task's end that found the session
				// before it was let go comes after: it goes nowhere.
				sess.mu.Lock()
				s.ch.toCustomer(bg, sess, ServerFrame{Type: FrameNotice, Code: "nobody", Text: "zu spät"})
				sess.mu.Unlock()
			} else {
				s.stop()
			}
			close(release)
			s.ch.notices.Wait()
			if len(sent) != 1 || !strings.Contains(sent[0], "Gleich ist jemand für Sie da") {
				t.Errorf("sent %q, want only the notice that was on its way", sent)
			}
		})
	}
}

// A chat a SIP peer starts speaks the language of its Accept-Language,
// German when it names none the chat speaks, from the first notice to
// the last; later messages do not change it.
func TestInboundLanguage(t *testing.T) {
	replies := make(chan sipReply, 20)
	s := startSite(t, func(_ *Config, d *Deps) {
		d.SIPReply = func(_ context.Context, to, text string) error { replies <- sipReply{to, text}; return nil }
	})
	// Nobody is available: each new chat is told so at once.
	for _, tc := range []struct{ peer, accept, lang string }{
		{"sip:en@pbx.example.com", "en", "en"},
		{"sip:fr@pbx.example.com", "fr, en-GB;q=0.5", "en"},
		{"sip:at@pbx.example.com", "de-AT, en;q=0.5", "de"},
		{"sip:none@pbx.example.com", "", "de"},
		{"sip:ja@pbx.example.com", "ja", "de"},
	} {
		if err := s.ch.Inbound(bg, "sip", PeerMessage{From: tc.peer, AcceptLanguage: tc.accept, Text: "Hallo"}); err != nil {
			t.Fatal(err)
		}
		s.event(t, "message")
		if got, want := nextReply(t, replies, tc.peer), builtinTexts["nobody"].in(tc.lang); got != want {
			t.Errorf("Accept-Language %q: told %q, want %q", tc.accept, got, want)
		}
	}
	// The chat keeps its language when the peer asks for another later.
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:en@pbx.example.com", AcceptLanguage: "de", Text: "Noch etwas"}); err != nil {
		t.Fatal(err)
	}
	e := s.event(t, "message")
	if err := s.ch.End(bg, e.ConversationID, "anna"); err != nil {
		t.Fatal(err)
	}
	if got := nextReply(t, replies, "sip:en@pbx.example.com"); got != builtinTexts["ended"].EN {
		t.Errorf("the English chat ended with %q", got)
	}
}

// sipReply is an answer to a SIP MESSAGE peer, as Deps.SIPReply sends it.
type sipReply struct{ to, text string }

// nextReply is the text of the next SIP reply to peer, skipping others'.
func nextReply(t *testing.T, replies chan sipReply, peer string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-replies:
			if r.to == peer {
				return r.text
			}
		case <-timeout:
			t.Fatalf("no reply to %s within 10 s", peer)
		}
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A chat whose customer left and in which nobody wrote for the idle
// timeout ends by itself, with its transcript in the contact.
func TestIdleChatEnds(t *testing.T) {
	s := startSite(t, func(c *Config, _ *Deps) { c.IdleTimeout = 200 * time.Millisecond })
	b := s.chatting(t, map[string]any{"name": "Ida"})
	b.send(message("m1", "Hallo?"))
	b.until(FrameMessage)
	e := s.event(t, "message")
	b.close()
	if ended := s.event(t, "ended"); ended.ConversationID != e.ConversationID {
		t.Fatalf("ended %+v, want conversation %d", ended, e.ConversationID)
	}
	c, err := s.st.Contact(e.TaskID)
	if err != nil || !strings.Contains(c.Text, "Ida: Hallo?") || c.End.IsZero() {
		t.Fatalf("contact %+v, %v", c, err)
	}
	if err := s.ch.Send(bg, e.ConversationID, "anna", "Zu spät"); !errors.Is(err, ErrEnded) {
		t.Fatalf("send to the ended chat: %v", err)
	}
}

// Erasing a customer lets go of their open chats as ending them does,
// without the store: the browser is told the chat ended and closed, the
// agent side hears both chats ended, nothing of them stays in memory,
// and the SIP peer is not written to.
func TestForgetCustomer(t *testing.T) {
	replies := make(chan string, 10)
	s := startSite(t, func(_ *Config, d *Deps) {
		d.SIPReply = func(_ context.Context, _, text string) error { replies <- text; return nil }
	})
	b := s.chatting(t, map[string]any{"phone": "+49 30 123456"})
	b.send(message("m1", "Bitte löschen Sie meine Daten."))
	web := s.event(t, "message")
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "+49 30 123456", ReplyTo: "sip:joe@192.0.2.7:5062", Text: "Auch per SIP"}); err != nil {
		t.Fatal(err)
	}
	viaSIP := s.event(t, "message")
	contact, err := s.st.Contact(web.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := s.st.Contact(viaSIP.TaskID); err != nil || c2.CustomerID != contact.CustomerID || viaSIP.ConversationID == web.ConversationID {
		t.Fatalf("the SIP chat %+v is not a second chat of customer %d: %v", c2, contact.CustomerID, err)
	}
	if _, err := s.st.EraseCustomer(bg, contact.CustomerID, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	s.ch.ForgetCustomer(contact.CustomerID)
	frames, status := b.closedWith()
	if len(frames) == 0 || frames[len(frames)-1].Code != "ended" || status != websocket.StatusNormalClosure {
		t.Fatalf("frames before close %+v, status %v", frames, status)
	}
	ended := map[uint64]bool{}
	for range 2 {
		e := s.event(t, "ended")
		if e.At.IsZero() {
			t.Errorf("ended event without a time: %+v", e)
		}
		ended[e.ConversationID] = true
	}
	if !ended[web.ConversationID] || !ended[viaSIP.ConversationID] {
		t.Fatalf("ended %v, want conversations %d and %d", ended, web.ConversationID, viaSIP.ConversationID)
	}
	for _, conv := range []uint64{web.ConversationID, viaSIP.ConversationID} {
		if err := s.ch.Send(bg, conv, "anna", "Hallo?"); !errors.Is(err, ErrUnknownConversation) {
			t.Errorf("send to forgotten conversation %d: %v", conv, err)
		}
	}
	// The peer's next message starts a chat afresh.
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "+49 30 123456", ReplyTo: "sip:joe@192.0.2.7:5062", Text: "Noch da?"}); err != nil {
		t.Fatal(err)
	}
	if e := s.event(t, "message"); e.ConversationID == viaSIP.ConversationID {
		t.Fatalf("the forgotten chat went on: %+v", e)
	}
	s.stop() // waits for the notices on their way
	for len(replies) > 0 {
		if text := <-replies; text == builtinTexts["ended"].DE {
			t.Fatalf("the SIP peer of the erased customer was told %q", text)
		}
	}
}

// Once a channel's Run has ended, none of its goroutines (browser
// handlers, writers, pings) are left behind.
func TestNoGoroutinesLeftAfterRun(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("site", func(t *testing.T) {
		s := startSite(t, nil)
		s.available(t, "anna")
		for i := range 3 {
			b := s.chatting(t, nil)
			b.send(message("m", "Hallo"))
			b.until(FrameMessage)
			if i == 0 {
				b.close()
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Messages of one new SIP peer arriving at once make one chat.
func TestInboundAtOnceMakesOneChat(t *testing.T) {
	s := startSite(t, nil)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "sip:eve@pbx.example.com", Text: fmt.Sprintf("Nachricht %d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	conv := s.event(t, "message").ConversationID
	for range 4 {
		if e := s.event(t, "message"); e.ConversationID != conv {
			t.Fatalf("messages in conversations %d and %d", conv, e.ConversationID)
		}
	}
	if msgs, err := s.ch.Transcript(conv); err != nil || len(msgs) != 5 {
		t.Fatalf("transcript %+v, %v", msgs, err)
	}
}

// A SIP peer is held to the same message rate as a widget.
func TestInboundRate(t *testing.T) {
	s := startSite(t, func(c *Config, _ *Deps) { c.MessagesPerMinute = 3 })
	for i := range 3 {
		if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "+49 30 123456", Text: fmt.Sprintf("Nachricht %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ch.Inbound(bg, "sip", PeerMessage{From: "+49 30 123456", Text: "zu viel"}); !errors.Is(err, ErrRate) {
		t.Fatalf("fourth message: %v", err)
	}
}

// A page flipping its typing state as fast as it can reaches the agent's
// desk only within the typing rate.
func TestTypingFloodIsBounded(t *testing.T) {
	s := startSite(t, nil)
	b := s.chatting(t, nil)
	for i := range 500 {
		b.send(map[string]any{"type": "typing", "active": i%2 == 0})
	}
	b.send(message("m", "fertig"))
	b.until(FrameMessage)
	typing := 0
	for done := false; !done; {
		select {
		case e := <-s.events: // in order: every typing change, then the message
			if e.Kind == "typing" {
				typing++
			}
			done = e.Kind == "message"
		case <-time.After(10 * time.Second):
			t.Fatal("no message event")
		}
	}
	if typing == 0 || typing > typingPerMinute {
		t.Fatalf("%d typing changes told, want 1–%d", typing, typingPerMinute)
	}
}

// TestChatOfACustomerMergedAway: a chat begun by a customer who is then
// merged into another goes on as the kept customer's: its first message
// becomes their contact and task.
func TestChatOfACustomerMergedAway(t *testing.T) {
	s := startSite(t, nil)
	kept := &store.Customer{Name: "Josef Kunde"}
	if err := s.st.CreateCustomer(bg, kept); err != nil {
		t.Fatal(err)
	}
	b := s.chatting(t, map[string]any{"name": "Joe", "email": "joe@example.com"})
	joe, err := s.st.LookupIdentity("email:joe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.MergeCustomers(bg, kept.ID, joe, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.send(message("m1", "Hallo?"))
	b.until(FrameMessage)
	e := s.event(t, "message")
	if c, err := s.st.Contact(e.TaskID); err != nil || c.CustomerID != kept.ID {
		t.Errorf("the first message's contact %+v, %v: want customer %d's", c, err, kept.ID)
	}
}

// A reload's names are shown from then on; an agent it no longer names
// keeps the name their messages were shown with.
func TestSetAgentNames(t *testing.T) {
	s := startSite(t, nil)
	s.ch.SetAgentNames(map[string]string{"bert": "Bert Berger"})
	s.ch.SetAgentNames(map[string]string{"cleo": "Cleo"})
	for id, want := range map[string]string{"anna": "Anna Adler", "bert": "Bert Berger", "cleo": "Cleo", "dora": "dora"} {
		if got := s.ch.agentName(id); got != want {
			t.Errorf("%s is shown as %q, want %q", id, got, want)
		}
	}
}
