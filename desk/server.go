package desk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"dirigent/internal/clientaddr"
	"dirigent/internal/serverlog"
	"dirigent/journey"
	"dirigent/store"
)

// Deps are what the desk needs from the rest of the daemon.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // served on /metrics; desk registers its own metrics here
	// DrainTimeout bounds how long Run waits for open requests once its
	// context ends.
	DrainTimeout time.Duration
	Store        *store.Store
	Journey      *journey.Journey
	// APITokens admit other systems to /api/touchpoints and journeys.
	APITokens []APIToken

	// The agent desktop and wallboard.
	Router Router
	// Mailer sends replies; nil answers replies with 503.
	Mailer Mailer
	// Chats is the message channel's agent side; nil when it is off.
	Chats Chats
	// Logins are who may log in at the start; SetLogins replaces them.
	Logins Logins
	// AwayReasons and WrapCodes are what agents choose from.
	AwayReasons []string
	WrapCodes   []string
	// SessionTimeout ends a desk session idle this long; 12 h when zero.
	SessionTimeout time.Duration
	// TrustedProxies are the reverse proxies in front of the desk: behind
	// them, failed logins are counted per address their X-Forwarded-For
	// names.
	TrustedProxies clientaddr.Proxies
	// TLS, when set, has the desk speak HTTPS only.
	TLS *tls.Config
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is the public HTTP server.
type Server struct {
	deps    Deps
	ln      net.Listener
	srv     *http.Server
	ready   atomic.Pointer[string] // nil when ready, else why not
	metrics *metrics

	logins   atomic.Pointer[Logins] // in force: Deps.Logins, then SetLogins's
	sessions *sessions
	limiter  *loginLimiter
	events   *eventHub
	desk     *desktop
	// stopping is closed when the server shuts down, ending event streams
	// that would otherwise hold the drain for its whole timeout.
	stopping chan struct{}
	stopOnce sync.Once
	// uploads holds a place for each reply with files being taken in
	// (maxUploads); uploadWait is how long one waits for a place.
	uploads    chan struct{}
	uploadWait time.Duration
}

// New validates deps and binds the listener, so that the daemon can tell
// systemd it is ready only once every port is really taken.
func New(listen string, deps Deps) (*Server, error) {
	if deps.Logger == nil || deps.Registry == nil || deps.Store == nil || deps.Journey == nil || deps.Router == nil {
		return nil, errors.New("desk: Logger, Registry, Store, Journey and Router are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.SessionTimeout <= 0 {
		deps.SessionTimeout = 12 * time.Hour
	}
	s := &Server{deps: deps, sessions: newSessions(deps.Store, deps.SessionTimeout), limiter: newLoginLimiter(), desk: newDesktop(), stopping: make(chan struct{}),
		uploads: make(chan struct{}, maxUploads), uploadWait: 30 * time.Second}
	s.logins.Store(&deps.Logins)
	// Before the metrics: the sessions gauge counts the restored ones.
	if err := s.sessions.restore(context.Background(), deps.Logins, s.now(), deps.Logger); err != nil {
		return nil, fmt.Errorf("desk: %w", err)
	}
	m, err := newMetrics(deps.Registry, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.events = newEventHub(m.eventsDropped.Inc)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("desk: listen %s: %w", listen, err)
	}
	if deps.TLS != nil {
		ln = tls.NewListener(ln, deps.TLS)
	}
	s.ln = ln
	s.SetNotReady("starting")
	mux := http.NewServeMux()
	handle(mux, http.MethodGet, "/metrics", promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(deps.Logger.Handler(), slog.LevelError),
		Registry:          deps.Registry, // counts its own scrape errors
		EnableOpenMetrics: true,
	}).ServeHTTP)
	handle(mux, http.MethodGet, "/healthz", s.healthz)
	handle(mux, http.MethodGet, "/readyz", s.readyz)
	handle(mux, http.MethodPost, "/api/touchpoints", requireToken(deps.APITokens, s.postTouchpoint))
	handle(mux, http.MethodGet, "/api/customers/{id}/journey", requireToken(deps.APITokens, s.getJourney))
	handle(mux, http.MethodPost, "/api/customers/import", requireToken(deps.APITokens, s.importCustomers))
	s.routeDesk(mux)
	s.srv = &http.Server{
		Handler:           m.instrument(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          serverlog.HTTP(deps.Logger),
	}
	s.srv.RegisterOnShutdown(s.stop)
	return s, nil
}

func (s *Server) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

func (s *Server) now() time.Time { return s.deps.Now() }

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// EndSessionsOf logs user out of every desk session (see
// ControlDeps.Sessions) and returns how many there were.
func (s *Server) EndSessionsOf(ctx context.Context, user string) (int, error) {
	return s.sessions.endUser(ctx, user, s.now())
}

// Logins are who may log in now.
func (s *Server) Logins() Logins { return *s.logins.Load() }

// SetLogins puts a reloaded configuration's logins in force: a new login
// can log in at once, and whoever is no longer a login, or has other
// roles now, loses their sessions and logs in again as what they are
// now. It returns the users whose sessions ended.
func (s *Server) SetLogins(ctx context.Context, l Logins) ([]string, error) {
	old := s.logins.Swap(&l)
	var ended []string
	var errs []error
	for _, name := range old.names() {
		if slices.Equal(old.Roles(name), l.Roles(name)) {
			continue
		}
		// A login under way, checked against the old logins, is refused
		// too: its session would be newer than the end.
		n, err := s.EndSessionsOf(ctx, name)
		if err != nil {
			errs = append(errs, err)
		}
		if n > 0 {
			ended = append(ended, name)
		}
	}
	return ended, errors.Join(errs...)
}

// SetReady makes /readyz answer 200.
func (s *Server) SetReady() { s.ready.Store(nil) }

// SetNotReady makes /readyz answer 503 with the reason, e.g. while draining.
func (s *Server) SetNotReady(reason string) { s.ready.Store(&reason) }

// Run serves until ctx ends, then drains open requests for at most the
// drain timeout.
func (s *Server) Run(ctx context.Context) error {
	go s.housekeep(ctx)
	err := serveUntil(ctx, s.srv, s.ln, s.deps.DrainTimeout)
	// The last requests' times, so that a planned restart shortens no
	// session.
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if perr := s.sessions.persist(pctx); perr != nil {
		s.deps.Logger.Error("desk sessions' last use not written at stop", "err", perr)
	}
	return err
}

// wallboardTick is how often open wallboards get fresh figures (waiting
// times grow without any event).
const wallboardTick = 2 * time.Second

// housekeep pushes the wallboard to supervisors, writes sessions' last
// uses and ends expired sessions, and forgets old login failures, until
// ctx ends.
func (s *Server) housekeep(ctx context.Context) {
	tick := time.NewTicker(wallboardTick)
	defer tick.Stop()
	sessionTicks := max(1, int(persistInterval(s.deps.SessionTimeout)/wallboardTick))
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.publishWallboard()
		n++
		if n%sessionTicks == 0 {
			s.keepSessions(ctx, s.now())
		}
		if n%30 == 0 {
			s.limiter.pruneNow(s.now())
		}
	}
}

// keepSessions writes the sessions' last uses, then ends the expired ones.
func (s *Server) keepSessions(ctx context.Context, now time.Time) {
	if err := s.sessions.persist(ctx); err != nil {
		if ctx.Err() == nil {
			s.deps.Logger.Error("desk sessions", "err", err)
		}
		return
	}
	n, err := s.sessions.expire(ctx, now)
	if err != nil && ctx.Err() == nil {
		s.deps.Logger.Error("desk sessions", "err", err)
	}
	if n > 0 {
		s.deps.Logger.Debug("desk sessions expired", "sessions", n)
	}
}

func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Close releases the listener when Run was never called.
func (s *Server) Close() error {
	s.stop()
	return s.srv.Close()
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if reason := s.ready.Load(); reason != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": *reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
