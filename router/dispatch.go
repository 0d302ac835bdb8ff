package router

import "time"

// Where a pending task waits.
const (
	parkedNowhere = iota
	parkedInClass
	parkedForAgent
)

// freeFor reports whether a can be offered a task of channel ch now.
func (r *Router) freeFor(a *agent, ch Channel) bool {
	if a.presence != Available || a.offer != nil || a.wrapping > 0 {
		return false
	}
	if a.load[ch] >= a.spec.Capacity[ch] {
		return false
	}
	return !(r.cfg.VoiceBlocksOthers && ch != Voice && a.load[Voice] > 0)
}

// refresh puts a into or takes it out of its class's free structures
// after anything about it changed, and re-orders it where it stays.
func (r *Router) refresh(a *agent) {
	ac := a.class
	for ch := range numChannels {
		want := r.freeFor(a, ch)
		switch {
		case want && !a.inFree[ch]:
			ac.free[ch].push(a)
			ac.byLoad[ch].push(a)
			ac.freeSet[ch].set(a.order)
			a.inFree[ch] = true
		case !want && a.inFree[ch]:
			ac.free[ch].remove(a.heapPos[ch])
			ac.byLoad[ch].remove(a.heapPos[numChannels+ch])
			ac.freeSet[ch].clear(a.order)
			a.inFree[ch] = false
		case want:
			ac.free[ch].fix(a.heapPos[ch])
			ac.byLoad[ch].fix(a.heapPos[numChannels+ch])
		}
	}
}

// offerable reports whether a may be offered t: it has not just missed,
// declined or had it taken back.
func offerable(a *agent, t *task, now time.Time) bool {
	until, excluded := a.excluded[t]
	return !excluded || !now.Before(until)
}

// exclude keeps t from a for routing.retry_delay.
func (r *Router) exclude(a *agent, t *task, now time.Time) {
	a.excluded[t] = now.Add(r.cfg.RetryDelay)
	r.addTimer(&timer{at: a.excluded[t], kind: timerRetry, agent: a, task: t})
}

// qualified reports whether a's skills meet what t requires now (at its
// widening step). A task waits for an agent in particular only while they
// qualify: a change of the agent's skills or a widening step that leaves
// them out lets the task go (stopWaitingFor, the widening timer).
func qualified(a *agent, t *task) bool {
	_, ok := t.class.score[a.class]
	return ok
}

// mayWaitFor reports whether t may wait for a in particular: a is routed,
// takes t's channel and qualifies for it at its step.
func mayWaitFor(a *agent, t *task) bool {
	return !a.removed && a.spec.Capacity[t.Channel] > 0 && qualified(a, t)
}

// bestAgent chooses the free agent for t by its queue's strategy, or nil.
func (r *Router) bestAgent(t *task, now time.Time) *agent {
	if a := t.waitFor; a != nil {
		if r.freeFor(a, t.Channel) && offerable(a, t, now) {
			return a
		}
		return nil // waiting for this agent in particular
	}
	ch := t.Channel
	ok := func(a *agent) bool { return offerable(a, t, now) }
	var best *agent
	switch t.q.spec.Strategy {
	case MostSkilled:
		bestScore := -1
		for _, ac := range t.class.compat { // highest score first
			s := t.class.score[ac]
			if best != nil && s < bestScore {
				break
			}
			if a, found := ac.free[ch].first(ok); found && (best == nil || idleLess(a, best)) {
				best, bestScore = a, s
			}
		}
	case LeastOccupied:
		for _, ac := range t.class.compat {
			if a, found := ac.byLoad[ch].first(ok); found && (best == nil || loadLess(a, best)) {
				best = a
			}
		}
	case RoundRobin:
		n := len(r.byOrder)
		cursor := t.q.rrCursor
		bestDist := n + 1
		for _, ac := range t.class.compat {
			a := r.nextFree(ac, ch, cursor+1, n, ok)
			if a == nil {
				a = r.nextFree(ac, ch, 0, cursor+1, ok)
			}
			if a == nil {
				continue
			}
			if d := (a.order - cursor - 1 + n) % n; d < bestDist {
				best, bestDist = a, d
			}
		}
	default: // LongestIdle, LastAgent
		for _, ac := range t.class.compat {
			if a, found := ac.free[ch].first(ok); found && (best == nil || idleLess(a, best)) {
				best = a
			}
		}
	}
	return best
}

// nextFree returns the first free agent of ac in [from, to) by order.
func (r *Router) nextFree(ac *agentClass, ch Channel, from, to int, ok func(*agent) bool) *agent {
	for i := ac.freeSet[ch].next(from); i >= 0 && i < to; i = ac.freeSet[ch].next(i + 1) {
		if a := r.byOrder[i]; ok(a) {
			return a
		}
	}
	return nil
}

// bestTask chooses the task a freed agent gets: one waiting for it in
// particular first, else the highest priority, oldest head among the task
// classes it can serve.
func (r *Router) bestTask(a *agent, now time.Time) *task {
	for _, t := range a.preferred {
		if r.freeFor(a, t.Channel) && offerable(a, t, now) {
			return t
		}
	}
	var free [numChannels]bool
	anyFree := false
	for ch := range numChannels {
		free[ch] = r.freeFor(a, ch)
		anyFree = anyFree || free[ch]
	}
	if !anyFree {
		return nil
	}
	ok := func(t *task) bool { return offerable(a, t, now) }
	var best *task
	var bestPrio float64
	for _, tc := range a.class.compat {
		if !free[tc.ch] || tc.tasks.len() == 0 {
			continue
		}
		t, found := tc.tasks.first(ok)
		if !found {
			continue
		}
		p := t.effective(now)
		if best == nil || p > bestPrio || p == bestPrio && (t.Arrived.Before(best.Arrived) || t.Arrived.Equal(best.Arrived) && t.seq < best.seq) {
			best, bestPrio = t, p
		}
	}
	return best
}

// dispatchTask offers t to the best free agent, or parks it.
func (r *Router) dispatchTask(t *task, now time.Time) {
	if a := r.bestAgent(t, now); a != nil {
		r.reserve(t, a, now)
		return
	}
	r.park(t)
}

// dispatchAgent offers a the best waiting task it can take, if any.
func (r *Router) dispatchAgent(a *agent, now time.Time) {
	if t := r.bestTask(a, now); t != nil {
		r.reserve(t, a, now)
	}
}

// waitedFor counts the tasks on channel ch waiting for a in particular,
// the one offered to a among them.
func (a *agent) waitedFor(ch Channel) int {
	n := 0
	if t := a.offer; t != nil && t.waitFor == a && t.Channel == ch {
		n++
	}
	for _, t := range a.preferred {
		if t.Channel == ch {
			n++
		}
	}
	return n
}

func (r *Router) park(t *task) {
	if t.parked != parkedNowhere {
		return
	}
	if t.waitFor != nil {
		t.waitFor.preferred = append(t.waitFor.preferred, t)
		t.parked = parkedForAgent
		return
	}
	t.class.tasks.push(t)
	t.parked = parkedInClass
}

func (r *Router) unpark(t *task) {
	switch t.parked {
	case parkedInClass:
		t.class.tasks.remove(t.heapPos)
	case parkedForAgent:
		p := t.waitFor.preferred
		for i, x := range p {
			if x == t {
				t.waitFor.preferred = append(p[:i], p[i+1:]...)
				break
			}
		}
	}
	t.parked = parkedNowhere
}

func (r *Router) reserve(t *task, a *agent, now time.Time) {
	r.unpark(t)
	t.state = Reserved
	t.agent = a
	t.deadline = now.Add(r.cfg.OfferTimeout)
	t.offerOp = r.op
	a.offer = t
	if t.q.spec.Strategy == RoundRobin {
		t.q.rrCursor = a.order
	}
	r.refresh(a)
	r.addTimer(&timer{at: t.deadline, kind: timerOffer, task: t})
	r.record(Event{At: now, Kind: TaskOffered, TaskID: t.ID, Agent: a.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived})
	r.outbox = append(r.outbox, notice{offer: t.offer()})
}

func (t *task) offer() Offer {
	return Offer{TaskID: t.ID, Agent: t.agent.spec.ID, Channel: t.Channel, Queue: t.Queue, Deadline: t.deadline}
}
