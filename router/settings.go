package router

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrRestartNeeded is SetSettings' answer to a configuration that changes
// what the running router is built on.
var ErrRestartNeeded = errors.New("needs a restart")

// withDefaults fills in the settings a configuration may leave out.
func withDefaults(cfg Config) Config {
	if cfg.OfferTimeout <= 0 {
		cfg.OfferTimeout = 20 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	return cfg
}

// SetSettings applies the routing settings and the queues' settings of a
// reloaded configuration (its agents are SetAgent's), keeping every task,
// offer and statistic:
//   - priorities (a queue's, tier weight, repeat boost, aging) rank the
//     waiting tasks anew at once;
//   - a changed max wait counts from when each task entered its queue: one
//     that has waited longer moves on now, or when its offer ends;
//   - strategy, overflow queue, wrap-up, offer timeout, missed offers,
//     retry delay and the wait for the last agent apply to what happens
//     from now on, voice_blocks_others to every agent at once;
//   - a changed service-level threshold or target applies to tasks
//     answered from now on (a restart counts the day again with it).
//
// Skills, the queues themselves and their skills, channels and widening
// are what the router is built on: when cfg changes any of them, nothing
// applies and the error, ErrRestartNeeded, says what changed.
func (r *Router) SetSettings(cfg Config) error {
	cfg = withDefaults(cfg)
	now := r.lock()
	defer r.unlock()
	if err := r.restartNeeded(cfg); err != nil {
		return err
	}
	// voice_blocks_others turned off frees agents on calls: that happens
	// last, once the max waits the new settings passed are handled with
	// the agents as they were, so that the freed agents take the best
	// tasks waiting, not whichever moved on. Turned on, it blocks them
	// first.
	unblocking := r.cfg.VoiceBlocksOthers && !cfg.VoiceBlocksOthers
	blocking := !r.cfg.VoiceBlocksOthers && cfg.VoiceBlocksOthers
	if unblocking {
		cfg.VoiceBlocksOthers = true
	}
	maxWait := map[*queue]bool{}
	for _, qs := range cfg.Queues {
		q := r.queues[qs.Name]
		maxWait[q] = q.spec.MaxWait != qs.MaxWait
		q.spec = qs
		q.rate = cfg.AgingPerMinute / 60
		r.stats.threshold[qs.Name] = qs.ServiceLevelThreshold
	}
	r.cfg = cfg
	for _, t := range r.tasks {
		if (t.state == Pending || t.state == Reserved) && maxWait[t.q] {
			t.expired = false
			r.scheduleMaxWait(t, now)
		}
	}
	r.rerank()
	if blocking {
		for _, a := range r.byOrder {
			r.refresh(a)
		}
	}
	// Max waits the new settings passed are handled first, as every
	// operation handles the deadlines due: no task past its max wait is
	// offered.
	r.clock()
	if unblocking {
		r.cfg.VoiceBlocksOthers = false
		for _, a := range r.byOrder {
			r.refresh(a)
		}
		for _, a := range r.byOrder {
			r.dispatchAgent(a, now)
		}
	}
	return nil
}

// restartNeeded reports what cfg changes of what the router is built on,
// as an ErrRestartNeeded, and overflow queues cfg does not define.
func (r *Router) restartNeeded(cfg Config) error {
	var changed []string
	if !slices.Equal(r.cfg.Skills, cfg.Skills) {
		changed = append(changed, "skills")
	}
	if !slices.EqualFunc(r.cfg.Queues, cfg.Queues, func(a, b QueueSpec) bool { return a.Name == b.Name }) {
		changed = append(changed, "the queues (added, removed or reordered)")
	} else {
		for i, qs := range cfg.Queues {
			old := r.cfg.Queues[i]
			if !maps.Equal(old.Skills, qs.Skills) || !slices.Equal(old.Channels, qs.Channels) || !slices.EqualFunc(old.Widening, qs.Widening, func(a, b WideningStep) bool {
				return a.After == b.After && maps.Equal(a.Skills, b.Skills)
			}) {
				changed = append(changed, "queue "+qs.Name+"'s skills, channels or widening")
			}
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w: %s changed", ErrRestartNeeded, joinAnd(changed))
	}
	return errors.Join(r.undefinedOverflows(cfg.Queues)...)
}

// undefinedOverflows reports queues that overflow into no queue of the
// router's.
func (r *Router) undefinedOverflows(specs []QueueSpec) []error {
	var errs []error
	for _, qs := range specs {
		if of := qs.OverflowQueue; of != "" && r.queues[of] == nil {
			errs = append(errs, fmt.Errorf("queue %s: overflow queue %q is not defined", qs.Name, of))
		}
	}
	return errs
}

// joinAnd lists items as a sentence does: "a, b and c".
func joinAnd(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return fmt.Sprintf("%s and %s", strings.Join(items[:len(items)-1], ", "), items[len(items)-1])
}
