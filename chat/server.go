package chat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"dirigent/journey"
	"dirigent/store"
)

const (
	helloTimeout = 10 * time.Second
	writeTimeout = 10 * time.Second
	pingInterval = 30 * time.Second
	// outBuffer frames may wait for a slow browser; beyond them it is
	// dropped and catches up when it resumes.
	outBuffer = 32
)

func (c *Channel) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /widget.js", c.serveWidget)
	mux.HandleFunc("GET /ws", c.serveWS)
	return mux
}

func (c *Channel) serveWidget(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(c.widgetJS)
}

// originAllowed: browsers send Origin with every WebSocket handshake; a
// page of a site not in chat.allowed_origins must not open chats in its
// visitors' names. Clients without Origin are not browsers.
func (c *Channel) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(c.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (c *Channel) reject(reason string) { c.metrics.rejected.WithLabelValues(reason).Inc() }

// serveWS runs one browser connection: hello, then frames until either
// side ends it.
func (c *Channel) serveWS(w http.ResponseWriter, r *http.Request) {
	if !c.originAllowed(r) {
		c.reject("origin")
		writeJSONError(w, http.StatusForbidden, "origin "+clip(r.Header.Get("Origin"))+" may not open chats (see chat.allowed_origins)")
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		c.reject("handshake")
		return // Accept has answered
	}
	c.handlers.Add(1)
	defer c.handlers.Done()
	// JSON escaping can make a text up to six times longer.
	ws.SetReadLimit(int64(6*c.cfg.MaxMessageBytes + 4096))
	ip := c.cfg.TrustedProxies.Of(r)
	cl := newClient(ws)
	c.connected.Add(1)
	defer c.connected.Add(-1)
	go cl.writeLoop(c)
	defer cl.wait()

	c.mu.Lock()
	full := c.perIP[ip] >= c.cfg.MaxSessionsPerIP
	if !full {
		c.perIP[ip]++
	}
	c.mu.Unlock()
	if full {
		c.fail(cl, "sessions", "too many open chats from your address")
		return
	}
	defer func() {
		c.mu.Lock()
		if c.perIP[ip]--; c.perIP[ip] <= 0 {
			delete(c.perIP, ip)
		}
		c.mu.Unlock()
	}()

	ctx := r.Context()
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	_, data, err := ws.Read(hctx)
	cancel()
	if err != nil {
		cl.kill()
		return
	}
	hello, err := DecodeFrame(data, c.cfg.MaxMessageBytes)
	if err == nil && hello.Type != FrameHello {
		err = frameErr("hello", "the first frame must be hello")
	}
	if err != nil {
		c.failFrame(cl, err)
		return
	}
	s, err := c.attach(ctx, cl, hello)
	if err != nil {
		c.failFrame(cl, err)
		return
	}
	defer c.detach(s, cl)
	c.readLoop(ctx, s, cl)
}

// fail sends an error frame and closes the connection after it.
func (c *Channel) fail(cl *client, code, text string) {
	c.reject(code)
	cl.send(ServerFrame{Type: FrameError, Code: code, Text: text}, time.Time{})
	cl.closeAfterSend()
}

func (c *Channel) failFrame(cl *client, err error) {
	var fe *BadFrame
	if errors.As(err, &fe) {
		c.fail(cl, fe.Reason, fe.Msg)
		return
	}
	c.deps.Logger.Error("chat connection", "err", err)
	c.fail(cl, "internal", "dirigent could not handle this chat; please try again")
}

// attach binds a browser to its session: the one its token names, with
// what it missed, or a new one.
func (c *Channel) attach(ctx context.Context, cl *client, h ClientFrame) (*session, error) {
	lang := h.Lang
	if lang == "" {
		lang = "de" // as for SIP peers that name no language
	}
	if h.Session != "" {
		if rec, err := c.deps.Store.ChatSessionByToken(tokenHash(h.Session)); err == nil {
			if s := c.session(rec.ID); s != nil {
				if err := c.resume(s, cl, h); err == nil {
					return s, nil
				} else if !errors.Is(err, ErrEnded) {
					return nil, err
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		// Ended or unknown: the page starts afresh (welcome says resumed false).
	}
	id := identity{name: strings.TrimSpace(h.Name), email: strings.TrimSpace(h.Email), phone: strings.TrimSpace(h.Phone)}
	cu, err := c.identify(ctx, id)
	if errors.Is(err, journey.ErrBadIdentity) {
		return nil, frameErr("identity", "%v", err)
	}
	if err != nil {
		return nil, err
	}
	queue := ""
	if c.takesMessages(h.Queue) {
		queue = h.Queue
	}
	token, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	s, err := c.newSession(ctx, cu, "web", "", queue, lang, id, hash)
	if err != nil {
		return nil, err
	}
	c.metrics.sessions.WithLabelValues("new").Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = cl
	cl.send(ServerFrame{Type: FrameWelcome, Session: token, Lang: lang, Queue: c.routingQueue(s)}, time.Time{})
	c.tellAvailability(ctx, s, c.routingQueue(s))
	return s, nil
}

// resume gives a reconnecting browser its session back with every
// message after the last it saw; a connection still holding the session
// (an old tab, a half-dead network) is closed.
func (c *Channel) resume(s *session, cl *client, h ClientFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.Status != "open" {
		return ErrEnded
	}
	var after uint64
	if h.LastSeq != nil {
		after = *h.LastSeq
	}
	missed, err := c.deps.Store.ChatMessages(s.rec.ID, after)
	if err != nil {
		return err
	}
	if s.conn != nil {
		s.conn.kill()
	}
	s.conn = cl
	s.lastActive = c.deps.Now()
	c.metrics.sessions.WithLabelValues("resumed").Inc()
	cl.send(ServerFrame{Type: FrameWelcome, Session: h.Session, Resumed: true, Lang: s.rec.Lang, Queue: c.routingQueue(s), Seq: s.rec.Seq}, time.Time{})
	for _, m := range missed {
		f := ServerFrame{Type: FrameMessage, Seq: m.Seq, From: m.From, Text: m.Text, ID: m.Ref, At: m.At}
		if m.From == "agent" {
			f.Name = c.agentName(m.Agent)
		}
		cl.send(f, time.Time{})
	}
	if s.rec.Agent != "" {
		cl.send(ServerFrame{Type: FrameAgentJoined, Name: c.agentName(s.rec.Agent)}, time.Time{})
	}
	return nil
}

// detach lets go of a browser that left.
func (c *Channel) detach(s *session, cl *client) {
	s.mu.Lock()
	if s.conn == cl {
		s.conn = nil
		s.lastActive = c.deps.Now()
	}
	typing := s.typing
	s.typing = false
	ev := Event{Kind: "typing", ConversationID: s.rec.ConversationID, TaskID: s.rec.ContactID, Agent: s.rec.Agent, At: time.Now()}
	s.mu.Unlock()
	if typing {
		c.emit(ev)
	}
}

func (c *Channel) readLoop(ctx context.Context, s *session, cl *client) {
	for {
		_, data, err := cl.ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.reject("too_large")
			}
			cl.kill()
			return
		}
		arrived := time.Now()
		f, err := DecodeFrame(data, c.cfg.MaxMessageBytes)
		if err == nil && f.Type == FrameHello {
			err = frameErr("hello", "hello only once per connection")
		}
		if err != nil {
			c.failFrame(cl, err)
			return
		}
		switch f.Type {
		case FrameMessage:
			s.mu.Lock()
			ok := s.messages.take(c.deps.Now(), c.cfg.MessagesPerMinute)
			s.mu.Unlock()
			if !ok {
				c.reject("rate")
				cl.send(ServerFrame{Type: FrameError, Code: "rate", Text: "too many messages; please wait a moment", ID: f.ID}, time.Time{})
				continue
			}
			e, err := c.customerMessage(ctx, s, f.ID, strings.TrimSpace(f.Text), "", arrived)
			if errors.Is(err, ErrEnded) {
				c.fail(cl, "ended", "this chat has ended")
				return
			}
			if err != nil {
				c.failFrame(cl, err)
				return
			}
			if e != nil {
				c.emit(*e)
			}
		case FrameTyping:
			s.mu.Lock()
			// Beyond the rate a change is not told; the next one sets it right.
			changed := s.typing != *f.Active && s.typingRate.take(c.deps.Now(), typingPerMinute)
			if changed {
				s.typing = *f.Active
			}
			ev := Event{Kind: "typing", ConversationID: s.rec.ConversationID, TaskID: s.rec.ContactID, Agent: s.rec.Agent, Active: *f.Active, At: arrived}
			s.mu.Unlock()
			if changed {
				c.emit(ev)
			}
		case FrameTranscript:
			email, err := journey.Email(f.Email)
			if err != nil {
				c.reject("field")
				cl.send(ServerFrame{Type: FrameError, Code: "field", Text: "not an e-mail address: " + clip(f.Email)}, time.Time{})
				continue
			}
			s.mu.Lock()
			rec, err := c.deps.Store.UpdateChatSession(ctx, s.rec.ID, func(cs *store.ChatSession) error { cs.TranscriptTo = email; return nil })
			if err == nil {
				s.rec = *rec
				cl.send(ServerFrame{Type: FrameNotice, Code: "transcript", Text: c.notice("transcript", s.rec.Queue, s.rec.Lang, email)}, time.Time{})
			}
			s.mu.Unlock()
			if err != nil {
				c.failFrame(cl, err)
				return
			}
		case FrameEnd:
			if err := c.end(ctx, s, "customer"); err != nil && !errors.Is(err, ErrEnded) {
				c.failFrame(cl, err)
			}
			return
		}
	}
}

// client is one browser connection. Frames go out through one writer
// goroutine, so a slow browser never holds a session's lock.
type client struct {
	ws        *websocket.Conn
	out       chan outFrame
	done      chan struct{} // closed when the writer has finished
	mu        sync.Mutex
	closed    bool // no more frames are taken
	closeOnce sync.Once
}

type outFrame struct {
	data    []byte
	started time.Time // nonzero: observe the delivery latency of an agent's message
	last    bool      // close the connection after this frame
}

func newClient(ws *websocket.Conn) *client {
	return &client{ws: ws, out: make(chan outFrame, outBuffer), done: make(chan struct{})}
}

// send queues a frame; a browser too slow to take it is disconnected and
// gets everything again when it resumes.
func (cl *client) send(f ServerFrame, started time.Time) {
	data, err := json.Marshal(f)
	if err != nil {
		return
	}
	cl.enqueue(outFrame{data: data, started: started})
}

func (cl *client) enqueue(f outFrame) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return
	}
	select {
	case cl.out <- f:
		if f.last {
			cl.closed = true
			close(cl.out)
		}
	default:
		cl.closed = true
		close(cl.out)
		cl.ws.CloseNow()
	}
}

// closeAfterSend closes the connection normally once the frames queued
// so far are written.
func (cl *client) closeAfterSend() { cl.enqueue(outFrame{last: true}) }

// kill drops the connection at once.
func (cl *client) kill() {
	cl.mu.Lock()
	if !cl.closed {
		cl.closed = true
		close(cl.out)
	}
	cl.mu.Unlock()
	cl.ws.CloseNow()
}

// wait returns once the writer has finished, at most after the write
// timeout.
func (cl *client) wait() {
	select {
	case <-cl.done:
	case <-time.After(writeTimeout + time.Second):
		cl.ws.CloseNow()
	}
}

func (cl *client) writeLoop(c *Channel) {
	defer close(cl.done)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case f, ok := <-cl.out:
			if !ok {
				cl.ws.CloseNow()
				return
			}
			if f.last {
				cl.ws.Close(websocket.StatusNormalClosure, "")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := cl.ws.Write(ctx, websocket.MessageText, f.data)
			cancel()
			if err != nil {
				cl.kill()
				return
			}
			if !f.started.IsZero() {
				c.metrics.delivery.WithLabelValues("out").Observe(time.Since(f.started).Seconds())
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := cl.ws.Ping(ctx)
			cancel()
			if err != nil {
				cl.kill()
				return
			}
		}
	}
}
