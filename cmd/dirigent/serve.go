package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"dirigent/chat"
	"dirigent/config"
	"dirigent/desk"
	"dirigent/internal/certfile"
	"dirigent/journey"
	"dirigent/mail"
	"dirigent/router"
	"dirigent/sip"
	"dirigent/store"
)

// defaultGOGC is the garbage collector's target unless the environment
// sets GOGC: the daemon's live heap is small (tens of megabytes) and
// every contact allocates much that dies at once, so collecting a fifth
// as often buys CPU for a few times the memory: 5 % more mail accepted,
// and less CPU per call, in the benchmarks. An admin who wants a cap
// sets GOMEMLIMIT (README: Memory).
const defaultGOGC = 400

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `file` (default: the embedded default configuration)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("usage: dirigent serve [--config FILE]")}
	}
	cfg, err := loadToServe(*cfgPath)
	if err != nil {
		return usageError{err}
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	logger := newLogger(cfg.Log.Format, level, stderr)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}

	d, err := start(cfg, *cfgPath, logger, level)
	if err != nil {
		logger.Error("start failed", "err", err)
		return err
	}
	return d.run(ctx)
}

func newLogger(format string, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func logLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s)) // config.Validate allows only valid names
	return l
}

// daemon is the running process: every component, built in one place.
type daemon struct {
	cfg     *config.Config
	cfgPath string // empty when running on the embedded default
	logger  *slog.Logger
	level   *slog.LevelVar
	notify  notifier
	metrics *daemonMetrics
	store   *store.Store
	journal *storeJournal
	router  *router.Router
	offers  offerSinks
	journey *journey.Journey
	mail    *mail.Channel
	sip     *sip.Channel
	chat    *chat.Channel // nil when no queue takes messages
	desk    *desk.Server
	control *desk.Control
	certs   []*certfile.Pair // read again at every reload
}

// start opens the store and binds every listener. On error it releases
// whatever it had already taken.
func start(cfg *config.Config, cfgPath string, logger *slog.Logger, level *slog.LevelVar) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, cfgPath: cfgPath, logger: logger, level: level, notify: notifier{logger}}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "dirigent"}),
		newBuildInfoCollector(),
	)
	if d.metrics, err = newDaemonMetrics(reg); err != nil {
		return nil, err
	}
	d.notify.send("STATUS=opening store " + cfg.StorePath())
	d.store, err = store.Open(store.Options{
		Path:        cfg.StorePath(),
		LockTimeout: cfg.Storage.LockTimeout.Duration,
		Logger:      logger.With("component", "store"),
		Registerer:  reg,
	})
	if err != nil {
		return nil, err
	}
	rc, err := routerConfig(cfg)
	if err != nil {
		return nil, err
	}
	if d.journal, err = newStoreJournal(d.store, logger.With("component", "journal"), d.metrics); err != nil {
		return nil, err
	}
	rlog := logger.With("component", "router")
	d.router, err = router.New(rc, router.Deps{
		Logger:  rlog,
		Journal: journalTee{d.journal, d},
		// The channels that ring phones and show offers add themselves
		// to d.offers below.
		OnOffer:  d.offers.onOffer,
		OnRevoke: d.offers.onRevoke,
	})
	if err != nil {
		return nil, err
	}
	if err := d.router.Register(reg); err != nil {
		return nil, err
	}
	d.offers.add(
		func(o router.Offer) { rlog.Debug("offer", "task", o.TaskID, "agent", o.Agent, "queue", o.Queue) },
		func(o router.Offer) { rlog.Debug("offer revoked", "task", o.TaskID, "agent", o.Agent) },
	)
	drain := cfg.Daemon.DrainTimeout.Duration
	d.journey, err = journey.New(journeyConfig(cfg), journey.Deps{
		Store:      d.store,
		Logger:     logger.With("component", "journey"),
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	mc, sc := mailConfig(cfg), sipConfig(cfg)
	if mc.SMTP.TLS, err = d.serverTLS("mail", cfg.Mail.TLSCert, cfg.Mail.TLSKey); err != nil {
		return nil, err
	}
	if cfg.SIP.TLSOn() {
		if sc.TLS, err = d.serverTLS("sip", cfg.SIP.TLSCert, cfg.SIP.TLSKey); err != nil {
			return nil, err
		}
	}
	d.mail, err = mail.New(mc, mail.Deps{
		Logger: logger.With("component", "mail"), Store: d.store, Journey: d.journey, Router: d.router,
		Registerer: reg, DrainTimeout: drain,
		// A thread on an agent's screen shows its replies' delivery live.
		OnDelivery: func(conversation uint64) {
			if d.desk != nil { // set while the daemon is built, before mail runs
				d.desk.DeliveryChanged(conversation)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	d.sip, err = sip.New(sc, sip.Deps{
		Logger: logger.With("component", "sip"), Store: d.store, Journey: d.journey, Router: d.router,
		Registerer: reg, DrainTimeout: drain, OnMessage: d.sipMessages(cfg),
	})
	if err != nil {
		return nil, err
	}
	// Voice offers ring the agent's phones; the channel ignores others.
	d.offers.add(d.sip.OnOffer, d.sip.OnRevoke)
	if cfg.Chat.On() {
		cc := chatConfig(cfg)
		if cc.TLS, err = d.serverTLS("chat", cfg.Chat.TLSCert, cfg.Chat.TLSKey); err != nil {
			return nil, err
		}
		d.chat, err = chat.New(cc, chat.Deps{
			Logger: logger.With("component", "chat"), Store: d.store, Journey: d.journey, Router: d.router,
			Registerer: reg, DrainTimeout: drain, SendTranscript: d.mail.SendTranscript, SIPReply: d.sip.SendMessage,
			// Customers' messages reach the chat's agent on the desk.
			OnCustomer: d.deskChatEvent,
		})
		if err != nil {
			return nil, err
		}
	}
	var tokens []desk.APIToken
	for _, t := range cfg.Desk.APITokens {
		tokens = append(tokens, desk.APIToken{Name: t.Name, SHA256: t.SHA256})
	}
	deskTLS, err := d.serverTLS("desk", cfg.Desk.TLSCert, cfg.Desk.TLSKey)
	if err != nil {
		return nil, err
	}
	d.desk, err = desk.New(cfg.Desk.Listen, desk.Deps{
		Logger:         logger.With("component", "desk"),
		Registry:       reg,
		DrainTimeout:   drain,
		Store:          d.store,
		Journey:        d.journey,
		APITokens:      tokens,
		Router:         d.router,
		Mailer:         d.mail,
		Chats:          d.deskChats(),
		Logins:         deskLogins(cfg),
		AwayReasons:    cfg.Desk.AwayReasons,
		WrapCodes:      cfg.Desk.WrapCodes,
		SessionTimeout: cfg.Desk.SessionTimeout.Duration,
		TrustedProxies: trustedProxies(cfg.Desk.TrustedProxies),
		TLS:            deskTLS,
	})
	if err != nil {
		return nil, err
	}
	// Every offer reaches the desk, whatever its channel: for a call the
	// customer card is on screen while the phone rings.
	d.offers.add(d.desk.OnOffer, d.desk.OnRevoke)
	d.control, err = desk.NewControl(cfg.Control.Socket, desk.ControlDeps{
		Logger:       logger.With("component", "control"),
		Store:        d.store,
		Journey:      d.journey,
		Customers:    customerAdmin{Store: d.store, storeJournal: d.journal, router: d.router, chat: d.chat, desk: d.desk},
		Passwords:    d.store,
		Logins:       d.desk.Logins,
		Sessions:     d.desk,
		DrainTimeout: drain,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// close releases what start took; safe on a partly started daemon.
func (d *daemon) close() {
	if d.control != nil {
		d.control.Close()
	}
	if d.desk != nil {
		d.desk.Close()
	}
	if d.mail != nil {
		d.mail.Close()
	}
	if d.chat != nil {
		d.chat.Close()
	}
	if d.sip != nil {
		d.sip.Close()
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.logger.Error("closing store", "err", err)
		}
	}
}

// run serves until ctx ends or SIGINT/SIGTERM arrives, then drains.
func (d *daemon) run(ctx context.Context) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := []struct {
		name string
		run  func(context.Context) error
	}{
		{"router", d.router.Run},
		{"journal", d.journal.Run},
		{"journey", d.journey.Run},
		{"mail", d.mail.Run},
		{"sip", d.sip.Run},
		{"chat", d.chatRun},
		{"desk", d.desk.Run},
		{"control", d.control.Run},
	}
	done := make(chan error, len(parts))
	for _, p := range parts {
		go func() {
			err := p.run(runCtx)
			if err != nil {
				err = fmt.Errorf("%s: %w", p.name, err)
			}
			done <- err
		}()
	}
	running := len(parts)

	// Queue again what the previous process left unfinished, and bring
	// back today's statistics, before announcing readiness.
	y, m, day := time.Now().Date()
	history, err := d.journal.history(time.Date(y, m, day, 0, 0, 0, 0, time.Local))
	if err != nil {
		d.logger.Error("today's statistics start empty: the router journal cannot be read", "err", err)
	}
	if err := tellMerges(d.store, d.router); err != nil {
		d.logger.Error("merged customers' tasks rank at their own value tier", "err", err)
	}
	if requeued, canceled := d.router.Recover(history, d.journal.unfinished()); requeued+canceled > 0 {
		d.logger.Info("recovered unfinished tasks", "requeued", requeued, "calls_canceled", canceled)
	}

	wd := &watchdog{
		checks: []progressCheck{{"store", d.store.Ping}, {"router", d.router.Alive}},
		notify: d.notify.send,
		logger: d.logger,
	}
	var beat <-chan time.Time
	if interval, err := sd.SdWatchdogEnabled(false); err != nil {
		d.logger.Warn("ignoring systemd watchdog settings", "err", err)
	} else if interval > 0 {
		wd.interval = interval
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		beat = t.C
	}

	d.takeUpPresence(time.Now())

	d.desk.SetReady()
	d.notify.send(sd.SdNotifyReady, d.status())
	d.logger.Info("dirigent ready", "version", versionString(), "config", d.configName(),
		"store", d.store.Path(), "desk", d.desk.Addr().String(), "smtp", d.mail.SMTPAddr().String(), "sip", d.sip.Addr().String(), "chat", d.chatAddr(), "control", d.cfg.Control.Socket)

	var runErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			d.logger.Info("stopping", "signal", sig.String(), "drain_timeout", d.cfg.Daemon.DrainTimeout.Duration)
			break loop
		case err := <-done:
			running--
			if err == nil {
				err = errors.New("a component stopped unexpectedly")
			}
			runErr = err
			d.logger.Error("stopping after a component failed", "err", err)
			break loop
		case <-beat:
			wd.beat(runCtx)
		case <-ctx.Done():
			d.logger.Info("stopping", "reason", context.Cause(ctx))
			break loop
		}
	}

	// As the stop began: draining may change it.
	presence, stoppedAt := d.router.Agents(), time.Now()
	d.notify.send(sd.SdNotifyStopping, "STATUS=draining")
	d.desk.SetNotReady("draining")
	cancel()
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				d.logger.Error("second signal: exiting without waiting for the drain", "signal", sig.String())
				os.Exit(1)
			}
		}
	}()
	for ; running > 0; running-- {
		if err := <-done; err != nil && runErr == nil {
			runErr = err
			d.logger.Error("drain", "err", err)
		}
	}
	if runErr == nil { // a planned stop, drained: not a failure systemd restarts after
		d.keepPresence(presence, stoppedAt)
	}
	if err := d.store.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("closing store: %w", err)
	}
	d.logger.Info("stopped")
	return runErr
}

// serverTLS reads a listener's certificate, when the section has one,
// for d.certs to read again at reloads; nil without one.
func (d *daemon) serverTLS(section, cert, key string) (*tls.Config, error) {
	if cert == "" {
		return nil, nil
	}
	p, err := certfile.Load(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	d.certs = append(d.certs, p)
	return p.ServerConfig(), nil
}

// reloadCerts reads every listener's certificate again, as files renewed
// in place, from the paths of the start (a changed path takes effect at
// the next restart). One that cannot be read is logged, and the old one
// served on.
func (d *daemon) reloadCerts() {
	for _, p := range d.certs {
		if err := p.Reload(); err != nil {
			d.logger.Error("reload: the certificate served so far stays", "err", err)
		}
	}
}

// reload applies a changed configuration file (SIGHUP). A file that does
// not validate is refused and the running configuration stays.
func (d *daemon) reload() {
	d.notify.send(sd.SdNotifyReloading, sd.SdNotifyMonotonicUsec(), "STATUS=reloading configuration")
	defer func() { d.notify.send(sd.SdNotifyReady, d.status()) }()
	if d.cfgPath == "" {
		d.logger.Warn("reload: running on the embedded default configuration, there is no file to reload")
		return
	}
	next, err := loadToServe(d.cfgPath)
	var rc router.Config
	if err == nil {
		rc, err = routerConfig(next)
	}
	if err != nil {
		d.metrics.reloads.WithLabelValues("refused").Inc()
		d.metrics.lastReloadGood.Set(0)
		d.logger.Error("reload refused, the running configuration stays", "config", d.cfgPath, "err", err)
		return
	}
	for _, key := range restartOnlyChanges(d.cfg, next) {
		d.logger.Warn("reload: this setting takes effect at the next restart", "key", key)
	}
	// The agents who stay first, so that the mails and chats of those
	// removed go to them as they are now.
	d.applyAgents(rc)
	d.retireAgents(removedAgents(d.cfg, next))
	d.applyRouting(rc)
	// After the agents, so that a phone of a new agent registering now
	// makes them available.
	users, trunks := sipAccounts(next.SIP)
	if err := d.sip.SetAccounts(context.Background(), users, trunks); err != nil { // a trunk Validate took: cannot happen
		d.logger.Error("reload: the SIP accounts and trunks stay as they were", "err", err)
	}
	d.applyLogins(next)
	if d.chat != nil {
		d.chat.SetAgentNames(agentNames(next))
	}
	d.reloadCerts()
	d.level.Set(logLevel(next.Log.Level))
	d.cfg = next
	d.metrics.reloads.WithLabelValues("applied").Inc()
	d.metrics.lastReloadGood.Set(1)
	d.logger.Info("configuration reloaded", "config", d.cfgPath)
}

// restartOnlyChanges lists changed settings that a running process cannot
// apply: bound sockets, the open store, the chosen log handler, and the
// settings the channels and the journey were built with. What the router
// cannot apply, applyRouting reports.
func restartOnlyChanges(old, next *config.Config) []string {
	var keys []string
	for _, s := range []struct {
		key       string
		old, next any
	}{
		{"log.format", old.Log.Format, next.Log.Format},
		{"journey", old.Journey, next.Journey},
		{"intents", old.Intents, next.Intents},
		{"next_best_actions", old.Actions, next.Actions},
		{"storage.dir", old.Storage.Dir, next.Storage.Dir},
		{"storage.lock_timeout", old.Storage.LockTimeout, next.Storage.LockTimeout},
		{"control.socket", old.Control.Socket, next.Control.Socket},
		{"desk.listen", old.Desk.Listen, next.Desk.Listen},
		{"desk.tls_cert", old.Desk.TLSCert, next.Desk.TLSCert},
		{"desk.tls_key", old.Desk.TLSKey, next.Desk.TLSKey},
		{"desk.api_tokens", old.Desk.APITokens, next.Desk.APITokens},
		{"desk.away_reasons", old.Desk.AwayReasons, next.Desk.AwayReasons},
		{"desk.wrap_codes", old.Desk.WrapCodes, next.Desk.WrapCodes},
		{"desk.session_timeout", old.Desk.SessionTimeout, next.Desk.SessionTimeout},
		{"desk.trusted_proxies", old.Desk.TrustedProxies, next.Desk.TrustedProxies},
		{"sip", sipUnreloadable(old.SIP), sipUnreloadable(next.SIP)},
		{"mail", old.Mail, next.Mail},
		{"chat", old.Chat, next.Chat},
		{"daemon.drain_timeout", old.Daemon.DrainTimeout, next.Daemon.DrainTimeout},
	} {
		if !reflect.DeepEqual(s.old, s.next) {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// sipUnreloadable is what of the SIP settings a reload does not apply:
// all but its accounts and trunks.
func sipUnreloadable(s config.SIP) config.SIP {
	s.Users, s.Trunks = nil, nil
	return s
}

// removedAgents lists the agents of old that next has no more.
func removedAgents(old, next *config.Config) []string {
	var ids []string
	for _, a := range old.Agents {
		if !slices.ContainsFunc(next.Agents, func(n config.Agent) bool { return n.ID == a.ID }) {
			ids = append(ids, a.ID)
		}
	}
	return ids
}

// applyRouting puts the routing and queue settings of a reloaded
// configuration in force (router.SetSettings). Changed skills, or queues
// added, removed or built differently, need a restart: then none of it
// applies, and every reload says so until the restart.
func (d *daemon) applyRouting(rc router.Config) {
	if err := d.router.SetSettings(rc); errors.Is(err, router.ErrRestartNeeded) {
		d.logger.Warn("reload: skills, queues and routing take effect at the next restart", "why", err.Error())
	} else if err != nil { // config.Validate checks what the router would refuse
		d.logger.Error("reload: routing and queue settings not applied", "err", err)
	}
}

// applyAgents gives the router (and so the desk's admin page) the agents
// of a reloaded configuration: new agents join, changed skills and
// capacities apply at once. With changed skills the whole router needs a
// restart, which applyRouting reports; then nothing applies, even after
// further reloads (the router's skills, not the last file's, say it),
// while retireAgents still takes removed agents out.
func (d *daemon) applyAgents(rc router.Config) {
	if !slices.Equal(d.router.Skills(), rc.Skills) {
		return
	}
	for _, a := range rc.Agents {
		if err := d.router.SetAgent(a); err != nil {
			d.logger.Error("reload: agent not applied", "agent", a.ID, "err", err)
		}
	}
}

// retireAgents takes the agents a reloaded configuration no longer has
// out of routing (their mails and chats go back to the queue, and they
// leave the admin page); applyLogins ends their desk sessions.
func (d *daemon) retireAgents(removed []string) {
	for _, id := range removed {
		if err := d.router.RemoveAgent(id); err != nil && !errors.Is(err, router.ErrUnknownAgent) {
			d.logger.Error("reload: removed agent still routed", "agent", id, "err", err)
		}
	}
}

// applyLogins puts the desk logins of a reloaded configuration in force
// at once: its supervisors and admins, and those of its agents the router
// has. Who is no longer a login, or has other roles, loses their desk
// sessions.
func (d *daemon) applyLogins(next *config.Config) {
	logins := deskLogins(next)
	routed := map[string]bool{}
	for _, a := range d.router.Agents() {
		routed[a.Agent] = true
	}
	logins.Agents = slices.DeleteFunc(logins.Agents, func(id string) bool { return !routed[id] })
	ended, err := d.desk.SetLogins(context.Background(), logins)
	if err != nil {
		d.logger.Error("reload: desk sessions ended, their records not deleted", "err", err)
	}
	if len(ended) > 0 {
		d.logger.Info("reload: desk sessions ended: no longer a login, or other roles", "users", ended)
	}
}

func (d *daemon) configName() string {
	if d.cfgPath == "" {
		return config.DefaultName
	}
	return d.cfgPath
}

func (d *daemon) status() string {
	return fmt.Sprintf("STATUS=serving: desk on %s, %d queues, %d agents", d.desk.Addr(), len(d.router.Queues()), len(d.router.Agents()))
}
