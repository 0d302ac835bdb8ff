package router

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// memJournal keeps events in memory, in order.
type memJournal struct{ events []Event }

func (j *memJournal) Record(e Event) { j.events = append(j.events, e) }

// harness is a router on a clock the test moves.
type harness struct {
	t       *testing.T
	r       *Router
	now     time.Time
	journal *memJournal
	offers  []Offer
	revoked []Offer
}

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, now: t0, journal: &memJournal{}}
	r, err := New(cfg, Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Now:      func() time.Time { return h.now },
		Journal:  h.journal,
		OnOffer:  func(o Offer) { h.offers = append(h.offers, o) },
		OnRevoke: func(o Offer) { h.revoked = append(h.revoked, o) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	return h
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.r.Tick()
}

func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// takeOffer returns the only new offer since the last call, or fails.
func (h *harness) takeOffer() Offer {
	h.t.Helper()
	if len(h.offers) != 1 {
		h.t.Fatalf("want exactly one new offer, got %+v", h.offers)
	}
	o := h.offers[0]
	h.offers = nil
	return o
}

// wantOffer takes the only new offer and fails unless it is task's to
// agent; why says what the test expects of it.
func (h *harness) wantOffer(task uint64, agent, why string) {
	h.t.Helper()
	if o := h.takeOffer(); o.TaskID != task || o.Agent != agent {
		if why != "" {
			why = ": " + why
		}
		h.t.Fatalf("offer %+v, want task %d to %s%s", o, task, agent, why)
	}
}

// acceptOffers has agent accept the next n offers, one at a time, and
// returns their tasks in order.
func (h *harness) acceptOffers(n int, agent string) []uint64 {
	h.t.Helper()
	var order []uint64
	for range n {
		o := h.takeOffer()
		order = append(order, o.TaskID)
		h.must(h.r.Accept(o.TaskID, agent))
	}
	return order
}

// holder is the agent who holds a task now; "" for none.
func (r *Router) holder(taskID uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.tasks[taskID]; t != nil && t.agent != nil {
		return t.agent.spec.ID
	}
	return ""
}

func (h *harness) noOffer() {
	h.t.Helper()
	if len(h.offers) != 0 {
		h.t.Fatalf("want no offer, got %+v", h.offers)
	}
}

func (h *harness) enqueue(id uint64, queue string, ch Channel) {
	h.t.Helper()
	h.must(h.r.Enqueue(Task{ID: id, Queue: queue, Channel: ch}))
}

// taskEvents are the journal's events of task id from the from-th on.
func (h *harness) taskEvents(id uint64, from int) []Event {
	var out []Event
	for _, e := range h.journal.events[from:] {
		if e.TaskID == id {
			out = append(out, e)
		}
	}
	return out
}

func kindsOf(events []Event) []EventKind {
	var out []EventKind
	for _, e := range events {
		out = append(out, e.Kind)
	}
	return out
}

func cap3(voice, email, message int) [numChannels]int { return [numChannels]int{voice, email, message} }

func basicConfig() Config {
	return Config{
		Skills:       []string{"support", "billing", "german"},
		OfferTimeout: 20 * time.Second,
		Agents: []AgentSpec{
			{ID: "anna", Skills: map[string]int{"support": 5, "german": 5}, Capacity: cap3(1, 3, 2)},
			{ID: "ben", Skills: map[string]int{"support": 2, "billing": 4}, Capacity: cap3(1, 3, 2)},
		},
		Queues: []QueueSpec{
			{Name: "support", Skills: map[string]int{"support": 1}, Channels: []Channel{Voice, Email, Message}, ServiceLevelThreshold: 20 * time.Second},
			{Name: "billing", Skills: map[string]int{"billing": 3}, Channels: []Channel{Voice, Email}, ServiceLevelThreshold: 20 * time.Second},
		},
	}
}

func TestLifecycleOfATask(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].WrapUp = 30 * time.Second
	h := newHarness(t, cfg)
	h.enqueue(1, "support", Voice)
	h.noOffer() // nobody is available yet

	h.advance(5 * time.Second)
	h.must(h.r.SetPresence("anna", Available, ""))
	o := h.takeOffer()
	if o.TaskID != 1 || o.Agent != "anna" || !o.Deadline.Equal(h.now.Add(20*time.Second)) {
		t.Fatalf("offer = %+v", o)
	}
	h.advance(3 * time.Second)
	h.must(h.r.Accept(1, "anna"))
	h.advance(60 * time.Second)
	h.must(h.r.End(1))

	// In wrap-up the agent gets nothing, even a task it could take.
	h.enqueue(2, "support", Email)
	h.noOffer()
	h.advance(30 * time.Second) // wrap-up ends: completed, next task offered at once
	if got := h.takeOffer(); got.TaskID != 2 || got.Agent != "anna" {
		t.Fatalf("after wrap-up: %+v", got)
	}

	kinds := kindsOf(h.taskEvents(1, 0))
	want := []EventKind{TaskCreated, TaskOffered, TaskAssigned, TaskWrapping, TaskCompleted}
	if !slices.Equal(kinds, want) {
		t.Errorf("journal of task 1: %v, want %v", kinds, want)
	}
	st := h.r.Stats()[0]
	if st.Today.Answered != 1 || st.Today.AnsweredInThreshold != 1 || st.Today.ASA() != 8*time.Second || st.Today.AHT() != 90*time.Second {
		t.Errorf("stats: %+v ASA %v AHT %v", st.Today, st.Today.ASA(), st.Today.AHT())
	}
}

func TestPriorityThenArrival(t *testing.T) {
	cfg := basicConfig()
	cfg.TierWeight = 10
	h := newHarness(t, cfg)
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Email}))
	h.advance(time.Second)
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Email}))
	h.advance(time.Second)
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Email, ValueTier: 2}))
	h.must(h.r.SetPresence("anna", Available, ""))
	order := h.acceptOffers(3, "anna")
	if want := []uint64{3, 1, 2}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v: the gold customer first, then first come first served", order, want)
	}
}

// A merge ranks the merged-away customer's waiting tasks, the kept
// customer's and later ones of either at the kept customer's value tier;
// they stay their own customer's. An unmerge ranks them at their
// customers' tiers again.
func TestMergeCustomer(t *testing.T) {
	cfg := basicConfig()
	cfg.TierWeight = 10
	cfg.Agents[0].Capacity = cap3(1, 6, 1)
	h := newHarness(t, cfg)
	enqueue := func(id, customer uint64, tier int) {
		t.Helper()
		h.must(h.r.Enqueue(Task{ID: id, Queue: "support", Channel: Email, CustomerID: customer, ValueTier: tier}))
		h.advance(time.Second)
	}
	ranks := func(ids ...uint64) []int {
		var out []int
		for _, id := range ids {
			out = append(out, h.r.rankTier(h.r.tasks[id]))
		}
		return out
	}
	enqueue(1, 7, 0)
	enqueue(2, 8, 0)
	enqueue(3, 8, 1)
	enqueue(6, 9, 0)
	if got := h.r.MergeCustomer(8, 9, 2); !slices.Equal(got, []uint64{2, 3, 6}) {
		t.Errorf("ranked anew %v, want [2 3 6]", got)
	}
	enqueue(4, 8, 0) // identified as 8 just before the merge
	if got := ranks(1, 2, 3, 4, 6); !slices.Equal(got, []int{0, 2, 2, 2, 2}) {
		t.Errorf("ranks %v after the merge, want [0 2 2 2 2]", got)
	}
	for _, id := range []uint64{2, 3, 4} {
		if c := h.r.tasks[id].CustomerID; c != 8 {
			t.Errorf("task %d is customer %d's after the merge, want still 8's", id, c)
		}
	}
	h.r.UnmergeCustomer(8, 1, 9, 0)
	enqueue(5, 8, 0)
	if got := ranks(1, 2, 3, 4, 5, 6); !slices.Equal(got, []int{0, 1, 1, 1, 1, 0}) {
		t.Errorf("ranks %v after the unmerge, want [0 1 1 1 1 0]", got)
	}
	h.must(h.r.SetPresence("anna", Available, ""))
	if order, want := h.acceptOffers(6, "anna"), []uint64{2, 3, 4, 5, 1, 6}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v: by tier, then first come first served", order, want)
	}
}

func TestAgingLetsOldTasksOvertake(t *testing.T) {
	cfg := basicConfig()
	cfg.AgingPerMinute = 1
	cfg.Queues[1].Priority = 5
	cfg.Agents[1].Skills = map[string]int{"support": 3, "billing": 3}
	h := newHarness(t, cfg)
	h.enqueue(1, "support", Voice) // priority 0, but waits 10 minutes
	h.advance(10 * time.Minute)
	h.enqueue(2, "billing", Voice) // priority 5, fresh
	h.must(h.r.SetPresence("ben", Available, ""))
	if o := h.takeOffer(); o.TaskID != 1 {
		t.Errorf("offered %d: after 10 min at 1/min task 1 has priority 10 > 5", o.TaskID)
	}
}

func TestSkillsAndProficiency(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "billing", Voice) // anna has no billing skill
	h.noOffer()
	h.must(h.r.SetPresence("ben", Available, ""))
	if o := h.takeOffer(); o.Agent != "ben" {
		t.Errorf("billing offered to %s", o.Agent)
	}
}

func TestCapacityAndVoiceBlocking(t *testing.T) {
	cfg := basicConfig()
	cfg.VoiceBlocksOthers = true
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	for id := uint64(1); id <= 4; id++ {
		h.enqueue(id, "support", Email)
	}
	for range 3 {
		o := h.takeOffer()
		h.must(h.r.Accept(o.TaskID, "anna"))
	}
	h.noOffer() // email capacity 3 is used up; task 4 waits
	h.enqueue(5, "support", Voice)
	o := h.takeOffer() // a call may still come while mails are open
	if o.TaskID != 5 {
		t.Fatalf("offer %+v", o)
	}
	h.must(h.r.Accept(5, "anna"))
	h.must(h.r.End(1)) // an email slot frees up, but anna is on the phone
	h.noOffer()
	h.must(h.r.End(5))
	if o := h.takeOffer(); o.TaskID != 4 {
		t.Errorf("after the call: %+v", o)
	}
}

func TestOfferTimeoutAndAutoPause(t *testing.T) {
	cfg := basicConfig()
	cfg.MaxMissedOffers = 2
	cfg.RetryDelay = 10 * time.Second
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	arrived := h.now
	h.enqueue(1, "support", Voice)
	h.takeOffer()
	h.advance(20 * time.Second) // no answer
	if len(h.revoked) != 1 {
		t.Fatalf("revoked %+v", h.revoked)
	}
	h.noOffer() // anna is not rung again for the same call right away
	h.must(h.r.SetPresence("ben", Available, ""))
	o := h.takeOffer()
	if o.Agent != "ben" {
		t.Fatalf("next agent: %+v", o)
	}
	h.must(h.r.Decline(1, "ben"))
	// Both excluded for 10 s; then anna is rung again.
	h.noOffer()
	h.advance(10 * time.Second)
	o = h.takeOffer()
	h.advance(20 * time.Second) // anna misses a second time: away
	st := h.r.Agents()
	if st[0].Presence != Away || st[0].Reason != "missed offers" {
		t.Errorf("anna after 2 missed offers: %v %q", st[0].Presence, st[0].Reason)
	}
	// The task kept its original arrival time.
	for _, e := range h.journal.events {
		if e.TaskID == 1 && !e.Arrived.Equal(arrived) {
			t.Fatalf("event %v has arrival %v, want %v", e.Kind, e.Arrived, arrived)
		}
	}
	_ = o
}

func TestAbandonWhileRinging(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Voice)
	h.takeOffer()
	h.advance(5 * time.Second)
	h.must(h.r.Cancel(1, ReasonAbandoned))
	if len(h.revoked) != 1 {
		t.Error("the ringing phone was not told to stop")
	}
	st := h.r.Stats()[0].Today
	if st.Abandoned != 1 || st.AbandonedInThreshold != 1 || st.AbandonRate() != 1 {
		t.Errorf("stats %+v", st)
	}
	h.enqueue(2, "support", Voice)
	if o := h.takeOffer(); o.Agent != "anna" {
		t.Errorf("anna not free after the abandon: %+v", o)
	}
}

func TestStrategies(t *testing.T) {
	agents := []AgentSpec{
		{ID: "a", Skills: map[string]int{"support": 2}, Capacity: cap3(1, 1, 1)},
		{ID: "b", Skills: map[string]int{"support": 5}, Capacity: cap3(1, 1, 1)},
		{ID: "c", Skills: map[string]int{"support": 3}, Capacity: cap3(1, 1, 1)},
	}
	tests := []struct {
		strategy Strategy
		want     []string // agents offered tasks 1..3, each accepted and kept
	}{
		{LongestIdle, []string{"a", "b", "c"}},   // available in order a, b, c
		{MostSkilled, []string{"b", "c", "a"}},   // proficiency 5, 3, 2
		{RoundRobin, []string{"a", "b", "c"}},    // in configuration order
		{LeastOccupied, []string{"a", "b", "c"}}, // all empty: longest idle
	}
	for _, tt := range tests {
		t.Run(tt.strategy.String(), func(t *testing.T) {
			cfg := Config{Skills: []string{"support"}, Agents: agents, Queues: []QueueSpec{
				{Name: "q", Skills: map[string]int{"support": 1}, Channels: []Channel{Email}, Strategy: tt.strategy},
			}}
			h := newHarness(t, cfg)
			for _, a := range []string{"a", "b", "c"} {
				h.must(h.r.SetPresence(a, Available, ""))
				h.advance(time.Second)
			}
			var got []string
			for id := uint64(1); id <= 3; id++ {
				h.enqueue(id, "q", Email)
				o := h.takeOffer()
				got = append(got, o.Agent)
				h.must(h.r.Accept(id, o.Agent))
				h.advance(time.Second)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s chose %v, want %v", tt.strategy, got, tt.want)
			}
		})
	}
}

func TestRoundRobinContinuesAfterLastChosen(t *testing.T) {
	cfg := Config{Skills: []string{"s"}, Queues: []QueueSpec{{Name: "q", Skills: map[string]int{"s": 1}, Channels: []Channel{Voice}, Strategy: RoundRobin}}}
	for _, id := range []string{"a", "b", "c"} {
		cfg.Agents = append(cfg.Agents, AgentSpec{ID: id, Skills: map[string]int{"s": 1}, Capacity: cap3(1, 0, 0)})
	}
	h := newHarness(t, cfg)
	for _, a := range []string{"c", "b", "a"} {
		h.must(h.r.SetPresence(a, Available, ""))
	}
	var got []string
	for id := uint64(1); id <= 5; id++ {
		h.enqueue(id, "q", Voice)
		o := h.takeOffer()
		got = append(got, o.Agent)
		h.must(h.r.Accept(id, o.Agent))
		h.must(h.r.Complete(id, o.Agent))
	}
	if want := []string{"a", "b", "c", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("round robin %v, want %v", got, want)
	}
}

func TestLeastOccupiedPrefersFewerTasks(t *testing.T) {
	cfg := Config{Skills: []string{"s"}, Queues: []QueueSpec{{Name: "q", Skills: map[string]int{"s": 1}, Channels: []Channel{Email}, Strategy: LeastOccupied}}}
	for _, id := range []string{"a", "b"} {
		cfg.Agents = append(cfg.Agents, AgentSpec{ID: id, Skills: map[string]int{"s": 1}, Capacity: cap3(0, 3, 0)})
	}
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("a", Available, ""))
	h.enqueue(1, "q", Email)
	h.must(h.r.Accept(h.takeOffer().TaskID, "a"))
	h.advance(time.Minute)
	h.must(h.r.SetPresence("b", Available, "")) // idle for less time than a, but empty
	h.advance(time.Minute)
	h.enqueue(2, "q", Email)
	if o := h.takeOffer(); o.Agent != "b" {
		t.Errorf("offered to %s, want b who has no task", o.Agent)
	}
}

// lastAgentHarness is basicConfig with the support queue's strategy
// last-agent, waiting 30 s for the previous agent.
func lastAgentHarness(t *testing.T) *harness {
	cfg := basicConfig()
	cfg.Queues[0].Strategy = LastAgent
	cfg.Queues[0].LastAgentWait = 30 * time.Second
	return newHarness(t, cfg)
}

func TestLastAgentWaitsForThePreviousAgent(t *testing.T) {
	h := lastAgentHarness(t)
	h.must(h.r.SetPresence("ben", Available, ""))
	h.must(h.r.SetPresence("anna", Away, "lunch"))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.noOffer() // ben is free, but the customer's agent is logged in
	h.advance(10 * time.Second)
	h.must(h.r.SetPresence("anna", Available, ""))
	if o := h.takeOffer(); o.Agent != "anna" {
		t.Fatalf("offered to %s, want the previous agent", o.Agent)
	}
	h.must(h.r.Accept(1, "anna"))

	// When the previous agent does not come back in time, anyone takes it.
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.noOffer()
	h.advance(30 * time.Second)
	if o := h.takeOffer(); o.Agent != "ben" {
		t.Errorf("after the window: %+v", o)
	}
	// An offline previous agent is not waited for at all.
	h.must(h.r.SetPresence("anna", Offline, ""))
	h.must(h.r.Accept(2, "ben"))
	h.must(h.r.Complete(2, "ben"))
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	if o := h.takeOffer(); o.Agent != "ben" {
		t.Errorf("offline previous agent: %+v", o)
	}
}

// TestPreviousAgentWaitedForUpToCapacity: customers wait for their
// previous agent only as many at a time as the agent takes at once on the
// channel; the others go to whoever is free.
func TestPreviousAgentWaitedForUpToCapacity(t *testing.T) {
	h := lastAgentHarness(t)
	h.must(h.r.SetPresence("anna", Away, "meeting"))
	for id := range uint64(3) {
		h.must(h.r.Enqueue(Task{ID: id + 1, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	}
	h.must(h.r.Enqueue(Task{ID: 4, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.noOffer()
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(2, "ben", "anna takes one call at a time, and call 1 waits for her")
	h.must(h.r.Accept(2, "ben"))
	h.noOffer() // call 3 waits for a free line, mail 4 for anna (she takes three mails)
	h.must(h.r.Complete(2, "ben"))
	h.wantOffer(3, "ben", "")
	h.must(h.r.SetPresence("anna", Available, ""))
	h.wantOffer(1, "anna", "")
}

// TestPreviousAgentRingingCounts: a call ringing at its previous agent
// is one of those waiting for her.
func TestPreviousAgentRingingCounts(t *testing.T) {
	h := lastAgentHarness(t)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.wantOffer(1, "anna", "")
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(2, "ben", "while call 1 rings at anna")
}

func TestWidening(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[1].Widening = []WideningStep{{After: time.Minute, Skills: map[string]int{"billing": 1}}, {After: 2 * time.Minute, Skills: map[string]int{"support": 1}}}
	cfg.Agents[1].Skills = map[string]int{"billing": 2} // ben is below billing's minimum 3
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.SetPresence("ben", Available, ""))
	h.enqueue(1, "billing", Voice)
	h.noOffer()
	h.advance(time.Minute)
	if o := h.takeOffer(); o.Agent != "ben" {
		t.Fatalf("after the first step: %+v", o)
	}
	h.must(h.r.SetPresence("ben", Away, "meeting")) // the offer goes back
	h.advance(time.Minute)                          // second step: any support agent
	if o := h.takeOffer(); o.Agent != "anna" {
		t.Errorf("after the second step: %+v", o)
	}
}

// TestWideningAfterOverflow: a task that overflowed before its queue's
// widening step leaves that step behind; it widens by its new queue's
// steps only (it used to take the old queue's step in the new queue, and
// the router panicked when that had fewer steps).
func TestWideningAfterOverflow(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[1].MaxWait, cfg.Queues[1].OverflowQueue = 30*time.Second, "support"
	cfg.Queues[1].Widening = []WideningStep{{After: time.Minute, Skills: map[string]int{"billing": 1}}}
	cfg.Queues[0].Skills = map[string]int{"support": 4}
	cfg.Queues[0].Widening = []WideningStep{{After: 2 * time.Minute, Skills: map[string]int{"support": 1}}}
	cfg.Agents[1].Skills = map[string]int{"support": 2}
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("ben", Available, "")) // qualified only after support's widening
	h.enqueue(1, "billing", Voice)
	h.advance(30 * time.Second) // to support
	h.advance(30 * time.Second) // billing's step would fall due now
	h.advance(time.Minute)
	h.noOffer()
	h.advance(30 * time.Second) // support's own step, two minutes after it entered
	h.wantOffer(1, "ben", "after support's widening")

	// Into a queue without widening: the old step falls due in vain.
	cfg.Queues[0].Widening = nil
	h = newHarness(t, cfg)
	h.must(h.r.SetPresence("ben", Available, ""))
	h.enqueue(1, "billing", Voice)
	h.advance(30 * time.Second)
	h.advance(time.Hour)
	h.noOffer()
}

func TestMaxWait(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[1].MaxWait = time.Minute
	cfg.Queues[1].OverflowQueue = "support"
	cfg.Queues[0].MaxWait = 2 * time.Minute
	h := newHarness(t, cfg)
	h.enqueue(1, "billing", Voice)
	h.advance(time.Minute)
	h.must(h.r.SetPresence("anna", Available, "")) // support only; the task moved there
	if o := h.takeOffer(); o.Queue != "support" || o.TaskID != 1 {
		t.Fatalf("after overflow: %+v", o)
	}
	h.must(h.r.SetPresence("anna", Offline, ""))
	h.advance(2 * time.Minute)
	es := h.taskEvents(1, 0)
	if last := es[len(es)-1]; last.Kind != TaskCanceled || last.Reason != ReasonMaxWait {
		t.Errorf("last event %+v, want canceled for max wait", last)
	}
}

func TestRefusals(t *testing.T) {
	h := newHarness(t, basicConfig())
	for _, err := range []error{
		h.r.Enqueue(Task{ID: 1, Queue: "nope"}),
		h.r.Enqueue(Task{ID: 1, Queue: "billing", Channel: Message}),
		h.r.Accept(99, "anna"),
		h.r.SetPresence("zoe", Available, ""),
		h.r.End(99),
	} {
		if err == nil {
			t.Error("want an error")
		}
	}
	h.enqueue(1, "support", Voice)
	if err := h.r.Enqueue(Task{ID: 1, Queue: "support"}); err == nil {
		t.Error("duplicate task accepted")
	}
	if err := h.r.Accept(1, "anna"); err == nil {
		t.Error("accepted a task that was never offered")
	}
	if err := h.r.End(1); err == nil {
		t.Error("ended a pending task")
	}
}

func TestSetAgentFreesCapacityAndSkills(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "billing", Email) // anna lacks billing
	h.noOffer()
	h.must(h.r.SetAgent(AgentSpec{ID: "anna", Skills: map[string]int{"support": 5, "billing": 3}, Capacity: cap3(1, 1, 0)}))
	h.wantOffer(1, "anna", "after gaining billing")
	h.must(h.r.Accept(1, "anna"))
	h.enqueue(2, "support", Email) // email capacity 1 is used
	h.noOffer()
	h.must(h.r.SetAgent(AgentSpec{ID: "anna", Skills: map[string]int{"support": 5, "billing": 3}, Capacity: cap3(1, 2, 0)}))
	if o := h.takeOffer(); o.TaskID != 2 {
		t.Fatalf("after capacity 2: %+v", o)
	}
	// A new agent joins and takes work at once when available.
	h.must(h.r.SetAgent(AgentSpec{ID: "cleo", Skills: map[string]int{"support": 1}, Capacity: cap3(1, 3, 2)}))
	h.enqueue(3, "support", Message)
	h.noOffer() // anna holds an offer; cleo is offline
	h.must(h.r.SetPresence("cleo", Available, ""))
	if o := h.takeOffer(); o.Agent != "cleo" {
		t.Errorf("new agent: %+v", o)
	}
	if err := h.r.SetAgent(AgentSpec{ID: "anna", Skills: map[string]int{"juggling": 5}}); err == nil {
		t.Error("undefined skill accepted")
	}
}

// TestRemoveAgent: a removed agent's offer goes to another agent, tasks
// waiting for them in particular wait for anyone, they are offered
// nothing more and cannot come back through presence; the task they hold
// ends as usual. SetAgent brings them back, offline.
func TestRemoveAgent(t *testing.T) {
	h := lastAgentHarness(t)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Email)
	h.acceptOffers(1, "anna")
	h.enqueue(2, "support", Email)
	if o := h.takeOffer(); o.Agent != "anna" {
		t.Fatalf("second task offered to %s, want anna", o.Agent)
	}
	h.must(h.r.SetPresence("ben", Away, "coaching"))
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Voice, PreferredAgent: "ben"}))
	h.noOffer() // anna holds an offer; task 3 waits for ben

	h.must(h.r.RemoveAgent("ben"))
	h.noOffer()
	if w := h.r.tasks[3].waitFor; w != nil {
		t.Errorf("task 3 still waits for %s", w.spec.ID)
	}
	if o := h.r.Agents(); len(o) != 1 || o[0].Agent != "anna" {
		t.Errorf("agents after removing ben: %+v", o)
	}
	h.must(h.r.RemoveAgent("anna"))
	if len(h.revoked) != 1 || h.revoked[0].TaskID != 2 {
		t.Errorf("revoked: %+v, want anna's offer of task 2", h.revoked)
	}
	for _, id := range []string{"anna", "ben", "nobody"} {
		if err := h.r.SetPresence(id, Available, ""); !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("presence of %s: %v, want ErrUnknownAgent", id, err)
		}
		if err := h.r.SetAgentSkills(id, map[string]int{"support": 1}); !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("skills of %s: %v, want ErrUnknownAgent", id, err)
		}
		if err := h.r.RemoveAgent(id); !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("removing %s again: %v, want ErrUnknownAgent", id, err)
		}
	}
	if len(h.r.Agents()) != 0 {
		t.Errorf("agents: %+v", h.r.Agents())
	}
	// A change that fails does not bring ben back.
	if err := h.r.SetAgent(AgentSpec{ID: "ben", Skills: map[string]int{"juggling": 1}}); err == nil || h.r.SetPresence("ben", Available, "") == nil {
		t.Errorf("SetAgent with an undefined skill: %v, and ben is routed again", err)
	}
	// The mail anna had taken waits again, as do tasks 2 and 3; a new
	// agent takes them, oldest first.
	if ev := kindsOf(h.taskEvents(1, 0)); !slices.Equal(ev, []EventKind{TaskCreated, TaskOffered, TaskAssigned, TaskReturned, TaskCreated}) {
		t.Errorf("task 1's journal %v", ev)
	}
	h.must(h.r.SetAgent(AgentSpec{ID: "cleo", Skills: map[string]int{"support": 1}, Capacity: cap3(1, 3, 2)}))
	h.must(h.r.SetPresence("cleo", Available, ""))
	if order := h.acceptOffers(3, "cleo"); !slices.Equal(order, []uint64{1, 2, 3}) {
		t.Errorf("cleo took %v, want 1, 2 and 3", order)
	}
	// Only who holds a task completes it: task 1 is cleo's now.
	if err := h.r.Complete(1, "anna"); !errors.Is(err, ErrWrongState) {
		t.Errorf("anna completes cleo's task: %v", err)
	}
	// Offered and answered once each, task 1 too.
	if st := h.r.Stats()[0].Today; st.Offered != 3 || st.Answered != 3 {
		t.Errorf("support today: %+v", st)
	}

	// Back through SetAgent, offline until they say otherwise.
	h.must(h.r.SetAgent(AgentSpec{ID: "ben", Skills: map[string]int{"support": 2}, Capacity: cap3(1, 3, 2)}))
	if a := h.r.Agents(); len(a) != 2 || a[0].Agent != "ben" || a[0].Presence != Offline {
		t.Fatalf("agents after ben is back: %+v", a)
	}
	h.enqueue(4, "support", Voice) // cleo is on a call
	h.noOffer()
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(4, "ben", "when he is back")
}

// TestReturnTask: a supervisor returns the mail anna has taken; it goes
// to ben, anna no longer holds it, and it counts as answered once. Calls
// and tasks not taken cannot be returned.
func TestReturnTask(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Email)
	h.enqueue(2, "support", Voice)
	h.acceptOffers(2, "anna")
	h.must(h.r.SetPresence("ben", Away, "lunch"))
	h.enqueue(3, "billing", Email) // anna lacks billing: waits, not taken
	if held := h.r.Held()["anna"]; len(held) != 2 || held[0].ID != 1 || !held[0].Returnable || held[1].ID != 2 || held[1].Returnable {
		t.Fatalf("anna holds %+v", held)
	}
	for id, want := range map[uint64]error{2: ErrWrongState, 3: ErrWrongState, 9: ErrUnknownTask} {
		if err := h.r.ReturnTask(id, "anna", "by sven"); !errors.Is(err, want) {
			t.Errorf("returning task %d: %v, want %v", id, err, want)
		}
	}
	if err := h.r.ReturnTask(1, "ben", "by sven"); !errors.Is(err, ErrWrongState) {
		t.Errorf("returning anna's task as ben's: %v", err)
	}
	h.must(h.r.ReturnTask(1, "anna", "by sven"))
	h.noOffer() // anna, free for mail, is not offered it at once
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(1, "ben", "")
	if held := h.r.Held()["anna"]; len(held) != 1 || held[0].ID != 2 {
		t.Errorf("anna holds %+v after the return", held)
	}
	h.must(h.r.Accept(1, "ben"))
	if st := h.r.Stats()[0].Today; st.Offered != 2 || st.Answered != 2 {
		t.Errorf("support today %+v: want 2 offered and answered (task 1 once)", st)
	}
	ev := h.taskEvents(1, 0)
	if k := kindsOf(ev); !slices.Contains(k, TaskReturned) {
		t.Errorf("task 1's journal %v", k)
	}
}

// TestEndedChatStaysForItsWrapUp: a chat that ended with anna cannot be
// returned, also once she took it again after a restart; removing her
// wraps it up. A chat that ended before anyone took it is returned as a
// mail is: it still wants an answer.
func TestEndedChatStaysForItsWrapUp(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].WrapUp = 10 * time.Second
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Message)
	h.acceptOffers(1, "anna")
	h.enqueue(2, "support", Message)
	h.must(h.r.ConversationEnded(2)) // offered to anna, not taken: no change
	h.acceptOffers(1, "anna")
	h.must(h.r.ConversationEnded(1))
	h.must(h.r.ConversationEnded(1)) // told twice (the customer and the agent closed it at once)
	if err := h.r.ConversationEnded(9); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("an unknown task ended: %v", err)
	}
	if held := h.r.Held()["anna"]; len(held) != 2 || held[0].ID != 1 || held[0].Returnable || held[1].ID != 2 || !held[1].Returnable {
		t.Fatalf("anna holds %+v", held)
	}
	if err := h.r.ReturnTask(1, "anna", "by sven"); !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), "the chat has ended; its agent wraps it up") {
		t.Errorf("returning the ended chat: %v", err)
	}
	if k := kindsOf(h.taskEvents(1, 0)); slices.Index(k, ConversationEnded) != len(k)-1 {
		t.Errorf("task 1's journal %v: want the chat's end once, last", k)
	}

	// After a restart anna takes both again: the ended chat stays hers.
	open := []Unfinished{{Task: Task{ID: 1, Queue: "support", Channel: Message}, Agent: "anna", Closed: true}, {Task: Task{ID: 2, Queue: "support", Channel: Message}, Agent: "anna"}}
	second := newHarness(t, cfg)
	second.r.Recover(nil, open)
	second.must(second.r.SetPresence("anna", Available, ""))
	second.acceptOffers(2, "anna")
	if err := second.r.ReturnTask(1, "anna", "by sven"); !errors.Is(err, ErrWrongState) {
		t.Errorf("returning the ended chat after a restart: %v", err)
	}
	second.must(second.r.RemoveAgent("anna"))
	if s1, s2 := second.r.tasks[1].state, second.r.tasks[2].state; s1 != Wrapping || s2 != Pending {
		t.Fatalf("after anna's removal the ended chat is %v, the other %v", s1, s2)
	}
	second.advance(10 * time.Second)
	if _, open := second.r.tasks[1]; open {
		t.Error("the ended chat did not complete after its wrap-up")
	}
}

// TestAbandonAfterAnAnswer: a chat answered, returned and then given up
// by its customer while it waits again is not an abandon: it was
// answered.
func TestAbandonAfterAnAnswer(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Message)
	h.acceptOffers(1, "anna")
	h.must(h.r.SetPresence("anna", Away, "lunch"))
	h.must(h.r.ReturnTask(1, "anna", "by sven"))
	h.must(h.r.Cancel(1, ReasonAbandoned))
	if st := h.r.Stats()[0].Today; st.Answered != 1 || st.Abandoned != 0 || st.AbandonedInThreshold != 0 {
		t.Errorf("support today %+v: want it answered, not abandoned", st)
	}
}

// TestReturnedTaskGoesToOthersFirst: a mail taken back from anna, her
// customer's previous agent, is not kept for her, and a decline of
// another task does not lift her exclusion from it.
func TestReturnedTaskGoesToOthersFirst(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].Strategy, cfg.Queues[0].LastAgentWait = LastAgent, 10*time.Minute
	cfg.RetryDelay = time.Minute
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.acceptOffers(1, "anna")
	h.enqueue(2, "support", Email)
	o := h.takeOffer()
	h.must(h.r.ReturnTask(1, "anna", "by sven"))
	h.must(h.r.Decline(o.TaskID, "anna"))
	h.noOffer() // neither 1 nor 2 goes back to anna now
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(1, "ben", "at once")
}

// TestRemovedAgentsCallGoesOn: removing an agent returns the mail they
// had taken to the queue, but not the call they are on: it ends as calls
// do. A task answered before a restart and answered again after it
// counts once.
func TestRemovedAgentsCallGoesOn(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].WrapUp = 10 * time.Second
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Voice)
	h.enqueue(2, "support", Email)
	h.acceptOffers(2, "anna")
	h.must(h.r.RemoveAgent("anna"))
	if s1, s2 := h.r.tasks[1].state, h.r.tasks[2].state; s1 != Assigned || s2 != Pending {
		t.Fatalf("the call is %v, the mail %v", s1, s2)
	}
	h.must(h.r.End(1))
	h.advance(10 * time.Second)
	if _, open := h.r.tasks[1]; open {
		t.Error("the call did not complete after its wrap-up")
	}

	// After a restart, ben answers the mail anna had taken: it counts
	// once, as what the journal's last TaskCreated says of it.
	var created Event
	for _, e := range h.taskEvents(2, 0) {
		if e.Kind == TaskCreated {
			created = e
		}
	}
	second := newHarness(t, cfg)
	second.r.Recover(h.journal.events, []Unfinished{UnfinishedFrom(created)})
	second.must(second.r.SetPresence("ben", Available, ""))
	second.acceptOffers(1, "ben")
	if st := second.r.Stats()[0].Today; st.Answered != 2 || st.Offered != 2 {
		t.Errorf("today %+v: want the call and the mail offered and answered", st)
	}
}

// TestLettingGoOfTasksWaitingForAnAgent: a task that waited for its
// previous agent waits for anyone once that agent lets go of its offer
// (going offline after the waiting window ran out), is removed while
// offline (a task queued again after a restart waits for them even then),
// or no longer has the skills for it.
func TestLettingGoOfTasksWaitingForAnAgent(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].Strategy, cfg.Queues[0].LastAgentWait = LastAgent, 10*time.Second
	cfg.Queues[0].MaxWait, cfg.Queues[0].OverflowQueue = time.Hour, "billing"
	cfg.OfferTimeout = time.Minute
	check := func(h *harness) {
		t.Helper()
		if err := h.r.checkInvariants(h.now); err != nil {
			t.Fatal(err)
		}
	}

	// The offer outlived the window; anna goes offline.
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.takeOffer()
	h.advance(15 * time.Second)
	h.must(h.r.SetPresence("ben", Available, ""))
	h.must(h.r.SetPresence("anna", Offline, ""))
	check(h)
	h.wantOffer(1, "ben", "after anna went offline")

	// Queued again after a restart for anna, offline; she is removed. Her
	// skills, and billing's own wait for a last agent, would let it wait
	// for her in billing too.
	moved := cfg
	moved.Queues = slices.Clone(cfg.Queues)
	moved.Queues[1].LastAgentWait = 10 * time.Minute
	moved.Agents = slices.Clone(cfg.Agents)
	moved.Agents[0].Skills = map[string]int{"support": 5, "billing": 3}
	h = newHarness(t, moved)
	if n, _ := h.r.Recover(nil, []Unfinished{{Task: Task{ID: 2, Queue: "support", Channel: Email, Arrived: h.now}, Agent: "anna"}}); n != 1 {
		t.Fatalf("requeued %d", n)
	}
	h.must(h.r.SetPresence("ben", Available, ""))
	h.noOffer() // waits for anna
	h.must(h.r.SetPresence("ben", Away, "meeting"))
	h.must(h.r.RemoveAgent("anna"))
	check(h)
	// Moved to billing after its max wait, it waits for nobody there.
	h.advance(time.Hour)
	if tk := h.r.tasks[2]; tk.q.spec.Name != "billing" || tk.waitFor != nil {
		t.Errorf("task 2 in %s waits for %v", tk.q.spec.Name, tk.waitFor)
	}
	h.must(h.r.SetPresence("ben", Available, ""))
	h.wantOffer(2, "ben", "after anna was removed")

	// anna, offered the task she waits for, loses the skill for it.
	h = newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Voice, PreferredAgent: "anna"}))
	h.takeOffer()
	h.must(h.r.SetPresence("ben", Available, ""))
	h.must(h.r.SetAgentSkills("anna", map[string]int{"german": 5}))
	check(h)
	h.wantOffer(3, "ben", "after anna lost the skill")

	// anna, away, no longer takes mail.
	h = newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Away, "lunch"))
	h.must(h.r.SetPresence("ben", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 4, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.noOffer()
	h.must(h.r.SetAgent(AgentSpec{ID: "anna", Skills: map[string]int{"support": 5}, Capacity: cap3(1, 0, 2)}))
	check(h)
	h.wantOffer(4, "ben", "after anna stopped taking mail")

	// A widening step requires what anna, away, lacks.
	wide := cfg
	wide.Queues = slices.Clone(cfg.Queues)
	wide.Queues[0].LastAgentWait = 10 * time.Minute
	wide.Queues[0].Widening = []WideningStep{{After: time.Minute, Skills: map[string]int{"billing": 1}}}
	h = newHarness(t, wide)
	h.must(h.r.SetPresence("anna", Away, "lunch"))
	h.must(h.r.SetPresence("ben", Available, ""))
	h.must(h.r.SetAgentSkills("ben", map[string]int{"billing": 4}))
	h.must(h.r.Enqueue(Task{ID: 5, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.noOffer()
	h.advance(time.Minute)
	check(h)
	h.wantOffer(5, "ben", "after the widening step")
}

// TestLetGoInQueueOrder: the tasks an agent lets go of are offered best
// first: here the oldest of three mails that waited for anna (it came
// second, with an earlier arrival: queue order is neither the order they
// waited in nor its reverse), whoever is free taking one at a time.
func TestLetGoInQueueOrder(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].Strategy, cfg.Queues[0].LastAgentWait = LastAgent, 10*time.Minute
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Away, "lunch"))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.advance(time.Second)
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Email, PreferredAgent: "anna", Arrived: h.now.Add(-time.Minute)}))
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Email, PreferredAgent: "anna"}))
	h.must(h.r.SetAgent(AgentSpec{ID: "ben", Skills: map[string]int{"support": 2}, Capacity: cap3(0, 1, 0)}))
	h.must(h.r.SetPresence("ben", Available, ""))
	h.noOffer()
	h.must(h.r.SetPresence("anna", Offline, ""))
	h.wantOffer(2, "ben", "the oldest mail")
}

// TestRecoveredWaitsOnlyForAnAgentTakingItsChannel: a mail queued again
// after a restart does not wait for its agent when they take no mail now.
func TestRecoveredWaitsOnlyForAnAgentTakingItsChannel(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].LastAgentWait = 10 * time.Minute
	cfg.Agents[0].Capacity = cap3(1, 0, 2)
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("ben", Available, ""))
	h.r.Recover(nil, []Unfinished{{Task: Task{ID: 1, Queue: "support", Channel: Email, Arrived: h.now}, Agent: "anna"}})
	h.wantOffer(1, "ben", "")
}

// TestMaxWaitPassedDuringAWithdrawnOffer: a task whose max wait passed
// while it was offered moves on when the offer is withdrawn (the agent
// went away), as when it times out.
func TestMaxWaitPassedDuringAWithdrawnOffer(t *testing.T) {
	h, _ := maxWaitPassedDuringAnOffer(t)
	h.must(h.r.SetPresence("ben", Away, "break"))
	ev := h.taskEvents(1, 0)
	if last := ev[len(ev)-1]; last.Kind != TaskCanceled || last.Reason != ReasonMaxWait {
		t.Errorf("task 1's journal %v, want it canceled for its max wait", kindsOf(ev))
	}
}

// TestStaffed: a queue is staffed for a channel while an available agent
// qualifies for its tasks there and takes the channel, busy or not.
func TestStaffed(t *testing.T) {
	h := newHarness(t, basicConfig())
	staffed := func(queue string, ch Channel, want bool, when string) {
		t.Helper()
		if got := h.r.Staffed(queue, ch); got != want {
			t.Errorf("%s: Staffed(%s, %s) = %v", when, queue, ch, got)
		}
	}
	staffed("support", Message, false, "all offline")
	h.must(h.r.SetPresence("ben", Available, ""))
	staffed("support", Message, true, "ben available")
	staffed("billing", Message, false, "billing takes no messages")
	staffed("nowhere", Message, false, "no such queue")
	h.enqueue(1, "support", Message)
	h.acceptOffers(1, "ben")
	staffed("support", Message, true, "ben busy")
	h.must(h.r.SetAgentSkills("ben", map[string]int{"billing": 4}))
	staffed("support", Message, false, "ben without support")
	staffed("billing", Voice, true, "ben with billing")
	h.must(h.r.SetAgent(AgentSpec{ID: "ben", Skills: map[string]int{"billing": 4}, Capacity: cap3(0, 3, 2)}))
	staffed("billing", Voice, false, "ben taking no calls")
	h.must(h.r.RemoveAgent("ben"))
	staffed("billing", Email, false, "ben removed")
	// Whether a queue takes a channel at all, staffed or not.
	for _, tc := range []struct {
		queue string
		ch    Channel
		want  bool
	}{{"support", Message, true}, {"billing", Email, true}, {"billing", Message, false}, {"nowhere", Voice, false}} {
		if got := h.r.Takes(tc.queue, tc.ch); got != tc.want {
			t.Errorf("Takes(%s, %s) = %v", tc.queue, tc.ch, got)
		}
	}
}

// TestSetAgentSkillsKeepsCapacity: the admin page's skill change keeps
// the capacities the router has, whatever the page read before.
func TestSetAgentSkillsKeepsCapacity(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.must(h.r.SetAgent(AgentSpec{ID: "anna", Skills: map[string]int{"support": 5}, Capacity: cap3(0, 1, 0)}))
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.SetAgentSkills("anna", map[string]int{"billing": 3}))
	h.enqueue(1, "billing", Email)
	h.acceptOffers(1, "anna")
	h.enqueue(2, "billing", Email)
	h.noOffer() // email capacity 1, as SetAgent left it
	h.enqueue(3, "support", Message)
	h.noOffer() // no support skill any more, nor message capacity
	if err := h.r.SetAgentSkills("anna", map[string]int{"juggling": 5}); err == nil {
		t.Error("undefined skill accepted")
	}
}

// TestEraseInEachState: a task whose customer is erased ends canceled as
// "erased" whatever its state. An offer of it is revoked; an agent who
// had taken it or was wrapping it up is free at once, without wrap-up,
// and gets the next task; nothing of it fires later.
func TestEraseInEachState(t *testing.T) {
	available := func(h *harness) { h.must(h.r.SetPresence("anna", Available, "")) }
	accept := func(h *harness) {
		available(h)
		h.must(h.r.Accept(h.takeOffer().TaskID, "anna"))
	}
	for _, tt := range []struct {
		state   State
		channel Channel
		setup   func(*harness) // brings task 1 into state
		agent   string         // in the canceled event: who had taken it
	}{
		{Pending, Email, func(*harness) {}, ""},
		{Reserved, Email, func(h *harness) { available(h); h.takeOffer() }, ""},
		{Reserved, Voice, func(h *harness) { available(h); h.takeOffer() }, ""},
		{Assigned, Email, accept, "anna"},
		{Assigned, Message, accept, "anna"},
		{Wrapping, Email, func(h *harness) { accept(h); h.must(h.r.End(1)) }, "anna"},
		{Wrapping, Voice, func(h *harness) { accept(h); h.must(h.r.End(1)) }, "anna"},
	} {
		t.Run(tt.state.String()+"-"+tt.channel.String(), func(t *testing.T) {
			cfg := basicConfig()
			cfg.Queues[0].WrapUp = 30 * time.Second
			cfg.Agents[0].Capacity = cap3(1, 1, 1)
			h := newHarness(t, cfg)
			h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: tt.channel, CustomerID: 7}))
			tt.setup(h)
			h.enqueue(2, "support", tt.channel) // another customer's, waiting for anna
			h.noOffer()
			if got := h.r.taskIDs(tt.state); !slices.Contains(got, 1) {
				t.Fatalf("task 1 is not %s: %v", tt.state, got)
			}
			h.advance(time.Second)
			if ended := h.r.EraseCustomer(7); !slices.Equal(ended, []uint64{1}) {
				t.Errorf("ended %v, want [1]", ended)
			}

			es := h.taskEvents(1, 0)
			if last := es[len(es)-1]; last.Kind != TaskCanceled || last.Reason != ReasonErased || last.Agent != tt.agent || !last.At.Equal(h.now) {
				t.Errorf("task 1's last event %+v, want canceled as erased now by %q", last, tt.agent)
			}
			if wantRevoked := tt.state == Reserved; (len(h.revoked) == 1 && h.revoked[0].TaskID == 1) != wantRevoked || len(h.revoked) > 1 {
				t.Errorf("revoked %+v", h.revoked)
			}
			if a := h.r.Agents()[0]; a.Load != cap3(0, 0, 0) || a.Wrapping != 0 {
				t.Errorf("anna after the erasure: %+v", a)
			}
			if st := h.r.Stats()[0].Today; st.Abandoned != 0 || st.Completed != 0 {
				t.Errorf("stats %+v: an erasure is neither abandoned nor completed", st)
			}
			available(h)
			h.wantOffer(2, "anna", "at once")
			if err := h.r.checkInvariants(h.now); err != nil {
				t.Error(err)
			}
			n := len(h.journal.events)
			h.advance(time.Minute) // past every deadline task 1 had
			if es := h.taskEvents(1, n); len(es) > 0 {
				t.Errorf("after the erasure: %+v", es)
			}
			if ended := h.r.EraseCustomer(7); ended != nil {
				t.Errorf("erasing the customer again ended %v", ended)
			}
		})
	}
}

// TestEraseCustomer: an erasure ends the customer's open tasks in every
// state, not those finished, nor another customer's; from then on their
// new tasks are refused. Customer 0 is nobody: erasing it does nothing.
func TestEraseCustomer(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].WrapUp = 30 * time.Second
	cfg.Agents[0].Capacity = cap3(1, 2, 1)
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	task := func(id, customer uint64, ch Channel) error {
		return h.r.Enqueue(Task{ID: id, Queue: "support", Channel: ch, CustomerID: customer})
	}
	h.must(task(1, 7, Voice)) // assigned
	h.must(h.r.Accept(h.takeOffer().TaskID, "anna"))
	h.must(task(2, 7, Email)) // wrapping up
	h.must(h.r.Accept(h.takeOffer().TaskID, "anna"))
	h.must(h.r.End(2))
	h.must(task(3, 7, Email)) // completed
	h.must(task(4, 8, Email)) // another customer's, waiting
	h.must(task(5, 0, Email)) // nobody's, waiting
	h.must(task(6, 7, Email)) // waiting
	h.must(task(9, 7, Voice)) // canceled
	h.must(h.r.Cancel(9, ReasonAbandoned))
	h.must(h.r.SetPresence("ben", Available, ""))
	o := h.takeOffer() // task 3 rings at ben
	h.must(h.r.Accept(o.TaskID, "ben"))
	h.must(h.r.Complete(o.TaskID, "ben"))
	h.takeOffer() // task 4 is offered to ben
	if got := h.r.EraseCustomer(0); got != nil {
		t.Errorf("customer 0's tasks %v, want none", got)
	}
	h.must(task(10, 0, Email))
	if got := h.r.EraseCustomer(7); !slices.Equal(got, []uint64{1, 2, 6}) {
		t.Errorf("customer 7's tasks %v, want [1 2 6]", got)
	}
	if got := h.r.taskIDs(Pending, Reserved, Assigned, Wrapping); !slices.Equal(got, []uint64{1, 4, 5, 10}) {
		t.Errorf("open tasks %v, want [1 4 5 10] (the call goes on)", got)
	}
	if err := task(11, 7, Email); !errors.Is(err, ErrErased) {
		t.Errorf("a new task of the erased customer: %v", err)
	}
	h.must(task(12, 8, Email))
}

// TestEraseOffersNoneOfTheCustomer: an agent freed by the erasure of one
// of a customer's tasks is not offered another of that customer's
// tasks, not even for a moment.
func TestEraseOffersNoneOfTheCustomer(t *testing.T) {
	cfg := basicConfig()
	cfg.Agents[0].Capacity = cap3(1, 1, 1)
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Email, CustomerID: 7}))
	h.must(h.r.Accept(h.takeOffer().TaskID, "anna"))
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Email, CustomerID: 7}))
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Email, CustomerID: 8}))
	h.noOffer() // anna's email capacity is used
	n := len(h.journal.events)
	h.r.EraseCustomer(7)
	for _, e := range h.journal.events[n:] {
		if e.Kind == TaskOffered && e.TaskID != 3 {
			t.Errorf("offered while erasing: %+v", e)
		}
	}
	if o := h.takeOffer(); o.TaskID != 3 {
		t.Errorf("next offer %+v, want task 3", o)
	}
	h.noOffer()
}

// TestEraseDuringACall: the caller is still on the line, so the call
// stays the agent's, who takes nothing else meanwhile; when it ends the
// task is canceled as erased, without wrap-up.
func TestEraseDuringACall(t *testing.T) {
	for _, how := range []string{"end", "complete"} {
		t.Run(how, func(t *testing.T) {
			cfg := basicConfig()
			cfg.Queues[0].WrapUp = 30 * time.Second
			h := newHarness(t, cfg)
			h.must(h.r.SetPresence("anna", Available, ""))
			h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Voice, CustomerID: 7}))
			h.must(h.r.Accept(h.takeOffer().TaskID, "anna"))
			n := len(h.journal.events)
			h.r.EraseCustomer(7)
			if len(h.journal.events) != n {
				t.Errorf("the call in progress changed at once: %+v", h.journal.events[n:])
			}
			h.enqueue(2, "support", Voice)
			h.noOffer() // anna is still on the phone
			if a := h.r.Agents()[0]; a.Load != cap3(1, 0, 0) {
				t.Errorf("anna during the call: %+v", a)
			}
			h.advance(time.Minute)
			if how == "end" {
				h.must(h.r.End(1))
			} else {
				h.must(h.r.Complete(1, "anna"))
			}
			es := h.taskEvents(1, n)
			for _, e := range es {
				if e.Kind == TaskCanceled && (e.Reason != ReasonErased || e.Agent != "anna") {
					t.Errorf("canceled %+v", e)
				}
			}
			if kinds := kindsOf(es); !slices.Equal(kinds, []EventKind{TaskCanceled}) {
				t.Errorf("after the call: %v, want only canceled (no wrap-up)", kinds)
			}
			h.wantOffer(2, "anna", "")
			if err := h.r.checkInvariants(h.now); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestOperationsHandleDueDeadlinesFirst: a deadline that fell due since
// the last Tick decides before the operation looks at the task, so the
// caller gets the answer the deadline gave, not a stale state: the clock
// moves to the deadline and the operation comes before any Tick.
func TestOperationsHandleDueDeadlinesFirst(t *testing.T) {
	// offer makes task 1 (a call) ring at anna, with ben free as well.
	offer := func(h *harness) {
		h.must(h.r.SetPresence("anna", Available, ""))
		h.must(h.r.SetPresence("ben", Available, ""))
		h.enqueue(1, "support", Voice)
		if o := h.takeOffer(); o.Agent != "anna" {
			h.t.Fatalf("first offer %+v, want anna", o)
		}
	}
	for _, tt := range []struct {
		name    string
		setup   func(*harness)
		due     time.Duration // from setup's end to the deadline
		op      func(*Router) error
		wantErr error
		want    []EventKind // task 1's events from the deadline on
		check   func(*testing.T, *harness)
	}{{
		// The desk sends the wrap-up code as the wrap-up time runs out:
		// the task is already completed, which the desk takes as done.
		name: "complete as wrap-up ends",
		setup: func(h *harness) {
			offer(h)
			h.must(h.r.Accept(1, "anna"))
			h.must(h.r.End(1))
		},
		due:     30 * time.Second,
		op:      func(r *Router) error { return r.Complete(1, "anna") },
		wantErr: ErrUnknownTask,
		want:    []EventKind{TaskCompleted},
	}, {
		// The offer timed out: anna cannot take the call now ringing at ben.
		name:    "accept an expired offer",
		setup:   offer,
		due:     20 * time.Second,
		op:      func(r *Router) error { return r.Accept(1, "anna") },
		wantErr: ErrWrongState,
		want:    []EventKind{OfferTimedOut, TaskOffered},
		check: func(t *testing.T, h *harness) {
			if len(h.revoked) != 1 || h.revoked[0].Agent != "anna" {
				t.Errorf("revoked %+v, want anna's offer", h.revoked)
			}
			h.wantOffer(1, "ben", "")
			if a := h.r.Agents()[0]; a.Load != cap3(0, 0, 0) || a.Offered != 0 {
				t.Errorf("anna: %+v", a)
			}
		},
	}, {
		// Anna's retry delay is over as well: the call rings at her anew,
		// but her answer was to the old offer; she answers the new one.
		name: "accept an offer made anew",
		setup: func(h *harness) {
			h.must(h.r.SetPresence("anna", Available, ""))
			h.enqueue(1, "support", Voice)
			h.takeOffer()
		},
		due:     20*time.Second + 5*time.Second,
		op:      func(r *Router) error { return r.Accept(1, "anna") },
		wantErr: ErrWrongState,
		want:    []EventKind{OfferTimedOut, TaskOffered},
		check: func(t *testing.T, h *harness) {
			o := h.takeOffer()
			if o.TaskID != 1 || o.Agent != "anna" || !o.Deadline.Equal(h.now.Add(20*time.Second)) {
				t.Errorf("new offer %+v, want task 1 to anna until 20 s from now", o)
			}
			h.must(h.r.Accept(1, "anna"))
		},
	}, {
		// A timed-out offer is missed once, not also declined.
		name:    "decline an expired offer",
		setup:   offer,
		due:     20 * time.Second,
		op:      func(r *Router) error { return r.Decline(1, "anna") },
		wantErr: ErrWrongState,
		want:    []EventKind{OfferTimedOut, TaskOffered},
	}, {
		// The caller hangs up as max wait passes: max wait canceled it.
		name: "cancel as max wait passes",
		setup: func(h *harness) {
			h.enqueue(1, "support", Voice) // nobody is available
		},
		due:     time.Minute,
		op:      func(r *Router) error { return r.Cancel(1, ReasonAbandoned) },
		wantErr: ErrUnknownTask,
		want:    []EventKind{TaskCanceled},
		check: func(t *testing.T, h *harness) {
			if st := h.r.Stats()[0].Today; st.Abandoned != 0 {
				t.Errorf("stats %+v: counted as abandoned", st)
			}
		},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := basicConfig()
			cfg.Queues[0].WrapUp = 30 * time.Second
			cfg.Queues[0].MaxWait = time.Minute
			h := newHarness(t, cfg)
			tt.setup(h)
			h.now = h.now.Add(tt.due) // no Tick: the operation comes first
			n := len(h.journal.events)
			if err := tt.op(h.r); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if kinds := kindsOf(h.taskEvents(1, n)); !slices.Equal(kinds, tt.want) {
				t.Errorf("task 1's events %v, want %v", kinds, tt.want)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
			if err := h.r.checkInvariants(h.now); err != nil {
				t.Error(err)
			}
		})
	}
}
