package router

import "time"

type timerKind uint8

const (
	timerOffer     timerKind = iota // an offer's deadline
	timerWiden                      // a task reaches its next widening step
	timerMaxWait                    // a task has waited its queue's max_wait
	timerPreferred                  // a task stops waiting for its preferred agent
	timerWrapUp                     // a task's wrap-up ends
	timerRetry                      // an agent may be offered the task it missed again
)

// timer is a deadline. Timers are never removed early: when one fires it
// checks that what it was set for still holds, which is cheaper than
// tracking and cancelling them.
type timer struct {
	at    time.Time
	kind  timerKind
	task  *task
	agent *agent
	step  int // timerWiden: the step reached
}

func (r *Router) addTimer(t *timer) { r.timers.push(t) }

// timerLess orders deadlines by time; at the same instant an agent's
// exclusion ends first, so that whatever else happens then already sees
// the agent as a candidate for the task it had missed.
func timerLess(a, b *timer) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.kind == timerRetry && b.kind != timerRetry
}

// NextDeadline is when Tick next has work, or the zero time.
func (r *Router) NextDeadline() time.Time {
	r.lock()
	defer r.unlock()
	if r.timers.len() == 0 {
		return time.Time{}
	}
	return r.timers.items[0].at
}

// Tick handles every deadline that has passed: offer timeouts, widening,
// max wait, preferred-agent windows, wrap-up ends.
func (r *Router) Tick() {
	r.lock()
	r.unlock()
}

// clock returns the time and first handles every deadline up to it, each
// at its own time. lock calls it, so that no operation sees a state whose
// deadlines have passed unhandled: Tick's timing changes no decision.
func (r *Router) clock() time.Time {
	now := r.now()
	for r.timers.len() > 0 && !r.timers.items[0].at.After(now) {
		tm := r.timers.items[0]
		r.timers.remove(0)
		r.fire(tm, tm.at)
	}
	return now
}

func (r *Router) fire(tm *timer, now time.Time) {
	t := tm.task
	switch tm.kind {
	case timerOffer:
		if t.state == Reserved && t.deadline.Equal(tm.at) {
			r.outbox = append(r.outbox, notice{offer: t.offer(), revoke: true})
			r.returnOffer(t, OfferTimedOut, now)
		}
	case timerWiden:
		// Set for the next step of the task's stay in its current queue:
		// one it overflowed out of before has other steps, or none.
		if t.state != Pending && t.state != Reserved || r.tasks[t.ID] != t || tm.step != t.step+1 || tm.step >= len(t.q.steps) ||
			!t.entered.Add(t.q.spec.Widening[tm.step-1].After).Equal(tm.at) {
			return
		}
		parked := t.parked == parkedInClass
		if parked {
			r.unpark(t)
		}
		t.step = tm.step
		t.class = t.q.classes[t.step][t.Channel]
		r.scheduleWidening(t)
		if t.parked == parkedForAgent && !mayWaitFor(t.waitFor, t) {
			// The step's requirements leave out the agent it waited for.
			r.unpark(t)
			t.waitFor = nil
			parked = true
		}
		if parked {
			r.dispatchTask(t, now)
		}
	case timerMaxWait:
		if r.tasks[t.ID] != t || !t.maxWaitAt.Equal(tm.at) {
			return
		}
		switch t.state {
		case Pending:
			r.overflow(t, now)
		case Reserved:
			t.expired = true // decided when the offer ends
		}
	case timerPreferred:
		if t.state == Pending && t.waitFor != nil && t.waitUntil.Equal(tm.at) {
			r.unpark(t)
			t.waitFor = nil
			r.dispatchTask(t, now)
		}
	case timerWrapUp:
		if t.state == Wrapping && r.tasks[t.ID] == t {
			r.complete(t, now)
		}
	case timerRetry:
		a := tm.agent
		if until, ok := a.excluded[t]; ok && !now.Before(until) {
			delete(a.excluded, t)
			r.dispatchAgent(a, now)
		}
	}
}

// scheduleMaxWait sets the timer for t's max wait in its queue, if it has
// one; at now at the earliest, for a max wait shortened while t waited.
func (r *Router) scheduleMaxWait(t *task, now time.Time) {
	t.maxWaitAt = time.Time{}
	if w := t.q.spec.MaxWait; w > 0 {
		t.maxWaitAt = t.entered.Add(w)
		if t.maxWaitAt.Before(now) {
			t.maxWaitAt = now
		}
		r.addTimer(&timer{at: t.maxWaitAt, kind: timerMaxWait, task: t})
	}
}

// scheduleWidening sets the timer for t's next widening step, if any.
func (r *Router) scheduleWidening(t *task) {
	if next := t.step + 1; next < len(t.q.steps) {
		r.addTimer(&timer{at: t.entered.Add(t.q.spec.Widening[next-1].After), kind: timerWiden, task: t, step: next})
	}
}
