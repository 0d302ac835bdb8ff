package router

import (
	"slices"
	"testing"
	"time"
)

func TestRecoverAfterRestart(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].LastAgentWait = 30 * time.Second

	// The first process: a call and two mails arrive, anna accepts one mail.
	first := newHarness(t, cfg)
	first.must(first.r.SetPresence("anna", Available, ""))
	first.enqueue(1, "support", Email)
	first.must(first.r.Accept(first.takeOffer().TaskID, "anna"))
	first.advance(time.Minute)
	first.enqueue(2, "support", Voice)
	first.takeOffer() // ringing when the process dies
	first.enqueue(3, "support", Email)

	// What the journal index knows as open after kill -9.
	open := map[uint64]Unfinished{}
	for _, e := range first.journal.events {
		switch e.Kind {
		case TaskCreated:
			open[e.TaskID] = UnfinishedFrom(e)
		case TaskAssigned:
			u := open[e.TaskID]
			u.Agent = e.Agent
			open[e.TaskID] = u
		case TaskCompleted, TaskCanceled:
			delete(open, e.TaskID)
		}
	}
	var unfinished []Unfinished
	for _, id := range []uint64{1, 2, 3} {
		unfinished = append(unfinished, open[id])
	}

	second := newHarness(t, cfg)
	second.now = first.now.Add(time.Minute)
	requeued, canceled := second.r.Recover(first.journal.events, unfinished)
	if requeued != 2 || canceled != 1 {
		t.Fatalf("requeued %d, canceled %d; want the two mails back and the call canceled", requeued, canceled)
	}
	st := second.r.Stats()[0]
	if st.Today.Offered != 3 || st.Today.Answered != 1 || st.Waiting != 2 {
		t.Errorf("after recovery: %+v", st)
	}
	if want := first.now.Add(time.Minute).Sub(t0); st.LongestWait != want {
		t.Errorf("longest wait %v, want %v: arrival times are kept", st.LongestWait, want)
	}
	// ben is free, but mail 1 waits for anna, who had it before.
	second.must(second.r.SetPresence("ben", Available, ""))
	if o := second.takeOffer(); o.TaskID != 3 || o.Agent != "ben" {
		t.Errorf("ben got %+v, want mail 3", o)
	}
	second.must(second.r.SetPresence("anna", Available, ""))
	if o := second.takeOffer(); o.TaskID != 1 || o.Agent != "anna" {
		t.Errorf("anna got %+v, want her mail 1 back", o)
	}
	var call Event
	for _, e := range second.journal.events {
		if e.TaskID == 2 {
			call = e
		}
	}
	if call.Kind != TaskCanceled || call.Reason != ReasonSystem {
		t.Errorf("the call: %+v, want canceled (system)", call)
	}
}

// TestRecoverAfterAnErasure: a customer erased while the daemon starts,
// after its open tasks were read and before the router got them, gets no
// task back.
func TestRecoverAfterAnErasure(t *testing.T) {
	h := newHarness(t, basicConfig())
	h.r.EraseCustomer(7)
	open := []Unfinished{
		{Task: Task{ID: 1, Queue: "support", Channel: Email, CustomerID: 7}},
		{Task: Task{ID: 2, Queue: "support", Channel: Email, CustomerID: 8}},
	}
	if requeued, canceled := h.r.Recover(nil, open); requeued != 1 || canceled != 1 {
		t.Errorf("requeued %d, canceled %d; want customer 8's task back only", requeued, canceled)
	}
	if es := h.taskEvents(1, 0); len(es) != 1 || es[0].Kind != TaskCanceled || es[0].Reason != ReasonErased {
		t.Errorf("the erased customer's task: %+v", es)
	}
	if got := h.r.taskIDs(Pending); !slices.Equal(got, []uint64{2}) {
		t.Errorf("waiting %v, want [2]", got)
	}
}

// TestReturnedRecoveredTask: a task queued again after a restart waits
// for its agent of before, even offline; given back by the agent who took
// it meanwhile, it waits for nobody offline, and goes to whoever is free.
func TestReturnedRecoveredTask(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].LastAgentWait = 30 * time.Second
	cfg.RetryDelay = time.Hour
	cfg.Agents = append(cfg.Agents, AgentSpec{ID: "carl", Skills: map[string]int{"support": 1}, Capacity: cap3(1, 3, 2)})
	h := newHarness(t, cfg)
	h.r.Recover(nil, []Unfinished{{Task: Task{ID: 1, Queue: "support", Channel: Email, Arrived: h.now}, Agent: "anna", Answered: true}})
	h.must(h.r.SetPresence("ben", Available, ""))
	h.noOffer() // it waits for anna
	h.advance(31 * time.Second)
	h.must(h.r.Accept(h.takeOffer().TaskID, "ben"))
	h.must(h.r.ReturnTask(1, "ben", "supervisor"))
	h.must(h.r.SetPresence("carl", Available, ""))
	if o := h.takeOffer(); o.TaskID != 1 || o.Agent != "carl" {
		t.Errorf("offer %+v, want task 1 to carl", o)
	}
}
