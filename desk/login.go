package desk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// authed lets a request through only with a live desk session having one
// of roles (any role when none are named); a change (not GET) also needs
// the session's CSRF token and no foreign Origin.
func (s *Server) authed(roles []string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		sess := s.sessions.lookup(c.Value, s.now())
		if sess == nil {
			writeError(w, http.StatusUnauthorized, "session expired or unknown: log in again")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !checkCSRF(r, sess) {
			writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token, or a request from another site: reload the page")
			return
		}
		if len(roles) > 0 && !sess.has(roles...) {
			writeError(w, http.StatusForbidden, "this needs the role "+strings.Join(roles, " or "))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	}
}

// meAnswer is who is logged in, and what the pages offer them.
type meAnswer struct {
	User        string   `json:"user"`
	Roles       []string `json:"roles"`
	CSRFToken   string   `json:"csrf_token"`
	Presence    string   `json:"presence,omitempty"` // agents only
	Reason      string   `json:"reason,omitempty"`
	AwayReasons []string `json:"away_reasons"`
	WrapCodes   []string `json:"wrap_codes"`
	// ReplyMaxBytes is the largest reply the mail server takes, files
	// included; ReplyMaxFiles and ReplyMaxFileBytes bound a reply's files
	// on the desk. The page says so before it sends.
	ReplyMaxBytes     int `json:"reply_max_bytes,omitempty"` // 0: no mail
	ReplyMaxFiles     int `json:"reply_max_files"`
	ReplyMaxFileBytes int `json:"reply_max_file_bytes"`
}

func (s *Server) me(sess *session) meAnswer {
	m := meAnswer{User: sess.user, Roles: sess.roles, CSRFToken: sess.csrf, AwayReasons: s.deps.AwayReasons, WrapCodes: s.deps.WrapCodes,
		ReplyMaxFiles: maxReplyFiles, ReplyMaxFileBytes: maxReplyFileBytes}
	if s.deps.Mailer != nil {
		m.ReplyMaxBytes = s.deps.Mailer.MaxReplyBytes()
	}
	if sess.has(RoleAgent) {
		for _, a := range s.deps.Router.Agents() {
			if a.Agent == sess.user {
				m.Presence, m.Reason = a.Presence.String(), a.Reason
			}
		}
	}
	return m
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// login is POST /api/desk/login.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "login from another site refused")
		return
	}
	var req loginRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.User == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "user and password are required")
		return
	}
	ip, now := s.deps.TrustedProxies.Of(r), s.now()
	if wait, blocked := s.limiter.blocked(ip, req.User, now); blocked {
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed logins: try again in %d minutes", int(wait.Minutes())+1))
		return
	}
	roles, err := checkLogin(s.deps.Store, s.Logins(), req.User, req.Password)
	if errors.Is(err, errBadLogin) {
		s.limiter.failed(ip, req.User, now)
		s.metrics.logins.WithLabelValues("refused").Inc()
		s.deps.Logger.Warn("desk login refused", "user", req.User, "remote", ip)
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.limiter.succeeded(req.User)
	secret, sess, err := s.sessions.create(r.Context(), req.User, roles, now)
	if errors.Is(err, errPasswordChanged) {
		s.metrics.logins.WithLabelValues("refused").Inc()
		writeError(w, http.StatusUnauthorized, errPasswordChanged.Error())
		return
	}
	if err != nil {
		s.deps.Logger.Error("desk login not stored", "user", req.User, "err", err)
		writeError(w, http.StatusInternalServerError, "login not completed: "+err.Error())
		return
	}
	setSessionCookie(w, r, secret, 0)
	s.metrics.logins.WithLabelValues("ok").Inc()
	s.deps.Logger.Info("desk login", "user", req.User, "roles", roles, "remote", ip)
	writeJSON(w, http.StatusOK, s.me(sess))
}

// logout is POST /api/desk/logout.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "logout from another site refused")
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.sessions.remove(r.Context(), c.Value); err != nil {
			s.deps.Logger.Error("desk logout not stored", "err", err)
			writeError(w, http.StatusInternalServerError, "logout not completed: "+err.Error())
			return
		}
	}
	setSessionCookie(w, r, "", -1)
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

func (s *Server) getMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.me(sessionOf(r)))
}
