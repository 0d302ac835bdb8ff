package desk

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"dirigent/internal/clientaddr"
	"dirigent/internal/testrun"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// deskEnv is a desk server with a real store, journey and router: the
// agents anna and bert, the supervisor sven, the admin ada.
type deskEnv struct {
	srv     *Server
	base    string
	store   *store.Store
	journey *journey.Journey
	router  *router.Router
}

const testPassword = "correct horse battery"

func startDesk(t testing.TB) *deskEnv {
	t.Helper()
	env := newDesk(t, time.Second)
	testrun.Start(t, env.srv.Run)
	return env
}

// newDesk builds the desk without running it.
func newDesk(t testing.TB, drain time.Duration) *deskEnv {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
	env := newDeskOn(t, st, drain, nil)
	setPasswords(t, st, time.Now(), "anna", "bert", "sven", "ada")
	return env
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// setPasswords gives users testPassword.
func setPasswords(t testing.TB, st *store.Store, at time.Time, users ...string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := st.SetDeskPassword(context.Background(), u, hash, at); err != nil {
			t.Fatal(err)
		}
	}
}

// newDeskOn builds the desk, without running it, on st, which another
// desk may have used before (as the daemon's before a restart); change,
// when set, adjusts the deps first.
func newDeskOn(t testing.TB, st *store.Store, drain time.Duration, change func(*Deps)) *deskEnv {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	yes := true
	j, err := journey.New(journey.Config{
		Region: "DE", RepeatWindow: 72 * time.Hour, ResolvedOutcomes: []string{"resolved"}, MinConfidence: 0.6, RetrainInterval: time.Hour,
		Actions: []journey.ActionRule{
			{Text: "Apologise and solve it now", Reason: "Still not solved", Priority: 100, Repeat: &yes},
			{Text: "Answer within the hour", Reason: "Mail customers expect a quick answer", Priority: 10, Channels: []string{"email"}},
		},
	}, journey.Deps{Store: st, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	agents := []router.AgentSpec{
		{ID: "anna", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 2}},
		{ID: "bert", Skills: map[string]int{"support": 1}, Capacity: [3]int{1, 3, 2}},
	}
	queues := []router.QueueSpec{{Name: "support", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Email, router.Voice, router.Message}, ServiceLevelThreshold: 20 * time.Second, ServiceLevelTarget: 0.9}}
	var srv *Server
	r, err := router.New(router.Config{Skills: []string{"support", "billing"}, Agents: agents, Queues: queues, OfferTimeout: time.Minute}, router.Deps{
		Logger: logger, Journal: journalFunc(func(e router.Event) { srv.RouterEvent(e) }),
		OnOffer:  func(o router.Offer) { srv.OnOffer(o) },
		OnRevoke: func(o router.Offer) { srv.OnRevoke(o) },
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, r.Run)
	deps := Deps{
		Logger: logger, Registry: prometheus.NewRegistry(), DrainTimeout: drain,
		Store: st, Journey: j, Router: r,
		Logins:      Logins{Agents: []string{"anna", "bert"}, Supervisors: []string{"sven"}, Admins: []string{"ada"}},
		AwayReasons: []string{"break", "lunch"}, WrapCodes: []string{"resolved", "callback"},
	}
	if change != nil {
		change(&deps)
	}
	srv, err = New("127.0.0.1:0", deps)
	if err != nil {
		t.Fatal(err)
	}
	return &deskEnv{srv: srv, base: "http://" + srv.Addr().String(), store: st, journey: j, router: r}
}

// journalFunc hands the router's events to the desk, as the daemon's
// journal does.
type journalFunc func(router.Event)

func (f journalFunc) Record(e router.Event) { f(e) }

// browser is a desk user's HTTP client: cookies and the CSRF token, as
// the page keeps them.
type browser struct {
	t      testing.TB
	base   string
	client *http.Client
	csrf   string
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, client: &http.Client{Jar: jar}}
}

// do sends a request and decodes the JSON answer; headers are name,
// value pairs added after the CSRF token.
func (b *browser) do(method, path, body string, headers ...string) (int, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		b.t.Fatalf("%s %s: %d, answer is not JSON: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (b *browser) login(user string) map[string]any {
	b.t.Helper()
	code, me := b.do("POST", "/api/desk/login", `{"user":"`+user+`","password":"`+testPassword+`"}`)
	if code != 200 {
		b.t.Fatalf("login %s: %d %v", user, code, me)
	}
	b.csrf = me["csrf_token"].(string)
	return me
}

// expect checks an answer's status and error message.
func expect(t *testing.T, what string, code int, body map[string]any, wantCode int, wantErr string) {
	t.Helper()
	if code != wantCode || wantErr != "" && body["error"] != wantErr {
		t.Errorf("%s: %d %v, want %d %q", what, code, body, wantCode, wantErr)
	}
}

func TestDeskLogin(t *testing.T) {
	env := startDesk(t)
	b := newBrowser(t, env.base)
	for _, tt := range []struct {
		name, body string
		headers    []string
		code       int
		msg        string
	}{
		{"not JSON", `user=anna`, nil, 400, "body is not valid JSON for this request: invalid character 'u' looking for beginning of value"},
		{"unknown field", `{"user":"anna","password":"x","remember":true}`, nil, 400, `body is not valid JSON for this request: json: unknown field "remember"`},
		{"no password", `{"user":"anna"}`, nil, 400, "user and password are required"},
		{"wrong password", `{"user":"anna","password":"wrong password"}`, nil, 401, "wrong user name or password"},
		{"unknown user", `{"user":"mallory","password":"` + testPassword + `"}`, nil, 401, "wrong user name or password"},
		{"other site", `{"user":"anna","password":"` + testPassword + `"}`, []string{"Origin", "https://evil.example"}, 403, "login from another site refused"},
	} {
		code, body := b.do("POST", "/api/desk/login", tt.body, tt.headers...)
		expect(t, tt.name, code, body, tt.code, tt.msg)
	}
	code, body := b.do("GET", "/api/desk/me", "")
	expect(t, "me before login", code, body, 401, "not logged in")

	// The cookie: HttpOnly, SameSite=Strict, Secure only behind TLS.
	for _, tt := range []struct {
		proto  string
		secure bool
	}{{"", false}, {"https", true}} {
		req, _ := http.NewRequest("POST", env.base+"/api/desk/login", strings.NewReader(`{"user":"anna","password":"`+testPassword+`"}`))
		if tt.proto != "" {
			req.Header.Set("X-Forwarded-Proto", tt.proto)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cookies := resp.Cookies()
		if len(cookies) != 1 || cookies[0].Name != sessionCookie || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Secure != tt.secure {
			t.Errorf("proto %q: cookies %+v", tt.proto, cookies)
		}
	}

	me := b.login("anna")
	if me["user"] != "anna" || me["presence"] != "offline" || len(me["roles"].([]any)) != 1 || me["roles"].([]any)[0] != "agent" {
		t.Errorf("me %v", me)
	}
	if code, me := b.do("GET", "/api/desk/me", ""); code != 200 || me["csrf_token"] != b.csrf {
		t.Errorf("me: %d %v", code, me)
	}
	code, body = b.do("POST", "/api/desk/logout", "", "Origin", "http://evil.example")
	expect(t, "logout from another site", code, body, 403, "logout from another site refused")
	if code, _ := b.do("GET", "/api/desk/me", ""); code != 200 {
		t.Errorf("still logged in after the refused logout: %d", code)
	}
	if code, _ := b.do("POST", "/api/desk/logout", ""); code != 200 {
		t.Errorf("logout: %d", code)
	}
	code, body = b.do("GET", "/api/desk/me", "")
	expect(t, "me after logout", code, body, 401, "not logged in")
}

func TestDeskLoginRateLimit(t *testing.T) {
	env := startDesk(t)
	// Fewer failures per address than in production, so that the test
	// reaches the limit with the few logins it has.
	env.srv.limiter.perIP = 8
	b := newBrowser(t, env.base)
	for i := range maxFailuresPerUser {
		code, body := b.do("POST", "/api/desk/login", `{"user":"anna","password":"guess `+string(rune('a'+i))+`"}`)
		expect(t, "guess", code, body, 401, "wrong user name or password")
	}
	// Now even the right password waits: the guesser must not learn it.
	code, body := b.do("POST", "/api/desk/login", `{"user":"anna","password":"`+testPassword+`"}`)
	expect(t, "after 5 failures", code, body, 429, "too many failed logins: try again in 15 minutes")
	// Another user from the same address is not locked out yet ...
	b.login("bert")
	// ... until the address has failed too often.
	for range 3 {
		b.do("POST", "/api/desk/login", `{"user":"bert","password":"guess"}`)
	}
	code, body = b.do("POST", "/api/desk/login", `{"user":"sven","password":"`+testPassword+`"}`)
	expect(t, "after 8 failures from one address", code, body, 429, "too many failed logins: try again in 15 minutes")
}

// Behind the site's reverse proxy failed logins count against the
// address its X-Forwarded-For names: one agent's typos lock out no one
// else, and a header from anyone else changes nothing.
func TestDeskLoginRateLimitBehindProxy(t *testing.T) {
	proxies, err := clientaddr.ParseProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		proxies clientaddr.Proxies
		locked  bool // the second address is locked out with the first
	}{
		{"trusted", proxies, false},
		{"not trusted", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
			env := newDeskOn(t, st, time.Second, func(d *Deps) { d.TrustedProxies = tc.proxies })
			setPasswords(t, st, time.Now(), "anna", "bert")
			env.srv.limiter.perIP = 3
			testrun.Start(t, env.srv.Run)
			b := newBrowser(t, env.base)
			for range 3 {
				b.do("POST", "/api/desk/login", `{"user":"anna","password":"guess"}`, "X-Forwarded-For", "203.0.113.1")
			}
			code, body := b.do("POST", "/api/desk/login", `{"user":"bert","password":"`+testPassword+`"}`, "X-Forwarded-For", "203.0.113.1")
			expect(t, "from the guessing address", code, body, 429, "too many failed logins: try again in 15 minutes")
			code, body = b.do("POST", "/api/desk/login", `{"user":"bert","password":"`+testPassword+`"}`, "X-Forwarded-For", "203.0.113.2")
			if locked := code == 429; locked != tc.locked {
				t.Errorf("from another address behind the proxy: %d %v", code, body)
			}
		})
	}
}

func TestDeskRolesAndCSRF(t *testing.T) {
	env := startDesk(t)
	anon := newBrowser(t, env.base)
	agent := newBrowser(t, env.base)
	agent.login("anna")
	super := newBrowser(t, env.base)
	super.login("sven")
	admin := newBrowser(t, env.base)
	admin.login("ada")
	noToken := newBrowser(t, env.base)
	noToken.login("bert")
	noToken.csrf = ""

	const (
		csrfMsg = "missing or wrong X-CSRF-Token, or a request from another site: reload the page"
	)
	for _, tt := range []struct {
		who          *browser
		method, path string
		body         string
		code         int
		msg          string
	}{
		{anon, "GET", "/api/desk/tasks", "", 401, "not logged in"},
		{anon, "GET", "/api/desk/wallboard", "", 401, "not logged in"},
		{anon, "GET", "/api/desk/events", "", 401, "not logged in"},
		{anon, "PUT", "/api/desk/admin/agents/anna/skills", `{}`, 401, "not logged in"},
		{agent, "GET", "/api/desk/wallboard", "", 403, "this needs the role supervisor or admin"},
		{agent, "GET", "/api/desk/admin", "", 403, "this needs the role admin"},
		{agent, "POST", "/api/desk/wallboard/tasks/1/return", `{"agent":"anna"}`, 403, "this needs the role supervisor or admin"},
		{agent, "PUT", "/api/desk/admin/agents/anna/presence", `{"presence":"available"}`, 403, "this needs the role admin"},
		{super, "PUT", "/api/desk/me/presence", `{"presence":"available"}`, 403, "this needs the role agent"},
		{super, "GET", "/api/desk/offers", "", 403, "this needs the role agent"},
		{super, "GET", "/api/desk/admin", "", 403, "this needs the role admin"},
		{super, "PUT", "/api/desk/admin/agents/anna/skills", `{"skills":{"support":1}}`, 403, "this needs the role admin"},
		{admin, "GET", "/api/desk/tasks", "", 403, "this needs the role agent"},
		{noToken, "PUT", "/api/desk/me/presence", `{"presence":"available"}`, 403, csrfMsg},
		{noToken, "POST", "/api/desk/offers/1/accept", "", 403, csrfMsg},
		{agent, "GET", "/api/desk/nope", "", 404, "no such endpoint: GET /api/desk/nope"},
		{agent, "DELETE", "/api/desk/tasks", "", 405, "DELETE /api/desk/tasks: use GET"},
	} {
		code, body := tt.who.do(tt.method, tt.path, tt.body)
		expect(t, tt.method+" "+tt.path, code, body, tt.code, tt.msg)
	}
	// Every desk endpoint but login and logout wants a session.
	for _, ep := range []string{
		"GET /api/desk/me", "PUT /api/desk/me/presence", "GET /api/desk/events", "GET /api/desk/offers",
		"POST /api/desk/offers/1/accept", "POST /api/desk/offers/1/decline", "GET /api/desk/tasks", "GET /api/desk/tasks/1",
		"POST /api/desk/tasks/1/reply", "POST /api/desk/tasks/1/wrapup", "GET /api/desk/customers?q=joe", "GET /api/desk/customers/1",
		"GET /api/desk/wallboard", "POST /api/desk/wallboard/tasks/1/return", "GET /api/desk/admin", "PUT /api/desk/admin/agents/anna/skills", "PUT /api/desk/admin/agents/anna/presence",
	} {
		method, path, _ := strings.Cut(ep, " ")
		code, body := anon.do(method, path, `{}`)
		expect(t, ep+" without a session", code, body, 401, "not logged in")
	}
	expired := newBrowser(t, env.base)
	expired.client.Jar.SetCookies(agentURL(t, env.base), []*http.Cookie{{Name: sessionCookie, Value: "made-up"}})
	code, body := expired.do("GET", "/api/desk/me", "")
	expect(t, "unknown session", code, body, 401, "session expired or unknown: log in again")
	for _, tt := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"POST", "/api/desk/offers/0/accept", "", 400, `task id "0": want a positive number`},
		{"POST", "/api/desk/offers/7/decline", "", 404, "task 7: not offered to you or accepted by you"},
		{"GET", "/api/desk/customers/abc", "", 400, `customer id "abc": want a positive number`},
		{"PUT", "/api/desk/me/presence", strings.Repeat(" ", maxDeskBody+1), 400, "body larger than 262144 bytes"},
		{"PUT", "/api/desk/me/presence", "{\"presence\":\"\xff\"}", 400, "body is not UTF-8"},
		{"PUT", "/api/desk/me/presence", `{"presence":"available"} {}`, 400, "body has data after the JSON object"},
	} {
		code, body := agent.do(tt.method, tt.path, tt.body)
		expect(t, tt.method+" "+tt.path, code, body, tt.code, tt.msg)
	}

	// The right token from another site's page is refused too.
	code, body = agent.do("PUT", "/api/desk/me/presence", `{"presence":"available"}`, "Origin", "http://evil.example")
	expect(t, "foreign origin", code, body, 403, csrfMsg)
	code, body = agent.do("PUT", "/api/desk/me/presence", `{"presence":"available"}`, "Origin", env.base)
	expect(t, "own origin", code, body, 200, "")
}

// availableAgent logs user in with an event stream open and makes them
// available, as the page does when an agent starts work.
func availableAgent(t testing.TB, env *deskEnv, user string) (*browser, *sseReader) {
	t.Helper()
	b := newBrowser(t, env.base)
	b.login(user)
	events := openEvents(t, b)
	if code, body := b.do("PUT", "/api/desk/me/presence", `{"presence":"available"}`); code != 200 {
		t.Fatalf("%s available: %d %v", user, code, body)
	}
	return b, events
}

// sseReader reads a desk event stream.
type sseReader struct {
	events chan [2]string
	closed chan struct{} // the server ended the stream
}

func openEvents(t testing.TB, b *browser) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/api/desk/events", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := &sseReader{events: make(chan [2]string, 100), closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "event: "); ok {
				name = n
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				r.events <- [2]string{name, d}
			}
		}
	}()
	return r
}

// A session's event streams end with it: a logout, or a new password
// set for its user, leaves no stream of offers and customers open.
func TestEventStreamsEndWithTheSession(t *testing.T) {
	env := startDesk(t)
	for _, how := range []string{"logout", "new password"} {
		b := newBrowser(t, env.base)
		b.login("anna")
		events := openEvents(t, b)
		switch how {
		case "logout":
			if code, body := b.do("POST", "/api/desk/logout", ""); code != 200 {
				t.Fatalf("logout: %d %v", code, body)
			}
		case "new password":
			if n, err := env.srv.EndSessionsOf(context.Background(), "anna"); n != 1 || err != nil {
				t.Fatalf("ending anna's sessions: %d, %v", n, err)
			}
		}
		select {
		case <-events.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the event stream stays open", how)
		}
	}
}

// next returns the next event called name, skipping others.
func (r *sseReader) next(t testing.TB, name string) map[string]any {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-r.events:
			if e[0] != name {
				continue
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(e[1]), &v); err != nil {
				t.Fatalf("event %s: %v", name, err)
			}
			return v
		case <-timeout:
			t.Fatalf("no %s event", name)
			return nil
		}
	}
}

// takenMailTask is a new mail task, offered to the agent behind b (events
// are theirs) and accepted on their desk.
func takenMailTask(t testing.TB, env *deskEnv, b *browser, events *sseReader, from, subject string) (taskID, customerID uint64) {
	t.Helper()
	taskID, customerID = newMailTask(t, env, from, subject)
	events.next(t, "offer")
	if code, body := b.do("POST", "/api/desk/offers/"+jsonNumber(taskID)+"/accept", ""); code != 200 {
		t.Fatalf("accept: %d %v", code, body)
	}
	return taskID, customerID
}

// newMailTask stores a mail contact of a customer, in a conversation,
// and queues its task, as the mail channel does.
func newMailTask(t testing.TB, env *deskEnv, from, subject string) (uint64, uint64) {
	t.Helper()
	ctx := context.Background()
	c, _, err := env.journey.Identify(ctx, journey.KindEmail, from, "Jörg Müller")
	if err != nil {
		t.Fatal(err)
	}
	conv := &store.Conversation{CustomerID: c.ID, Channel: "email", Subject: subject, Status: "open", Tag: "DG-1", Created: time.Now()}
	if err := env.store.PutConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	contact := &store.Contact{CustomerID: c.ID, Channel: "email", Direction: "in", ConversationID: conv.ID, Queue: "support", Start: time.Now().UTC(), Subject: subject, Text: "Mein Router blinkt rot."}
	if err := env.store.AppendContact(ctx, contact); err != nil {
		t.Fatal(err)
	}
	if err := env.router.Enqueue(router.Task{ID: contact.ID, Channel: router.Email, Queue: "support", CustomerID: c.ID}); err != nil {
		t.Fatal(err)
	}
	return contact.ID, c.ID
}

func TestDeskAgentHandlesAMail(t *testing.T) {
	env := startDesk(t)
	anna := newBrowser(t, env.base)
	anna.login("anna")
	events := openEvents(t, anna)

	for _, tt := range []struct {
		body, msg string
	}{
		{`{"presence":"busy"}`, `presence "busy": want available, away or offline`},
		{`{"presence":"away"}`, "away needs a reason, one of: break, lunch"},
		{`{"presence":"away","reason":"nap"}`, "away needs a reason, one of: break, lunch"},
		{`{"presence":"available","reason":"lunch"}`, "a reason goes only with away"},
		{`{"presence":"available"`, "body is not valid JSON for this request: unexpected EOF"},
	} {
		code, body := anna.do("PUT", "/api/desk/me/presence", tt.body)
		expect(t, tt.body, code, body, 400, tt.msg)
	}
	code, me := anna.do("PUT", "/api/desk/me/presence", `{"presence":"away","reason":"lunch"}`)
	if code != 200 || me["presence"] != "away" || me["reason"] != "lunch" {
		t.Fatalf("away: %d %v", code, me)
	}
	if code, me := anna.do("PUT", "/api/desk/me/presence", `{"presence":"available"}`); code != 200 || me["presence"] != "available" {
		t.Fatalf("available: %d %v", code, me)
	}

	taskID, customerID := newMailTask(t, env, "joe@example.org", "Router kaputt")
	id := jsonNumber(taskID)
	offer := events.next(t, "offer")
	if offer["id"] != float64(taskID) || offer["channel"] != "email" || offer["state"] != "offered" || offer["deadline"] == nil {
		t.Fatalf("offer event %v", offer)
	}
	if code, body := anna.do("GET", "/api/desk/offers", ""); code != 200 || len(body["offers"].([]any)) != 1 {
		t.Errorf("offers: %d %v", code, body)
	}
	// The card is there while the offer is: for a call, while it rings.
	code, detail := anna.do("GET", "/api/desk/tasks/"+id, "")
	if code != 200 {
		t.Fatalf("task detail: %d %v", code, detail)
	}
	cust := detail["customer"].(map[string]any)
	if cust["name"] != "Jörg Müller" || cust["identities"].([]any)[0] != "email:joe@example.org" {
		t.Errorf("customer card %v", cust)
	}
	if nba := detail["next_best_actions"].([]any); len(nba) != 1 || nba[0].(map[string]any)["action"] != "Answer within the hour" || nba[0].(map[string]any)["reason"] == "" {
		t.Errorf("next best actions %v", nba)
	}
	if thread := detail["thread"].([]any); len(thread) != 1 || thread[0].(map[string]any)["text"] != "Mein Router blinkt rot." {
		t.Errorf("thread %v", detail["thread"])
	}
	if detail["conversation"].(map[string]any)["tag"] != "DG-1" {
		t.Errorf("conversation %v", detail["conversation"])
	}

	// Refusals on the way.
	bert := newBrowser(t, env.base)
	bert.login("bert")
	for _, tt := range []struct {
		who          *browser
		method, path string
		body         string
		code         int
		msg          string
	}{
		{bert, "GET", "/api/desk/tasks/" + id, "", 404, "task " + id + ": not offered to you or accepted by you"},
		{bert, "POST", "/api/desk/offers/" + id + "/accept", "", 404, "task " + id + ": not offered to you or accepted by you"},
		{anna, "GET", "/api/desk/tasks/x1", "", 400, `task id "x1": want a positive number`},
		{anna, "POST", "/api/desk/tasks/" + id + "/reply", `{"text":"Hallo"}`, 409, "task " + id + " is offered, not assigned"},
		{anna, "POST", "/api/desk/tasks/" + id + "/wrapup", `{"code":"resolved"}`, 409, "task " + id + " is offered, not assigned"},
	} {
		code, body := tt.who.do(tt.method, tt.path, tt.body)
		expect(t, tt.method+" "+tt.path, code, body, tt.code, tt.msg)
	}

	if code, body := anna.do("POST", "/api/desk/offers/"+id+"/accept", ""); code != 200 || body["state"] != "assigned" {
		t.Fatalf("accept: %d %v", code, body)
	}
	events.next(t, "tasks")
	code, body := anna.do("POST", "/api/desk/offers/"+id+"/accept", "")
	expect(t, "accept twice", code, body, 409, "task "+id+" is assigned, not offered")
	if code, body := anna.do("GET", "/api/desk/tasks", ""); code != 200 || len(body["tasks"].([]any)) != 1 {
		t.Errorf("tasks: %d %v", code, body)
	}

	// Replies with files take turns: while every place is taken, one
	// waits, then is told to send again; a reply of text alone does not
	// wait. (Past its turn, each meets the missing mail channel.)
	env.srv.uploadWait = 10 * time.Millisecond
	for range maxUploads {
		env.srv.uploads <- struct{}{}
	}
	withFile := `{"text":"Anbei.","files":[{"name":"a.pdf","type":"application/pdf","data":"` + base64.StdEncoding.EncodeToString(make([]byte, maxDeskBody)) + `"}]}`
	code, body = anna.do("POST", "/api/desk/tasks/"+id+"/reply", withFile)
	expect(t, "a reply with files, no place", code, body, 503, "other replies with files are being taken in: send again in a moment")
	code, body = anna.do("POST", "/api/desk/tasks/"+id+"/reply", `{"text":"Hallo"}`)
	expect(t, "a reply of text, no place", code, body, 503, "the mail channel is not running")
	for range maxUploads {
		<-env.srv.uploads
	}
	code, body = anna.do("POST", "/api/desk/tasks/"+id+"/reply", withFile)
	expect(t, "a reply with files, its turn", code, body, 503, "the mail channel is not running")

	for _, tt := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/reply", `{"text":"  "}`, 400, "text is empty"},
		{"/reply", `{"txt":"Hallo"}`, 400, `body is not valid JSON for this request: json: unknown field "txt"`},
		// The desk has no mail channel in this test: the reply is refused
		// clearly (the daemon's test sends one for real).
		{"/reply", `{"text":"Hallo"}`, 503, "the mail channel is not running"},
		{"/chat", `{"text":"Hallo"}`, 409, "task " + id + " is not a chat (email)"},
		{"/chat", `{"text":""}`, 400, "text is empty"},
		{"/chat/end", ``, 409, "task " + id + " is not a chat (email)"},
		{"/wrapup", `{"code":"fixed"}`, 400, `code "fixed": want one of resolved, callback`},
		{"/wrapup", `{"code":"resolved","note":"` + strings.Repeat("x", maxNoteRunes+1) + `"}`, 400, "note longer than 4000 characters"},
	} {
		code, body := anna.do("POST", "/api/desk/tasks/"+id+tt.path, tt.body)
		expect(t, tt.path+" "+tt.body, code, body, tt.code, tt.msg)
	}
	if code, body := anna.do("POST", "/api/desk/tasks/"+id+"/wrapup", `{"code":"resolved","note":"Router neu gestartet"}`); code != 200 || body["outcome"] != "resolved" {
		t.Fatalf("wrap-up: %d %v", code, body)
	}
	contact, err := env.store.Contact(taskID)
	if err != nil || contact.Outcome != "resolved" || contact.Note != "Router neu gestartet" || contact.Agent != "anna" || contact.End.IsZero() || contact.Answered.IsZero() {
		t.Errorf("contact after wrap-up: %+v %v", contact, err)
	}
	if code, body := anna.do("GET", "/api/desk/tasks", ""); code != 200 || len(body["tasks"].([]any)) != 0 {
		t.Errorf("tasks after wrap-up: %d %v", code, body)
	}
	stats := env.router.Stats()[0]
	if stats.Today.Answered != 1 || stats.Today.Completed != 1 || stats.Waiting != 0 {
		t.Errorf("router stats %+v", stats.Today)
	}

	// The next contact of the customer sees this one in its journey,
	// with anna as the last agent.
	second, _ := newMailTask(t, env, "joe@example.org", "Noch eine Frage")
	events.next(t, "offer")
	_, detail = anna.do("GET", "/api/desk/tasks/"+jsonNumber(second), "")
	if detail["last_agent"] != "anna" || len(detail["journey"].([]any)) != 2 || detail["repeat_of"] != nil {
		t.Errorf("second contact: last agent %v, journey %v, repeat %v", detail["last_agent"], detail["journey"], detail["repeat_of"])
	}
	if code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(second)+"/decline", ""); code != 200 || body["state"] != "declined" {
		t.Errorf("decline: %d %v", code, body)
	}
	if code, body := anna.do("GET", "/api/desk/offers", ""); code != 200 || len(body["offers"].([]any)) != 0 {
		t.Errorf("offers after decline: %d %v", code, body)
	}
	_ = customerID
}

// A contact after an unresolved one carries the repeat banner's data and
// the repeat rule's next best action, with what happened before.
func TestDeskRepeatContact(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	first, _ := takenMailTask(t, env, anna, events, "joe@example.org", "Router kaputt")
	if code, body := anna.do("POST", "/api/desk/tasks/"+jsonNumber(first)+"/wrapup", `{"code":"callback","note":"ruft zurück"}`); code != 200 {
		t.Fatalf("wrap-up: %d %v", code, body)
	}
	second, _ := newMailTask(t, env, "joe@example.org", "Immer noch kaputt")
	events.next(t, "offer")
	_, detail := anna.do("GET", "/api/desk/tasks/"+jsonNumber(second), "")
	rep, _ := detail["repeat_of"].(map[string]any)
	if rep == nil || rep["id"] != float64(first) || rep["outcome"] != "callback" || detail["last_agent"] != "anna" {
		t.Fatalf("repeat banner data: %v, last agent %v", detail["repeat_of"], detail["last_agent"])
	}
	nba := detail["next_best_actions"].([]any)[0].(map[string]any)
	if nba["action"] != "Apologise and solve it now" || !strings.HasPrefix(nba["reason"].(string), "Still not solved (earlier: email, outcome callback, ") {
		t.Errorf("first next best action %v", nba)
	}
}

// A call answered on the phone (the sip channel accepts it in the router)
// is on the agent's desk, and stays there after it ended until the agent
// records its outcome.
func TestDeskTaskAcceptedElsewhere(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	first, _ := newMailTask(t, env, "joe@example.org", "Eins")
	events.next(t, "offer")
	if err := env.router.Accept(first, "anna"); err != nil {
		t.Fatal(err)
	}
	events.next(t, "tasks")
	_, body := anna.do("GET", "/api/desk/tasks", "")
	tasks := body["tasks"].([]any)
	if len(tasks) != 1 || tasks[0].(map[string]any)["state"] != "assigned" || tasks[0].(map[string]any)["id"] != float64(first) {
		t.Fatalf("tasks %v", tasks)
	}
	code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(first)+"/accept", "")
	expect(t, "accept what the phone took", code, body, 409, "task "+jsonNumber(first)+" is assigned, not offered")
	// The caller hangs up: the task wraps up, on the desk too.
	if err := env.router.End(first); err != nil {
		t.Fatal(err)
	}
	events.next(t, "tasks")
	if _, body := anna.do("GET", "/api/desk/tasks", ""); body["tasks"].([]any)[0].(map[string]any)["state"] != "wrapping" {
		t.Errorf("after the call ended: %v", body)
	}
	// What the channel wrote at the end of the call stays.
	c, err := env.store.Contact(first)
	if err != nil {
		t.Fatal(err)
	}
	hungUp := time.Now().Add(-time.Minute).UTC().Round(0)
	c.End, c.Note = hungUp, "hung up by caller"
	if err := env.store.UpdateContact(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if code, body := anna.do("POST", "/api/desk/tasks/"+jsonNumber(first)+"/wrapup", `{"code":"resolved","note":"Tarif erklärt"}`); code != 200 {
		t.Fatalf("wrap-up: %d %v", code, body)
	}
	if c, err := env.store.Contact(first); err != nil || !c.End.Equal(hungUp) || c.Note != "hung up by caller; Tarif erklärt" || c.Outcome != "resolved" || c.Answered.IsZero() {
		t.Errorf("contact after wrap-up: %+v %v", c, err)
	}
	if _, body := anna.do("GET", "/api/desk/tasks", ""); len(body["tasks"].([]any)) != 0 {
		t.Errorf("tasks after wrap-up: %v", body)
	}
	// Even one the router finished by itself waits for its outcome.
	second, _ := takenMailTask(t, env, anna, events, "joe@example.org", "Zwei")
	if err := env.router.Complete(second, "anna"); err != nil {
		t.Fatal(err)
	}
	for {
		if e := events.next(t, "tasks"); e["id"] == float64(second) {
			_, body := anna.do("GET", "/api/desk/tasks", "")
			if ts := body["tasks"].([]any); len(ts) == 1 && ts[0].(map[string]any)["state"] == "wrapping" {
				break
			}
		}
	}
	if code, body := anna.do("POST", "/api/desk/tasks/"+jsonNumber(second)+"/wrapup", `{"code":"callback"}`); code != 200 {
		t.Fatalf("wrap-up of a finished task: %d %v", code, body)
	}
	if c, err := env.store.Contact(second); err != nil || c.Outcome != "callback" {
		t.Errorf("contact %+v %v", c, err)
	}
}

// TestDeskErasedTaskLeaves: when a customer is erased, their task leaves
// the desk of the agent who took it (the page is told to reload its
// tasks), and their offer leaves the desk of the agent it was offered to.
func TestDeskErasedTaskLeaves(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	taken, customer := takenMailTask(t, env, anna, events, "joe@example.org", "Bitte löschen")
	events.next(t, "tasks")
	offered, _ := newMailTask(t, env, "joe@example.org", "Noch eine")
	events.next(t, "offer")
	if _, err := env.store.EraseCustomer(context.Background(), customer, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if ended := env.router.EraseCustomer(customer); !slices.Equal(ended, []uint64{taken, offered}) {
		t.Fatalf("erasing the customer's tasks ended %v", ended)
	}
	if e := events.next(t, "tasks"); e["id"] != float64(taken) {
		t.Errorf("tasks event %v", e)
	}
	if e := events.next(t, "revoke"); e["id"] != float64(offered) {
		t.Errorf("revoke event %v", e)
	}
	if _, body := anna.do("GET", "/api/desk/tasks", ""); len(body["tasks"].([]any)) != 0 {
		t.Errorf("tasks after the erasure: %v", body)
	}
	for _, id := range []uint64{taken, offered} {
		code, body := anna.do("GET", "/api/desk/tasks/"+jsonNumber(id), "")
		expect(t, "detail of an erased task", code, body, 404, "task "+jsonNumber(id)+": not offered to you or accepted by you")
	}
	code, body := anna.do("POST", "/api/desk/tasks/"+jsonNumber(taken)+"/wrapup", `{"code":"resolved"}`)
	expect(t, "wrap-up of an erased task", code, body, 404, "task "+jsonNumber(taken)+": not offered to you or accepted by you")
}

// Without a message channel the chat pane refuses clearly.
func TestDeskChatWithoutTheMessageChannel(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	ctx := context.Background()
	c, _, err := env.journey.Identify(ctx, journey.KindEmail, "klara@example.org", "Klara")
	if err != nil {
		t.Fatal(err)
	}
	conv := &store.Conversation{CustomerID: c.ID, Channel: "message", Status: "open", Created: time.Now()}
	if err := env.store.PutConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	contact := &store.Contact{CustomerID: c.ID, Channel: "message", Direction: "in", ConversationID: conv.ID, Queue: "support", Start: time.Now().UTC()}
	if err := env.store.AppendContact(ctx, contact); err != nil {
		t.Fatal(err)
	}
	if err := env.router.Enqueue(router.Task{ID: contact.ID, Channel: router.Message, Queue: "support", CustomerID: c.ID}); err != nil {
		t.Fatal(err)
	}
	events.next(t, "offer")
	id := jsonNumber(contact.ID)
	if code, body := anna.do("POST", "/api/desk/offers/"+id+"/accept", ""); code != 200 {
		t.Fatalf("accept: %d %v", code, body)
	}
	for _, path := range []string{"/chat", "/chat/end"} {
		code, body := anna.do("POST", "/api/desk/tasks/"+id+path, `{"text":"Hallo"}`)
		if path == "/chat/end" {
			code, body = anna.do("POST", "/api/desk/tasks/"+id+path, "")
		}
		expect(t, path, code, body, 503, "the message channel is not running")
	}
	code, body := anna.do("PUT", "/api/desk/tasks/"+id+"/chat/typing", `{"active":"yes"}`)
	expect(t, "typing", code, body, 400, "body is not valid JSON for this request: json: cannot unmarshal string into Go struct field typingRequest.active of type bool")
}

func TestDeskOfferRevokedWhenAgentGoesAway(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	taskID, _ := newMailTask(t, env, "eva@example.org", "Frage")
	events.next(t, "offer")
	anna.do("PUT", "/api/desk/me/presence", `{"presence":"away","reason":"break"}`)
	if rev := events.next(t, "revoke"); rev["id"] != float64(taskID) {
		t.Errorf("revoke %v", rev)
	}
	code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(taskID)+"/accept", "")
	expect(t, "accept a revoked offer", code, body, 404, "task "+jsonNumber(taskID)+": not offered to you or accepted by you")
}

// A mail anna had taken leaves her desk when a reload removes her, and
// is offered to bert, who can open and answer it.
func TestDeskTaskOfARemovedAgent(t *testing.T) {
	env := startDesk(t)
	anna, annaEvents := availableAgent(t, env, "anna")
	taskID, _ := takenMailTask(t, env, anna, annaEvents, "eva@example.org", "Frage")
	bert, bertEvents := availableAgent(t, env, "bert")
	if err := env.router.RemoveAgent("anna"); err != nil {
		t.Fatal(err)
	}
	if code, _ := anna.do("GET", "/api/desk/tasks/"+jsonNumber(taskID), ""); code != 404 {
		t.Errorf("anna still sees the task: %d", code)
	}
	if offer := bertEvents.next(t, "offer"); offer["id"] != float64(taskID) {
		t.Fatalf("bert offered %v", offer)
	}
	if code, body := bert.do("POST", "/api/desk/offers/"+jsonNumber(taskID)+"/accept", ""); code != 200 {
		t.Fatalf("bert accepts: %d %v", code, body)
	}
	if code, detail := bert.do("GET", "/api/desk/tasks/"+jsonNumber(taskID), ""); code != 200 || detail["task"].(map[string]any)["agent"] != "bert" {
		t.Errorf("bert's task: %d %v", code, detail)
	}
}

// A supervisor returns the mail anna has taken from the wallboard: it
// leaves her desk and is offered to bert. A call, or an unknown task,
// cannot be returned.
func TestDeskReturnTask(t *testing.T) {
	env := startDesk(t)
	anna, annaEvents := availableAgent(t, env, "anna")
	taskID, _ := takenMailTask(t, env, anna, annaEvents, "eva@example.org", "Frage")
	sven := newBrowser(t, env.base)
	sven.login("sven")
	_, wb := sven.do("GET", "/api/desk/wallboard", "")
	var held []any
	for _, a := range wb["agents"].([]any) {
		if a := a.(map[string]any); a["agent"] == "anna" {
			held = a["held"].([]any)
		}
	}
	if len(held) != 1 || held[0].(map[string]any)["id"] != float64(taskID) || held[0].(map[string]any)["returnable"] != true {
		t.Fatalf("anna holds %v on the wallboard", held)
	}
	code, body := sven.do("POST", "/api/desk/wallboard/tasks/999/return", `{"agent":"anna"}`)
	expect(t, "an unknown task", code, body, 404, "unknown task 999")
	code, body = sven.do("POST", "/api/desk/wallboard/tasks/"+jsonNumber(taskID)+"/return", `{}`)
	expect(t, "no agent", code, body, 400, "agent: who holds the task, as the wallboard shows it")
	bert, bertEvents := availableAgent(t, env, "bert")
	if code, body := sven.do("POST", "/api/desk/wallboard/tasks/"+jsonNumber(taskID)+"/return", `{"agent":"anna"}`); code != 200 {
		t.Fatalf("return: %d %v", code, body)
	}
	if code, _ := anna.do("GET", "/api/desk/tasks/"+jsonNumber(taskID), ""); code != 404 {
		t.Errorf("anna still has the task: %d", code)
	}
	if offer := bertEvents.next(t, "offer"); offer["id"] != float64(taskID) {
		t.Fatalf("bert offered %v", offer)
	}
	if code, body := bert.do("POST", "/api/desk/offers/"+jsonNumber(taskID)+"/accept", ""); code != 200 {
		t.Fatalf("bert accepts: %d %v", code, body)
	}
	// A chat that has ended waits for anna's wrap-up, not for another.
	ctx := context.Background()
	c, _, err := env.journey.Identify(ctx, journey.KindEmail, "chat@example.org", "")
	if err != nil {
		t.Fatal(err)
	}
	// The router alone decides: the desk reads no chat session.
	chat := &store.Contact{CustomerID: c.ID, Channel: "message", Direction: "in", Queue: "support", Start: time.Now().UTC()}
	if err := env.store.AppendContact(ctx, chat); err != nil {
		t.Fatal(err)
	}
	if err := env.router.Enqueue(router.Task{ID: chat.ID, Channel: router.Message, Queue: "support", CustomerID: c.ID}); err != nil {
		t.Fatal(err)
	}
	annaEvents.next(t, "offer")
	if code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(chat.ID)+"/accept", ""); code != 200 {
		t.Fatalf("anna accepts the chat: %d %v", code, body)
	}
	if err := env.router.ConversationEnded(chat.ID); err != nil { // as the chat channel does
		t.Fatal(err)
	}
	code, body = sven.do("POST", "/api/desk/wallboard/tasks/"+jsonNumber(chat.ID)+"/return", `{"agent":"anna"}`)
	expect(t, "an ended chat", code, body, 409, "task is not in a state that allows this: task "+jsonNumber(chat.ID)+" (support, message, assigned): the chat has ended; its agent wraps it up")

	// A second click on the stale ↩ of anna's row: the mail is bert's now.
	code, body = sven.do("POST", "/api/desk/wallboard/tasks/"+jsonNumber(taskID)+"/return", `{"agent":"anna"}`)
	expect(t, "anna's stale button", code, body, 409, "task is not in a state that allows this: task "+jsonNumber(taskID)+" (support, email, assigned) is not anna's")
}

func agentURL(t testing.TB, base string) *url.URL {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// For a call the customer card must be on screen while the phone rings:
// the task detail is there from the offer on.
func TestDeskVoiceOfferShowsTheCaller(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	ctx := context.Background()
	c, _, err := env.journey.Identify(ctx, journey.KindPhone, "+49 30 1234567", "Erika Mustermann")
	if err != nil {
		t.Fatal(err)
	}
	c.ValueTier, c.Attributes = 3, map[string]string{"contract": "premium"}
	if err := env.store.PutCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	contact := &store.Contact{CustomerID: c.ID, Channel: "voice", Direction: "in", Queue: "support", Start: time.Now().UTC()}
	if err := env.store.AppendContact(ctx, contact); err != nil {
		t.Fatal(err)
	}
	if err := env.router.Enqueue(router.Task{ID: contact.ID, Channel: router.Voice, Queue: "support", CustomerID: c.ID, ValueTier: 3}); err != nil {
		t.Fatal(err)
	}
	if offer := events.next(t, "offer"); offer["channel"] != "voice" {
		t.Fatalf("offer %v", offer)
	}
	code, detail := anna.do("GET", "/api/desk/tasks/"+jsonNumber(contact.ID), "")
	if code != 200 || detail["task"].(map[string]any)["state"] != "offered" {
		t.Fatalf("detail while ringing: %d %v", code, detail)
	}
	cust := detail["customer"].(map[string]any)
	if cust["name"] != "Erika Mustermann" || cust["value_tier"] != 3.0 || cust["attributes"].(map[string]any)["contract"] != "premium" || cust["identities"].([]any)[0] != "phone:+49301234567" {
		t.Errorf("caller's card %v", cust)
	}
	if detail["thread"] != nil || detail["conversation"] != nil {
		t.Errorf("a call has no mail thread: %v", detail)
	}
	// The phone answers a call, not the desk.
	for _, action := range []string{"accept", "decline"} {
		code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(contact.ID)+"/"+action, "")
		expect(t, action+" a call on the desk", code, body, 409, "task "+jsonNumber(contact.ID)+" is a call: answer or refuse it on your phone")
	}
	if err := env.router.Accept(contact.ID, "anna"); err != nil { // as the voice channel does when anna answers
		t.Fatal(err)
	}
	events.next(t, "tasks")
	// A call is no mail: the reply composer refuses it, before it reads
	// what was sent.
	code, body := anna.do("POST", "/api/desk/tasks/"+jsonNumber(contact.ID)+"/reply", `{"text":"Hallo"}`)
	expect(t, "reply to a call", code, body, 409, "task "+jsonNumber(contact.ID)+" is a voice contact, not a mail conversation")
	code, body = anna.do("POST", "/api/desk/tasks/"+jsonNumber(contact.ID)+"/reply", `{"txt":`)
	expect(t, "a broken reply to a call", code, body, 409, "task "+jsonNumber(contact.ID)+" is a voice contact, not a mail conversation")

	// The caller is erased during the call: the call goes on, but the
	// card leaves anna's desk at once, and the call's end changes nothing.
	if _, err := env.store.EraseCustomer(ctx, c.ID, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	env.srv.ForgetTasks(env.router.EraseCustomer(c.ID))
	if e := events.next(t, "tasks"); e["id"] != float64(contact.ID) {
		t.Errorf("tasks event %v", e)
	}
	if _, body := anna.do("GET", "/api/desk/tasks", ""); len(body["tasks"].([]any)) != 0 {
		t.Errorf("tasks during the erased call: %v", body)
	}
	if err := env.router.End(contact.ID); err != nil { // anna hangs up
		t.Fatal(err)
	}
	if _, body := anna.do("GET", "/api/desk/tasks", ""); len(body["tasks"].([]any)) != 0 {
		t.Errorf("tasks after the erased call: %v", body)
	}
}

func TestDeskWallboardAndAdmin(t *testing.T) {
	env := startDesk(t)
	sven := newBrowser(t, env.base)
	sven.login("sven")
	board := openEvents(t, sven)
	code, wb := sven.do("GET", "/api/desk/wallboard", "")
	if code != 200 || wb["by_presence"].(map[string]any)["offline"] != 2.0 {
		t.Fatalf("wallboard: %d %v", code, wb)
	}
	newMailTask(t, env, "joe@example.org", "Hallo") // nobody is available: it waits
	for {
		wb := board.next(t, "wallboard")
		q := wb["queues"].([]any)[0].(map[string]any)
		if q["waiting"] == 1.0 {
			if q["last_15m"].(map[string]any)["service_level"] != nil {
				t.Errorf("service level with nothing answered: %v", q)
			}
			if q["service_level_target"] != 0.9 || q["service_level_threshold_seconds"] != 20.0 {
				t.Errorf("the queue's service-level goal: %v", q)
			}
			break
		}
	}

	anna := newBrowser(t, env.base)
	anna.login("anna")
	annaEvents := openEvents(t, anna)
	ada := newBrowser(t, env.base)
	ada.login("ada")
	code, adm := ada.do("GET", "/api/desk/admin", "")
	if code != 200 || len(adm["agents"].([]any)) != 2 || len(adm["queues"].([]any)) != 1 || len(adm["skills"].([]any)) != 2 {
		t.Fatalf("admin: %d %v", code, adm)
	}
	for _, tt := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/api/desk/admin/agents/anna/skills", `{"skills":{"cooking":3}}`, 400, `unknown skill "cooking" (known: [support billing])`},
		{"/api/desk/admin/agents/anna/skills", `{"skills":{"billing":9}}`, 400, "skill billing: proficiency 9 out of range 1–5"},
		{"/api/desk/admin/agents/zoe/skills", `{"skills":{"billing":1}}`, 404, `unknown agent "zoe"`},
		{"/api/desk/admin/agents/zoe/presence", `{"presence":"available"}`, 404, `unknown agent "zoe"`},
		{"/api/desk/admin/agents/anna/presence", `{"presence":"away"}`, 400, "away needs a reason, one of: break, lunch"},
	} {
		code, body := ada.do("PUT", tt.path, tt.body)
		expect(t, tt.path+" "+tt.body, code, body, tt.code, tt.msg)
	}
	// bert lacks nothing, but with only billing he no longer takes
	// support; anna made available by the admin gets the waiting task.
	if code, body := ada.do("PUT", "/api/desk/admin/agents/bert/skills", `{"skills":{"billing":4}}`); code != 200 {
		t.Fatalf("skills: %d %v", code, body)
	}
	if code, body := ada.do("PUT", "/api/desk/admin/agents/anna/presence", `{"presence":"available"}`); code != 200 || body["presence"] != "available" {
		t.Fatalf("presence: %d %v", code, body)
	}
	if p := annaEvents.next(t, "presence"); p["presence"] != "available" {
		t.Errorf("anna told %v", p)
	}
	_, adm = ada.do("GET", "/api/desk/admin", "")
	agents := adm["agents"].([]any)
	if b := agents[1].(map[string]any); b["id"] != "bert" || b["skills"].(map[string]any)["billing"] != 4.0 || b["skills"].(map[string]any)["support"] != nil {
		t.Errorf("bert %v", b)
	}
	if a := agents[0].(map[string]any); a["presence"] != "available" {
		t.Errorf("anna %v", a)
	}
	for _, a := range env.router.Agents() {
		if a.Agent == "anna" && a.Offered == 0 {
			t.Errorf("anna available, but the waiting task is not offered to her: %+v", a)
		}
	}

	// A reload without bert and with nina: the admin page shows the
	// router's agents, and bert can no longer be changed there.
	if err := env.router.SetAgent(router.AgentSpec{ID: "nina", Skills: map[string]int{"billing": 2}, Capacity: [3]int{1, 3, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := env.router.RemoveAgent("bert"); err != nil {
		t.Fatal(err)
	}
	_, adm = ada.do("GET", "/api/desk/admin", "")
	var ids []string
	for _, a := range adm["agents"].([]any) {
		ids = append(ids, a.(map[string]any)["id"].(string))
	}
	if !slices.Equal(ids, []string{"anna", "nina"}) {
		t.Errorf("agents on the admin page after the reload: %v", ids)
	}
	code, body := ada.do("PUT", "/api/desk/admin/agents/bert/presence", `{"presence":"available"}`)
	expect(t, "bert after the reload", code, body, 404, `unknown agent "bert"`)
	code, body = ada.do("PUT", "/api/desk/admin/agents/bert/skills", `{"skills":{"billing":1}}`)
	expect(t, "bert's skills after the reload", code, body, 404, `unknown agent "bert"`)
}

func TestDeskCustomerSearch(t *testing.T) {
	env := startDesk(t)
	ctx := context.Background()
	c, _, err := env.journey.Identify(ctx, journey.KindPhone, "030 1234567", "Jörg Müller")
	if err != nil {
		t.Fatal(err)
	}
	anna := newBrowser(t, env.base)
	anna.login("anna")
	for _, q := range []string{"m%C3%BCll", "%2B49301234567", "030%201234567", "%23" + jsonNumber(c.ID)} {
		code, body := anna.do("GET", "/api/desk/customers?q="+q, "")
		found := body["customers"].([]any)
		if code != 200 || len(found) != 1 || found[0].(map[string]any)["name"] != "Jörg Müller" {
			t.Errorf("q=%s: %d %v", q, code, body)
		}
	}
	code, body := anna.do("GET", "/api/desk/customers?q=x", "")
	expect(t, "short query", code, body, 400, "q: 2 to 100 characters")
	if code, body := anna.do("GET", "/api/desk/customers?q=nobody", ""); code != 200 || len(body["customers"].([]any)) != 0 {
		t.Errorf("nobody: %d %v", code, body)
	}
	code, body = anna.do("GET", "/api/desk/customers/"+jsonNumber(c.ID), "")
	if code != 200 || body["customer"].(map[string]any)["identities"].([]any)[0] != "phone:+49301234567" {
		t.Errorf("customer: %d %v", code, body)
	}
	code, body = anna.do("GET", "/api/desk/customers/999", "")
	expect(t, "unknown customer", code, body, 404, "customer 999: not found")
}

// TestDeskUnlinkIdentity: an agent takes a stranger's address from the
// customer of a task she has taken; the stranger's next mail is someone
// else's, the customer keeps the rest. A supervisor may for any customer;
// nobody on the desk takes a customer's only identity.
func TestDeskUnlinkIdentity(t *testing.T) {
	env := startDesk(t)
	ctx := context.Background()
	anna, events := availableAgent(t, env, "anna")
	task, joe := newMailTask(t, env, "joe@example.org", "Rechnung")
	events.next(t, "offer")
	eve, _, err := env.journey.Identify(ctx, journey.KindEmail, "eve@example.net", "Eve")
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range []struct {
		identity string
		customer uint64
	}{{"email:joe@exampel.org", joe}, {"email:a/b&c@example.org", joe}, {"email:eve.alt@example.net", eve.ID}} {
		if err := env.store.LinkIdentity(ctx, link.identity, link.customer); err != nil {
			t.Fatal(err)
		}
	}
	sven := newBrowser(t, env.base)
	sven.login("sven")
	noToken := newBrowser(t, env.base)
	noToken.login("bert")
	noToken.csrf = ""
	path := func(id uint64, identity string) string {
		return "/api/desk/customers/" + jsonNumber(id) + "/identities/" + url.PathEscape(identity)
	}
	check := func(who *browser, path string, code int, msg string) {
		t.Helper()
		got, body := who.do("DELETE", path, "")
		expect(t, path, got, body, code, msg)
	}
	check(anna, path(joe, "email:joe@exampel.org"), 403, "customer "+jsonNumber(joe)+" is not of a task you have taken") // offered, not taken
	if code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(task)+"/accept", ""); code != 200 {
		t.Fatalf("accept: %d %v", code, body)
	}
	check(noToken, path(joe, "email:joe@exampel.org"), 403, "missing or wrong X-CSRF-Token, or a request from another site: reload the page")
	check(anna, path(eve.ID, "email:eve.alt@example.net"), 403, "customer "+jsonNumber(eve.ID)+" is not of a task you have taken")
	check(anna, path(joe, "email:eve@example.net"), 404, "identity email:eve@example.net of customer "+jsonNumber(joe)+": not found")
	check(anna, path(joe, "fax:123"), 400, `not a usable identity: unknown kind "fax" (want phone, email or sip)`)
	check(anna, "/api/desk/customers/x/identities/email:joe@exampel.org", 400, `customer id "x": want a positive number`)
	// As written, and normalised; and one with characters a path escapes.
	for _, tc := range []struct{ written, identity string }{
		{"email:Joe@Exampel.ORG", "email:joe@exampel.org"},
		{"email:a/b&c@example.org", "email:a/b&c@example.org"},
	} {
		code, body := anna.do("DELETE", path(joe, tc.written), "")
		if code != 200 || body["identity"] != tc.identity || body["customer"] != float64(joe) {
			t.Fatalf("unlink %s: %d %v", tc.written, code, body)
		}
	}
	code, body := anna.do("GET", "/api/desk/customers/"+jsonNumber(joe), "")
	if ids := body["customer"].(map[string]any)["identities"].([]any); code != 200 || len(ids) != 1 || ids[0] != "email:joe@example.org" {
		t.Errorf("joe's card after the unlink: %d %v", code, body)
	}
	// His journey says who took them, newest first.
	var removed []string
	for _, e := range body["journey"].([]any) {
		if tp, ok := e.(map[string]any)["touchpoint"].(map[string]any); ok && tp["type"] == store.TouchpointIdentityRemoved {
			data := tp["data"].(map[string]any)
			removed = append(removed, data["identity"].(string)+" by "+data["by"].(string))
		}
	}
	if want := []string{"email:a/b&c@example.org by anna", "email:joe@exampel.org by anna"}; !slices.Equal(removed, want) {
		t.Errorf("joe's journey tells of the unlinks %q, want %q", removed, want)
	}
	stranger, created, err := env.journey.Identify(ctx, journey.KindEmail, "joe@exampel.org", "")
	if err != nil || !created || stranger.ID == joe || stranger.ID == eve.ID {
		t.Errorf("the stranger's next mail: customer %d (new %v, joe %d), %v", stranger.ID, created, joe, err)
	}
	check(anna, path(joe, "email:joe@exampel.org"), 404, "identity email:joe@exampel.org of customer "+jsonNumber(joe)+": not found")
	check(anna, path(joe, "email:joe@example.org"), 409, "email:joe@example.org is customer "+jsonNumber(joe)+"'s only identity: an admin takes it (dirigent customer unlink)")
	// A supervisor, for a customer of nobody's task.
	if code, body := sven.do("DELETE", path(eve.ID, "email:eve.alt@example.net"), ""); code != 200 {
		t.Errorf("the supervisor's unlink: %d %v", code, body)
	}
}

func TestDeskPages(t *testing.T) {
	env := startDesk(t)
	for _, tt := range []struct{ path, accept, lang string }{
		{"/", "de-DE,de;q=0.9,en;q=0.8", "de"}, {"/", "en-GB", "en"}, {"/", "fr", "en"}, {"/", "", "en"},
		{"/contacts/12", "de", "de"}, // a phone's link to a ringing call
	} {
		req, _ := http.NewRequest("GET", env.base+tt.path, nil)
		req.Header.Set("Accept-Language", tt.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), `<html lang="`+tt.lang+`">`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("Accept-Language %q: %d, want lang %s:\n%.200s", tt.accept, resp.StatusCode, tt.lang, page)
		}
	}
	for _, tt := range []struct {
		path, ctype string
		code        int
	}{{"/desk/app.js", "text/javascript; charset=utf-8", 200}, {"/desk/app.css", "text/css; charset=utf-8", 200}, {"/desk/index.html", "application/json; charset=utf-8", 404}, {"/desk/nope.js", "text/plain; charset=utf-8", 404}} {
		resp, err := http.Get(env.base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("%s: %d %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func FuzzDecodeBody(f *testing.F) {
	f.Add(`{"user":"anna","password":"x"}`)
	f.Add(`{"presence":"away","reason":"lunch"}`)
	f.Add(`{"code":"resolved","note":"ok"}`)
	f.Add(`{"skills":{"support":3}}`)
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, body string) {
		var login loginRequest
		if decodeBody(strings.NewReader(body), &login) == nil && len(body) > maxDeskBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		var skills skillsRequest
		_ = decodeBody(strings.NewReader(body), &skills)
		var wrap wrapUpRequest
		_ = decodeBody(strings.NewReader(body), &wrap)
	})
}

func FuzzPageLanguage(f *testing.F) {
	f.Add("de-DE,de;q=0.9,en;q=0.8")
	f.Add("*;q=0.1, fr")
	f.Add("de;q=NaN")
	f.Fuzz(func(t *testing.T, header string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", header)
		if l := pageLanguage(r); l != "de" && l != "en" {
			t.Fatalf("%q → %q", header, l)
		}
	})
}

// Stopping ends open event streams at once instead of letting them hold
// the drain for its whole timeout, and leaves no goroutine behind.
func TestDeskStopEndsEventStreams(t *testing.T) {
	env := newDesk(t, time.Hour)
	before := runtime.NumGoroutine() // the router and the store run on
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.srv.Run(ctx) }()
	sven := newBrowser(t, env.base)
	sven.login("sven")
	stream := openEvents(t, sven)
	stream.next(t, "wallboard")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still waits for the event stream (drain timeout 1 h)")
	}
	sven.client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after stopping, %d before", n, before)
	}
}

// A reply's delivery changing is told to the agent holding, or offered, a
// task of its conversation, and of no other.
func TestDeskDeliveryChanged(t *testing.T) {
	env := startDesk(t)
	anna, events := availableAgent(t, env, "anna")
	held, _ := newMailTask(t, env, "joe@example.org", "Rechnung")
	events.next(t, "offer")
	if code, body := anna.do("POST", "/api/desk/offers/"+jsonNumber(held)+"/accept", ""); code != 200 {
		t.Fatalf("accept: %d %v", code, body)
	}
	offered, _ := newMailTask(t, env, "eve@example.net", "Frage")
	events.next(t, "offer")
	convOf := func(id uint64) uint64 {
		c, err := env.store.Contact(id)
		if err != nil {
			t.Fatal(err)
		}
		return c.ConversationID
	}
	for _, task := range []uint64{held, offered} {
		env.srv.DeliveryChanged(convOf(task))
		env.srv.DeliveryChanged(convOf(task) + 100) // nobody's
		env.srv.events.publish(toUser("anna"), "done", map[string]uint64{})
		var got []string
		for e := range events.events {
			if e[0] == "done" {
				break
			}
			if e[0] == "delivery" {
				got = append(got, e[1])
			}
		}
		if want := fmt.Sprintf(`{"id":%d}`, task); len(got) != 1 || got[0] != want {
			t.Errorf("delivery events %v, want one, %s", got, want)
		}
	}
}
