package desk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dirigent/internal/testrun"
	"dirigent/store"
)

// storedSessions maps the users of the stored sessions to their roles.
func storedSessions(t *testing.T, st *store.Store) map[string][]string {
	t.Helper()
	all, err := st.DeskSessions()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, ds := range all {
		out[ds.User] = ds.Roles
	}
	return out
}

func sessionsGauge(t *testing.T, env *deskEnv) string {
	t.Helper()
	resp, err := http.Get(env.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "dirigent_desk_sessions "); ok {
			return v
		}
	}
	t.Fatal("/metrics has no dirigent_desk_sessions")
	return ""
}

// TestDeskSessionsSurviveARestart: a desk built again on the same store,
// as the daemon's after a restart, knows the browsers' cookies and CSRF
// tokens; a logout before the restart stays done; the store holds no
// secret.
func TestDeskSessionsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	st := openStore(t, path)
	setPasswords(t, st, time.Now(), "anna", "bert", "sven", "ada")
	first := newDeskOn(t, st, time.Second, nil)
	stop := testrun.Start(t, first.srv.Run)
	anna, sven, bert := newBrowser(t, first.base), newBrowser(t, first.base), newBrowser(t, first.base)
	anna.login("anna")
	sven.login("sven")
	bert.login("bert")
	bertsCookie := cookieOf(t, bert)
	if code, _ := bert.do("POST", "/api/desk/logout", ""); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if got := storedSessions(t, st); len(got) != 2 || !slices.Equal(got["anna"], []string{"agent"}) || !slices.Equal(got["sven"], []string{"supervisor"}) {
		t.Fatalf("stored before the restart: %v", got)
	}
	// Stored by the hashes of the cookies; the cookies are nowhere in
	// the file.
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, cookie := range []string{cookieOf(t, anna), cookieOf(t, sven), bertsCookie} {
		if bytes.Contains(file, []byte(cookie)) {
			t.Errorf("the store file holds the cookie %q", cookie)
		}
		if cookie != bertsCookie { // logged out
			h := sha256.Sum256([]byte(cookie))
			want = append(want, string(h[:]))
		}
	}
	for _, ds := range must(t, st.DeskSessions) {
		got = append(got, string(ds.Hash))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("stored hashes %x, want the cookies' SHA-256 %x", got, want)
	}
	stop()

	second := newDeskOn(t, st, time.Second, nil)
	testrun.Start(t, second.srv.Run)
	for _, b := range []*browser{anna, sven, bert} {
		b.base = second.base // cookies are the host's, whatever the port
	}
	code, me := anna.do("GET", "/api/desk/me", "")
	if code != 200 || me["user"] != "anna" || me["csrf_token"] != anna.csrf {
		t.Fatalf("anna after the restart: %d %v (csrf %q)", code, me, anna.csrf)
	}
	// The CSRF token the page holds still works for changes.
	code, body := anna.do("PUT", "/api/desk/me/presence", `{"presence":"available"}`)
	expect(t, "anna's change after the restart", code, body, 200, "")
	if code, _ := sven.do("GET", "/api/desk/wallboard", ""); code != 200 {
		t.Errorf("sven's wallboard after the restart: %d", code)
	}
	bert.client.Jar.SetCookies(agentURL(t, second.base), []*http.Cookie{{Name: sessionCookie, Value: bertsCookie}})
	code, body = bert.do("GET", "/api/desk/me", "")
	expect(t, "bert, logged out before the restart", code, body, 401, "session expired or unknown: log in again")
	if g := sessionsGauge(t, second); g != "2" {
		t.Errorf("dirigent_desk_sessions %s after the restart, want 2", g)
	}
	// Logging out after the restart deletes the record.
	if code, _ := sven.do("POST", "/api/desk/logout", ""); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if got := storedSessions(t, st); len(got) != 1 || got["anna"] == nil {
		t.Errorf("stored after sven's logout: %v", got)
	}
	if g := sessionsGauge(t, second); g != "1" {
		t.Errorf("dirigent_desk_sessions %s after a logout, want 1", g)
	}
}

// must is what get returns, failing the test on an error.
func must[T any](t *testing.T, get func() (T, error)) T {
	t.Helper()
	v, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func cookieOf(t *testing.T, b *browser) string {
	t.Helper()
	for _, c := range b.client.Jar.Cookies(agentURL(t, b.base)) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// TestDeskSessionExpiryAcrossRestarts: last use is written in batches,
// not on every request; after a restart a session ends by its written
// last use plus the timeout, and the sweep deletes what expired.
func TestDeskSessionExpiryAcrossRestarts(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
	t0 := time.Now().Truncate(time.Second)
	setPasswords(t, st, t0.Add(-time.Hour), "anna", "bert", "sven", "ada")
	clock := testrun.NewClock(t0)
	withClock := func(d *Deps) { d.Now, d.SessionTimeout = clock.Now, time.Hour }
	lastUsed := func(user string) time.Time {
		t.Helper()
		for _, ds := range must(t, st.DeskSessions) {
			if ds.User == user {
				return ds.LastUsed
			}
		}
		return time.Time{}
	}

	// The first daemon is killed later: it serves without Run, whose
	// housekeeping would write last uses once a minute of real time and
	// whose stop would write them too.
	first := newDeskOn(t, st, time.Second, withClock)
	go first.srv.srv.Serve(first.srv.ln)
	t.Cleanup(func() { first.srv.srv.Close() })
	anna, sven := newBrowser(t, first.base), newBrowser(t, first.base)
	anna.login("anna")
	sven.login("sven")
	clock.Add(10 * time.Minute)
	for range 20 {
		if code, _ := anna.do("GET", "/api/desk/me", ""); code != 200 {
			t.Fatalf("me: %d", code)
		}
	}
	if got := lastUsed("anna"); !got.Equal(t0) {
		t.Errorf("last use written on a request: %s", got)
	}
	first.srv.keepSessions(context.Background(), clock.Now())
	if got := lastUsed("anna"); !got.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("last use after writing: %s, want t0+10m", got.Sub(t0))
	}
	clock.Add(5 * time.Minute)
	anna.do("GET", "/api/desk/me", "") // not written: the daemon is killed before

	// 69 minutes after the written last use, anna's session lives on;
	// sven's (used at t0) has expired by 10 minutes.
	clock.Add(54 * time.Minute)
	second := newDeskOn(t, st, time.Second, withClock)
	stop := testrun.Start(t, second.srv.Run)
	anna.base, sven.base = second.base, second.base
	if code, me := anna.do("GET", "/api/desk/me", ""); code != 200 || me["user"] != "anna" {
		t.Fatalf("anna 69 minutes after her written last use: %d %v", code, me)
	}
	code, body := sven.do("GET", "/api/desk/me", "")
	expect(t, "sven idle for 79 minutes", code, body, 401, "session expired or unknown: log in again")
	if got := storedSessions(t, st); len(got) != 1 || got["anna"] == nil {
		t.Errorf("stored after the restart: %v", got)
	}
	// A stop writes the last use: a planned restart costs nothing.
	stop()
	if got := lastUsed("anna"); !got.Equal(t0.Add(69 * time.Minute)) {
		t.Errorf("last use after the stop: t0+%s, want t0+69m", got.Sub(t0))
	}

	// Idle for over an hour at the next start: gone, from the store too.
	clock.Add(time.Hour + time.Second)
	third := newDeskOn(t, st, time.Second, withClock)
	testrun.Start(t, third.srv.Run)
	anna.base = third.base
	code, body = anna.do("GET", "/api/desk/me", "")
	expect(t, "anna idle for over an hour across a restart", code, body, 401, "session expired or unknown: log in again")
	if got := storedSessions(t, st); len(got) != 0 {
		t.Errorf("stored after expiry at start: %v", got)
	}

	// While running, the sweep ends idle sessions in memory and store.
	bert := newBrowser(t, third.base)
	bert.login("bert")
	clock.Add(30 * time.Minute)
	third.srv.keepSessions(context.Background(), clock.Now())
	if got := storedSessions(t, st); len(got) != 1 {
		t.Errorf("stored before the timeout: %v", got)
	}
	clock.Add(30*time.Minute + time.Second)
	third.srv.keepSessions(context.Background(), clock.Now())
	if got := storedSessions(t, st); len(got) != 0 {
		t.Errorf("stored after the sweep: %v", got)
	}
	if g := sessionsGauge(t, third); g != "0" {
		t.Errorf("dirigent_desk_sessions %s after the sweep, want 0", g)
	}
}

// TestDeskSessionsFollowTheConfiguration: after a restart a session has
// the roles its user has now; one whose user is no login any more, or
// whose password changed since, is refused and deleted.
func TestDeskSessionsFollowTheConfiguration(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
	setPasswords(t, st, time.Now().Add(-time.Minute), "anna", "bert", "sven", "ada")
	first := newDeskOn(t, st, time.Second, nil)
	stop := testrun.Start(t, first.srv.Run)
	users := map[string]*browser{}
	for _, u := range []string{"anna", "bert", "sven", "ada"} {
		users[u] = newBrowser(t, first.base)
		users[u].login(u)
	}
	stop()

	// bert left; ada is no admin any more, only a supervisor; sven
	// became an admin too; anna's password was reset.
	setPasswords(t, st, time.Now(), "anna")
	second := newDeskOn(t, st, time.Second, func(d *Deps) {
		d.Logins = Logins{Agents: []string{"anna"}, Supervisors: []string{"sven", "ada"}, Admins: []string{"sven"}}
	})
	testrun.Start(t, second.srv.Run)
	for _, b := range users {
		b.base = second.base
	}
	for _, tt := range []struct {
		user  string
		code  int
		roles []any
	}{
		{"anna", 401, nil},
		{"bert", 401, nil},
		{"sven", 200, []any{"supervisor", "admin"}},
		{"ada", 200, []any{"supervisor"}},
	} {
		code, me := users[tt.user].do("GET", "/api/desk/me", "")
		if code != tt.code || tt.roles != nil && !slices.Equal(me["roles"].([]any), tt.roles) {
			t.Errorf("%s after the restart: %d %v, want %d %v", tt.user, code, me, tt.code, tt.roles)
		}
	}
	code, body := users["ada"].do("GET", "/api/desk/admin", "")
	expect(t, "ada's admin view after losing the role", code, body, 403, "this needs the role admin")
	got := storedSessions(t, st)
	if len(got) != 2 || !slices.Equal(got["sven"], []string{"supervisor", "admin"}) || !slices.Equal(got["ada"], []string{"supervisor"}) {
		t.Errorf("stored after the restart: %v", got)
	}
}

// A login is answered only once its session is stored, and a logout only
// once it is deleted.
func TestDeskSessionStoredBeforeAnswered(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
	ss := newSessions(st, time.Hour)
	secret, _, err := ss.create(context.Background(), "anna", []string{RoleAgent}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, _, err := ss.create(context.Background(), "bert", []string{RoleAgent}, time.Now()); err == nil || ss.count() != 1 {
		t.Errorf("create without a store: %v, %d sessions", err, ss.count())
	}
	if err := ss.remove(context.Background(), secret); err == nil || ss.lookup(secret, time.Now()) == nil {
		t.Errorf("remove without a store: %v; the session must stay as long as its record does", err)
	}
}

// A login with the old password that was still being checked when the
// password was set gets no session; one that began after it does.
func TestLoginRacingANewPasswordIsRefused(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "d.db"))
	ss := newSessions(st, time.Hour)
	ctx := context.Background()
	set := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	if _, err := ss.endUser(ctx, "anna", set); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.create(ctx, "anna", []string{"agent"}, set.Add(-100*time.Millisecond)); err != errPasswordChanged {
		t.Fatalf("a login begun before the new password: %v, want %v", err, errPasswordChanged)
	}
	if stored := storedSessions(t, st); len(stored) != 0 || ss.count() != 0 {
		t.Errorf("the refused login left sessions: %v in the store, %d in memory", stored, ss.count())
	}
	if _, _, err := ss.create(ctx, "anna", []string{"agent"}, set.Add(time.Millisecond)); err != nil {
		t.Errorf("a login after the new password: %v", err)
	}
	if _, _, err := ss.create(ctx, "bert", []string{"agent"}, set.Add(-time.Second)); err != nil {
		t.Errorf("another user's login: %v", err)
	}
}

// A reload's logins apply at once: a new agent logs in, someone removed
// or given other roles loses their sessions, everyone else keeps theirs.
func TestSetLogins(t *testing.T) {
	env := startDesk(t)
	setPasswords(t, env.store, time.Now(), "nina")
	anna, bert, sven, ada := newBrowser(t, env.base), newBrowser(t, env.base), newBrowser(t, env.base), newBrowser(t, env.base)
	anna.login("anna")
	bert.login("bert")
	sven.login("sven")
	ada.login("ada")
	nina := newBrowser(t, env.base)
	code, body := nina.do("POST", "/api/desk/login", `{"user":"nina","password":"`+testPassword+`"}`)
	expect(t, "nina before the reload", code, body, 401, "wrong user name or password")

	// bert leaves, sven becomes an admin too, nina joins.
	ended, err := env.srv.SetLogins(context.Background(), Logins{Agents: []string{"anna", "nina"}, Supervisors: []string{"sven"}, Admins: []string{"ada", "sven"}})
	if err != nil || !slices.Equal(ended, []string{"bert", "sven"}) {
		t.Errorf("sessions ended for %v (%v), want bert and sven", ended, err)
	}
	if me := nina.login("nina"); !slices.Equal(toStrings(me["roles"]), []string{"agent"}) {
		t.Errorf("nina's roles %v", me["roles"])
	}
	for name, b := range map[string]*browser{"anna": anna, "ada": ada} {
		if code, me := b.do("GET", "/api/desk/me", ""); code != 200 || me["user"] != name {
			t.Errorf("%s after the reload: %d %v", name, code, me)
		}
	}
	for name, b := range map[string]*browser{"bert": bert, "sven": sven} {
		code, body := b.do("GET", "/api/desk/me", "")
		expect(t, name+" after the reload", code, body, 401, "session expired or unknown: log in again")
	}
	code, body = bert.do("POST", "/api/desk/login", `{"user":"bert","password":"`+testPassword+`"}`)
	expect(t, "bert, no longer a login", code, body, 401, "wrong user name or password")
	if me := sven.login("sven"); !slices.Equal(toStrings(me["roles"]), []string{"supervisor", "admin"}) {
		t.Errorf("sven's roles after logging in again: %v", me["roles"])
	}
	if got := storedSessions(t, env.store); got["bert"] != nil {
		t.Errorf("bert's session still stored: %v", got)
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
