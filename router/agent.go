package router

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// SetAgent adds an agent or changes an existing one's skills and
// capacity, as an admin does from the wallboard or a reloaded
// configuration. Tasks in progress stay; an agent now over a capacity
// gets no more of that channel until below it. An agent freed by the
// change gets the best waiting task at once.
// An agent RemoveAgent took out comes back, offline.
func (r *Router) SetAgent(spec AgentSpec) error {
	now := r.lock()
	defer r.unlock()
	a, ok := r.agents[spec.ID]
	if !ok {
		return r.addAgent(spec)
	}
	if err := r.setAgent(a, spec, now); err != nil {
		return err
	}
	a.removed = false
	return nil
}

// SetAgentSkills changes an agent's skills and keeps the capacities the
// router has for them, as the desk's admin page does: a spec read before
// a reload must not undo the reload's capacities, nor bring back an agent
// it removed.
func (r *Router) SetAgentSkills(agentID string, skills map[string]int) error {
	now := r.lock()
	defer r.unlock()
	a, err := r.agent(agentID)
	if err != nil {
		return err
	}
	spec := a.spec
	spec.Skills = maps.Clone(skills)
	return r.setAgent(a, spec, now)
}

// RemoveAgent takes an agent out of routing, as a reloaded configuration
// without them does: they go offline, an offer out to them goes back to
// the queue and tasks waiting for them in particular wait for anyone.
// The mails and chats they had taken wait again, with their arrival
// time, for anyone (TaskReturned): nobody could answer them otherwise; a
// chat that ended with them (ConversationEnded) wraps up. Their calls go
// on until they end, and a task in wrap-up completes. From
// then on they are offered nothing, cannot change presence and are not
// among Agents.
func (r *Router) RemoveAgent(agentID string) error {
	now := r.lock()
	defer r.unlock()
	a, err := r.agent(agentID)
	if err != nil {
		return err
	}
	a.removed = true // before anything is dispatched: nothing may wait for a
	r.setPresence(a, Offline, "", now)
	// Offline already, setPresence let go of nothing: a task queued again
	// after a restart waits for its agent even while they are offline.
	r.dispatchAll(r.stopWaitingFor(a, func(*task) bool { return true }), nil, now)
	for _, t := range heldBy(a) {
		switch {
		case returnable(t):
			r.giveBack(a, t, "agent removed", now)
		case t.closed && t.state == Assigned:
			// An ended chat has nothing left but the wrap-up, which
			// nobody else can do: it wraps up for the queue's time.
			r.end(t, now)
		}
	}
	return nil
}

// ReturnTask puts a mail or chat its agent has taken back into its queue,
// as a supervisor does for an agent who cannot answer it (going home,
// swamped): it waits again with its arrival time, for the others first
// (its agent is not offered it again for routing.retry_delay), and its
// customer's first answer stays the one counted. agentID must hold it
// (the supervisor saw it with them; it may have changed hands since). A
// call, a task not taken, or a chat that ended with its agent cannot be
// returned: ErrWrongState.
func (r *Router) ReturnTask(taskID uint64, agentID, reason string) error {
	now := r.lock()
	defer r.unlock()
	t, err := r.lookup(taskID)
	if err != nil {
		return err
	}
	if t.closed && t.state == Assigned {
		return fmt.Errorf("%w: %s: the chat has ended; its agent wraps it up", ErrWrongState, t)
	}
	if !returnable(t) {
		return fmt.Errorf("%w: %s cannot go back to the queue: only a mail or chat taken can", ErrWrongState, t)
	}
	if t.agent.spec.ID != agentID {
		return fmt.Errorf("%w: %s is not %s's", ErrWrongState, t, agentID)
	}
	a := t.agent
	r.exclude(a, t, now)
	r.giveBack(a, t, reason, now)
	r.refresh(a)
	r.dispatchAgent(a, now)
	return nil
}

// returnable: a mail or chat an agent has taken, not a chat that ended
// with them; a call cannot change hands in the router.
func returnable(t *task) bool { return t.state == Assigned && t.Channel != Voice && !t.closed }

// heldBy is what a holds, taken or in wrap-up, oldest first.
func heldBy(a *agent) []*task {
	held := slices.Collect(maps.Values(a.tasks))
	slices.SortFunc(held, func(x, y *task) int { return cmp.Compare(x.seq, y.seq) })
	return held
}

// giveBack takes a task off its agent's hands and queues it again
// (TaskReturned, then TaskCreated with ReasonReturned).
func (r *Router) giveBack(a *agent, t *task, reason string, now time.Time) {
	r.letGo(a, t, now)
	t.agent = nil
	// It waits for nobody in particular: not the agent it had before a
	// restart, nor (as the customer's previous agent) the one it left.
	t.recovered = false
	if t.PreferredAgent == a.spec.ID {
		t.PreferredAgent = ""
	}
	r.record(Event{At: now, Kind: TaskReturned, TaskID: t.ID, Agent: a.spec.ID, Queue: t.Queue, Channel: t.Channel, Arrived: t.Arrived, Reason: reason})
	r.enter(t, t.q, ReasonReturned, now)
}

// agent is the routed agent with that ID: ErrUnknownAgent for one never
// configured or removed.
func (r *Router) agent(id string) (*agent, error) {
	a, ok := r.agents[id]
	if !ok || a.removed {
		return nil, fmt.Errorf("%w %q", ErrUnknownAgent, id)
	}
	return a, nil
}

func (r *Router) setAgent(a *agent, spec AgentSpec, now time.Time) error {
	ac, err := r.classFor(spec)
	if err != nil {
		return err
	}
	// Take the agent out of its old class's free structures before the
	// class and capacities that place it there change.
	presence := a.presence
	a.presence = Offline
	r.refresh(a)
	a.presence = presence
	a.class, a.spec = ac, spec
	// An offer the agent could no longer accept goes back to the queue,
	// and tasks waiting for them that they no longer qualify for, or no
	// longer take the channel of, wait for anyone.
	var withdrawn *task
	if t := a.offer; t != nil && (!qualified(a, t) || a.load[t.Channel] >= spec.Capacity[t.Channel]) {
		withdrawn = r.withdrawOffer(a, "agent changed", now)
	}
	released := r.stopWaitingFor(a, func(t *task) bool { return !mayWaitFor(a, t) })
	r.refresh(a)
	// The agent first: freed by the change, it takes the best task it
	// can; a task it let go of may move to a queue where it is that.
	r.dispatchAgent(a, now)
	r.dispatchAll(released, withdrawn, now)
	return nil
}
