package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"dirigent/store"
)

// Roles of a desk login.
const (
	RoleAgent      = "agent"      // takes tasks: an [[agents]] id
	RoleSupervisor = "supervisor" // sees the wallboard
	RoleAdmin      = "admin"      // the wallboard, and changes agents' skills and presence
)

// Logins says who may log in to the desk and with which roles; the
// configuration holds it (agents' ids, desk.supervisors, desk.admins),
// while the passwords live in the store.
type Logins struct {
	Agents      []string
	Supervisors []string
	Admins      []string
}

// names lists every login once, in order.
func (l Logins) names() []string {
	return slices.Compact(slices.Sorted(slices.Values(slices.Concat(l.Agents, l.Supervisors, l.Admins))))
}

// Roles returns name's roles, none for a name that is no login.
func (l Logins) Roles(name string) []string {
	var roles []string
	if slices.Contains(l.Agents, name) {
		roles = append(roles, RoleAgent)
	}
	if slices.Contains(l.Supervisors, name) {
		roles = append(roles, RoleSupervisor)
	}
	if slices.Contains(l.Admins, name) {
		roles = append(roles, RoleAdmin)
	}
	return roles
}

// Password rules: bcrypt reads at most 72 bytes, and a desk password
// guards customer data.
const (
	MinPasswordLength = 10
	maxPasswordBytes  = 72
)

// HashPassword checks a new password against the rules and hashes it
// with bcrypt.
func HashPassword(password string) ([]byte, error) {
	switch {
	case len([]rune(password)) < MinPasswordLength:
		return nil, fmt.Errorf("password too short: at least %d characters", MinPasswordLength)
	case len(password) > maxPasswordBytes:
		return nil, fmt.Errorf("password too long: at most %d bytes", maxPasswordBytes)
	}
	return bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
}

// PasswordStore keeps the desk logins' password hashes.
type PasswordStore interface {
	SetDeskPassword(ctx context.Context, name string, hash []byte, at time.Time) error
	DeskUser(name string) (*store.DeskUser, error)
}

// SetPassword stores a bcrypt hash for login name, which must be a login
// of logins: a password for a name that cannot log in would be a trap.
func SetPassword(ctx context.Context, ps PasswordStore, logins Logins, name string, hash []byte) error {
	if len(logins.Roles(name)) == 0 {
		return fmt.Errorf("%w: %q is no desk login: add it to [[agents]], desk.supervisors or desk.admins first", ErrRefused, name)
	}
	if _, err := bcrypt.Cost(hash); err != nil {
		return fmt.Errorf("%w: not a bcrypt password hash: %v", ErrRefused, err)
	}
	return ps.SetDeskPassword(ctx, name, hash, time.Now())
}

// dummyHash is compared against when a login is unknown or has no
// password, so that the answer takes as long as for a wrong password and
// does not tell which names exist. It is made at the first login, not at
// start: every admin command would pay for it otherwise.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("dirigent-no-such-user"), bcrypt.DefaultCost)
	return h
})

// ErrRefused marks a password change refused for what was asked (not a
// login, not a bcrypt hash), as opposed to a failing store.
var ErrRefused = errors.New("refused")

// errBadLogin is the one answer to every failed login.
var errBadLogin = errors.New("wrong user name or password")

// checkLogin returns name's roles when password is right.
func checkLogin(ps PasswordStore, logins Logins, name, password string) ([]string, error) {
	roles := logins.Roles(name)
	hash := dummyHash()
	if len(roles) > 0 {
		u, err := ps.DeskUser(name)
		switch {
		case err == nil:
			hash = u.PasswordHash
		case errors.Is(err, store.ErrNotFound):
			roles = nil
		default:
			return nil, err
		}
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || len(roles) == 0 {
		return nil, errBadLogin
	}
	return roles, nil
}
