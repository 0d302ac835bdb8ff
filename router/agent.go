package router

// SetAgent adds an agent or changes an existing one's skills and
// capacity, as an admin does from the wallboard or a reloaded
// configuration. Tasks in progress stay; an agent now over a capacity
// gets no more of that channel until below it. An agent freed by the
// change gets the best waiting task at once.
func (r *Router) SetAgent(spec AgentSpec) error {
	now := r.lock()
	defer r.unlock()
	a, ok := r.agents[spec.ID]
	if !ok {
		return r.addAgent(spec)
	}
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
	// An offer the agent could no longer accept goes back to the queue.
	var withdrawn *task
	if t := a.offer; t != nil {
		if _, qualified := t.class.score[ac]; !qualified || a.load[t.Channel] >= spec.Capacity[t.Channel] {
			withdrawn = r.withdrawOffer(a, "agent changed", now)
		}
	}
	r.refresh(a)
	if withdrawn != nil {
		r.dispatchTask(withdrawn, now)
	}
	r.dispatchAgent(a, now)
	return nil
}
