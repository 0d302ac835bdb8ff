package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// maxAgentText bounds what an agent sends in one message.
const maxAgentText = 64 << 10

// subscriber is a desk connection following one agent's chats.
type subscriber struct{ ch chan Event }

// Subscribe delivers the events of the chats assigned to agent (customer
// messages, typing, ends) on the returned channel until cancel is called.
// A subscriber that does not keep up misses events rather than slowing
// the chats down; Transcript has every message.
func (c *Channel) Subscribe(agent string, buffer int) (events <-chan Event, cancel func()) {
	sub := &subscriber{ch: make(chan Event, max(buffer, 1))}
	c.mu.Lock()
	if c.subs[agent] == nil {
		c.subs[agent] = map[*subscriber]struct{}{}
	}
	c.subs[agent][sub] = struct{}{}
	c.mu.Unlock()
	return sub.ch, func() {
		c.mu.Lock()
		delete(c.subs[agent], sub)
		if len(c.subs[agent]) == 0 {
			delete(c.subs, agent)
		}
		c.mu.Unlock()
	}
}

// emit hands an event to the agent side. No lock may be held.
func (c *Channel) emit(e Event) {
	if c.deps.OnCustomer != nil {
		c.deps.OnCustomer(e)
	}
	if e.Agent != "" {
		c.mu.Lock()
		for sub := range c.subs[e.Agent] {
			select {
			case sub.ch <- e:
			default:
			}
		}
		c.mu.Unlock()
	}
	if e.Kind == "message" {
		c.metrics.delivery.WithLabelValues("in").Observe(time.Since(e.At).Seconds())
	}
}

// byConversation finds the open session of a conversation.
func (c *Channel) byConversation(conversationID uint64) (*session, error) {
	c.mu.Lock()
	s := c.byConv[conversationID]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if _, err := c.deps.Store.ChatSessionByConversation(conversationID); err == nil {
		return nil, ErrEnded
	} else if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownConversation, conversationID)
	} else {
		return nil, err
	}
}

// Send is an agent's message in a chat, addressed by the conversation ID
// of the chat task's contact (store.Contact.ConversationID). It is
// stored before Send returns and reaches the customer's browser at once,
// or when it reconnects; in a SIP MESSAGE chat it is sent to the peer
// through Deps.SIPReply. The first message of an agent makes it the
// chat's agent. Errors: ErrUnknownConversation, ErrEnded, ErrNoSIPReply
// (stored, not sent), or the store's.
func (c *Channel) Send(ctx context.Context, conversationID uint64, agent, text string) error {
	start := time.Now()
	text = strings.TrimSpace(text)
	if text == "" || len(text) > maxAgentText || agent == "" {
		return fmt.Errorf("chat: want an agent and a text of 1–%d bytes", maxAgentText)
	}
	s, err := c.byConversation(conversationID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	joined := s.rec.Agent != agent
	msg := &store.ChatMessage{At: c.deps.Now().UTC(), From: "agent", Agent: agent, Text: text}
	rec, _, err := c.deps.Store.AppendChatMessage(ctx, store.ChatAppend{SessionID: s.rec.ID, Message: msg,
		Update: func(cs *store.ChatSession) { cs.Agent = agent }})
	if err != nil {
		s.mu.Unlock()
		if errors.Is(err, store.ErrChatEnded) {
			return ErrEnded
		}
		return err
	}
	s.rec = *rec
	s.lastActive = msg.At
	c.metrics.messages.WithLabelValues("out").Inc()
	name := c.agentName(agent)
	if s.conn != nil {
		if joined {
			s.conn.send(ServerFrame{Type: FrameAgentJoined, Name: name}, time.Time{})
		}
		s.conn.send(ServerFrame{Type: FrameMessage, Seq: msg.Seq, From: "agent", Name: name, Text: text, At: msg.At}, start)
	}
	sip, peer := s.rec.Entrance == "sip", s.replyTo()
	s.mu.Unlock()
	if sip {
		if c.deps.SIPReply == nil {
			return ErrNoSIPReply
		}
		if err := c.deps.SIPReply(ctx, peer, text); err != nil {
			return fmt.Errorf("chat: SIP MESSAGE to %s: %w", peer, err)
		}
		c.metrics.delivery.WithLabelValues("out").Observe(time.Since(start).Seconds())
	}
	return nil
}

// Typing tells the customer whether the agent is typing (web chats
// only; not stored).
func (c *Channel) Typing(ctx context.Context, conversationID uint64, agent string, active bool) error {
	s, err := c.byConversation(conversationID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.send(ServerFrame{Type: FrameTyping, Active: active, Name: c.agentName(agent)}, time.Time{})
	}
	return nil
}

// End closes a chat from the agent's side: the customer is told, the
// transcript becomes the contact's text and is mailed when asked for.
// The task itself is wrapped up through the router, as any task.
func (c *Channel) End(ctx context.Context, conversationID uint64, agent string) error {
	s, err := c.byConversation(conversationID)
	if err != nil {
		return err
	}
	return c.end(ctx, s, "agent "+agent)
}

// Transcript returns every message of a chat, open or ended, in order.
func (c *Channel) Transcript(conversationID uint64) ([]store.ChatMessage, error) {
	rec, err := c.deps.Store.ChatSessionByConversation(conversationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownConversation, conversationID)
	}
	if err != nil {
		return nil, err
	}
	return c.deps.Store.ChatMessages(rec.ID, 0)
}

// TaskEvent takes the router's events (the daemon's journal passes them
// on). It never blocks, so it may be called under the router's lock; the
// events of chat tasks are handled in Run.
func (c *Channel) TaskEvent(e router.Event) {
	if e.Channel != router.Message || e.Kind != router.TaskAssigned && e.Kind != router.TaskCanceled && e.Kind != router.TaskReturned {
		return
	}
	select {
	case c.taskEvents <- e:
	default:
		c.deps.Logger.Warn("chat: router events dropped: too many at once", "task", e.TaskID)
	}
}

// handleTaskEvent tells the customer that an agent took the chat, that
// their agent had to hand it over (TaskReturned: the chat waits for the
// next one), or that it was given up waiting.
func (c *Channel) handleTaskEvent(ctx context.Context, e router.Event) {
	c.mu.Lock()
	s := c.byTask[e.TaskID]
	c.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case router.TaskAssigned:
		if s.rec.Agent == e.Agent || !c.setAgent(ctx, s, e.Agent) {
			return
		}
		c.toCustomer(ctx, s, ServerFrame{Type: FrameAgentJoined, Name: c.agentName(e.Agent)})
	case router.TaskReturned:
		if !c.setAgent(ctx, s, "") {
			return
		}
		s.noticed = ""
		c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: "returned", Text: c.notice("returned", e.Queue, s.rec.Lang)})
		c.tellAvailability(ctx, s, e.Queue)
	case router.TaskCanceled:
		queue := e.Queue
		s.noticed = "nobody"
		c.toCustomer(ctx, s, ServerFrame{Type: FrameNotice, Code: "nobody", Text: c.notice("nobody", queue, s.rec.Lang)})
	}
}

// setAgent records the chat's agent ("": none, the chat waits again), and
// reports whether it did: not once the chat has ended. s.mu is held.
func (c *Channel) setAgent(ctx context.Context, s *session, agent string) bool {
	rec, err := c.deps.Store.UpdateChatSession(ctx, s.rec.ID, func(cs *store.ChatSession) error { cs.Agent = agent; return nil })
	if err != nil {
		if !errors.Is(err, store.ErrChatEnded) {
			c.deps.Logger.Error("chat: recording the chat's agent", "session", s.rec.ID, "agent", agent, "err", err)
		}
		return false
	}
	s.rec = *rec
	return true
}

// PeerMessage is a message that arrived by another entrance than the web
// widget. Its fields are those of sip.Message, so that one converts to
// the other.
type PeerMessage struct {
	// From identifies the customer: a SIP URI ("sip:joe@pbx.example.com")
	// or phone number.
	From string
	// ReplyTo is where agents' answers go (through Deps.SIPReply); empty:
	// From.
	ReplyTo string
	// AcceptLanguage is the peer's Accept-Language list: a chat the
	// message starts speaks (in its notices) the language it prefers,
	// German or English, German when neither.
	AcceptLanguage string
	Text           string
}

// Inbound takes a message that arrived by another entrance than the web
// widget, SIP MESSAGE (entrance "sip"). It continues the peer's open chat
// or starts one, exactly as a widget message. Refusals wrap
// ErrMessageSize, ErrMessageText, ErrRate, ErrEnded or
// journey.ErrBadIdentity.
func (c *Channel) Inbound(ctx context.Context, entrance string, m PeerMessage) error {
	arrived := time.Now()
	text := strings.TrimSpace(m.Text)
	if text == "" || len(text) > c.cfg.MaxMessageBytes {
		return fmt.Errorf("chat: %w (1–%d bytes)", ErrMessageSize, c.cfg.MaxMessageBytes)
	}
	if !printable(text, true) {
		return fmt.Errorf("chat: %w", ErrMessageText)
	}
	if entrance == "" || entrance == "web" {
		return fmt.Errorf("chat: entrance %q is not another entrance", entrance)
	}
	// One peer's messages arriving at once must not start two chats.
	c.peerMu.Lock()
	c.mu.Lock()
	s := c.byPeer[m.From]
	c.mu.Unlock()
	if s != nil {
		c.peerMu.Unlock()
		s.mu.Lock()
		ok := s.messages.take(c.deps.Now(), c.cfg.MessagesPerMinute)
		s.mu.Unlock()
		if !ok {
			c.reject("rate")
			return fmt.Errorf("chat: %w", ErrRate)
		}
	} else {
		defer c.peerMu.Unlock()
		kind, raw := journey.KindSIP, m.From
		if !strings.HasPrefix(strings.ToLower(m.From), "sip:") && !strings.HasPrefix(strings.ToLower(m.From), "sips:") {
			kind = journey.KindPhone
			raw = strings.TrimPrefix(m.From, "tel:")
		}
		cu, _, err := c.deps.Journey.Identify(ctx, kind, raw, "")
		if err != nil {
			return fmt.Errorf("chat: %w", err)
		}
		if s, err = c.newSession(ctx, cu, entrance, m.From, "", peerLanguage(m.AcceptLanguage), peerIdentity(kind, raw), nil); err != nil {
			return err
		}
		s.mu.Lock()
		s.messages.take(c.deps.Now(), c.cfg.MessagesPerMinute)
		c.tellAvailability(ctx, s, c.routingQueue(s))
		s.mu.Unlock()
	}
	e, err := c.customerMessage(ctx, s, "", text, m.ReplyTo, arrived)
	if err != nil {
		return err
	}
	if e != nil {
		c.emit(*e)
	}
	return nil
}

func peerIdentity(kind, raw string) identity {
	if kind == journey.KindPhone {
		return identity{phone: raw}
	}
	return identity{}
}
