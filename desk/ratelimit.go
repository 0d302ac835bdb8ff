package desk

import (
	"sync"
	"time"
)

// Login rate limits: failed logins within the window, per client address
// and per user name. Guessing is slowed for one name from many addresses
// and for many names from one address.
const (
	loginWindow        = 15 * time.Minute
	maxFailuresPerIP   = 20
	maxFailuresPerUser = 5
	maxTrackedFailures = 100000 // bounds the limiter's memory under a spray of names
)

type failures struct {
	count int
	since time.Time
}

// loginLimiter counts failed logins.
type loginLimiter struct {
	perIP, perUser int // failures allowed within the window
	mu             sync.Mutex
	byIP           map[string]*failures
	byUser         map[string]*failures
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{perIP: maxFailuresPerIP, perUser: maxFailuresPerUser, byIP: map[string]*failures{}, byUser: map[string]*failures{}}
}

// blocked says whether a login from ip for user must wait, and how long.
func (l *loginLimiter) blocked(ip, user string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, c := range []struct {
		f   *failures
		max int
	}{{l.byIP[ip], l.perIP}, {l.byUser[user], l.perUser}} {
		if c.f == nil || now.Sub(c.f.since) >= loginWindow || c.f.count < c.max {
			continue
		}
		wait = max(wait, c.f.since.Add(loginWindow).Sub(now))
	}
	return wait, wait > 0
}

// failed counts a failed login.
func (l *loginLimiter) failed(ip, user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byIP)+len(l.byUser) >= maxTrackedFailures {
		l.prune(now)
	}
	// Still full: a spray of names within one window. The addresses
	// are still counted, and those are what such a spray comes from.
	full := len(l.byIP)+len(l.byUser) >= maxTrackedFailures
	for _, m := range []struct {
		m   map[string]*failures
		key string
	}{{l.byIP, ip}, {l.byUser, user}} {
		f := m.m[m.key]
		if f == nil && full && m.key == user {
			continue
		}
		if f == nil || now.Sub(f.since) >= loginWindow {
			f = &failures{since: now}
			m.m[m.key] = f
		}
		f.count++
	}
}

// succeeded forgets the user's failures (not the address's: one right
// password must not open the door to guessing others).
func (l *loginLimiter) succeeded(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byUser, user)
}

// prune drops windows that have passed.
func (l *loginLimiter) prune(now time.Time) {
	for _, m := range []map[string]*failures{l.byIP, l.byUser} {
		for k, f := range m {
			if now.Sub(f.since) >= loginWindow {
				delete(m, k)
			}
		}
	}
}

// pruneNow is prune under the lock, for the desk's housekeeping.
func (l *loginLimiter) pruneNow(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
}
