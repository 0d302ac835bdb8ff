package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"dirigent/internal/testrun"
	"dirigent/internal/testsite"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// site is a running message channel with its store, journey and router,
// as the daemon wires them, on a loopback port.
type site struct {
	ch       *Channel
	st       *store.Store
	journey  *journey.Journey
	router   *router.Router
	reg      *prometheus.Registry
	storeReg *prometheus.Registry // the store's metrics
	offers   chan router.Offer
	events   chan Event // every Deps.OnCustomer call
	stop     func()     // ends the channel's Run, which waits for its notices
}

func startSite(t testing.TB, tune func(*Config, *Deps)) *site {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	storeReg := prometheus.NewRegistry()
	rc := router.Config{
		Skills: []string{"support", "billing"},
		Agents: []router.AgentSpec{
			{ID: "anna", Skills: map[string]int{"support": 3, "billing": 2}, Capacity: [3]int{1, 3, 2}},
			{ID: "bert", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 0}}, // takes no chats
		},
		Queues: []router.QueueSpec{
			{Name: "support", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Voice, router.Email, router.Message}},
			{Name: "billing", Skills: map[string]int{"billing": 1}, Channels: []router.Channel{router.Message}},
			{Name: "mails", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Email}},
		},
		OfferTimeout: time.Minute,
	}
	ts := testsite.New(t, testsite.Options{
		Logger: logger, StoreRegisterer: storeReg, Router: rc,
		Intents: []journey.IntentRule{{Name: "billing", Queue: "billing", Body: []string{"rechnung"}}},
	})
	testrun.Start(t, ts.Router.Run)
	events := make(chan Event, 10000)
	cfg := Config{
		Listen: "127.0.0.1:0", DefaultQueue: "support", MaxMessageBytes: 100, MessagesPerMinute: 30, MaxSessionsPerIP: 50,
		IdleTimeout: time.Hour, AgentNames: map[string]string{"anna": "Anna Adler"},
	}
	deps := Deps{
		Logger: logger, Store: ts.Store, Journey: ts.Journey, Router: ts.Router, Registerer: prometheus.NewRegistry(), DrainTimeout: time.Second,
		OnCustomer: func(e Event) {
			select {
			case events <- e:
			default:
			}
		},
	}
	if tune != nil {
		tune(&cfg, &deps)
	}
	ch, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	// The router's events reach the channel as the daemon's journal tee
	// passes them; its offers are the test's to take.
	offers := make(chan router.Offer, 10000)
	ts.Wire(testsite.Hooks{Record: ch.TaskEvent, OnOffer: func(o router.Offer) {
		select {
		case offers <- o:
		default:
		}
	}})
	stop := testrun.Start(t, ch.Run)
	return &site{ch: ch, st: ts.Store, journey: ts.Journey, router: ts.Router, reg: deps.Registerer.(*prometheus.Registry), storeReg: storeReg, offers: offers, events: events, stop: stop}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// browser is a customer's WebSocket connection, as the widget makes it.
type browser struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan ServerFrame
	closed chan error
}

func (s *site) dial(t testing.TB, header http.Header) *browser {
	t.Helper()
	b, resp, err := s.tryDial(header)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	b.t = t
	return b
}

func (s *site) tryDial(header http.Header) (*browser, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+s.ch.Addr().String()+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	b := &browser{ws: ws, frames: make(chan ServerFrame, 1000), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				close(b.frames)
				b.closed <- err
				return
			}
			var f ServerFrame
			if err := json.Unmarshal(data, &f); err != nil {
				panic(fmt.Sprintf("server sent non-JSON %q", data))
			}
			b.frames <- f
		}
	}()
	return b, resp, nil
}

func (b *browser) send(frame any) {
	b.t.Helper()
	data, ok := frame.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(frame); err != nil {
			b.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.ws.Write(ctx, websocket.MessageText, data); err != nil {
		b.t.Fatalf("write: %v", err)
	}
}

// until returns the next frame of type typ, failing on the way when the
// connection closes or nothing comes within 10 s (a hang, not a speed
// requirement).
func (b *browser) until(typ string) ServerFrame {
	b.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-b.frames:
			if !ok {
				b.t.Fatalf("connection closed while waiting for %s", typ)
			}
			if f.Type == typ {
				return f
			}
		case <-timeout:
			b.t.Fatalf("no %s frame within 10 s", typ)
		}
	}
}

// closedWith waits for the server to close the connection and returns
// the frames that came before, and the close status.
func (b *browser) closedWith() ([]ServerFrame, websocket.StatusCode) {
	b.t.Helper()
	var got []ServerFrame
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-b.frames:
			if !ok {
				return got, websocket.CloseStatus(<-b.closed)
			}
			got = append(got, f)
		case <-timeout:
			b.t.Fatalf("connection still open after 10 s; frames %+v", got)
		}
	}
}

func (b *browser) close() { b.ws.Close(websocket.StatusNormalClosure, "") }

// chatting opens a chat as a customer's browser does: a hello with the
// given fields, welcomed.
func (s *site) chatting(t testing.TB, fields map[string]any) *browser {
	t.Helper()
	b := s.dial(t, nil)
	b.send(hello(fields))
	b.until(FrameWelcome)
	return b
}

func hello(extra map[string]any) map[string]any {
	m := map[string]any{"type": "hello", "lang": "de"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func message(id, text string) map[string]any {
	return map[string]any{"type": "message", "id": id, "text": text}
}

// event waits for the next Deps.OnCustomer event of kind.
func (s *site) event(t testing.TB, kind string) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", kind)
		}
	}
}

func (s *site) offer(t testing.TB) router.Offer {
	t.Helper()
	select {
	case o := <-s.offers:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no offer within 10 s")
	}
	return router.Offer{}
}

func (s *site) available(t testing.TB, agent string) {
	t.Helper()
	if err := s.router.SetPresence(agent, router.Available, ""); err != nil {
		t.Fatal(err)
	}
}
