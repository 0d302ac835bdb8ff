package router

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// checkInvariants verifies what must hold between any two operations.
func (r *Router) checkInvariants(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.byOrder {
		for ch := range numChannels {
			if a.inFree[ch] != r.freeFor(a, ch) {
				return fmt.Errorf("agent %s: free index for %s stale", a.spec.ID, ch)
			}
		}
		if a.offer != nil && (a.offer.state != Reserved || a.offer.agent != a) {
			return fmt.Errorf("agent %s holds an offer of %s", a.spec.ID, a.offer)
		}
		// Capacity in use is exactly the agent's tasks in progress.
		var load [numChannels]int
		wrapping := 0
		for _, t := range a.tasks {
			switch {
			case r.tasks[t.ID] != t || t.agent != a:
				return fmt.Errorf("agent %s holds %s, which is not its own", a.spec.ID, t)
			case t.state == Assigned:
				load[t.Channel]++
			case t.state == Wrapping:
				wrapping++
			default:
				return fmt.Errorf("agent %s holds %s", a.spec.ID, t)
			}
		}
		if a.removed && load[Email]+load[Message] > 0 {
			return fmt.Errorf("agent %s, removed, holds mail or chats: %v", a.spec.ID, load)
		}
		if load != a.load || wrapping != a.wrapping || a.total != load[Voice]+load[Email]+load[Message] {
			return fmt.Errorf("agent %s: load %v, wrapping %d, total %d, but holds %v and %d wrapping", a.spec.ID, a.load, a.wrapping, a.total, load, wrapping)
		}
	}
	for _, t := range r.tasks {
		switch t.state {
		case Reserved:
			if t.agent == nil || t.agent.offer != t {
				return fmt.Errorf("%s reserved but its agent does not hold the offer", t)
			}
		case Pending:
			if t.parked == parkedNowhere {
				return fmt.Errorf("%s pending but parked nowhere", t)
			}
			if t.expired {
				return fmt.Errorf("%s pending past its max wait", t)
			}
			// Waiting for an agent in particular ends with the window, and
			// at once when the agent is removed, or goes offline (a task
			// queued again after a restart waits for its agent offline).
			if a := t.waitFor; a != nil && (a.removed || a.presence == Offline && !t.recovered || !now.Before(t.waitUntil) || !qualified(a, t) || a.spec.Capacity[t.Channel] == 0) {
				return fmt.Errorf("%s waits for %s (%v, removed: %v) until %v", t, a.spec.ID, a.presence, a.removed, t.waitUntil)
			}
			// Work conservation: no free agent could take a waiting task.
			if a := r.bestAgent(t, now); a != nil {
				return fmt.Errorf("%s waits while %s is free for it", t, a.spec.ID)
			}
		case Completed, Canceled:
			return fmt.Errorf("%s is terminal but still tracked", t)
		}
	}
	// Each class's waiting tasks are a heap in priority order.
	for _, tc := range r.tclasses {
		for i, t := range tc.tasks.items {
			if t.heapPos != i || t.parked != parkedInClass {
				return fmt.Errorf("%s at %d of its class's heap thinks it is at %d", t, i, t.heapPos)
			}
			if i > 0 && taskLess(t, tc.tasks.items[(i-1)/2]) {
				return fmt.Errorf("%s comes before its parent in its class's heap", t)
			}
		}
	}
	return nil
}

func randomConfig(rng *rand.Rand) Config {
	skills := []string{"s0", "s1", "s2", "s3"}
	cfg := Config{
		Skills: skills, OfferTimeout: 15 * time.Second, MaxMissedOffers: 3, RetryDelay: 5 * time.Second,
		VoiceBlocksOthers: true, TierWeight: 2, RepeatBoost: 3, AgingPerMinute: 0.5,
	}
	for i := range 12 {
		sk := map[string]int{}
		for _, s := range skills {
			if rng.IntN(2) == 0 {
				sk[s] = 1 + rng.IntN(5)
			}
		}
		cfg.Agents = append(cfg.Agents, AgentSpec{ID: fmt.Sprintf("a%d", i), Skills: sk, Capacity: cap3(1, rng.IntN(4), rng.IntN(3))})
	}
	for i := range 5 {
		q := QueueSpec{
			Name:                  fmt.Sprintf("q%d", i),
			Skills:                map[string]int{skills[i%4]: 1 + rng.IntN(3)},
			Channels:              []Channel{Voice, Email, Message},
			Priority:              float64(rng.IntN(3)),
			Strategy:              Strategy(i),
			ServiceLevelThreshold: 20 * time.Second,
			WrapUp:                time.Duration(rng.IntN(3)) * 10 * time.Second,
			LastAgentWait:         20 * time.Second,
		}
		if i > 0 {
			q.MaxWait = 3 * time.Minute
			q.OverflowQueue = "q0"
			q.Widening = []WideningStep{{After: time.Minute, Skills: map[string]int{skills[i%4]: 1}}}
		}
		cfg.Queues = append(cfg.Queues, q)
	}
	return cfg
}

// TestRandomOperations drives the router with random operations and checks
// the invariants after each, then drains it and checks the journal. The
// clock moves with or without a Tick, so operations also meet deadlines
// that fell due since the router last looked.
func TestRandomOperations(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			cfg := randomConfig(rng)
			h := newHarness(t, cfg)
			offers := map[uint64]Offer{}
			removed := map[string]bool{} // agents taken out by RemoveAgent
			var fifoErr error
			h.r.deps.OnOffer = func(o Offer) {
				if _, dup := offers[o.TaskID]; dup {
					fifoErr = fmt.Errorf("task %d offered twice at once", o.TaskID)
				}
				if removed[o.Agent] {
					fifoErr = fmt.Errorf("task %d offered to %s, who was removed", o.TaskID, o.Agent)
				}
				offers[o.TaskID] = o
			}
			// The FIFO check runs inside the router, at the moment of each
			// offer, through the journal.
			h.r.deps.Journal = journalFunc(func(e Event) {
				h.journal.Record(e)
				if err := h.r.checkAtEvent(e); err != nil && fifoErr == nil {
					fifoErr = err
				}
			})
			h.r.deps.OnRevoke = func(o Offer) { delete(offers, o.TaskID) }
			// settled is when the router last read the clock: it has
			// handled every deadline up to then, and the state is that
			// of then until the next operation.
			settled := h.now
			h.r.deps.Now = func() time.Time { settled = h.now; return h.now }
			// onTask is for an operation on a task chosen from what the
			// router said before the clock moved: a deadline due since
			// may have ended the task or its offer first.
			onTask := func(op func() error) error {
				stale := h.now.After(settled)
				err := op()
				if stale && (errors.Is(err, ErrUnknownTask) || errors.Is(err, ErrWrongState)) {
					return err
				}
				h.must(err)
				return nil
			}
			var nextID uint64
			erased := map[uint64]bool{}      // tasks ended by an erasure
			customers := map[uint64]uint64{} // task → customer (0: nobody's)
			var gone []uint64                // erased customers
			// New tasks come from these customers (0: nobody's); an erased
			// one is replaced by a new one, so that tasks keep arriving.
			slots := make([]uint64, 30)
			for i := range slots {
				slots[i] = uint64(i)
			}
			fresh := uint64(len(slots))
			step := func(op int) {
				switch op {
				case 0, 1, 2:
					nextID++
					q := cfg.Queues[rng.IntN(len(cfg.Queues))]
					task := Task{ID: nextID, Queue: q.Name, Channel: Channel(rng.IntN(3)), ValueTier: rng.IntN(3), Repeat: rng.IntN(5) == 0, CustomerID: slots[rng.IntN(len(slots))]}
					if rng.IntN(4) == 0 {
						task.PreferredAgent = cfg.Agents[rng.IntN(len(cfg.Agents))].ID
					}
					if len(gone) > 0 && rng.IntN(20) == 0 { // now and then, one of an erased customer
						task.CustomerID = gone[rng.IntN(len(gone))]
						if err := h.r.Enqueue(task); !errors.Is(err, ErrErased) {
							t.Fatalf("task of erased customer %d: %v", task.CustomerID, err)
						}
						nextID--
						return
					}
					customers[task.ID] = task.CustomerID
					h.must(h.r.Enqueue(task))
				case 3:
					a := cfg.Agents[rng.IntN(len(cfg.Agents))].ID
					err := h.r.SetPresence(a, []Presence{Offline, Available, Available, Away}[rng.IntN(4)], "break")
					if removed[a] != errors.Is(err, ErrUnknownAgent) || err != nil && !removed[a] {
						t.Fatalf("presence of %s (removed: %v): %v", a, removed[a], err)
					}
				case 4, 5:
					for _, id := range sortedIDs(offers) {
						o := offers[id]
						delete(offers, id)
						if rng.IntN(4) == 0 {
							onTask(func() error { return h.r.Decline(id, o.Agent) })
						} else {
							onTask(func() error { return h.r.Accept(id, o.Agent) })
						}
						break
					}
				case 6:
					for _, id := range h.r.taskIDs(Assigned) {
						onTask(func() error { return h.r.End(id) })
						break
					}
				case 7:
					for _, id := range h.r.taskIDs(Wrapping) {
						onTask(func() error { return h.r.Complete(id, h.r.holder(id)) })
						break
					}
				case 8:
					for _, id := range h.r.taskIDs(Pending, Reserved) {
						delete(offers, id)
						onTask(func() error { return h.r.Cancel(id, ReasonAbandoned) })
						break
					}
				case 9:
					d := time.Duration(rng.IntN(30_000)) * time.Millisecond
					if rng.IntN(2) == 0 {
						h.advance(d)
					} else {
						h.now = h.now.Add(d) // no Tick: the next operation handles what falls due
					}
				case 10:
					spec := cfg.Agents[rng.IntN(len(cfg.Agents))]
					spec.Capacity = cap3(1, rng.IntN(4), rng.IntN(3))
					spec.Skills = map[string]int{cfg.Skills[rng.IntN(len(cfg.Skills))]: 1 + rng.IntN(5)}
					h.must(h.r.SetAgent(spec))
					delete(removed, spec.ID)
				case 11:
					if ids := h.r.taskIDs(Pending, Reserved, Assigned, Wrapping); len(ids) > 0 {
						c := customers[ids[rng.IntN(len(ids))]]
						if c == 0 {
							break
						}
						gone = append(gone, c)
						for i := range slots {
							if slots[i] == c {
								slots[i], fresh = fresh, fresh+1
							}
						}
						for _, id := range h.r.EraseCustomer(c) {
							delete(offers, id)
							erased[id] = true
						}
						for id, tk := range h.r.tasks {
							if customers[id] == c && (tk.state != Assigned || tk.Channel != Voice) {
								t.Fatalf("task %d of erased customer %d is still %s", id, c, tk.state)
							}
						}
					}
				case 12: // a merge: the customer of one slot becomes part of another's
					from, to := slots[rng.IntN(len(slots))], slots[rng.IntN(len(slots))]
					if from == 0 || to == 0 || from == to {
						break
					}
					h.r.MergeCustomer(from, to, rng.IntN(3))
					for i := range slots {
						if slots[i] == from {
							slots[i], fresh = fresh, fresh+1
						}
					}
				case 13: // now and then, an agent removed by a reload
					if rng.IntN(3) > 0 {
						break
					}
					a := cfg.Agents[rng.IntN(len(cfg.Agents))].ID
					if err := h.r.RemoveAgent(a); removed[a] != errors.Is(err, ErrUnknownAgent) || err != nil && !removed[a] {
						t.Fatalf("removing %s (removed: %v): %v", a, removed[a], err)
					}
					removed[a] = true
				case 14: // now and then, settings reloaded
					if rng.IntN(3) > 0 {
						break
					}
					next := cfg
					next.Queues = slices.Clone(cfg.Queues)
					next.VoiceBlocksOthers = rng.IntN(2) == 0
					next.TierWeight, next.RepeatBoost, next.AgingPerMinute = float64(rng.IntN(5)), float64(rng.IntN(5)), float64(rng.IntN(3))/2
					next.OfferTimeout = time.Duration(5+rng.IntN(40)) * time.Second
					next.RetryDelay = time.Duration(1+rng.IntN(10)) * time.Second
					next.MaxMissedOffers = rng.IntN(4)
					for i := range next.Queues {
						q := &next.Queues[i]
						q.Priority, q.Strategy = float64(rng.IntN(3)), Strategy(rng.IntN(5))
						q.LastAgentWait = time.Duration(rng.IntN(40)) * time.Second
						q.WrapUp = time.Duration(rng.IntN(3)) * 10 * time.Second
						// Not the service-level threshold: live statistics
						// would count with both, Recompute with one.
						if i > 0 {
							q.MaxWait = time.Duration(rng.IntN(4)) * time.Minute
							q.OverflowQueue = []string{"", "q0"}[rng.IntN(2)]
						}
					}
					h.must(h.r.SetSettings(next))
				case 15: // a supervisor returns a taken task to its queue, or a chat ends
					for _, id := range h.r.taskIDs(Assigned) {
						tk := h.r.tasks[id]
						if tk.Channel == Message && !tk.closed && rng.IntN(3) == 0 {
							onTask(func() error { return h.r.ConversationEnded(id) })
						}
						if tk.Channel == Voice || tk.closed {
							if err := h.r.ReturnTask(id, h.r.holder(id), "by a supervisor"); !errors.Is(err, ErrWrongState) && !errors.Is(err, ErrUnknownTask) {
								t.Fatalf("%s returned: %v", tk, err)
							}
							continue
						}
						onTask(func() error { return h.r.ReturnTask(id, h.r.holder(id), "by a supervisor") })
						break
					}
				}
			}
			for range 1500 {
				step(rng.IntN(16))
				if err := h.r.checkInvariants(settled); err != nil {
					t.Fatal(err)
				}
				if fifoErr != nil { // with the events that led there
					for _, e := range h.journal.events[max(0, len(h.journal.events)-40):] {
						t.Logf("%v %v task %d agent %s %q", e.At.Format("15:04:05.000"), e.Kind, e.TaskID, e.Agent, e.Reason)
					}
					t.Fatal(fifoErr)
				}
			}
			// Three steps in sixteen bring a task; erasures must not starve
			// the run of them.
			if len(customers) < 220 {
				t.Fatalf("only %d tasks in 1,500 steps", len(customers))
			}
			// Drain: every agent not removed available, every offer
			// accepted, every task done.
			available := func() {
				for _, a := range cfg.Agents {
					if !removed[a.ID] {
						h.must(h.r.SetPresence(a.ID, Available, ""))
					}
				}
			}
			available()
			for range 5000 {
				for _, id := range sortedIDs(offers) {
					h.must(h.r.Accept(id, offers[id].Agent))
					delete(offers, id)
				}
				for _, id := range h.r.taskIDs(Assigned, Wrapping) {
					h.must(h.r.Complete(id, h.r.holder(id)))
				}
				h.advance(4 * time.Second) // within the shortest offer timeout
				available()
				if len(h.r.taskIDs(Pending, Reserved, Assigned, Wrapping)) == 0 {
					break
				}
			}
			// Tasks no agent (not removed) is qualified for wait until their
			// callers give up.
			for _, id := range h.r.taskIDs(Pending) {
				tk := h.r.tasks[id]
				for _, a := range h.r.byOrder {
					if !a.removed && qualified(a, tk) && a.spec.Capacity[tk.Channel] > 0 {
						t.Fatalf("%s still waits, though %s is qualified and available", tk, a.spec.ID)
					}
				}
				h.must(h.r.Cancel(id, ReasonAbandoned))
			}
			if left := h.r.taskIDs(Pending, Reserved, Assigned, Wrapping); len(left) > 0 {
				t.Fatalf("tasks never finished: %v", left)
			}
			checkJournal(t, h.journal.events, nextID)
			// An erased task ends as erased, a call in progress when it ends.
			for _, e := range h.journal.events {
				if erased[e.TaskID] && (e.Kind == TaskCompleted || e.Kind == TaskCanceled) && e.Reason != ReasonErased {
					t.Errorf("erased task %d ended %v %q", e.TaskID, e.Kind, e.Reason)
				}
			}
			live := h.r.Stats()
			recomputed := Recompute(cfg, h.journal.events, h.now)
			for i := range live {
				live[i].Waiting, live[i].LongestWait = 0, 0
				if !reflect.DeepEqual(live[i], recomputed[i]) {
					t.Errorf("queue %s: live %+v, recomputed from the journal %+v", live[i].Queue, live[i], recomputed[i])
				}
			}
		})
	}
}

// checkJournal: events are in time order, every task ends in exactly one
// terminal state, with nothing after it, and the statistics see each task
// offered and answered once: an assignment or queue entry after the first
// answer is marked as such.
func checkJournal(t *testing.T, events []Event, tasks uint64) {
	t.Helper()
	ended := map[uint64]EventKind{}
	answered := map[uint64]bool{}
	for i, e := range events {
		switch {
		case e.Kind == TaskAssigned && answered[e.TaskID] != (e.Reason == ReasonAnsweredBefore):
			t.Fatalf("event %d: task %d assigned (%q), answered before: %v", i, e.TaskID, e.Reason, answered[e.TaskID])
		case e.Kind == TaskCreated && e.Answered != answered[e.TaskID]:
			t.Fatalf("event %d: task %d queued with answered %v, answered before: %v", i, e.TaskID, e.Answered, answered[e.TaskID])
		case e.Kind == TaskCanceled && e.Answered != answered[e.TaskID]: // an abandon after an answer is not counted
			t.Fatalf("event %d: task %d canceled (%q) with answered %v, answered before: %v", i, e.TaskID, e.Reason, e.Answered, answered[e.TaskID])
		case e.Kind == TaskAssigned:
			answered[e.TaskID] = true
		}
		if i > 0 && e.At.Before(events[i-1].At) {
			t.Fatalf("event %d (%v of task %d) at %v, before the one ahead of it at %v", i, e.Kind, e.TaskID, e.At, events[i-1].At)
		}
		if e.TaskID == 0 {
			continue
		}
		if k, done := ended[e.TaskID]; done {
			t.Fatalf("task %d: %v after terminal %v", e.TaskID, e.Kind, k)
		}
		if e.Kind == TaskCompleted || e.Kind == TaskCanceled {
			ended[e.TaskID] = e.Kind
		}
	}
	for id := uint64(1); id <= tasks; id++ {
		if _, ok := ended[id]; !ok {
			t.Errorf("task %d has no terminal event", id)
		}
	}
}

type journalFunc func(Event)

func (f journalFunc) Record(e Event) { f(e) }

// checkAtEvent runs under the router's lock as the offer is recorded: no
// better task of the same class that the agent could take is still
// waiting (unless the offered task waited for this agent in particular).
// When a task is assigned, the agent is within its capacity (an admin
// may lower a capacity below the load; the router never assigns above).
func (r *Router) checkAtEvent(e Event) error {
	if e.Kind == TaskAssigned {
		a := r.agents[e.Agent]
		if a.load[e.Channel] > a.spec.Capacity[e.Channel] {
			return fmt.Errorf("agent %s assigned over %s capacity: %d > %d", a.spec.ID, e.Channel, a.load[e.Channel], a.spec.Capacity[e.Channel])
		}
	}
	if e.Kind != TaskOffered {
		return nil
	}
	t := r.tasks[e.TaskID]
	if r.erased[t.CustomerID] {
		return fmt.Errorf("%s of erased customer %d offered to %s", t, t.CustomerID, e.Agent)
	}
	if t.waitFor == t.agent {
		return nil
	}
	for _, other := range t.class.tasks.items {
		if taskLess(other, t) && offerable(t.agent, other, e.At) {
			return fmt.Errorf("%s offered to %s while better %s waits in its class (at %v)", t, e.Agent, other, e.At)
		}
	}
	return nil
}

func sortedIDs(m map[uint64]Offer) []uint64 { return slices.Sorted(maps.Keys(m)) }

func (r *Router) taskIDs(states ...State) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	for id, t := range r.tasks {
		if slices.Contains(states, t.state) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
