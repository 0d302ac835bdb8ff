package desk

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// sessionCookie holds a desk session's secret. The server keeps only
// its SHA-256, so a memory dump or a log line of the map reveals no
// usable cookie. Sessions live in memory: a restart logs everyone out.
const sessionCookie = "dirigent_session"

type session struct {
	user     string
	roles    []string
	csrf     string // sent by the page in X-CSRF-Token on every change
	lastSeen time.Time
}

func (s *session) has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(s.roles, r) {
			return true
		}
	}
	return false
}

// sessions are the logged-in desk users.
type sessions struct {
	mu      sync.Mutex
	byHash  map[[32]byte]*session
	timeout time.Duration
}

func newSessions(timeout time.Duration) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, timeout: timeout}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its secret.
func (ss *sessions) create(user string, roles []string, now time.Time) (string, *session) {
	secret := randomToken()
	s := &session{user: user, roles: roles, csrf: randomToken(), lastSeen: now}
	ss.mu.Lock()
	ss.byHash[sha256.Sum256([]byte(secret))] = s
	ss.mu.Unlock()
	return secret, s
}

// lookup finds the live session of secret and marks it used.
func (ss *sessions) lookup(secret string, now time.Time) *session {
	h := sha256.Sum256([]byte(secret))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byHash[h]
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > ss.timeout {
		delete(ss.byHash, h)
		return nil
	}
	s.lastSeen = now
	return s
}

func (ss *sessions) remove(secret string) {
	ss.mu.Lock()
	delete(ss.byHash, sha256.Sum256([]byte(secret)))
	ss.mu.Unlock()
}

// expire drops sessions idle longer than the timeout.
func (ss *sessions) expire(now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for h, s := range ss.byHash {
		if now.Sub(s.lastSeen) > ss.timeout {
			delete(ss.byHash, h)
		}
	}
}

func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byHash)
}

// secure says whether the browser reached us over TLS, directly or
// through a proxy that says so; only then may the cookie demand it.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, secret string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// sameOrigin refuses a request whose Origin header (sent by browsers on
// every cross-site POST) names another site than the one it reached.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser, or a same-origin GET
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// clientIP is the address a login is counted against.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type ctxKey struct{}

// sessionOf is the session requireSession found.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

// checkCSRF: a change must come from our page: same origin, and the
// session's token in X-CSRF-Token, which another site cannot read.
func checkCSRF(r *http.Request, s *session) bool {
	if !sameOrigin(r) {
		return false
	}
	got := r.Header.Get("X-CSRF-Token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
