package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// TestDeskSessionSurvivesRestart: an agent logged in to the desk is
// still logged in, with the same CSRF token, after the daemon is stopped
// and started again, and after it is killed: the login was answered only
// once its session was stored. A logout before a restart stays done.
func TestDeskSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nskills = { support = 1 }\n")
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "anna"); status != 0 {
		t.Fatalf("passwd: %d %s", status, out)
	}
	d := startDaemon(t, cfgPath)
	anna := loginDesk(t, d.desk, "anna")
	presence := "offline"
	me := func(what string, wantCode int) {
		t.Helper()
		code, body := anna.try(t, http.MethodGet, "/api/desk/me", nil)
		if code != wantCode {
			t.Fatalf("%s: %d %s, want %d", what, code, body, wantCode)
		}
		if code != 200 {
			return
		}
		var m struct {
			User      string `json:"user"`
			CSRFToken string `json:"csrf_token"`
			Presence  string `json:"presence"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.User != "anna" || m.CSRFToken != anna.csrf || m.Presence != presence {
			t.Errorf("%s: %s (csrf %q), %v", what, body, anna.csrf, err)
		}
	}
	restart := func(sig syscall.Signal) {
		t.Helper()
		d.stop(t, sig)
		d = startDaemon(t, cfgPath)
		anna.base = d.desk
	}

	restart(syscall.SIGTERM)
	me("after a restart", 200)
	// The page's CSRF token still makes changes.
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	if _, metrics := get(t, d.desk+"/metrics"); !strings.Contains(metrics, "dirigent_desk_sessions 1\n") {
		t.Error("/metrics does not count the restored session")
	}

	// A planned restart keeps anna available.
	presence = "available"
	restart(syscall.SIGTERM)
	me("after a planned restart while available", 200)

	// After a crash agents start offline, logged in or not (README, Desk).
	restart(syscall.SIGKILL)
	presence = "offline"
	me("after a crash", 200)

	// The browser forgets the cookie at logout; a copy of it must not
	// work after a restart either.
	u, err := url.Parse(d.desk)
	if err != nil {
		t.Fatal(err)
	}
	cookies := anna.http.Jar.Cookies(u)
	anna.do(t, http.MethodPost, "/api/desk/logout", nil, nil)
	restart(syscall.SIGTERM)
	anna.http.Jar.SetCookies(u, cookies)
	me("after logout and a restart", 401)
}

// TestReloadAppliesDeskLogins: a reload's agents log in to the desk at
// once (their password set through the running daemon), and a removed
// agent's session ends, they can log in no more and are routed no more,
// without a restart.
func TestReloadAppliesDeskLogins(t *testing.T) {
	dir := t.TempDir()
	agents := func(ids ...string) string {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString("[[agents]]\nid = \"" + id + "\"\nskills = { support = 1 }\n")
		}
		return b.String()
	}
	cfgPath := writeConfig(t, dir, agents("anna", "bert"))
	d := startDaemon(t, cfgPath)
	for _, user := range []string{"anna", "bert"} {
		if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, user); status != 0 {
			t.Fatalf("passwd %s: %d %s", user, status, out)
		}
	}
	anna, bert := loginDesk(t, d.desk, "anna"), loginDesk(t, d.desk, "bert")
	bert.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "nina"); status == 0 {
		t.Fatalf("passwd nina before the reload: %d %s", status, out)
	}

	writeConfig(t, dir, agents("anna", "nina"))
	d.reload(t)
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "nina"); status != 0 {
		t.Fatalf("passwd nina after the reload: %d %s", status, out)
	}
	if code := deskLogin(t, d.desk, "nina", deskPassword); code != 200 {
		t.Errorf("nina's login after the reload: %d", code)
	}
	if code, body := anna.try(t, http.MethodGet, "/api/desk/me", nil); code != 200 {
		t.Errorf("anna after the reload: %d %s", code, body)
	}
	if code, body := bert.try(t, http.MethodGet, "/api/desk/me", nil); code != 401 {
		t.Errorf("bert's session after he was removed: %d %s", code, body)
	}
	if code := deskLogin(t, d.desk, "bert", deskPassword); code != 401 {
		t.Errorf("bert's login after he was removed: %d", code)
	}
	// bert, available before, is no longer routed at all.
	if _, metrics := get(t, d.desk+"/metrics"); !strings.Contains(metrics, `dirigent_router_agents{presence="offline"} 2`) ||
		!strings.Contains(metrics, `dirigent_router_agents{presence="available"} 0`) {
		t.Error("/metrics: want anna and nina offline, and bert not counted")
	}
}

// TestReloadAppliesQueueSettings: a reload puts changed queue and routing
// settings in force without a restart (metrics and the admin page show
// them); a change to the queues themselves waits for the restart, says
// so at every reload, and takes the settings of that file with it.
func TestReloadAppliesQueueSettings(t *testing.T) {
	dir := t.TempDir()
	agent := "[[agents]]\nid = \"anna\"\nskills = { support = 1 }\n"
	cfgPath := writeConfig(t, dir, agent)
	setInConfig(t, cfgPath, "desk", "admins = [\"ada\"]\n")
	d := startDaemon(t, cfgPath)
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "ada"); status != 0 {
		t.Fatalf("passwd ada: %d %s", status, out)
	}
	ada := loginDesk(t, d.desk, "ada")
	goal := func() string {
		_, metrics := get(t, d.desk+"/metrics")
		var lines []string
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, `dirigent_router_service_level_t`) {
				lines = append(lines, l)
			}
		}
		var admin struct {
			Queues []struct{ Name, Strategy string }
		}
		ada.do(t, http.MethodGet, "/api/desk/admin", nil, &admin)
		for _, q := range admin.Queues {
			lines = append(lines, q.Name+" "+q.Strategy)
		}
		return strings.Join(lines, "\n")
	}
	want := "dirigent_router_service_level_target_ratio{queue=\"support\"} 0.8\ndirigent_router_service_level_threshold_seconds{queue=\"support\"} 20\nsupport longest-idle"
	if got := goal(); got != want {
		t.Fatalf("before the reload:\n%s\nwant\n%s", got, want)
	}

	// [routing] changes too, without a warning (what they do: the router's
	// SetSettings tests).
	settings := "service_level_target = 0.95\nservice_level_threshold = \"30s\"\nstrategy = \"round-robin\"\n[routing]\noffer_timeout = \"45s\"\ntier_weight = 7\n"
	writeConfig(t, dir, settings+agent)
	setInConfig(t, cfgPath, "desk", "admins = [\"ada\"]\n")
	if warned := d.reload(t); len(warned) != 0 {
		t.Errorf("the reload warned: %v", warned)
	}
	want = "dirigent_router_service_level_target_ratio{queue=\"support\"} 0.95\ndirigent_router_service_level_threshold_seconds{queue=\"support\"} 30\nsupport round-robin"
	if got := goal(); got != want {
		t.Fatalf("after the reload:\n%s\nwant\n%s", got, want)
	}

	// A new queue, overflowed into: nothing of this file's routing
	// applies, at this reload or the next.
	writeConfig(t, dir, "service_level_target = 0.5\nmax_wait = \"5m\"\noverflow_queue = \"billing\"\n[[queues]]\nname = \"billing\"\nskills = { support = 2 }\n"+agent)
	setInConfig(t, cfgPath, "desk", "admins = [\"ada\"]\n")
	for range 2 {
		warned := d.reload(t)
		if len(warned) != 1 || warned[0]["msg"] != "reload: skills, queues and routing take effect at the next restart" ||
			warned[0]["why"] != "needs a restart: the queues (added, removed or reordered) changed" {
			t.Errorf("the reload warned: %v", warned)
		}
		if got := goal(); got != want {
			t.Errorf("after a reload that adds a queue:\n%s\nwant\n%s", got, want)
		}
	}
}

// TestReloadKeepsSkillsForTheRestart: a reload that changes skills
// applies them at the next restart only, also when the same file is
// reloaded again: the router is never handed an agent with a skill it
// does not know.
func TestReloadKeepsSkillsForTheRestart(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nskills = { support = 3 }\n")
	d := startDaemon(t, cfgPath)
	changed := strings.Replace(mustRead(t, cfgPath), `skills = ["support"]`, `skills = ["support", "billing"]`, 1)
	changed = strings.Replace(changed, "skills = { support = 3 }", "skills = { support = 3, billing = 2 }", 1)
	writeFile(t, cfgPath, changed)
	for range 2 {
		warned := d.reload(t)
		if len(warned) != 1 || warned[0]["msg"] != "reload: skills, queues and routing take effect at the next restart" || warned[0]["why"] != "needs a restart: skills changed" {
			t.Errorf("the reload warned: %v", warned)
		}
	}
}

// TestDeskBehindTrustedProxy: behind a reverse proxy listed in
// desk.trusted_proxies, failed logins are counted for the address the
// proxy forwards, not for the proxy (which would lock every agent out
// together), and an X-Forwarded-For the client wrote itself changes
// nothing. The proxy is net/http/httputil's, connecting from 127.0.0.3;
// the clients come from 127.0.0.2 and 127.0.0.4.
func TestDeskBehindTrustedProxy(t *testing.T) {
	cfgPath := writeConfig(t, t.TempDir(), "")
	setInConfig(t, cfgPath, "desk", "trusted_proxies = [\"127.0.0.3\"]\n")
	d := startDaemon(t, cfgPath)
	target, err := url.Parse(d.desk)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}).DialContext}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	from := func(ip byte) *http.Client {
		return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}).DialContext}}
	}
	login := func(c *http.Client, user, spoofed string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, front.URL+"/api/desk/login", strings.NewReader(`{"user":"`+user+`","password":"falsch-falsch"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if spoofed != "" {
			req.Header.Set("X-Forwarded-For", spoofed)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	guesser, agent := from(2), from(4)
	// Each guess claims another address; all count for 127.0.0.2.
	for i := range 20 {
		if code := login(guesser, fmt.Sprintf("x%d", i), fmt.Sprintf("198.51.100.%d", i)); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := login(guesser, "x20", "198.51.100.20"); code != http.StatusTooManyRequests {
		t.Errorf("the 21st guess from 127.0.0.2: %d, want 429", code)
	}
	if code := login(agent, "anna", ""); code != http.StatusUnauthorized {
		t.Errorf("a login from 127.0.0.4 behind the same proxy: %d, want 401 (not locked out)", code)
	}
	if line := d.waitLog(t, "desk login refused"); line["remote"] != "127.0.0.2" {
		t.Errorf("the failed login is logged from %v", line["remote"])
	}
}
