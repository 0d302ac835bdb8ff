package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// session is an open chat. Its lock orders everything that happens in
// it: messages are numbered, stored and pushed to the browser in one
// order, and a resuming browser gets exactly what it missed.
type session struct {
	mu         sync.Mutex
	rec        store.ChatSession // as last stored
	conn       *client           // the customer's browser, nil while away
	lastActive time.Time
	messages   bucket // customer messages, MessagesPerMinute
	typingRate bucket // typing changes told to the agent
	noticed    string // the availability notice already given ("closed", "nobody")
	typing     bool   // the customer's typing state last told to the agent
	// sipNotices wait to go to a SIP peer, in the order given; one
	// goroutine at a time sends them (sendingNotices). silenced: the
	// customer was erased, nothing more goes to their address.
	sipNotices     []sipNotice
	sendingNotices bool
	silenced       bool
}

// sipNotice is a notice for a SIP MESSAGE session's peer.
type sipNotice struct{ peer, text string }

// replyTo is where a SIP MESSAGE session's answers go. s.mu is held.
func (s *session) replyTo() string {
	if s.rec.ReplyTo != "" {
		return s.rec.ReplyTo
	}
	return s.rec.Peer
}

// typingPerMinute bounds the typing changes a customer's page can make
// the agent's desk show: a person starts and stops a few times a minute.
const typingPerMinute = 60

// bucket is a token bucket of perMinute tokens, refilled evenly.
type bucket struct {
	tokens float64
	at     time.Time
}

// take takes a token, reporting false when none is left.
func (b *bucket) take(now time.Time, perMinute int) bool {
	if b.at.IsZero() {
		b.tokens, b.at = float64(perMinute), now
	}
	b.tokens = min(float64(perMinute), b.tokens+now.Sub(b.at).Minutes()*float64(perMinute))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token), nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// identity is what a customer said about themselves.
type identity struct{ name, email, phone string }

// identify finds the customer: by e-mail, else phone, else a new
// anonymous customer named as given.
func (c *Channel) identify(ctx context.Context, id identity) (*store.Customer, error) {
	switch {
	case id.email != "":
		cu, _, err := c.deps.Journey.Identify(ctx, journey.KindEmail, id.email, id.name)
		return cu, err
	case id.phone != "":
		cu, _, err := c.deps.Journey.Identify(ctx, journey.KindPhone, id.phone, id.name)
		return cu, err
	}
	cu := &store.Customer{Name: id.name, Created: c.deps.Now().UTC()}
	return cu, c.deps.Store.CreateCustomer(ctx, cu)
}

// newSession creates and registers a session of customer cu.
func (c *Channel) newSession(ctx context.Context, cu *store.Customer, entrance, peer, queue, lang string, id identity, tokenHash []byte) (*session, error) {
	now := c.deps.Now().UTC()
	rec := &store.ChatSession{
		CustomerID: cu.ID, Entrance: entrance, Peer: peer, Queue: queue, Lang: lang,
		Name: id.name, Email: id.email, Phone: id.phone, Created: now, Updated: now,
	}
	conv := &store.Conversation{CustomerID: cu.ID, Channel: "message", Subject: "Chat", Status: "open", Created: now, Updated: now}
	if err := c.deps.Store.CreateChatSession(ctx, rec, conv, tokenHash); err != nil {
		return nil, err
	}
	s := &session{rec: *rec, lastActive: now}
	c.register(s)
	return s, nil
}

// routingQueue is the queue for notices before the first message.
func (c *Channel) routingQueue(s *session) string {
	if s.rec.Queue != "" {
		return s.rec.Queue
	}
	return c.cfg.DefaultQueue
}

// availability says whether a queue can answer now: "" yes, "closed"
// outside its opening hours, "nobody" when no agent who could take its
// messages is available.
func (c *Channel) availability(queue string, now time.Time) string {
	if qs, ok := c.cfg.Queues[queue]; ok && qs.Open != nil && !qs.Open(now) {
		return "closed"
	}
	if c.deps.Router.Staffed(queue, router.Message) {
		return ""
	}
	return "nobody"
}

// notice is the text of a notice code in a session's language.
func (c *Channel) notice(code, queue, lang string, args ...any) string {
	qs := c.cfg.Queues[queue]
	var custom Texts
	switch code {
	case "closed":
		custom = qs.Closed
	case "nobody":
		custom = qs.Nobody
	}
	if t := custom.in(lang); t != "" {
		return t
	}
	return fmt.Sprintf(builtinTexts[code].in(lang), args...)
}

var builtinTexts = map[string]Texts{
	"closed": {
		DE: "Unser Chat ist gerade geschlossen. Schreiben Sie uns trotzdem: Ihre Nachricht bleibt bei uns und wird beantwortet, sobald wir wieder da sind. Geben Sie Ihre E-Mail-Adresse an, dann schicken wir Ihnen das Protokoll.",
		EN: "Our chat is closed right now. You can still write to us: your message stays with us and is answered as soon as we are back. Leave your e-mail address and we will send you the transcript.",
	},
	"nobody": {
		DE: "Im Moment ist niemand für den Chat frei. Hinterlassen Sie Ihre Nachricht – sie bleibt bei uns und wird beantwortet. Geben Sie Ihre E-Mail-Adresse an, dann schicken wir Ihnen das Protokoll.",
		EN: "Nobody is free for the chat at the moment. Leave your message – it stays with us and will be answered. Leave your e-mail address and we will send you the transcript.",
	},
	"returned": {
		DE: "Ihr Ansprechpartner musste den Chat abgeben. Gleich übernimmt jemand anderes – Ihre Nachrichten bleiben erhalten.",
		EN: "Your agent had to hand the chat over. Someone else will take over shortly – your messages stay with us.",
	},
	"queued": {
		DE: "Danke, Ihre Nachricht ist angekommen. Gleich ist jemand für Sie da.",
		EN: "Thank you, your message has arrived. Someone will be with you shortly.",
	},
	"ended": {
		DE: "Der Chat ist beendet. Danke für Ihre Nachricht!",
		EN: "The chat has ended. Thank you for your message!",
	},
	"transcript": {
		DE: "Das Protokoll dieses Chats geht am Ende an %s.",
		EN: "The transcript of this chat will be sent to %s at the end.",
	},
}

// tellAvailability gives the customer the closed or nobody notice once
// per cause. s.mu is held.
func (c *Channel) tellAvailability(ctx context.Context, s *session, queue string) {
	code := c.availability(queue, c.deps.Now())
	if code == "" || code == s.noticed {
		return
	}
	s.noticed = code
	c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: code, Text: c.notice(code, queue, s.rec.Lang)})
}

// toCustomer sends a frame that is not part of the transcript: to the
// browser when connected, to the SIP peer as a text for notices.
// s.mu is held.
func (c *Channel) toCustomer(ctx context.Context, s *session, f ServerFrame) {
	if s.rec.Entrance == "sip" {
		if f.Type == FrameNotice && c.deps.SIPReply != nil && !s.silenced {
			c.noticesMu.Lock()
			defer c.noticesMu.Unlock()
			if c.noticesDone {
				c.deps.Logger.Debug("SIP MESSAGE notice not sent: the chat is stopping", "peer", s.replyTo())
				return
			}
			s.sipNotices = append(s.sipNotices, sipNotice{s.replyTo(), f.Text})
			if !s.sendingNotices {
				s.sendingNotices = true
				c.notices.Go(func() { c.sendNotices(context.WithoutCancel(ctx), s) })
			}
		}
		return
	}
	if s.conn != nil {
		s.conn.send(f, time.Time{})
	}
}

// sendNotices sends s's SIP notices one after the other, in the order
// given: each on its own goroutine, a "nobody" could reach the phone
// before the "returned" said just before it. Once the channel stops,
// what still waits is dropped: a stop waits for one notice on its way,
// not for a queue of them to a peer that does not answer. (An erasure
// drops them in letGo.)
func (c *Channel) sendNotices(ctx context.Context, s *session) {
	for {
		s.mu.Lock()
		c.noticesMu.Lock()
		stop := c.noticesDone
		c.noticesMu.Unlock()
		if stop || len(s.sipNotices) == 0 {
			s.sipNotices, s.sendingNotices = nil, false
			s.mu.Unlock()
			return
		}
		n := s.sipNotices[0]
		s.sipNotices = s.sipNotices[1:]
		s.mu.Unlock()
		if err := c.deps.SIPReply(ctx, n.peer, n.text); err != nil {
			c.deps.Logger.Warn("SIP MESSAGE notice not sent", "peer", n.peer, "err", err)
		}
	}
}

// customerMessage stores what the customer wrote, acknowledges it, and on
// the first message makes the contact and the task. It returns the event
// for the agent side, to be delivered once s.mu is released; arrived is
// when the message reached dirigent. replyTo, for another entrance than
// the widget, is where answers now go.
func (c *Channel) customerMessage(ctx context.Context, s *session, ref, text, replyTo string, arrived time.Time) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.Status != "open" {
		return nil, ErrEnded
	}
	now := c.deps.Now().UTC()
	msg := &store.ChatMessage{At: now, From: "customer", Text: text, Ref: ref}
	in := store.ChatAppend{SessionID: s.rec.ID, Message: msg}
	var task router.Task
	first := s.rec.ContactID == 0
	if first {
		queue := s.rec.Queue
		intent, recognised := c.deps.Journey.Recognize(journey.Incoming{Channel: "message", Body: text})
		if queue == "" && recognised && c.takesMessages(intent.Queue) {
			queue = intent.Queue
		}
		if queue == "" {
			queue = c.cfg.DefaultQueue
		}
		// The customer may have been merged into another since the chat
		// began: the contact and task are the kept customer's.
		customer, err := c.deps.Store.CustomerNow(s.rec.CustomerID)
		if err != nil {
			return nil, err
		}
		jc, err := c.deps.Journey.RoutingContextFor(customer, now, nil)
		if err != nil {
			return nil, err
		}
		in.Contact = &store.Contact{
			CustomerID: customer, Channel: "message", Direction: "in", Queue: queue, Intent: intent.Name,
			Start: now, Subject: "Chat", Text: text,
		}
		task = router.Task{
			Channel: router.Message, Queue: queue, CustomerID: customer, ValueTier: jc.Customer.ValueTier,
			Repeat: jc.RepeatOf != nil, PreferredAgent: jc.LastAgent, Arrived: now,
		}
		in.OpenTask = func(contactID uint64) ([]byte, error) {
			t := task
			t.ID = contactID
			return json.Marshal(router.Unfinished{Task: t})
		}
		in.Update = func(cs *store.ChatSession) { cs.Queue, cs.Intent = queue, intent.Name }
	}
	if replyTo != "" && replyTo != s.rec.ReplyTo {
		first := in.Update
		in.Update = func(cs *store.ChatSession) {
			if first != nil {
				first(cs)
			}
			cs.ReplyTo = replyTo
		}
	}
	rec, dup, err := c.deps.Store.AppendChatMessage(ctx, in)
	if err != nil {
		if errors.Is(err, store.ErrChatEnded) {
			return nil, ErrEnded
		}
		return nil, err
	}
	s.rec = *rec
	s.lastActive = now
	if s.conn != nil {
		s.conn.send(ServerFrame{Type: FrameMessage, Seq: msg.Seq, From: "customer", Text: msg.Text, ID: msg.Ref, At: msg.At}, time.Time{})
	}
	if dup {
		return nil, nil
	}
	c.metrics.messages.WithLabelValues("in").Inc()
	if first {
		task.ID = rec.ContactID
		c.mu.Lock()
		c.byTask[task.ID] = s
		c.mu.Unlock()
		// Not under the session's lock: the router calls the offer's
		// receivers, which may act on this chat at once.
		s.mu.Unlock()
		err := c.deps.Router.Enqueue(task)
		code := c.availability(task.Queue, now) // asks the router too
		s.mu.Lock()
		erased := errors.Is(err, router.ErrErased)
		if err != nil && !erased && !errors.Is(err, router.ErrDuplicate) {
			// The open-task index has it: the next start queues it.
			c.deps.Logger.Error("queueing a chat task", "task", task.ID, "err", err)
		}
		switch {
		case erased:
			// The customer was erased meanwhile: the chat ends with them
			// (ForgetCustomer), and nothing more is said to them.
		case code == "":
			c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: "queued", Text: c.notice("queued", task.Queue, s.rec.Lang)})
		case code != s.noticed:
			s.noticed = code
			c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: code, Text: c.notice(code, task.Queue, s.rec.Lang)})
		}
	}
	return &Event{Kind: "message", ConversationID: rec.ConversationID, TaskID: rec.ContactID, Agent: rec.Agent,
		Seq: msg.Seq, Text: text, At: arrived}, nil
}

// end ends a session: the transcript becomes its contact's text, the
// browser is told and let go, the agent side hears of it, the router
// keeps a chat taken with its agent for the wrap-up, and the transcript
// is mailed when the customer asked for it. by is "customer", "agent" or
// "idle", for the log.
func (c *Channel) end(ctx context.Context, s *session, by string) error {
	s.mu.Lock()
	rec, err := c.deps.Store.EndChatSession(ctx, s.rec.ID, c.deps.Now().UTC(), c.renderTranscript)
	if err != nil {
		cur := s.rec
		s.mu.Unlock()
		if errors.Is(err, store.ErrChatEnded) {
			c.forget(s, cur)
			return ErrEnded
		}
		return err
	}
	s.rec = *rec
	// The router first, so that from the moment the desk hears of the end
	// nobody can hand the chat to another agent. Under s.mu, as Staffed
	// is asked: the router offers nothing here. Unknown: its wrap-up is
	// over, or the chat's task was never queued (the open-task index
	// queues it at the next start, as a chat not taken, which waits for
	// an answer by other means).
	if err := c.deps.Router.ConversationEnded(rec.ContactID); err != nil && !errors.Is(err, router.ErrUnknownTask) {
		c.deps.Logger.Error("telling the router a chat ended", "task", rec.ContactID, "err", err)
	}
	c.letGo(ctx, s, true, rec.Ended)
	c.deps.Logger.Info("chat ended", "conversation", rec.ConversationID, "task", rec.ContactID, "by", by)
	if rec.TranscriptTo != "" && c.deps.SendTranscript != nil {
		msgs, err := c.deps.Store.ChatMessages(rec.ID, 0)
		if err == nil {
			err = c.deps.SendTranscript(context.WithoutCancel(ctx), rec.TranscriptTo, c.transcriptSubject(rec), c.renderTranscript(rec, msgs))
		}
		if err != nil {
			c.metrics.transcript.WithLabelValues("failed").Inc()
			c.deps.Logger.Error("chat transcript not mailed", "conversation", rec.ConversationID, "err", err)
		} else {
			c.metrics.transcript.WithLabelValues("sent").Inc()
		}
	}
	return nil
}

// letGo lets go of a session the store no longer holds open: the
// customer is told it ended (a SIP peer only when tellSIPPeer) and the
// browser closed after that, the session is forgotten, and the agent
// side hears it ended at the given time. It is called with s.mu held and
// releases it before the channel's lock is taken.
func (c *Channel) letGo(ctx context.Context, s *session, tellSIPPeer bool, at time.Time) {
	if tellSIPPeer || s.rec.Entrance != "sip" {
		c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: "ended", Text: c.notice("ended", s.rec.Queue, s.rec.Lang)})
	} else {
		s.silenced, s.sipNotices = true, nil
	}
	if s.conn != nil {
		s.conn.closeAfterSend()
		s.conn = nil
	}
	rec := s.rec
	s.mu.Unlock()
	c.forget(s, rec)
	c.emit(Event{Kind: "ended", ConversationID: rec.ConversationID, TaskID: rec.ContactID, Agent: rec.Agent, At: at})
}

// ForgetCustomer drops the open chats of a customer the store has just
// erased (with their sessions): the customer's browser is told the chat
// ended and let go, the desk hears it ended, and nothing of them stays in
// memory. The erased customer's SIP address is not written to.
func (c *Channel) ForgetCustomer(customerID uint64) {
	for _, s := range c.allSessions() {
		s.mu.Lock()
		if s.rec.CustomerID != customerID {
			s.mu.Unlock()
			continue
		}
		c.letGo(context.Background(), s, false, c.deps.Now().UTC())
	}
}

// endIdle ends the sessions whose customer is away and in which nobody
// wrote for the idle timeout.
func (c *Channel) endIdle(ctx context.Context) {
	now := c.deps.Now()
	for _, s := range c.allSessions() {
		s.mu.Lock()
		gone, conv := s.conn == nil && now.Sub(s.lastActive) >= c.cfg.IdleTimeout, s.rec.ConversationID
		s.mu.Unlock()
		if gone {
			if err := c.end(ctx, s, "idle"); err != nil && !errors.Is(err, ErrEnded) {
				c.deps.Logger.Error("ending an idle chat", "conversation", conv, "err", err)
			}
		}
	}
}

func (c *Channel) transcriptSubject(rec *store.ChatSession) string {
	day := rec.Created.In(c.cfg.Location)
	if rec.Lang == "de" {
		return "Ihr Chat mit uns vom " + day.Format("02.01.2006")
	}
	return "Your chat with us on " + day.Format("2006-01-02")
}

// renderTranscript is the transcript as plain text: a line per message
// with its time, who wrote it, and the text (continued lines indented).
func (c *Channel) renderTranscript(rec *store.ChatSession, msgs []store.ChatMessage) string {
	var b strings.Builder
	customer := rec.Name
	if customer == "" {
		customer = map[bool]string{true: "Sie", false: "You"}[rec.Lang == "de"]
	}
	for _, m := range msgs {
		who := customer
		if m.From == "agent" {
			who = c.agentName(m.Agent)
		}
		fmt.Fprintf(&b, "[%s] %s: %s\n", m.At.In(c.cfg.Location).Format("2006-01-02 15:04:05"), who, strings.ReplaceAll(m.Text, "\n", "\n    "))
	}
	return b.String()
}

func (c *Channel) agentName(id string) string {
	if n := (*c.agentNames.Load())[id]; n != "" {
		return n
	}
	return id
}

// SetAgentNames puts the names shown to customers of a reload in force:
// the next message, notice or transcript uses them. An agent no longer
// named keeps the name they had: their messages in transcripts and in
// resumed chats still show it.
func (c *Channel) SetAgentNames(names map[string]string) {
	merged := map[string]string{}
	if old := c.agentNames.Load(); old != nil {
		maps.Copy(merged, *old)
	}
	maps.Copy(merged, names)
	c.agentNames.Store(&merged)
}
