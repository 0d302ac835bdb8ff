package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"dirigent/router"
	"dirigent/store"
)

// maxContactsPerUser bounds the phones one account may register.
const maxContactsPerUser = 10

// registrar keeps the agents' accounts and registered phones: in memory
// for ringing, and in the store so that a restart keeps them until they
// expire.
type registrar struct {
	c     *Channel
	mu    sync.Mutex
	users map[string]*User                   // SIP user → account; replaced whole by setUsers
	regs  map[string][]store.SIPRegistration // SIP user → contacts
}

func newRegistrar(c *Channel) (*registrar, error) {
	r := &registrar{c: c, users: accounts(c.cfg.Users), regs: map[string][]store.SIPRegistration{}}
	saved, err := c.deps.Store.SIPRegistrations()
	if err != nil {
		return nil, fmt.Errorf("sip: reading registrations: %w", err)
	}
	now := c.now()
	for user, regs := range saved {
		if r.users[user] == nil {
			continue // the account was removed from the configuration
		}
		regs = slices.DeleteFunc(regs, func(g store.SIPRegistration) bool { return !g.Expires.After(now) })
		if len(regs) > 0 {
			r.regs[user] = regs
		}
	}
	r.updateGauge(now)
	return r, nil
}

func accounts(users []User) map[string]*User {
	m := make(map[string]*User, len(users))
	for _, u := range users {
		m[u.User] = &u
	}
	return m
}

// password looks up passwords for authenticate, keeping the account it
// found in *found unless found is nil.
func (r *registrar) password(found **User) func(user string) (string, bool) {
	return func(user string) (string, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		u := r.users[user]
		if found != nil {
			*found = u
		}
		if u == nil {
			return "", false
		}
		return u.Password, true
	}
}

// agents are the agents that have an account.
func (r *registrar) agents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, u := range r.users {
		if !slices.Contains(ids, u.Agent) {
			ids = append(ids, u.Agent)
		}
	}
	return ids
}

// setUsers puts a reload's accounts in force. The phones registered to
// an account that is removed, given to another agent or has a new
// password are forgotten: they are rung no more, and must register again
// (with the new password) to be rung.
func (r *registrar) setUsers(ctx context.Context, users []User) {
	next := accounts(users)
	forgotten := map[string][]store.SIPRegistration{} // user → none
	agents := map[string]bool{}
	r.mu.Lock()
	for user, old := range r.users {
		if n := next[user]; n != nil && *n == *old {
			next[user] = old // the account authenticated REGISTERs in flight still bind
			continue
		}
		if len(r.regs[user]) > 0 {
			r.c.deps.Logger.Info("reload: the account's phones must register again", "user", user)
			forgotten[user] = nil
			agents[old.Agent] = true
			delete(r.regs, user)
		}
	}
	r.users = next
	r.updateGauge(r.c.now())
	if len(forgotten) > 0 { // under the lock, as bind and expire store
		if err := r.c.deps.Store.SetSIPRegistrations(ctx, forgotten); err != nil {
			r.c.deps.Logger.Error("forgetting the registrations of changed accounts", "err", err)
		}
	}
	r.mu.Unlock()
	for agent := range agents {
		r.presence(agent)
	}
}

// contacts returns the unexpired registered contacts of an agent's
// accounts.
func (r *registrar) contacts(agent string) []store.SIPRegistration {
	now := r.c.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.SIPRegistration
	for user, regs := range r.regs {
		if r.users[user].Agent != agent {
			continue
		}
		for _, g := range regs {
			if g.Expires.After(now) {
				out = append(out, g)
			}
		}
	}
	return out
}

func (r *registrar) updateGauge(now time.Time) {
	n := 0
	for _, regs := range r.regs {
		for _, g := range regs {
			if g.Expires.After(now) {
				n++
			}
		}
	}
	r.c.metrics.registrations.Set(float64(n))
}

// expire drops expired contacts, now and then, so the gauge and the
// store follow the phones that went away without unregistering.
func (r *registrar) expire(ctx context.Context) {
	now := r.c.now()
	changed := map[string][]store.SIPRegistration{}
	r.mu.Lock()
	for user, regs := range r.regs {
		kept := slices.DeleteFunc(slices.Clone(regs), func(g store.SIPRegistration) bool { return !g.Expires.After(now) })
		if len(kept) != len(regs) {
			changed[user] = kept
			if len(kept) == 0 {
				delete(r.regs, user)
			} else {
				r.regs[user] = kept
			}
		}
	}
	agents := map[string]bool{}
	for user := range changed {
		agents[r.users[user].Agent] = true
	}
	if len(changed) > 0 { // under the lock, so that a reload's forgetting is not undone
		if err := r.c.deps.Store.SetSIPRegistrations(ctx, changed); err != nil {
			r.c.deps.Logger.Error("storing expired registrations", "err", err)
		}
	}
	r.updateGauge(now)
	r.mu.Unlock()
	for agent := range agents {
		r.presence(agent)
	}
}

// presence follows an agent's phones when available_on_register is set:
// available (from offline) with a phone registered, offline without one.
// An agent who went away stays away.
func (r *registrar) presence(agent string) {
	if !r.c.cfg.AvailableOnRegister {
		return
	}
	has := len(r.contacts(agent)) > 0
	for _, a := range r.c.deps.Router.Agents() {
		if a.Agent != agent {
			continue
		}
		switch {
		case has && a.Presence == router.Offline:
			r.c.deps.Router.SetPresence(agent, router.Available, "")
		case !has && a.Presence == router.Available:
			r.c.deps.Router.SetPresence(agent, router.Offline, "")
		}
	}
}

// authenticate checks a request's digest credentials (header
// "Authorization", or "Proxy-Authorization" for trunks) and answers the
// challenge itself: it returns the user name when the request may go on,
// or "" after it has responded.
func (c *Channel) authenticate(req *sip.Request, tx sip.ServerTransaction, header string, password func(string) (string, bool)) (string, error) {
	var value string
	if h := req.GetHeader(header); h != nil {
		value = h.Value()
	}
	cr, err := parseCredentials(value)
	if err == nil {
		err = c.nonces.verify(cr, c.cfg.Realm, string(req.Method), password)
	}
	challengeName, code, reason := "WWW-Authenticate", sip.StatusUnauthorized, "Unauthorized"
	if header == "Proxy-Authorization" {
		challengeName, code, reason = "Proxy-Authenticate", sip.StatusProxyAuthRequired, "Proxy Authentication Required"
	}
	switch {
	case err == nil:
		return cr.Username, nil
	case errors.Is(err, errNoCredentials), errors.Is(err, errStaleNonce):
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		res.AppendHeader(sip.NewHeader(challengeName, c.nonces.challenge(c.cfg.Realm, errors.Is(err, errStaleNonce))))
		return "", respond(tx, res)
	case errors.Is(err, errBadDigest):
		// A nonce not (or no longer) ours is answered with a fresh
		// challenge; a wrong password too, but once the phone has tried
		// with a fresh nonce it is refused.
		if cr != nil {
			if ours, _ := c.nonces.check(cr.Nonce); !ours {
				res := sip.NewResponseFromRequest(req, code, reason, nil)
				res.AppendHeader(sip.NewHeader(challengeName, c.nonces.challenge(c.cfg.Realm, false)))
				return "", respond(tx, res)
			}
		}
		return "", respond(tx, sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (wrong credentials)", nil))
	default: // unknown user
		return "", respond(tx, sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (unknown user)", nil))
	}
}

func respond(tx sip.ServerTransaction, res *sip.Response) error {
	return tx.Respond(res)
}

// onRegister is the registrar: digest authentication, then the
// bindings of RFC 3261 section 10.3.
func (c *Channel) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r := c.registrar
	var account *User // as authenticated: bind refuses it once a reload changed it
	user, err := c.authenticate(req, tx, "Authorization", r.password(&account))
	if user == "" {
		result := "challenged"
		if err != nil {
			result = "error"
		} else if h := req.GetHeader("Authorization"); h != nil {
			result = "forbidden"
			if cr, perr := parseCredentials(h.Value()); perr == nil {
				if ours, stale := c.nonces.check(cr.Nonce); ours && stale {
					result = "stale"
				} else if !ours {
					result = "challenged"
				}
			}
		}
		c.metrics.registers.WithLabelValues(result).Inc()
		return
	}
	if to := req.To(); to == nil || to.Address.User != user {
		c.metrics.registers.WithLabelValues("forbidden").Inc()
		respond(tx, sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (To is not the authenticated user)", nil))
		return
	}
	res, err := r.bind(context.Background(), account, req)
	if err == nil {
		r.presence(account.Agent)
	}
	if err != nil {
		c.deps.Logger.Error("registration", "user", user, "err", err)
		c.metrics.registers.WithLabelValues("error").Inc()
		respond(tx, sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Error", nil))
		return
	}
	switch res.StatusCode {
	case sip.StatusOK:
		c.metrics.registers.WithLabelValues("ok").Inc()
	case sip.StatusUnauthorized:
		c.metrics.registers.WithLabelValues("challenged").Inc()
	default:
		c.metrics.registers.WithLabelValues("error").Inc()
	}
	respond(tx, res)
}

// bind applies a REGISTER's Contact headers to the account's bindings
// and returns the response listing the bindings now in force.
func (r *registrar) bind(ctx context.Context, account *User, req *sip.Request) (*sip.Response, error) {
	user := account.User
	now := r.c.now()
	defaultExpires := r.c.cfg.MaxExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Expires", nil), nil
		}
		defaultExpires = time.Duration(n) * time.Second
	}
	callID, cseq := "", uint32(0)
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if h := req.CSeq(); h != nil {
		cseq = h.SeqNo
	}
	var contacts []*sip.ContactHeader
	for _, h := range req.GetHeaders("Contact") {
		if ch, ok := h.(*sip.ContactHeader); ok {
			contacts = append(contacts, ch)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users[user] != account {
		// A reload changed the account meanwhile: the phone authenticates
		// again, against the account as it is now.
		res := sip.NewResponseFromRequest(req, sip.StatusUnauthorized, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", r.c.nonces.challenge(r.c.cfg.Realm, false)))
		return res, nil
	}
	regs := slices.Clone(r.regs[user])
	regs = slices.DeleteFunc(regs, func(g store.SIPRegistration) bool { return !g.Expires.After(now) })
	for _, ch := range contacts {
		if ch.Address.Wildcard {
			if len(contacts) != 1 || defaultExpires != 0 {
				return sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Wildcard Contact needs Expires: 0", nil), nil
			}
			regs = nil
			break
		}
		expires := defaultExpires
		if v, ok := ch.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad expires parameter", nil), nil
			}
			expires = time.Duration(n) * time.Second
		}
		if expires > 0 && expires < r.c.cfg.MinExpires {
			res := sip.NewResponseFromRequest(req, sip.StatusIntervalToBrief, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(int(r.c.cfg.MinExpires/time.Second))))
			return res, nil
		}
		expires = min(expires, r.c.cfg.MaxExpires)
		uri := ch.Address.String()
		i := slices.IndexFunc(regs, func(g store.SIPRegistration) bool { return g.Contact == uri })
		if i >= 0 && regs[i].CallID == callID && cseq <= regs[i].CSeq {
			continue // an old or repeated request: RFC 3261 10.3 step 7
		}
		if i >= 0 {
			regs = slices.Delete(regs, i, i+1)
		}
		if expires == 0 {
			continue
		}
		if len(regs) >= maxContactsPerUser {
			return sip.NewResponseFromRequest(req, sip.StatusForbidden, fmt.Sprintf("Forbidden (more than %d contacts)", maxContactsPerUser), nil), nil
		}
		regs = append(regs, store.SIPRegistration{
			Contact: uri, Source: req.Source(), Transport: req.Transport(),
			CallID: callID, CSeq: cseq, Expires: now.Add(expires).Truncate(time.Second),
		})
	}
	if len(contacts) > 0 {
		if err := r.c.deps.Store.SetSIPRegistrations(ctx, map[string][]store.SIPRegistration{user: regs}); err != nil {
			return nil, err
		}
		if len(regs) == 0 {
			delete(r.regs, user)
		} else {
			r.regs[user] = regs
		}
		r.updateGauge(now)
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	for _, g := range regs {
		var uri sip.Uri
		if err := sip.ParseUri(g.Contact, &uri); err != nil {
			continue
		}
		ch := &sip.ContactHeader{Address: uri}
		ch.Params.Add("expires", strconv.Itoa(int(g.Expires.Sub(now).Round(time.Second)/time.Second)))
		res.AppendHeader(ch)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	return res, nil
}
