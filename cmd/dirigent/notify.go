package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd about the daemon's state (sd_notify). Outside
// systemd, NOTIFY_SOCKET is unset and every call is a no-op.
type notifier struct{ logger *slog.Logger }

func (n notifier) send(states ...string) {
	if _, err := sd.SdNotify(false, strings.Join(states, "\n")); err != nil {
		n.logger.Warn("sd_notify failed", "state", states, "err", err)
	}
}

// progressCheck is one part of the daemon that must keep making progress
// for the watchdog to be fed.
type progressCheck struct {
	name string
	fn   func(context.Context) error
}

// watchdog feeds systemd's watchdog only while every check passes within
// half the watchdog interval. It is called from the daemon's main loop, so
// a stuck main loop stops the pings as well: systemd then kills and
// restarts the process, which is what a hung contact center needs.
type watchdog struct {
	interval time.Duration // WATCHDOG_USEC; 0 when systemd wants no pings
	checks   []progressCheck
	notify   func(states ...string)
	logger   *slog.Logger
}

// beat runs the checks and pings; it reports whether it pinged.
func (w *watchdog) beat(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, w.interval/2)
	defer cancel()
	for _, c := range w.checks {
		if err := c.fn(ctx); err != nil {
			w.logger.Error("watchdog not fed: no progress", "part", c.name, "err", err)
			return false
		}
	}
	w.notify(sd.SdNotifyWatchdog)
	return true
}
