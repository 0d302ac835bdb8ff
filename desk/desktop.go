package desk

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"dirigent/router"
	"dirigent/store"
)

// Router is what the desk asks of the universal queue.
type Router interface {
	SetPresence(agentID string, p router.Presence, reason string) error
	Accept(taskID uint64, agentID string) error
	Decline(taskID uint64, agentID string) error
	Complete(taskID uint64, agentID string) error
	ReturnTask(taskID uint64, agentID, reason string) error
	Stats() []router.QueueStats
	Agents() []router.AgentStats
	Held() map[string][]router.HeldTask
	Queues() []router.QueueSpec
	Skills() []string
	SetAgentSkills(agentID string, skills map[string]int) error
}

// Mailer is the mail channel as the desk uses it (the desk must not
// import it): it sends an agent's reply in a mail conversation, and
// writes attachment n of the mail a contact came from or went out as (as
// the contact lists them) to the writer create gives for it, once it has
// seen its name and type. MaxReplyBytes is the largest reply the
// smarthost takes.
type Mailer interface {
	Reply(ctx context.Context, conversationID uint64, agent, to, text string, files ...store.File) (*store.OutboundMail, error)
	WriteAttachment(contact *store.Contact, n int, create func(store.Attachment) (io.Writer, error)) (int64, error)
	MaxReplyBytes() int
}

// deskTask is a task the desk shows an agent: offered, or accepted on
// the desk and not yet wrapped up. A task's id is its contact's id (the
// channels create the contact first and queue it under that id).
type deskTask struct {
	ID       uint64         `json:"id"`
	Agent    string         `json:"agent"`
	Channel  router.Channel `json:"channel"`
	Queue    string         `json:"queue"`
	State    string         `json:"state"` // "offered", "assigned", or "wrapping" after the call ended
	Deadline time.Time      `json:"deadline,omitzero"`
	Accepted time.Time      `json:"accepted,omitzero"`
}

// desktop is the agents' live state as the desk sees it, fed by the
// router's offers and revocations and by what agents do on the desk.
type desktop struct {
	mu     sync.Mutex
	offers map[string]router.Offer // by agent; the router offers one task at a time
	tasks  map[uint64]*deskTask    // accepted on the desk, until wrap-up
}

func newDesktop() *desktop {
	return &desktop{offers: map[string]router.Offer{}, tasks: map[uint64]*deskTask{}}
}

func (d *desktop) offerTask(o router.Offer) deskTask {
	return deskTask{ID: o.TaskID, Agent: o.Agent, Channel: o.Channel, Queue: o.Queue, State: "offered", Deadline: o.Deadline}
}

// OnOffer shows a new offer on the agent's desk. It is called by the
// router (through the daemon's fan-out) and must not block.
func (s *Server) OnOffer(o router.Offer) {
	s.desk.mu.Lock()
	s.desk.offers[o.Agent] = o
	s.desk.mu.Unlock()
	s.metrics.offers.WithLabelValues("shown").Inc()
	s.events.publish(toUser(o.Agent), "offer", s.desk.offerTask(o))
}

// OnRevoke takes an offer off the desk: it timed out, the caller hung
// up, or the agent went away.
func (s *Server) OnRevoke(o router.Offer) {
	s.desk.mu.Lock()
	if cur, ok := s.desk.offers[o.Agent]; ok && cur.TaskID == o.TaskID {
		delete(s.desk.offers, o.Agent)
	}
	s.desk.mu.Unlock()
	s.metrics.offers.WithLabelValues("revoked").Inc()
	s.events.publish(toUser(o.Agent), "revoke", map[string]uint64{"id": o.TaskID})
}

// RouterEvent keeps the desk in step with what the router does outside
// the desk: a task answered elsewhere (a call picked up on the phone) is
// on the agent's desk for its reply and wrap-up; when handling ends
// elsewhere (the caller hung up, the wrap-up time passed) it stays there
// as "wrapping" until the agent records its outcome. A task canceled
// after it was taken (its customer was erased) leaves the desk at once:
// there is nothing left to show or record; so does one given back (its
// agent was removed, or a supervisor returned it), for whoever takes it
// next. It is called for every router
// event, under the router's lock: it must not call the router or block,
// and the desk never calls the router holding its own lock.
func (s *Server) RouterEvent(e router.Event) {
	var changed bool
	agent := e.Agent
	s.desk.mu.Lock()
	switch e.Kind {
	case router.TaskAssigned:
		s.desk.dropOffer(e.Agent, e.TaskID)
		if _, ok := s.desk.tasks[e.TaskID]; !ok {
			s.desk.tasks[e.TaskID] = &deskTask{ID: e.TaskID, Agent: e.Agent, Channel: e.Channel, Queue: e.Queue, State: "assigned", Accepted: e.At}
			changed = true
		}
	case router.TaskWrapping, router.TaskCompleted:
		if t, ok := s.desk.tasks[e.TaskID]; ok && t.State != "wrapping" {
			t.State, changed = "wrapping", true
		}
	case router.TaskCanceled, router.TaskReturned:
		if t, ok := s.desk.tasks[e.TaskID]; ok {
			delete(s.desk.tasks, e.TaskID)
			agent, changed = t.Agent, true
		}
	}
	s.desk.mu.Unlock()
	if changed {
		s.events.publish(toUser(agent), "tasks", map[string]uint64{"id": e.TaskID})
	}
}

// ForgetTasks takes tasks off the agents' desks at once: those of an
// erased customer, whatever the router still does with them. A call in
// progress goes on until the caller or agent hangs up, but its card, the
// erased customer's, leaves the screen now; its end changes nothing
// here. Each agent's page is told to read its tasks again.
func (s *Server) ForgetTasks(ids []uint64) {
	gone := map[uint64]string{} // task → agent
	s.desk.mu.Lock()
	for _, id := range ids {
		if t, ok := s.desk.tasks[id]; ok {
			delete(s.desk.tasks, id)
			gone[id] = t.Agent
		}
	}
	s.desk.mu.Unlock()
	for id, agent := range gone {
		s.events.publish(toUser(agent), "tasks", map[string]uint64{"id": id})
	}
}

// DeliveryChanged: how a reply of a conversation stands with the mail
// server changed (an attempt, a bounce, a stop). Each agent holding a
// mail task of the conversation, or offered one, is told, so that the
// thread on screen shows it.
func (s *Server) DeliveryChanged(conversationID uint64) {
	holders := map[uint64]string{} // task → agent
	s.desk.mu.Lock()
	for id, t := range s.desk.tasks {
		if t.Channel == router.Email {
			holders[id] = t.Agent
		}
	}
	for agent, o := range s.desk.offers {
		if o.Channel == router.Email {
			holders[o.TaskID] = agent
		}
	}
	s.desk.mu.Unlock()
	if len(holders) == 0 {
		return // no store read for desks without mail
	}
	convs, err := s.deps.Store.ConversationsOf(slices.Collect(maps.Keys(holders)))
	if err != nil {
		s.deps.Logger.Error("reading the conversations of the desks' tasks", "err", err)
		return
	}
	for id, agent := range holders {
		if convs[id] == conversationID {
			s.events.publish(toUser(agent), "delivery", map[string]uint64{"id": id})
		}
	}
}

// dropOffer forgets agent's offer of task id (accepted or declined) but
// not a newer offer the router made meanwhile.
func (d *desktop) dropOffer(agent string, id uint64) {
	if cur, ok := d.offers[agent]; ok && cur.TaskID == id {
		delete(d.offers, agent)
	}
}

// agentTasks lists agent's offer (first) and accepted tasks.
func (d *desktop) agentTasks(agent string) []deskTask {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []deskTask{}
	if o, ok := d.offers[agent]; ok {
		out = append(out, d.offerTask(o))
	}
	for _, t := range d.tasks {
		if t.Agent == agent {
			out = append(out, *t)
		}
	}
	return out
}

// task returns task id as agent sees it: the agent's offer or accepted task.
func (d *desktop) task(agent string, id uint64) (deskTask, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.offers[agent]; ok && o.TaskID == id {
		return d.offerTask(o), true
	}
	if t, ok := d.tasks[id]; ok && t.Agent == agent {
		return *t, true
	}
	return deskTask{}, false
}

var errNotYours = errors.New("not offered to you or accepted by you")
