package sip

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"dirigent/internal/testrun"
	"dirigent/router"
	"dirigent/store"
)

// registerAgent starts anna's phone: sipp registering with digest auth
// and answering calls with the out-of-call scenario answer; its SIP
// messages are traced to the returned file.
func (s *site) registerAgent(t *testing.T, answer string, extra ...string) (trace string) {
	t.Helper()
	trace = filepath.Join(s.dir, "agent-"+strings.TrimSuffix(answer, ".xml")+".msg")
	args := append([]string{"-oocsf", filepath.Join("testdata", answer), "-rtp_echo",
		"-p", strconv.Itoa(freePort(t)), "-mp", strconv.Itoa(freePort(t)),
		"-s", testUser, "-au", testUser, "-ap", testPass, "-m", "1", "-trace_msg", "-message_file", trace}, extra...)
	s.sipp(t, "agent-register.xml", args...)
	testrun.Eventually(t, 5*time.Second, "anna's phone registered", func() bool { return len(s.ch.registrar.contacts("anna")) == 1 })
	return trace
}

func (s *site) available(t *testing.T, agent string) {
	t.Helper()
	if err := s.router.SetPresence(agent, router.Available, ""); err != nil {
		t.Fatal(err)
	}
}

// call places a call from number with the caller scenario, its audio on
// a callerMedia, and waits for sipp to finish.
func (s *site) call(t *testing.T, scenario, number string, extra ...string) *callerMedia {
	t.Helper()
	media := newCallerMedia(t)
	args := append([]string{"-p", strconv.Itoa(freePort(t)), "-m", "1",
		"-key", "dialled", testNumber, "-key", "caller", number, "-key", "mip", "127.0.0.1", "-key", "mport", media.port()}, extra...)
	s.sipp(t, scenario, args...).wait(t, 20*time.Second)
	return media
}

func traced(t *testing.T, trace, what string) bool {
	t.Helper()
	b, _ := os.ReadFile(trace)
	return strings.Contains(string(b), what)
}

// TestCallerAbandons: nobody is available; the caller hears hold audio
// and hangs up; the task is canceled as abandoned and the contact says
// so.
func TestCallerAbandons(t *testing.T) {
	s := startSite(t, testConfig(), "")
	media := s.call(t, "caller-hangup.xml", "03055510001", "-d", "1000")
	if hold, _, _ := media.counts(); hold < 20 {
		t.Errorf("the caller heard %d packets of hold audio in a second", hold)
	}
	var outcome string
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510001")
		if ct == nil || ct.End.IsZero() {
			return false
		}
		outcome = ct.Outcome
		return ct.Answered.IsZero() && ct.End.Sub(ct.Start) >= time.Second
	})
	if outcome != outcomeAbandoned {
		t.Errorf("outcome %q", outcome)
	}
	testrun.Eventually(t, 5*time.Second, "the call counted as abandoned", func() bool {
		return s.counter(t, "dirigent_sip_calls_total", map[string]string{"outcome": "abandoned"}) == 1
	})
	for _, q := range s.router.Stats() {
		if q.Queue == "support" && q.Waiting != 0 {
			t.Errorf("task still waiting: %+v", q)
		}
	}
}

// TestBusyAgentDeclines: anna's phone answers 486; the offer is
// declined to the router (and counted), and the caller keeps waiting
// until it hangs up.
func TestBusyAgentDeclines(t *testing.T) {
	s := startSite(t, testConfig(), "")
	trace := s.registerAgent(t, "agent-busy.xml")
	s.available(t, "anna")
	s.call(t, "caller-hangup.xml", "03055510002", "-d", "1500")
	if !traced(t, trace, "SIP/2.0 486 Busy Here") {
		t.Fatal("the agent's phone never answered busy")
	}
	testrun.Eventually(t, 5*time.Second, "the ring counted as declined", func() bool {
		return s.counter(t, "dirigent_sip_agent_rings_total", map[string]string{"result": "declined"}) == 1
	})
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510002")
		return ct != nil && ct.Outcome == outcomeAbandoned && ct.Agent == ""
	})
}

// TestCallerHangsUpWhileAgentRings: the caller's BYE while anna's phone
// rings cancels the agent's leg (CANCEL, 487).
func TestCallerHangsUpWhileAgentRings(t *testing.T) {
	s := startSite(t, testConfig(), "")
	trace := s.registerAgent(t, "agent-ring-cancel.xml")
	s.available(t, "anna")
	s.call(t, "caller-hangup.xml", "03055510003", "-d", "1000")
	testrun.Eventually(t, 5*time.Second, "CANCEL reached the agent's phone and was completed", func() bool {
		return traced(t, trace, "CANCEL sip:") && traced(t, trace, "487 Request Terminated") && strings.Count(readFile(trace), "ACK sip:") >= 1
	})
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510003")
		return ct != nil && ct.Outcome == outcomeAbandoned
	})
}

// TestAgentHoldsThenCallerHangsUp: anna answers, puts the caller on hold
// and back with a re-INVITE, which dirigent answers; the caller's BYE
// ends anna's leg too, and the call counts as answered.
func TestAgentHoldsThenCallerHangsUp(t *testing.T) {
	s := startSite(t, testConfig(), "")
	trace := s.registerAgent(t, "agent-hold.xml")
	s.available(t, "anna")
	s.call(t, "caller-hangup.xml", "03055510004", "-d", "3000")
	testrun.Eventually(t, 5*time.Second, "the agent got the BYE", func() bool { return traced(t, trace, "BYE sip:") })
	if !traced(t, trace, "a=sendonly") || strings.Count(readFile(trace), "SIP/2.0 200 OK") < 2 {
		t.Errorf("the re-INVITE was not answered 200 with SDP")
	}
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510004")
		return ct != nil && ct.Outcome == outcomeAnswered && ct.Agent == "anna" && ct.Note == "hung up by caller"
	})
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestMaxWaitHangsUp: a call that waits longer than its queue's
// max_wait (no overflow queue) is canceled by the router and hung up by
// dirigent: the caller gets a BYE.
func TestMaxWaitHangsUp(t *testing.T) {
	s := startSite(t, testConfig(), "")
	media := newCallerMedia(t)
	s.sipp(t, "caller.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1",
		"-key", "dialled", "+49301234502", "-key", "caller", "03055510006", "-key", "mip", "127.0.0.1", "-key", "mport", media.port()).wait(t, 10*time.Second)
	testrun.Eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510006")
		return ct != nil && ct.Outcome == outcomeCanceled && ct.Queue == "short" && ct.Note == "hung up by dirigent"
	})
}

// TestCustomerErasedDuringACall: the customer of a call in progress is
// erased (dirigent customer erase): the call goes on until anna hangs
// up; then its task ends without wrap-up, and nothing of the customer is
// written back, nor is that logged as an error.
func TestCustomerErasedDuringACall(t *testing.T) {
	s := startSite(t, testConfig(), "")
	s.registerAgent(t, "agent-answer.xml", "-d", "2000")
	s.available(t, "anna")
	media := newCallerMedia(t)
	caller := s.sipp(t, "caller.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1",
		"-key", "dialled", testNumber, "-key", "caller", "03055580001", "-key", "mip", "127.0.0.1", "-key", "mport", media.port())
	testrun.Eventually(t, 10*time.Second, "anna on the call", func() bool { return s.router.Agents()[0].Load[router.Voice] == 1 })
	ct := s.callerContact(t, "03055580001")
	if _, err := s.st.EraseCustomer(context.Background(), ct.CustomerID, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if ended := s.router.EraseCustomer(ct.CustomerID); !slices.Equal(ended, []uint64{ct.ID}) {
		t.Fatalf("erasing the customer's tasks ended %v, want the call's", ended)
	}
	caller.wait(t, 20*time.Second) // it got anna's BYE: the call went on
	testrun.Eventually(t, 5*time.Second, "the call counted as answered", func() bool {
		return s.counter(t, "dirigent_sip_calls_total", map[string]string{"outcome": "answered"}) == 1
	})
	if a := s.router.Agents()[0]; a.Load[router.Voice] != 0 || a.Wrapping != 0 {
		t.Errorf("anna after the call: %+v, want free without wrap-up", a)
	}
	if c, err := s.st.Contact(ct.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the erased contact after the call: %+v %v", c, err)
	}
	if msgs := s.errors.messages(); len(msgs) > 0 {
		t.Errorf("logged as errors: %q", msgs)
	}
}

// TestTaskEventDoesNotWaitForTheCall: the router passes its events with
// its lock held, and an agent's answer holds the call's lock while it
// calls Router.Accept; a task moved to an overflow queue at that moment
// must not wait for the call, or both wait for ever.
func TestTaskEventDoesNotWaitForTheCall(t *testing.T) {
	cl := &call{task: router.Task{ID: 7, Channel: router.Voice, Queue: "support"}}
	c := &Channel{byTask: map[uint64]*call{7: cl}}
	cl.mu.Lock() // as while answering
	done := make(chan struct{})
	go func() {
		c.TaskEvent(router.Event{Kind: router.TaskMoved, Channel: router.Voice, TaskID: 7, Reason: "overflow"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("TaskEvent waits for the call's lock: a deadlock with Router.Accept")
	}
	cl.mu.Unlock()
	if q := cl.movedTo.Load(); q == nil || *q != "overflow" {
		t.Errorf("the call was not moved to the overflow queue: %v", q)
	}
}

// TestRevokeDoesNotWaitForTheCall: an agent's answer holds the call's
// lock while it calls Router.Accept, and the router, handling the offer's
// deadline that just passed, delivers the revocation on that same
// goroutine; the revocation must not wait for the call's lock. It stops
// only the ringing of its own offer, not a later one to the same agent.
func TestRevokeDoesNotWaitForTheCall(t *testing.T) {
	deadline := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	first := router.Offer{TaskID: 7, Agent: "anna", Channel: router.Voice, Deadline: deadline}
	second := first
	second.Deadline = deadline.Add(time.Minute)
	stopped := make(chan string, 2)
	cl := &call{ringing: map[ringKey]context.CancelFunc{
		ringKeyOf(first):  func() { stopped <- "first" },
		ringKeyOf(second): func() { stopped <- "second" },
	}}
	c := &Channel{byTask: map[uint64]*call{7: cl}}
	cl.mu.Lock() // as while answering
	done := make(chan struct{})
	go func() {
		c.OnRevoke(first)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OnRevoke waits for the call's lock: a deadlock with Router.Accept")
	}
	cl.mu.Unlock()
	select {
	case which := <-stopped:
		if which != "first" {
			t.Errorf("the revocation of the first offer stopped the %s", which)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked offer's ringing was not stopped")
	}
}
