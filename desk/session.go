package desk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"dirigent/store"
)

// sessionCookie holds a desk session's secret. Neither memory nor the
// store keeps the secret, only its SHA-256, so a memory dump, a log line
// or a backup reveals no usable cookie.
const sessionCookie = "dirigent_session"

type session struct {
	user  string
	roles []string
	csrf  string // sent by the page in X-CSRF-Token on every change

	// Guarded by sessions.mu: the last request, and how far of it the
	// store knows.
	lastSeen  time.Time
	persisted time.Time
	// ended is closed when the session ends (logout, expiry, a new
	// password), so that its open event streams end with it.
	ended chan struct{}
}

func newSession(user string, roles []string, csrf string, lastSeen time.Time) *session {
	return &session{user: user, roles: roles, csrf: csrf, lastSeen: lastSeen, persisted: lastSeen, ended: make(chan struct{})}
}

func (s *session) has(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(s.roles, r) {
			return true
		}
	}
	return false
}

// sessions are the logged-in desk users. Each is in the store too, from
// before its login is answered until its logout or expiry, so that a
// restart logs nobody out. Its last use is written in batches (persist),
// not on every request.
type sessions struct {
	mu      sync.Mutex
	byHash  map[[32]byte]*session
	timeout time.Duration
	store   *store.Store
	// cutoff: a login of the user that began before this time gets no
	// session, as its password was set since (see endUser).
	cutoff map[string]time.Time
}

// errPasswordChanged refuses a login that checked a password set anew
// while it ran.
var errPasswordChanged = errors.New("the password or the roles changed during the login: log in again")

func newSessions(st *store.Store, timeout time.Duration) *sessions {
	return &sessions{byHash: map[[32]byte]*session{}, timeout: timeout, store: st, cutoff: map[string]time.Time{}}
}

// persistInterval is how often sessions' last uses are written: once a
// minute, or ten times per timeout when that is shorter. A crash loses
// at most that much of a session's idle time (the session ends that much
// earlier after the restart, never later), in exchange for one small
// write a minute for all sessions instead of one per request.
func persistInterval(timeout time.Duration) time.Duration {
	return min(time.Minute, timeout/10)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its secret once the store holds
// it: a login is answered only with a session that outlives a restart.
func (ss *sessions) create(ctx context.Context, user string, roles []string, now time.Time) (string, *session, error) {
	secret := randomToken()
	h := sha256.Sum256([]byte(secret))
	s := newSession(user, roles, randomToken(), now)
	err := ss.store.PutDeskSession(ctx, &store.DeskSession{Hash: h[:], User: user, Roles: roles, CSRF: s.csrf, Created: now, LastUsed: now})
	if err != nil {
		return "", nil, fmt.Errorf("storing the session: %w", err)
	}
	ss.mu.Lock()
	if c, ok := ss.cutoff[user]; ok && !now.After(c) {
		ss.mu.Unlock()
		if err := ss.store.DeleteDeskSessions(context.WithoutCancel(ctx), h[:]); err != nil {
			// The next start refuses it: its password is newer.
			return "", nil, fmt.Errorf("%w (deleting its session: %v)", errPasswordChanged, err)
		}
		return "", nil, errPasswordChanged
	}
	ss.byHash[h] = s
	ss.mu.Unlock()
	return secret, s, nil
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
		ss.drop(h) // its record goes with the next expire
		return nil
	}
	s.lastSeen = now
	return s
}

// remove ends the session of secret, in the store first: a logout that
// is answered stays done after a restart.
func (ss *sessions) remove(ctx context.Context, secret string) error {
	h := sha256.Sum256([]byte(secret))
	if err := ss.store.DeleteDeskSessions(ctx, h[:]); err != nil {
		return fmt.Errorf("deleting the session: %w", err)
	}
	ss.mu.Lock()
	ss.drop(h)
	ss.mu.Unlock()
	return nil
}

// drop ends the session of h in memory; the caller holds mu.
func (ss *sessions) drop(h [32]byte) {
	if s := ss.byHash[h]; s != nil {
		close(s.ended)
		delete(ss.byHash, h)
	}
}

// endUser ends every session of user as of at, when its password has
// just been set: whoever knew the old one is out at once rather than at
// the next restart, and so is a login with the old password still being
// checked (create refuses it). The sessions leave memory first; their
// records follow, and should that fail, the next start refuses them as
// older than the password.
func (ss *sessions) endUser(ctx context.Context, user string, at time.Time) (int, error) {
	var hashes [][]byte
	ss.mu.Lock()
	ss.cutoff[user] = at
	for h, s := range ss.byHash {
		if s.user == user {
			hashes = append(hashes, bytes.Clone(h[:]))
			ss.drop(h)
		}
	}
	ss.mu.Unlock()
	if err := ss.store.DeleteDeskSessions(ctx, hashes...); err != nil {
		return len(hashes), fmt.Errorf("deleting the sessions of %s: %w", user, err)
	}
	return len(hashes), nil
}

// persist writes the last use of every session used since its last
// write, in one transaction; nothing when there is none.
func (ss *sessions) persist(ctx context.Context) error {
	var uses []store.DeskSessionUse
	ss.mu.Lock()
	for h, s := range ss.byHash {
		if s.lastSeen.After(s.persisted) {
			uses = append(uses, store.DeskSessionUse{Hash: bytes.Clone(h[:]), At: s.lastSeen})
		}
	}
	ss.mu.Unlock()
	if len(uses) == 0 {
		return nil
	}
	if err := ss.store.TouchDeskSessions(ctx, uses); err != nil {
		return fmt.Errorf("writing desk sessions' last use: %w", err)
	}
	ss.mu.Lock()
	for _, u := range uses {
		if s := ss.byHash[[32]byte(u.Hash)]; s != nil && u.At.After(s.persisted) {
			s.persisted = u.At
		}
	}
	ss.mu.Unlock()
	return nil
}

// expire ends sessions idle longer than the timeout, in memory and in
// the store. keepSessions runs it right after persist, so that the
// store's last uses are the ones in memory, and not at all when persist
// failed, lest it delete the record of a session in use.
func (ss *sessions) expire(ctx context.Context, now time.Time) (int, error) {
	ss.mu.Lock()
	for h, s := range ss.byHash {
		if now.Sub(s.lastSeen) > ss.timeout {
			ss.drop(h)
		}
	}
	ss.mu.Unlock()
	n, err := ss.store.DeleteIdleDeskSessions(ctx, now.Add(-ss.timeout))
	if err != nil {
		return n, fmt.Errorf("deleting expired desk sessions: %w", err)
	}
	return n, nil
}

func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byHash)
}

// restore takes back the stored sessions after a restart, as far as the
// configuration and the passwords allow them now: a session expired by
// its stored last use, of a name that is no login any more, without a
// password or from before the password's last change is deleted; the
// others get the roles the name has now, which may be fewer or more than
// at their login, as a new login would.
func (ss *sessions) restore(ctx context.Context, logins Logins, now time.Time, logger *slog.Logger) error {
	stored, err := ss.store.DeskSessions()
	if err != nil {
		return fmt.Errorf("reading desk sessions: %w", err)
	}
	var drop [][]byte
	expired := 0
	for _, ds := range stored {
		refuse := func(why string) {
			logger.Info("desk session not restored", "user", ds.User, "reason", why)
			drop = append(drop, ds.Hash)
		}
		if len(ds.Hash) != sha256.Size || ds.User == "" {
			refuse("unreadable record")
			continue
		}
		if now.Sub(ds.LastUsed) > ss.timeout {
			expired++
			drop = append(drop, ds.Hash)
			continue
		}
		roles := logins.Roles(ds.User)
		if len(roles) == 0 {
			refuse("no longer a desk login")
			continue
		}
		u, err := ss.store.DeskUser(ds.User)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refuse("no password")
			continue
		case err != nil:
			return fmt.Errorf("desk session of %s: %w", ds.User, err)
		case u.Changed.After(ds.Created):
			refuse("password changed since the login")
			continue
		}
		if !slices.Equal(roles, ds.Roles) {
			logger.Info("desk session's roles follow the configuration", "user", ds.User, "was", ds.Roles, "now", roles)
			ds.Roles = roles
			if err := ss.store.PutDeskSession(ctx, &ds); err != nil {
				return fmt.Errorf("desk session of %s: %w", ds.User, err)
			}
		}
		ss.byHash[[32]byte(ds.Hash)] = newSession(ds.User, roles, ds.CSRF, ds.LastUsed)
	}
	if err := ss.store.DeleteDeskSessions(ctx, drop...); err != nil {
		return fmt.Errorf("deleting desk sessions not restored: %w", err)
	}
	if len(stored) > 0 {
		logger.Info("desk sessions restored", "sessions", len(ss.byHash), "expired", expired, "refused", len(drop)-expired)
	}
	return nil
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
