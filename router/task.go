package router

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Enqueue adds a task. Its Arrived time is kept as given, so a task
// restored after a restart keeps its place. It is offered at once when a
// suitable agent is free.
func (r *Router) Enqueue(in Task) error {
	now := r.lock()
	defer r.unlock()
	q, ok := r.queues[in.Queue]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownQueue, in.Queue)
	}
	if !q.takes(in.Channel) {
		return fmt.Errorf("queue %s does not take %s tasks", in.Queue, in.Channel)
	}
	if _, dup := r.tasks[in.ID]; dup {
		return fmt.Errorf("%w: %d", ErrDuplicate, in.ID)
	}
	if r.erased[in.CustomerID] {
		return fmt.Errorf("task %d: %w", in.ID, ErrErased)
	}
	if in.Arrived.IsZero() {
		in.Arrived = now
	}
	r.add(newTask(in), q, "", now)
	return nil
}

func newTask(in Task) *task { return &task{Task: in, heapPos: -1, waitPos: -1} }

func (r *Router) add(t *task, q *queue, reason string, now time.Time) {
	t.recovered = reason == ReasonRecovered
	r.seq++
	t.seq = r.seq
	r.tasks[t.ID] = t
	r.enter(t, q, reason, now)
}

// basePrio is t's priority in its queue as it arrives: the queue's, plus its rank
// tier's weight, plus the boost of a repeat contact.
func (r *Router) basePrio(t *task) float64 {
	p := t.q.spec.Priority + float64(r.rankTier(t))*r.cfg.TierWeight
	if t.Repeat {
		p += r.cfg.RepeatBoost
	}
	return p
}

// enter puts t into q: priority, widening step, timers, then dispatch.
func (r *Router) enter(t *task, q *queue, reason string, now time.Time) {
	t.q = q
	t.Queue = q.spec.Name
	t.state = Pending
	t.entered = now
	t.expired = false
	r.rank(t)
	t.step = 0
	t.class = q.classes[0][t.Channel]
	r.scheduleWidening(t)
	r.scheduleMaxWait(t, now)
	t.waitFor = nil
	// A recovered task waits for its agent even while the agent is still
	// offline: after a restart everyone has to log in again. Other tasks
	// wait only while fewer of the agent's customers wait for them on the
	// channel than the agent takes at once: a popular agent's further
	// customers go to whoever is free rather than queue behind the others.
	if a := r.agents[t.PreferredAgent]; a != nil && q.spec.LastAgentWait > 0 && mayWaitFor(a, t) &&
		(t.recovered || a.presence != Offline && (q.spec.Strategy == LastAgent || t.Repeat) && a.waitedFor(t.Channel) < a.spec.Capacity[t.Channel]) {
		t.waitFor = a
		t.waitUntil = now.Add(q.spec.LastAgentWait)
		r.addTimer(&timer{at: t.waitUntil, kind: timerPreferred, task: t})
	}
	q.waiting.push(t)
	r.record(Event{At: now, Kind: TaskCreated, TaskID: t.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived, Reason: reason,
		Customer: t.CustomerID, Tier: t.ValueTier, Repeat: t.Repeat, Preferred: t.PreferredAgent, Answered: t.answered, Closed: t.closed})
	r.dispatchTask(t, now)
}

// Accept: the agent took the offered task (answered the call, opened the
// mail). The task is assigned and counts against the agent's capacity.
func (r *Router) Accept(taskID uint64, agentID string) error {
	now := r.lock()
	defer r.unlock()
	t, a, err := r.offered(taskID, agentID)
	if err != nil {
		return err
	}
	r.occupancy(a, now)
	t.state = Assigned
	t.assigned = now
	a.offer = nil
	a.missed = 0
	a.load[t.Channel]++
	a.total++
	a.idleSince = now.UnixNano()
	a.tasks[t.ID] = t
	t.q.waiting.remove(t.waitPos)
	e := Event{At: now, Kind: TaskAssigned, TaskID: t.ID, Agent: a.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived}
	if t.answered {
		e.Reason = ReasonAnsweredBefore
	}
	t.answered = true
	r.record(e)
	r.refresh(a)
	r.dispatchAgent(a, now)
	return nil
}

// Decline: the agent refused the offer (or the phone answered busy). The
// task is pending again with its original arrival time.
func (r *Router) Decline(taskID uint64, agentID string) error {
	now := r.lock()
	defer r.unlock()
	t, _, err := r.offered(taskID, agentID)
	if err != nil {
		return err
	}
	r.returnOffer(t, OfferDeclined, now)
	return nil
}

func (r *Router) lookup(taskID uint64) (*task, error) {
	t, ok := r.tasks[taskID]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownTask, taskID)
	}
	return t, nil
}

func (r *Router) offered(taskID uint64, agentID string) (*task, *agent, error) {
	t, err := r.lookup(taskID)
	if err != nil {
		return nil, nil, err
	}
	if t.state != Reserved || t.agent.spec.ID != agentID {
		return nil, nil, fmt.Errorf("%w: %s is not offered to %s", ErrWrongState, t, agentID)
	}
	if t.offerOp == r.op {
		// The deadlines this call handled timed the caller's offer out
		// and, the agent's retry delay over too, offered the task to the
		// same agent anew. The caller answers the old offer; the new one
		// is yet to be delivered and answered on its own.
		return nil, nil, fmt.Errorf("%w: %s was offered to %s anew", ErrWrongState, t, agentID)
	}
	return t, t.agent, nil
}

// returnOffer ends an offer the agent missed or declined.
func (r *Router) returnOffer(t *task, kind EventKind, now time.Time) {
	a := r.unoffer(t, kind, "", now)
	a.missed++
	r.exclude(a, t, now)
	if r.cfg.MaxMissedOffers > 0 && a.missed >= r.cfg.MaxMissedOffers {
		r.setPresence(a, Away, ReasonMissedOffers, now)
	}
	r.refresh(a)
	if t.expired {
		r.overflow(t, now)
	} else {
		r.dispatchTask(t, now)
	}
	r.dispatchAgent(a, now)
}

// overflow moves a task that waited max_wait to the overflow queue, or
// cancels it.
func (r *Router) overflow(t *task, now time.Time) {
	r.unpark(t)
	t.q.waiting.remove(t.waitPos)
	if dest := t.q.spec.OverflowQueue; dest != "" {
		r.record(Event{At: now, Kind: TaskMoved, TaskID: t.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived, Reason: dest})
		q := r.queues[dest]
		if q.takes(t.Channel) {
			r.enter(t, q, "", now)
			return
		}
		r.deps.Logger.Warn("overflow queue does not take the task's channel; canceling", "task", t.ID, "queue", dest, "channel", t.Channel)
	}
	r.finish(t, Canceled, ReasonMaxWait, now)
}

// End: handling is over (hang-up, reply sent). The agent's capacity is
// freed; the task wraps up for the queue's wrap-up time, or completes at
// once when it has none.
func (r *Router) End(taskID uint64) error {
	now := r.lock()
	defer r.unlock()
	t, err := r.lookup(taskID)
	if err != nil {
		return err
	}
	if t.state != Assigned {
		return fmt.Errorf("%w: %s cannot end", ErrWrongState, t)
	}
	r.end(t, now)
	return nil
}

// ConversationEnded: the chat of a task its agent has taken ended (either
// side closed it): only the agent's wrap-up is left, so it stays theirs
// (ReturnTask refuses it), also when taken again after a restart. Their
// capacity stays in use until the wrap-up, as before. A task not taken
// is left as it is: ended before anyone answered, it waits to be answered
// otherwise, as a mail does.
func (r *Router) ConversationEnded(taskID uint64) error {
	now := r.lock()
	defer r.unlock()
	t, err := r.lookup(taskID)
	if err != nil {
		return err
	}
	if t.state != Assigned || t.closed {
		return nil
	}
	t.closed = true
	r.record(Event{At: now, Kind: ConversationEnded, TaskID: t.ID, Agent: t.agent.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived})
	return nil
}

// Complete ends wrap-up early (the agent chose a wrap-up code), or ends
// and completes an assigned task in one step. Only the agent who holds
// the task may: one given back meanwhile is someone else's.
func (r *Router) Complete(taskID uint64, agentID string) error {
	now := r.lock()
	defer r.unlock()
	t, err := r.lookup(taskID)
	if err != nil {
		return err
	}
	if t.agent == nil || t.agent.spec.ID != agentID {
		return fmt.Errorf("%w: %s is not %s's", ErrWrongState, t, agentID)
	}
	switch t.state {
	case Assigned:
		r.end(t, now)
		if t.state == Wrapping {
			r.complete(t, now)
		}
	case Wrapping:
		r.complete(t, now)
	default:
		return fmt.Errorf("%w: %s cannot complete", ErrWrongState, t)
	}
	return nil
}

func (r *Router) end(t *task, now time.Time) {
	if t.erased {
		// The customer was erased during the call: nothing to wrap up.
		r.release(t, ReasonErased, now)
		return
	}
	a := t.agent
	r.occupancy(a, now)
	a.load[t.Channel]--
	a.total--
	a.wrapping++
	t.state = Wrapping
	r.record(Event{At: now, Kind: TaskWrapping, TaskID: t.ID, Agent: a.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived})
	if w := t.q.spec.WrapUp; w > 0 {
		r.addTimer(&timer{at: now.Add(w), kind: timerWrapUp, task: t})
		r.refresh(a)
		return
	}
	r.complete(t, now)
}

// complete ends a wrapping task and frees its agent for the next.
func (r *Router) complete(t *task, now time.Time) { r.free(t, Completed, "", now) }

// Cancel ends a task that was not answered: the caller hung up while
// waiting (ReasonAbandoned), or the system gave up on it.
func (r *Router) Cancel(taskID uint64, reason string) error {
	now := r.lock()
	defer r.unlock()
	t, err := r.lookup(taskID)
	if err != nil {
		return err
	}
	if t.state != Pending && t.state != Reserved {
		return fmt.Errorf("%w: %s was answered; end it instead", ErrWrongState, t)
	}
	r.cancel(t, reason, now)
	return nil
}

// cancel ends a pending or reserved task unanswered; an offer of it is
// revoked, and its agent gets the next task.
func (r *Router) cancel(t *task, reason string, now time.Time) {
	a := t.agent
	if t.state == Reserved {
		r.outbox = append(r.outbox, notice{offer: t.offer(), revoke: true})
		a.offer = nil
		t.agent = nil
		r.refresh(a)
	} else {
		r.unpark(t)
	}
	t.q.waiting.remove(t.waitPos)
	r.finish(t, Canceled, reason, now)
	if a != nil {
		r.dispatchAgent(a, now)
	}
}

// EraseCustomer ends the tasks of a customer who has been erased (GDPR
// Art. 17), whatever their state, as canceled with ReasonErased: no agent
// is to go on working for a customer who no longer exists. A waiting task
// leaves its queue and an offer of it is revoked, as Cancel does; an
// agent who has taken a task or is wrapping it up is freed at once,
// without (further) wrap-up, as nothing about the customer may be
// recorded any more. A call in progress (an assigned voice task) is the
// exception: the caller is still on the line, so the call stays the
// agent's, and keeps their capacity, until it ends; End or Complete then
// cancels it the same way instead of wrapping up.
//
// From then on Enqueue refuses the customer's tasks with ErrErased: a
// contact that was being recorded while the customer was erased must not
// come back as a task afterwards. It returns the IDs of the tasks it
// ended, or marked to end with their call, in order. Customer 0 is no
// customer: tasks of unknown callers are nobody's.
func (r *Router) EraseCustomer(customerID uint64) []uint64 {
	if customerID == 0 {
		return nil
	}
	now := r.lock()
	defer r.unlock()
	r.erased[customerID] = true
	var ts []*task
	for _, t := range r.tasks {
		if t.CustomerID == customerID {
			ts = append(ts, t)
		}
	}
	// Waiting tasks first, then offered ones, then taken ones (the order
	// of the states): an agent freed by one of them is offered the next
	// task at once, and that must not be another of this customer's.
	slices.SortFunc(ts, func(a, b *task) int { return cmp.Or(cmp.Compare(a.state, b.state), cmp.Compare(a.ID, b.ID)) })
	var ids []uint64
	for _, t := range ts {
		ids = append(ids, t.ID)
		switch {
		case t.state == Pending || t.state == Reserved:
			r.cancel(t, ReasonErased, now)
		case t.state == Assigned && t.Channel == Voice:
			t.erased = true
		default: // assigned on another channel, or wrapping up
			r.release(t, ReasonErased, now)
		}
	}
	slices.Sort(ids)
	return ids
}

// MergeCustomer tells the router that customer from was merged into
// customer to, whose value tier is now tier: from's open tasks, to's,
// and any enqueued for either later (one identified just before the
// merge), are ranked at that tier until UnmergeCustomer. They stay
// from's tasks: erasing to ends them because erasure follows merges
// (EraseCustomer of each merged customer). It returns the tasks ranked
// anew.
func (r *Router) MergeCustomer(from, to uint64, tier int) []uint64 {
	if from == 0 || to == 0 || from == to {
		return nil
	}
	r.lock()
	defer r.unlock()
	r.merged[from] = to
	r.tiers[to] = tier
	return r.rerank()
}

// UnmergeCustomer undoes MergeCustomer: from and to are two customers
// again, at these tiers.
func (r *Router) UnmergeCustomer(from uint64, fromTier int, to uint64, toTier int) {
	r.lock()
	defer r.unlock()
	delete(r.merged, from)
	r.tiers[from], r.tiers[to] = fromTier, toTier
	r.rerank()
}

// rerank gives every waiting or offered task the priority its rank tier
// and its queue's settings give it now, after a merge, an unmerge or new
// settings, and returns those whose rank changed. A task taken is ranked
// again only should it come back (enter).
func (r *Router) rerank() []uint64 {
	var ids []uint64
	for _, t := range r.tasks {
		if t.state != Pending && t.state != Reserved {
			continue
		}
		if r.rank(t) {
			ids = append(ids, t.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// rank sets t's priority in its queue and its place among the queue's
// tasks: priority grows with waiting at one rate per queue, so key, the
// priority projected to time zero, orders them for good. It reports
// whether either changed.
func (r *Router) rank(t *task) bool {
	prio := r.basePrio(t)
	key := prio - t.q.rate*float64(t.Arrived.UnixNano())/1e9
	if prio == t.prio && key == t.key {
		return false
	}
	t.prio, t.key = prio, key
	if t.parked == parkedInClass {
		t.class.tasks.fix(t.heapPos)
	}
	return true
}

// rankTier is the value tier t is ranked at: the higher of its own and
// the one the last merge or unmerge left the customer with whom t's
// customer is now (through merges).
func (r *Router) rankTier(t *task) int {
	customer := t.CustomerID
	// A chain of merges is short; the bound only guards against a cycle.
	for range 64 {
		to, merged := r.merged[customer]
		if !merged {
			break
		}
		customer = to
	}
	return max(t.ValueTier, r.tiers[customer])
}

// release frees the agent of an assigned or wrapping task at once and
// cancels the task, without wrap-up.
func (r *Router) release(t *task, reason string, now time.Time) { r.free(t, Canceled, reason, now) }

// free ends an assigned or wrapping task in state s and frees its agent,
// who gets the next task.
func (r *Router) free(t *task, s State, reason string, now time.Time) {
	a := t.agent
	r.letGo(a, t, now)
	r.finish(t, s, reason, now)
	r.refresh(a)
	r.dispatchAgent(a, now)
}

// letGo takes an assigned or wrapping task off a's hands: a's capacity
// or wrap-up is free again, and a idle from now.
func (r *Router) letGo(a *agent, t *task, now time.Time) {
	r.occupancy(a, now)
	if t.state == Assigned {
		a.load[t.Channel]--
		a.total--
	} else {
		a.wrapping--
	}
	a.idleSince = now.UnixNano()
	delete(a.tasks, t.ID)
}

// finish records t's terminal state and forgets it.
func (r *Router) finish(t *task, s State, reason string, now time.Time) {
	t.state = s
	e := Event{At: now, Kind: TaskCanceled, TaskID: t.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived, Reason: reason, Answered: t.answered}
	if t.agent != nil { // it completed the task, or had it when it was erased
		e.Agent = t.agent.spec.ID
	}
	if s == Completed {
		e.Kind, e.Since = TaskCompleted, t.assigned
	}
	r.record(e)
	delete(r.tasks, t.ID)
}

// SetPresence changes an agent's presence. Going away or offline returns
// an outstanding offer to the queue (not counted as missed) and releases
// tasks waiting for this agent in particular.
func (r *Router) SetPresence(agentID string, p Presence, reason string) error {
	now := r.lock()
	defer r.unlock()
	a, err := r.agent(agentID)
	if err != nil {
		return err
	}
	r.setPresence(a, p, reason, now)
	return nil
}

func (r *Router) setPresence(a *agent, p Presence, reason string, now time.Time) {
	if p != Away {
		reason = ""
	}
	if a.presence == p && a.reason == reason {
		return
	}
	r.occupancy(a, now)
	a.presence, a.reason = p, reason
	r.record(Event{At: now, Kind: PresenceChanged, Agent: a.spec.ID, Presence: p, Reason: reason})
	if p == Available {
		a.missed = 0
		a.idleSince = now.UnixNano()
		r.refresh(a)
		r.dispatchAgent(a, now)
		return
	}
	withdrawn := r.withdrawOffer(a, "agent "+p.String(), now)
	var released []*task
	if p == Offline {
		released = r.stopWaitingFor(a, func(*task) bool { return true })
	}
	r.refresh(a)
	r.dispatchAll(released, withdrawn, now)
}

// stopWaitingFor takes the tasks waiting for a in particular that drop
// picks off a's list: they wait for anyone from then on. The caller
// dispatches them (dispatchAll) once a's own state is settled.
func (r *Router) stopWaitingFor(a *agent, drop func(*task) bool) []*task {
	var out []*task
	for _, t := range slices.Clone(a.preferred) {
		if drop(t) {
			r.unpark(t)
			t.waitFor = nil
			out = append(out, t)
		}
	}
	return out
}

// dispatchAll offers tasks an agent let go of to whoever is free, best
// first (queue order: priority, then arrival), so that a free agent gets
// the one that waited longest: those that waited for the agent in
// particular, and the one whose offer was withdrawn (nil for none),
// which moves on instead when its max wait passed during the offer.
func (r *Router) dispatchAll(released []*task, withdrawn *task, now time.Time) {
	if withdrawn != nil && withdrawn.expired {
		r.overflow(withdrawn, now)
		withdrawn = nil
	}
	if withdrawn != nil {
		released = append(released, withdrawn)
	}
	slices.SortFunc(released, func(x, y *task) int {
		switch {
		case taskLess(x, y):
			return -1
		case taskLess(y, x):
			return 1
		}
		return 0
	})
	for _, t := range released {
		r.dispatchTask(t, now)
	}
}

// withdrawOffer takes back a's outstanding offer, if any, without counting
// it as missed, and returns the task, pending again, for the caller to
// dispatch once a's own state is settled. A task that waited for a in
// particular waits for anyone now: a went away, offline or changed.
func (r *Router) withdrawOffer(a *agent, reason string, now time.Time) *task {
	t := a.offer
	if t == nil {
		return nil
	}
	r.outbox = append(r.outbox, notice{offer: t.offer(), revoke: true})
	r.unoffer(t, OfferTimedOut, reason, now)
	return t
}

// unoffer ends t's offer to its agent, whom it returns, recording kind
// for reason: t is pending again, and no longer waits for that agent in
// particular, who passed it or went.
func (r *Router) unoffer(t *task, kind EventKind, reason string, now time.Time) *agent {
	a := t.agent
	a.offer = nil
	t.agent = nil
	t.state = Pending
	if t.waitFor == a {
		t.waitFor = nil
	}
	r.record(Event{At: now, Kind: kind, TaskID: t.ID, Agent: a.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived, Reason: reason})
	return a
}
