package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
)

// chatClient is a customer's browser connection to the daemon's chat.
type chatClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialChat(t *testing.T, addr string) *chatClient {
	t.Helper()
	return dialChatWith(t, addr, nil)
}

// dialChatWith opens a chat with these request headers.
func dialChatWith(t *testing.T, addr string, header http.Header) *chatClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &chatClient{t: t, ws: ws}
}

func (c *chatClient) send(frame map[string]any) {
	c.t.Helper()
	data, _ := json.Marshal(frame)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.t.Fatal(err)
	}
}

// until reads frames up to the first of type typ (10 s against a hang).
func (c *chatClient) until(typ string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatal(err)
		}
		if f["type"] == typ {
			return f
		}
	}
}

// TestChatThroughTheDaemon: the daemon serves the widget on chat.listen;
// a customer's chat becomes a waiting task, is told nobody is there,
// survives a restart of the daemon (the browser resumes with its token
// and the task is queued again), and its transcript arrives by mail at
// the site's mail server (postfix's smtp-sink) when the customer ends it.
func TestChatThroughTheDaemon(t *testing.T) {
	sinkDir := deskSinkDir(t)
	sink := testpeer.SMTPSink(t, "", sinkDir)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nname = \"Anna\"\nskills = { support = 3 }\n")
	setInConfig(t, cfgPath, "mail", "smarthost = \""+sink+"\"\nsmarthost_tls = \"none\"\n")
	d := startDaemon(t, cfgPath)
	if d.chat == "" || d.chat == "off" {
		t.Fatalf("chat address %q", d.chat)
	}
	if code, js := get(t, "http://"+d.chat+"/widget.js"); code != 200 || !strings.Contains(js, "dg-chat") {
		t.Fatalf("widget.js: %d", code)
	}
	if code, _ := get(t, "http://"+d.chat+"/metrics"); code != 404 {
		t.Errorf("the customer-facing listener serves /metrics: %d", code)
	}

	c := dialChat(t, d.chat)
	c.send(map[string]any{"type": "hello", "lang": "de", "name": "Joe", "email": "joe@example.org"})
	token := c.until("welcome")["session"].(string)
	if n := c.until("notice"); n["code"] != "nobody" {
		t.Fatalf("notice %v", n)
	}
	c.send(map[string]any{"type": "message", "id": "m1", "text": "Hallo aus dem Test"})
	if ack := c.until("message"); ack["id"] != "m1" {
		t.Fatalf("ack %v", ack)
	}
	_, metrics := get(t, d.desk+"/metrics")
	for _, want := range []string{
		`dirigent_chat_messages_total{direction="in"} 1`,
		`dirigent_chat_sessions_open 1`,
		`dirigent_router_tasks_waiting{queue="support"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d = startDaemon(t, cfgPath)
	c = dialChat(t, d.chat)
	c.send(map[string]any{"type": "hello", "lang": "de", "session": token, "last_seq": 0})
	if w := c.until("welcome"); w["resumed"] != true || w["session"] != token {
		t.Fatalf("after the restart: %v", w)
	}
	if m := c.until("message"); m["text"] != "Hallo aus dem Test" || m["id"] != "m1" {
		t.Fatalf("history after the restart: %v", m)
	}
	_, metrics = get(t, d.desk+"/metrics")
	if !strings.Contains(metrics, `dirigent_router_tasks_waiting{queue="support"} 1`) {
		t.Error("the chat's task is not queued again after the restart")
	}
	c.send(map[string]any{"type": "transcript", "email": "joe@example.org"})
	c.until("notice")
	c.send(map[string]any{"type": "end"})
	if n := c.until("notice"); n["code"] != "ended" {
		t.Fatalf("end: %v", n)
	}
	msg := sunk(t, sinkDir)
	for _, want := range []string{"To: <joe@example.org>", "Subject: Ihr Chat mit uns vom ", "Joe: Hallo aus dem Test"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the transcript at the sink lacks %q:\n%s", want, msg)
		}
	}
}

// TestChatBehindTrustedProxy: with chat.trusted_proxies the daemon's
// chat counts customers by the address the proxy forwards.
func TestChatBehindTrustedProxy(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	setInConfig(t, cfgPath, "chat", "max_sessions_per_ip = 1\ntrusted_proxies = [\"127.0.0.1\"]\n")
	d := startDaemon(t, cfgPath)
	for _, from := range []string{"203.0.113.1", "203.0.113.2"} {
		c := dialChatWith(t, d.chat, http.Header{"X-Forwarded-For": {from}})
		c.send(map[string]any{"type": "hello", "lang": "de"})
		c.until("welcome")
	}
	c := dialChatWith(t, d.chat, http.Header{"X-Forwarded-For": {"203.0.113.1"}})
	if e := c.until("error"); e["code"] != "sessions" {
		t.Fatalf("a second chat from 203.0.113.1: %v", e)
	}
}

// TestEraseCustomerWithOpenChat: erasing a customer whose chat is open
// and waiting ends it in the customer's browser, cancels its task and
// leaves nothing of them in the export.
func TestEraseCustomerWithOpenChat(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nskills = { support = 3 }\n")
	d := startDaemon(t, cfgPath)
	c := dialChat(t, d.chat)
	c.send(map[string]any{"type": "hello", "lang": "de", "name": "Joe", "email": "joe@example.org"})
	c.until("welcome")
	c.send(map[string]any{"type": "message", "id": "m1", "text": "Bitte löschen Sie meine Daten."})
	c.until("message")
	exp, err := dirigentCmd(t, nil, "customer", "export", "--config", cfgPath, "1").Output()
	if err != nil || !strings.Contains(string(exp), "joe@example.org") || !strings.Contains(string(exp), "Bitte löschen Sie meine Daten.") {
		t.Fatalf("export before the erasure: %v\n%s", err, exp)
	}
	out, err := dirigentCmd(t, nil, "customer", "erase", "--config", cfgPath, "1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"chat_sessions":1`) {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if n := c.until("notice"); n["code"] != "ended" {
		t.Fatalf("the browser was told %v", n)
	}
	_, metrics := get(t, d.desk+"/metrics")
	for _, want := range []string{
		`dirigent_chat_sessions_open 0`,
		`dirigent_router_tasks_waiting{queue="support"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "dirigent_chat_sessions_open", "dirigent_router_tasks_waiting"))
		}
	}
	if out, err := dirigentCmd(t, nil, "customer", "export", "--config", cfgPath, "1").CombinedOutput(); err == nil {
		t.Fatalf("export after the erasure:\n%s", out)
	}
}

// takeChat: the agent accepts the chat offered to them; it returns the
// task's id and what the customer's browser is told of the agent.
func takeChat(t *testing.T, agent *deskClient, c *chatClient) (string, map[string]any) {
	t.Helper()
	id := acceptOffered(t, agent)
	return id, c.until("agent_joined")
}

// acceptOffered waits for the first task on the agent's desk, an offer,
// and accepts it; it returns the task's id.
func acceptOffered(t *testing.T, agent *deskClient) string {
	t.Helper()
	var tasks struct {
		Tasks []struct {
			ID uint64 `json:"id"`
		} `json:"tasks"`
	}
	testrun.Eventually(t, 10*time.Second, "an offer", func() bool {
		agent.do(t, http.MethodGet, "/api/desk/tasks", nil, &tasks)
		return len(tasks.Tasks) > 0
	})
	id := strconv.FormatUint(tasks.Tasks[0].ID, 10)
	agent.do(t, http.MethodPost, "/api/desk/offers/"+id+"/accept", nil, nil)
	return id
}

// TestReloadRenamesAgentInChats: a name changed by a reload is what the
// next customer sees, without a restart.
func TestReloadRenamesAgentInChats(t *testing.T) {
	d, cfgPath := deskDaemon(t, "", "", "")
	writeFile(t, cfgPath, strings.Replace(mustRead(t, cfgPath), "name = \"Anna\"\n", "name = \"Anna Adler\"\n", 1))
	d.reload(t)
	anna := loginDesk(t, d.desk, "anna")
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	c := dialChat(t, d.chat)
	c.send(map[string]any{"type": "hello", "lang": "de", "name": "Joe"})
	c.until("welcome")
	c.send(map[string]any{"type": "message", "id": "m1", "text": "Hallo"})
	c.until("message")
	if _, joined := takeChat(t, anna, c); joined["name"] != "Anna Adler" {
		t.Errorf("agent_joined %v", joined)
	}
}

// TestEraseCustomerWhileAnAgentHasTheChat: erasing a customer whose chat
// anna has taken ends it in the customer's browser, takes the task off
// anna's desk and frees her at once (no wrap-up for a customer who no
// longer exists), without logging an error.
func TestEraseCustomerWhileAnAgentHasTheChat(t *testing.T) {
	d, cfgPath := deskDaemon(t, "", "", "")
	anna := loginDesk(t, d.desk, "anna")
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	sven := loginDesk(t, d.desk, "sven")
	c := dialChat(t, d.chat)
	c.send(map[string]any{"type": "hello", "lang": "de", "name": "Joe", "email": "joe@example.org"})
	c.until("welcome")
	c.send(map[string]any{"type": "message", "id": "m1", "text": "Bitte löschen Sie meine Daten."})
	c.until("message")
	id, _ := takeChat(t, anna, c)
	annaBusy := func() bool {
		var wb struct {
			Agents []struct {
				Agent string `json:"agent"`
				Busy  bool   `json:"busy"`
			} `json:"agents"`
		}
		sven.do(t, http.MethodGet, "/api/desk/wallboard", nil, &wb)
		return len(wb.Agents) == 1 && wb.Agents[0].Busy
	}
	if !annaBusy() {
		t.Fatal("anna is not busy with the chat")
	}

	out, err := dirigentCmd(t, nil, "customer", "erase", "--config", cfgPath, "1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"open_tasks":1`) {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if n := c.until("notice"); n["code"] != "ended" {
		t.Fatalf("the browser was told %v", n)
	}
	var tasks struct {
		Tasks []any `json:"tasks"`
	}
	anna.do(t, http.MethodGet, "/api/desk/tasks", nil, &tasks)
	if len(tasks.Tasks) != 0 {
		t.Errorf("anna's desk after the erasure: %+v", tasks.Tasks)
	}
	if annaBusy() {
		t.Error("anna is still busy (or wrapping up) after the erasure")
	}
	if code, answer := anna.try(t, http.MethodGet, "/api/desk/tasks/"+id, nil); code != http.StatusNotFound {
		t.Errorf("the erased task's detail: %d %s", code, answer)
	}
	// Everything the daemon logs from now on, to its stop, is read.
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, line := range d.errorLines {
		t.Errorf("logged: %v", line)
	}
}
