package router

// Unfinished is a task that was open when the previous process ended.
type Unfinished struct {
	Task
	// Agent had accepted the task; it is offered to them first again.
	Agent string
	// Answered: the task was answered before (it has an Agent, or the
	// TaskCreated it was last queued with says so), and statistics count
	// only that answer.
	Answered bool `json:",omitempty"`
	// Closed: its chat ended while Agent had it (ConversationEnded); taken
	// again, it stays with whoever takes it.
	Closed bool `json:",omitempty"`
}

// Recover brings the router back after a restart. history (the journal
// since local midnight or earlier) restores the statistics. Each
// unfinished task is queued again with its original arrival time, its
// previous agent first, except calls: their callers are gone with the
// process, so they are canceled with ReasonSystem. Offers of the old
// process are not restored; tasks simply wait to be offered again. A
// task of a customer erased since the open tasks were read is canceled
// as erased. Call Recover once, before any other task is enqueued.
func (r *Router) Recover(history []Event, open []Unfinished) (requeued, canceled int) {
	now := r.lock()
	defer r.unlock()
	for _, e := range history {
		r.stats.apply(e)
	}
	for _, u := range open {
		q, known := r.queues[u.Queue]
		if u.Channel == Voice || !q.takes(u.Channel) || r.tasks[u.ID] != nil {
			if !known {
				r.deps.Logger.Warn("unfinished task's queue is gone; canceling", "task", u.ID, "queue", u.Queue)
			}
			r.record(Event{At: now, Kind: TaskCanceled, TaskID: u.ID, Queue: u.Queue, Channel: u.Channel, Arrived: u.Arrived, Reason: ReasonSystem})
			canceled++
			continue
		}
		if r.erased[u.CustomerID] {
			r.record(Event{At: now, Kind: TaskCanceled, TaskID: u.ID, Queue: u.Queue, Channel: u.Channel, Arrived: u.Arrived, Reason: ReasonErased})
			canceled++
			continue
		}
		if u.Agent != "" {
			u.PreferredAgent = u.Agent
		}
		t := newTask(u.Task)
		t.answered, t.closed = u.Answered || u.Agent != "", u.Closed
		r.add(t, q, ReasonRecovered, now)
		requeued++
	}
	return requeued, canceled
}

// UnfinishedFrom is the inverse of the journal for one task: what a
// TaskCreated event says about it, for the index of open tasks.
func UnfinishedFrom(e Event) Unfinished {
	return Unfinished{Task: Task{
		ID: e.TaskID, Channel: e.Channel, Queue: e.Queue, CustomerID: e.Customer,
		ValueTier: e.Tier, Repeat: e.Repeat, PreferredAgent: e.Preferred, Arrived: e.Arrived,
	}, Answered: e.Answered, Closed: e.Closed}
}
