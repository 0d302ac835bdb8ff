package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// Config is the mail channel's part of the configuration.
type Config struct {
	SMTP      SMTPConfig
	Smarthost SmarthostConfig
	Mailboxes []MailboxConfig
	// DefaultQueue takes mail that no intent rule sends elsewhere.
	DefaultQueue string
	// AutoAck is the text acknowledging a new conversation ({tag} is its
	// ticket tag); empty: none.
	AutoAck string
}

// Deps are what the mail channel needs from the daemon.
type Deps struct {
	Logger       *slog.Logger
	Store        *store.Store
	Journey      *journey.Journey
	Router       *router.Router
	Registerer   prometheus.Registerer
	DrainTimeout time.Duration
	// OnDelivery, if set, hears that how a reply of a conversation stands
	// changed: an attempt was made, or it bounced.
	OnDelivery func(conversationID uint64)
}

// Channel is the e-mail channel: the SMTP server and the processing of
// stored messages into contacts and tasks.
type Channel struct {
	cfg     Config
	deps    Deps
	metrics *metrics
	smtp    *smtpServer
	wake    chan struct{}
	acked   map[string]time.Time // sender → last acknowledgement; processor only
	// outboxErr is the last error reading the outbox, logged once while
	// it lasts, not at every pass; sender only.
	outboxErr string
	fetchers  sync.WaitGroup
}

// New checks cfg and binds the SMTP listener.
func New(cfg Config, deps Deps) (*Channel, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Journey == nil || deps.Router == nil || deps.Registerer == nil {
		return nil, errors.New("mail: Logger, Store, Journey, Router and Registerer are required")
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	if cfg.Smarthost.RetryBase <= 0 {
		cfg.Smarthost.RetryBase = 30 * time.Second
	}
	if cfg.Smarthost.MaxQueueTime <= 0 {
		cfg.Smarthost.MaxQueueTime = 5 * 24 * time.Hour
	}
	c := &Channel{cfg: cfg, deps: deps, metrics: m, wake: make(chan struct{}, 1), acked: map[string]time.Time{}}
	// The outbox depth is read from the store at scrape time.
	if err := deps.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "dirigent", Subsystem: "mail", Name: "outbox_messages",
		Help: "Replies waiting in the outbox to be sent.",
	}, func() float64 {
		n, _ := deps.Store.OutboxDepth()
		return float64(n)
	})); err != nil {
		return nil, err
	}
	// So that an admin hears of a smarthost that takes nothing before the
	// replies bounce (MaxQueueTime).
	if err := deps.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "dirigent", Subsystem: "mail", Name: "outbox_oldest_seconds",
		Help: "How long the reply waiting longest in the outbox has waited; 0 when none waits.",
	}, func() float64 {
		oldest, err := deps.Store.OldestOutbound()
		if err != nil || oldest.IsZero() {
			return 0
		}
		return time.Since(oldest).Seconds()
	})); err != nil {
		return nil, err
	}
	if c.smtp, err = newSMTP(cfg.SMTP, deps, m); err != nil {
		return nil, err
	}
	deps.Store.OnMailStored(func([]uint64) { c.stored(0) })
	return c, nil
}

// SMTPAddr is the SMTP server's bound address.
func (c *Channel) SMTPAddr() net.Addr { return c.smtp.ln.Addr() }

// Close releases the listener when Run was never called.
func (c *Channel) Close() error { return c.smtp.ln.Close() }

// stored wakes the processor for newly stored messages, or the sender
// for a newly queued reply.
func (c *Channel) stored(uint64) {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run serves SMTP, fetches the configured mailboxes, processes stored
// messages and sends the outbox until ctx ends. What a previous process left (stored messages, unsent
// replies) is handled first.
func (c *Channel) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- c.smtp.run(ctx) }()
	for _, mb := range c.cfg.Mailboxes {
		f := &fetcher{c: c, cfg: mb}
		if f.cfg.Folder == "" {
			f.cfg.Folder = "INBOX"
		}
		if f.cfg.Poll <= 0 {
			f.cfg.Poll = time.Minute
		}
		c.fetchers.Add(1)
		go func() {
			defer c.fetchers.Done()
			f.run(ctx)
		}()
	}
	defer c.fetchers.Wait()
	c.processPending(ctx)
	c.sendDue(ctx)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-c.wake:
		case <-tick.C:
		}
		c.processPending(ctx)
		c.sendDue(ctx)
	}
}

// WriteAttachment writes attachment n (0 is the first, as the contact
// lists them) of the mail a contact came from or went out as, for the
// desk's download: see the package's WriteAttachment.
func (c *Channel) WriteAttachment(contact *store.Contact, n int, create func(store.Attachment) (io.Writer, error)) (int64, error) {
	var raw []byte
	switch {
	case contact.MailID != 0:
		_, m, err := c.deps.Store.Mail(contact.MailID)
		if err != nil {
			return 0, err
		}
		raw = m
	case contact.OutboundID != 0:
		m, err := c.deps.Store.OutboundMessage(contact.OutboundID)
		if err != nil {
			return 0, err
		}
		if len(m.Raw) == 0 { // stopped, or dropped by retention
			return 0, fmt.Errorf("reply %d: its message is gone: %w", contact.ID, store.ErrNotFound)
		}
		raw = m.Raw
	default:
		return 0, fmt.Errorf("contact %d has no stored mail: %w", contact.ID, store.ErrNotFound)
	}
	return WriteAttachment(raw, n, create)
}
