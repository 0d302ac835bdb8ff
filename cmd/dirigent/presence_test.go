package main

import (
	"log/slog"
	"testing"
	"time"

	"dirigent/config"
	"dirigent/router"
)

// A start takes up the presence of a stop at most presenceKeptFor ago,
// once; agents no longer configured are left out, and so is an away
// reason no longer configured.
func TestTakeUpPresence(t *testing.T) {
	st, _, r := journalSite(t, nil)
	cfg, err := config.Default()
	noErr(t, err)
	d := &daemon{cfg: cfg, store: st, router: r, logger: slog.New(slog.DiscardHandler)}
	demo := func() router.AgentStats {
		for _, a := range r.Agents() {
			if a.Agent == "demo" {
				return a
			}
		}
		t.Fatal("no agent demo")
		return router.AgentStats{}
	}
	stop := time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	keep := func(p router.Presence) {
		d.keepPresence([]router.AgentStats{{Agent: "demo", Presence: p, Reason: "break"}, {Agent: "gone", Presence: router.Available}}, stop)
	}

	keep(router.Away)
	d.takeUpPresence(stop.Add(presenceKeptFor + time.Second))
	if a := demo(); a.Presence != router.Offline {
		t.Errorf("after a stop too long ago: %s", a.Presence)
	}
	keep(router.Away)
	d.takeUpPresence(stop.Add(-time.Minute)) // the clock went back
	if a := demo(); a.Presence != router.Offline {
		t.Errorf("after a stop in the future: %s", a.Presence)
	}
	keep(router.Away)
	d.takeUpPresence(stop.Add(presenceKeptFor))
	if a := demo(); a.Presence != router.Away || a.Reason != "break" {
		t.Errorf("after a planned restart: %s (%s), want away (break)", a.Presence, a.Reason)
	}
	if err := r.SetPresence("demo", router.Offline, ""); err != nil {
		t.Fatal(err)
	}
	d.takeUpPresence(stop.Add(time.Minute)) // taken already
	if a := demo(); a.Presence != router.Offline {
		t.Errorf("the same stop taken up twice: %s", a.Presence)
	}
	keep(router.Away)
	d.cfg.Desk.AwayReasons = []string{"lunch"} // the restart was for this change
	d.takeUpPresence(stop.Add(time.Minute))
	if a := demo(); a.Presence != router.Offline {
		t.Errorf("away for a reason no longer configured: %s (%s)", a.Presence, a.Reason)
	}
	// The router's own reason is never configured, and stays.
	d.keepPresence([]router.AgentStats{{Agent: "demo", Presence: router.Away, Reason: router.ReasonMissedOffers}}, stop)
	d.takeUpPresence(stop.Add(time.Minute))
	if a := demo(); a.Presence != router.Away || a.Reason != router.ReasonMissedOffers {
		t.Errorf("away for missed offers: %s (%s)", a.Presence, a.Reason)
	}
}
