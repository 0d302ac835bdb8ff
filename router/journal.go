package router

import "time"

// EventKind names a transition.
type EventKind uint8

// Event kinds, like the lines of Asterisk's queue_log.
const (
	TaskCreated     EventKind = iota + 1 // entered Queue (arrival in Arrived)
	TaskOffered                          // reserved for Agent
	OfferDeclined                        // Agent declined; task pending again
	OfferTimedOut                        // Agent did not answer in time; task pending again
	TaskAssigned                         // Agent accepted; wait = At − Arrived
	TaskWrapping                         // handling ended, Agent in wrap-up
	TaskCompleted                        // done; handle time = At − Since
	TaskCanceled                         // Reason: abandoned, max-wait, system
	TaskMoved                            // left Queue for Reason (the overflow queue)
	PresenceChanged                      // Agent's Presence, Reason for away
)

var eventNames = map[EventKind]string{
	TaskCreated: "task-created", TaskOffered: "task-offered", OfferDeclined: "offer-declined",
	OfferTimedOut: "offer-timed-out", TaskAssigned: "task-assigned", TaskWrapping: "task-wrapping",
	TaskCompleted: "task-completed", TaskCanceled: "task-canceled", TaskMoved: "task-moved",
	PresenceChanged: "presence-changed",
}

func (k EventKind) String() string { return eventNames[k] }

// Event is one line of the router's journal.
type Event struct {
	At       time.Time
	Kind     EventKind
	TaskID   uint64
	Agent    string
	Queue    string
	Channel  Channel
	Arrived  time.Time // the task's original arrival
	Since    time.Time // TaskCompleted: when the task was assigned
	Reason   string
	Presence Presence
}

// Journal keeps the router's events, in order. Record must not block on
// disk for long: the router calls it while it holds its lock.
type Journal interface {
	Record(Event)
}
