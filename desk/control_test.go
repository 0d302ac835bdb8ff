package desk

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"dirigent/internal/testrun"
	"dirigent/store"
)

// The control socket takes a login's bcrypt hash (dirigent passwd).
func TestControlSetsDeskPasswords(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "d.db"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sock := filepath.Join(dir, "control.sock")
	var logins atomic.Pointer[Logins] // the desk's, which a reload changes
	logins.Store(&Logins{Agents: []string{"anna"}})
	c, err := NewControl(sock, ControlDeps{Logger: logger, Store: st, Passwords: st, Logins: func() Logins { return *logins.Load() }, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, c.Run)
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	put := func(user, body string) (int, map[string]string) {
		req, _ := http.NewRequest("PUT", "http://control/desk-users/"+user+"/password", strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]string
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		return resp.StatusCode, out
	}
	hash, err := HashPassword("ein langes passwort")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, body string
		code       int
		msg        string
	}{
		{"mallory", `{"password_hash":"` + string(hash) + `"}`, 400, `"mallory" is no desk login: add it to [[agents]], desk.supervisors or desk.admins first`},
		{"anna", `{"password_hash":"secret"}`, 400, "not a bcrypt password hash: crypto/bcrypt: hashedSecret too short to be a bcrypted password"},
		{"anna", `{"password":"secret"}`, 400, `body is not valid JSON for this request: json: unknown field "password"`},
	} {
		code, body := put(tt.user, tt.body)
		if code != tt.code || body["error"] != tt.msg {
			t.Errorf("%s %s: %d %v, want %d %q", tt.user, tt.body, code, body, tt.code, tt.msg)
		}
	}
	if code, body := put("anna", `{"password_hash":"`+string(hash)+`"}`); code != 200 || body["status"] != "password set" {
		t.Fatalf("set: %d %v", code, body)
	}
	u, err := st.DeskUser("anna")
	if err != nil || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("ein langes passwort")) != nil {
		t.Errorf("stored %v %v", u, err)
	}
	// A reload makes mallory a login, and anna none.
	logins.Store(&Logins{Agents: []string{"mallory"}})
	if code, body := put("mallory", `{"password_hash":"`+string(hash)+`"}`); code != 200 {
		t.Errorf("mallory after the reload: %d %v", code, body)
	}
	if code, body := put("anna", `{"password_hash":"`+string(hash)+`"}`); code != 400 {
		t.Errorf("anna after the reload: %d %v", code, body)
	}
}

func TestHashPasswordRules(t *testing.T) {
	for _, tt := range []struct{ pw, err string }{
		{"kurz", "password too short: at least 10 characters"},
		{"äöüäöüäöüä", ""}, // ten characters, twenty bytes
		{strings.Repeat("x", 73), "password too long: at most 72 bytes"},
	} {
		_, err := HashPassword(tt.pw)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("%q: %q, want %q", tt.pw, got, tt.err)
		}
	}
}
