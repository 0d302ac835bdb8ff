package main

import (
	"context"
	"slices"
	"time"

	"dirigent/router"
	"dirigent/store"
)

// presenceKeptFor is how long after a stop the next start takes up the
// agents' presence again: after a planned restart (an update, a setting
// that needs one) agents are as they were, with their desk sessions; a
// start the next morning finds them offline, as after a crash.
const presenceKeptFor = 10 * time.Minute

// keepPresence writes down who was not offline as the stop began.
func (d *daemon) keepPresence(agents []router.AgentStats, at time.Time) {
	kept := store.PresenceAtStop{At: at}
	for _, a := range agents {
		if a.Presence != router.Offline {
			kept.Agents = append(kept.Agents, store.AgentPresence{Agent: a.Agent, Presence: a.Presence.String(), Reason: a.Reason})
		}
	}
	if err := d.store.PutPresenceAtStop(context.Background(), kept); err != nil {
		d.logger.Error("agents' presence not kept for the next start", "err", err)
	}
}

// takeUpPresence gives agents the presence the last stop kept, when it
// was at most presenceKeptFor ago. Agents no longer configured are left
// out, and so is an agent away for a reason desk.away_reasons no longer
// has (the desk would not let them pick it; the router's own, missed
// offers, stays): they start offline.
func (d *daemon) takeUpPresence(now time.Time) {
	kept, err := d.store.TakePresenceAtStop(context.Background())
	if err != nil {
		d.logger.Error("agents start offline", "err", err)
		return
	}
	if kept == nil {
		return
	}
	if since := now.Sub(kept.At); since < 0 || since > presenceKeptFor {
		d.logger.Info("agents start offline: the last stop was too long ago", "stopped", kept.At)
		return
	}
	var back []string
	for _, a := range kept.Agents {
		var p router.Presence
		if err := p.UnmarshalText([]byte(a.Presence)); err != nil {
			continue
		}
		if p == router.Away && a.Reason != router.ReasonMissedOffers && !slices.Contains(d.cfg.Desk.AwayReasons, a.Reason) {
			d.logger.Info("presence at the last stop not taken up: the away reason is no longer configured", "agent", a.Agent, "reason", a.Reason)
			continue
		}
		if err := d.router.SetPresence(a.Agent, p, a.Reason); err != nil {
			d.logger.Info("presence at the last stop not taken up", "agent", a.Agent, "err", err)
			continue
		}
		back = append(back, a.Agent)
	}
	d.logger.Info("agents' presence at the last stop taken up", "agents", back, "stopped", kept.At)
}
