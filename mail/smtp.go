package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"dirigent/internal/serverlog"
	"dirigent/store"
)

// SMTPConfig is the SMTP server's part of the configuration.
type SMTPConfig struct {
	Listen                 string
	Hostname               string
	Addresses              []string // accepted recipients, lower-case
	Domains                []string // accepted recipient domains, lower-case
	MaxMessageBytes        int
	MaxConnectionsPerIP    int
	MessagesPerMinutePerIP int
	// TLS, when set, is offered through STARTTLS.
	TLS *tls.Config
}

// smtpServer receives customer mail.
type smtpServer struct {
	cfg     SMTPConfig
	deps    Deps
	srv     *smtp.Server
	ln      net.Listener
	metrics *metrics

	// buffers hold messages being received: Store.Accept copies what it
	// logs, so a buffer serves the next message, as large as it grew.
	buffers sync.Pool

	mu    sync.Mutex
	conns map[string]int         // remote IP → open connections
	sent  map[string][]time.Time // remote IP → acceptance times in the last minute
}

// newSMTP checks cfg and binds the listener.
func newSMTP(cfg SMTPConfig, deps Deps, m *metrics) (*smtpServer, error) {
	s := &smtpServer{cfg: cfg, deps: deps, metrics: m, conns: map[string]int{}, sent: map[string][]time.Time{}}
	s.buffers.New = func() any { return new(bytes.Buffer) }
	var err error
	for i := range cfg.Addresses {
		s.cfg.Addresses[i] = strings.ToLower(cfg.Addresses[i])
	}
	for i := range cfg.Domains {
		s.cfg.Domains[i] = strings.ToLower(cfg.Domains[i])
	}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = cfg.Hostname
	s.srv.MaxMessageBytes = int64(cfg.MaxMessageBytes)
	s.srv.MaxRecipients = 50
	s.srv.ReadTimeout = 5 * time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = serverlog.SMTP(deps.Logger)
	s.srv.TLSConfig = cfg.TLS
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("mail: listen %s: %w", cfg.Listen, err)
	}
	return s, nil
}

// run serves until ctx ends, then lets sessions finish for the drain
// timeout.
func (s *smtpServer) run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Closed here, not only by Shutdown: Serve may not have registered the
	// listener yet (a stop right after the start), and then Shutdown would
	// leave it accepting for ever.
	s.ln.Close()
	sctx, cancel := context.WithTimeout(context.Background(), s.deps.DrainTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// NewSession implements smtp.Backend: per-IP connection limits.
func (s *smtpServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := remoteIP(c.Conn().RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[ip] >= s.cfg.MaxConnectionsPerIP {
		s.metrics.rejected.WithLabelValues("connections").Inc()
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many connections from your address, try again later"}
	}
	s.conns[ip]++
	s.metrics.connections.Inc()
	return &session{s: s, ip: ip}, nil
}

func remoteIP(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// limited reports whether ip has had its messages for the last minute.
func (s *smtpServer) limited(ip string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The times are in order (count takes them under the lock), so the
	// expired ones are a prefix: cutting it keeps a check cheap where the
	// allowed rate, and so the list, is large.
	recent := s.sent[ip]
	for len(recent) > 0 && now.Sub(recent[0]) >= time.Minute {
		recent = recent[1:]
	}
	if len(recent) == 0 {
		delete(s.sent, ip)
	} else {
		s.sent[ip] = recent
	}
	return len(recent) >= s.cfg.MessagesPerMinutePerIP
}

// count books a message accepted now against ip's budget.
func (s *smtpServer) count(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[ip] = append(s.sent[ip], time.Now())
}

// putBuffer keeps buf for the next message unless it holds a large one.
func (s *smtpServer) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		buf.Reset()
		s.buffers.Put(buf)
	}
}

// accepts reports whether mail for addr is ours.
func (s *smtpServer) accepts(addr string) bool {
	addr = strings.ToLower(addr)
	if slices.Contains(s.cfg.Addresses, addr) {
		return true
	}
	_, domain, ok := strings.Cut(addr, "@")
	return ok && slices.Contains(s.cfg.Domains, domain)
}

// session is one SMTP connection.
type session struct {
	s    *smtpServer
	ip   string
	from string
	rcpt []string
}

func (x *session) Reset() { x.from, x.rcpt = "", nil }

func (x *session) Logout() error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.conns[x.ip]--; x.s.conns[x.ip] <= 0 {
		delete(x.s.conns, x.ip)
	}
	x.s.metrics.connections.Dec()
	return nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !x.s.accepts(to) {
		x.s.metrics.rejected.WithLabelValues("recipient").Inc()
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	x.rcpt = append(x.rcpt, to)
	return nil
}

// Data logs the message and answers 250 only once it is fsynced; it
// reaches the store, and processing, moments later.
func (x *session) Data(r io.Reader) error {
	if x.s.limited(x.ip, time.Now()) {
		x.s.metrics.rejected.WithLabelValues("rate").Inc()
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Too many messages from your address, try again later"}
	}
	buf := x.s.buffers.Get().(*bytes.Buffer)
	defer x.s.putBuffer(buf)
	if _, err := io.Copy(buf, r); err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			x.s.metrics.rejected.WithLabelValues("size").Inc()
		}
		return err
	}
	m := &store.InboundMail{Received: time.Now().UTC(), Source: "smtp", Remote: x.ip, From: x.from, Recipients: x.rcpt}
	if err := x.s.deps.Store.Accept(context.Background(), m, buf.Bytes()); err != nil {
		x.s.deps.Logger.Error("storing mail failed", "from", x.from, "err", err)
		x.s.metrics.rejected.WithLabelValues("store").Inc()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not store the message, try again later"}
	}
	x.s.count(x.ip)
	x.s.metrics.received.WithLabelValues("smtp").Inc()
	x.s.deps.Logger.Debug("mail accepted", "from", x.from, "bytes", buf.Len())
	return nil
}
