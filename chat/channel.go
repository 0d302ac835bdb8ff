package chat

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/text/language"

	"dirigent/internal/clientaddr"
	"dirigent/internal/serverlog"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// Errors of the agent-side API.
var (
	ErrUnknownConversation = errors.New("no chat session has this conversation")
	ErrEnded               = store.ErrChatEnded // the store's, which the desk knows too
	ErrNoSIPReply          = errors.New("SIP MESSAGE replies are not wired")
)

// Errors of Inbound, so that another entrance can answer each in its own
// terms (SIP: 413, 400, 486).
var (
	ErrMessageSize = errors.New("the message is empty or longer than the limit")
	ErrMessageText = errors.New("the message has control characters or is not UTF-8")
	ErrRate        = errors.New("too many messages in this chat; please wait a moment")
)

// Config is the message channel's part of the configuration.
type Config struct {
	// Listen is the customer-facing address of the widget and /ws.
	Listen string
	// AllowedOrigins are the sites (scheme://host[:port]) whose pages may
	// open a chat; pages served by Listen itself always may.
	AllowedOrigins []string
	// DefaultQueue takes chats that neither the widget nor an intent rule
	// sends to a queue taking messages.
	DefaultQueue      string
	MaxMessageBytes   int
	MessagesPerMinute int
	MaxSessionsPerIP  int
	// TrustedProxies are the reverse proxies in front of Listen: behind
	// them, sessions are counted per address their X-Forwarded-For names.
	TrustedProxies clientaddr.Proxies
	// IdleTimeout ends a session whose customer is not connected and in
	// which nobody wrote for this long.
	IdleTimeout time.Duration
	// Location is the time zone of transcripts; nil is UTC.
	Location *time.Location
	// Queues hold per-queue opening hours and texts; a queue missing here
	// is always open and uses the built-in texts.
	Queues map[string]QueueSettings
	// TLS, when set, serves the widget and its WebSocket over HTTPS only.
	TLS *tls.Config
	// AgentNames are shown to customers; an agent without one shows its
	// id. SetAgentNames changes them.
	AgentNames map[string]string
}

// QueueSettings are one queue's opening hours and texts.
type QueueSettings struct {
	// Open reports whether the queue takes chats at a time; nil: always.
	Open func(time.Time) bool
	// Texts shown when closed or when nobody is available; an empty
	// text is the built-in one.
	Closed, Nobody Texts
}

// Texts is one text in German and English.
type Texts struct{ DE, EN string }

func (t Texts) in(lang string) string {
	if lang == "de" {
		return t.DE
	}
	return t.EN
}

// peerLanguages are the languages of the notices, as a peer that is not
// the widget asks for them; the first is the one when it asks for
// neither.
var peerLanguages = language.NewMatcher([]language.Tag{language.German, language.English})

// peerLanguage is the language ("de" or "en") of a chat a peer starts,
// the best for its Accept-Language list (RFC 9110 §12.5.4; SIP's is
// the same, RFC 3261 §20.3): German when it names neither or is empty.
// An entry that does not parse is left out, not the whole list.
func peerLanguage(acceptLanguage string) string {
	var good []string
	for entry := range strings.SplitSeq(acceptLanguage, ",") {
		if tags, _, err := language.ParseAcceptLanguage(entry); err == nil && len(tags) == 1 {
			good = append(good, entry)
		}
	}
	tags, _, _ := language.ParseAcceptLanguage(strings.Join(good, ","))
	if _, i, _ := peerLanguages.Match(tags...); i == 1 {
		return "en"
	}
	return "de"
}

// Event is what a customer did in a chat, for the agent's desk.
type Event struct {
	Kind           string // "message", "typing" or "ended"
	ConversationID uint64
	// TaskID is the task (and contact) of the chat; 0 before the
	// customer's first message.
	TaskID uint64
	// Agent is the agent the chat is assigned to; empty while it waits.
	Agent  string
	Seq    uint64 // message: its number in the transcript
	Text   string // message: what the customer wrote
	Active bool   // typing
	At     time.Time
}

// Deps are what the message channel needs from the daemon.
type Deps struct {
	Logger     *slog.Logger
	Store      *store.Store
	Journey    *journey.Journey
	Router     *router.Router
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now.
	Now          func() time.Time
	DrainTimeout time.Duration
	// OnCustomer is called for every customer message, change of typing
	// and end of a chat, in order per chat, without locks held; it must
	// not block for long. Nil: none (Subscribe still works).
	OnCustomer func(Event)
	// SendTranscript mails a transcript (the mail channel's outbox); nil:
	// transcripts are not mailed.
	SendTranscript func(ctx context.Context, to, subject, text string) error
	// SIPReply sends an agent's answer to a SIP MESSAGE session's peer,
	// to the address Inbound was given; nil: such answers are stored but
	// not sent (Send says so).
	SIPReply func(ctx context.Context, to, text string) error
}

// Channel is the message channel: the widget server and every open chat.
type Channel struct {
	cfg      Config
	deps     Deps
	metrics  *metrics
	ln       net.Listener
	srv      *http.Server
	widgetJS []byte

	mu       sync.Mutex // guards the maps; never held while taking a session's lock
	sessions map[uint64]*session
	byConv   map[uint64]*session
	byTask   map[uint64]*session
	byPeer   map[string]*session
	perIP    map[string]int
	subs     map[string]map[*subscriber]struct{}

	agentNames atomic.Pointer[map[string]string] // cfg.AgentNames, then SetAgentNames'
	peerMu     sync.Mutex                        // held while a SIP peer's chat is found or started
	connected  atomic.Int64
	taskEvents chan router.Event
	handlers   sync.WaitGroup
	notices    sync.WaitGroup // SIP MESSAGE notices on their way to a peer
	// noticesMu keeps a notice from starting once the drain waits for
	// the last ones (noticesDone): Add at zero must not race Wait.
	noticesMu   sync.Mutex
	noticesDone bool
	closeOnce   sync.Once
}

// New checks cfg, loads the open sessions and binds the listener.
func New(cfg Config, deps Deps) (*Channel, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Journey == nil || deps.Router == nil || deps.Registerer == nil {
		return nil, errors.New("chat: Logger, Store, Journey, Router and Registerer are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MaxMessageBytes <= 0 || cfg.MessagesPerMinute <= 0 || cfg.MaxSessionsPerIP <= 0 || cfg.IdleTimeout <= 0 {
		return nil, errors.New("chat: message size, rate, sessions per IP and idle timeout must be positive")
	}
	c := &Channel{
		cfg: cfg, deps: deps,
		sessions: map[uint64]*session{}, byConv: map[uint64]*session{}, byTask: map[uint64]*session{},
		byPeer: map[string]*session{}, perIP: map[string]int{}, subs: map[string]map[*subscriber]struct{}{},
		taskEvents: make(chan router.Event, 4096),
	}
	c.SetAgentNames(cfg.AgentNames)
	if !c.takesMessages(cfg.DefaultQueue) {
		return nil, fmt.Errorf("chat: queue %q does not exist or does not take messages", cfg.DefaultQueue)
	}
	open, err := deps.Store.OpenChatSessions()
	if err != nil {
		return nil, fmt.Errorf("chat: loading open sessions: %w", err)
	}
	now := deps.Now()
	for _, rec := range open {
		c.register(&session{rec: *rec, lastActive: now})
	}
	m, err := newMetrics(deps.Registerer, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(len(c.sessions))
	}, func() float64 { return float64(c.connected.Load()) })
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if c.widgetJS, err = widgetScript(); err != nil {
		return nil, err
	}
	c.srv = &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: serverlog.HTTP(deps.Logger)}
	if c.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if cfg.TLS != nil {
		c.ln = tls.NewListener(c.ln, cfg.TLS)
	}
	return c, nil
}

func (c *Channel) takesMessages(queue string) bool { return c.deps.Router.Takes(queue, router.Message) }

// Addr is the widget listener's bound address.
func (c *Channel) Addr() net.Addr { return c.ln.Addr() }

// Close releases the listener when Run was never called, and drops
// every customer connection. It is safe to call more than once.
func (c *Channel) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		c.dropConnections()
	})
	return err
}

// Run serves the widget and its WebSocket, follows the router's events
// for chat tasks and ends idle sessions, until ctx ends; then it stops
// accepting, tells connected browsers to come back later, and waits for
// their handlers and the notices on their way to SIP peers up to the
// drain timeout.
func (c *Channel) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- c.srv.Serve(c.ln) }()
	sweep := time.NewTicker(min(c.cfg.IdleTimeout/4, time.Minute))
	defer sweep.Stop()
	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("chat: %w", err)
		case e := <-c.taskEvents:
			c.handleTaskEvent(ctx, e)
		case <-sweep.C:
			c.endIdle(ctx)
		case <-ctx.Done():
			drain := c.deps.DrainTimeout
			if drain <= 0 {
				drain = 5 * time.Second
			}
			sctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			err := c.srv.Shutdown(sctx)
			c.Close()
			done := make(chan struct{})
			go func() {
				c.handlers.Wait()
				c.noticesMu.Lock()
				c.noticesDone = true
				c.noticesMu.Unlock()
				c.notices.Wait()
				close(done)
			}()
			select {
			case <-done:
			case <-sctx.Done():
				c.deps.Logger.Warn("chat connections still closing after the drain timeout")
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = nil
			}
			return err
		}
	}
}

// register makes an open session findable.
func (c *Channel) register(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[s.rec.ID] = s
	c.byConv[s.rec.ConversationID] = s
	if s.rec.ContactID != 0 {
		c.byTask[s.rec.ContactID] = s
	}
	if s.rec.Peer != "" {
		c.byPeer[s.rec.Peer] = s
	}
}

// forget makes a session unfindable; rec is its record, read under s.mu
// before it was released (s.rec may change under it after).
func (c *Channel) forget(s *session, rec store.ChatSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, rec.ID)
	delete(c.byConv, rec.ConversationID)
	delete(c.byTask, rec.ContactID)
	if c.byPeer[rec.Peer] == s {
		delete(c.byPeer, rec.Peer)
	}
}

func (c *Channel) session(id uint64) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

// allSessions are the sessions open now. c.mu is released before any of
// their locks is taken (it is never held to take one), so a session's
// record is read only after this returns.
func (c *Channel) allSessions() []*session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.sessions))
}

// dropConnections closes every customer connection with "going away":
// the widget reconnects and resumes when dirigent is back.
func (c *Channel) dropConnections() {
	for _, s := range c.allSessions() {
		s.mu.Lock()
		if s.conn != nil {
			s.conn.kill()
		}
		s.mu.Unlock()
	}
}
