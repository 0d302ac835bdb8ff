package router

import (
	"fmt"
	"time"
)

// EventKind names a transition.
type EventKind uint8

// Event kinds, like the lines of Asterisk's queue_log.
const (
	TaskCreated       EventKind = iota + 1 // entered Queue (arrival in Arrived)
	TaskOffered                            // reserved for Agent
	OfferDeclined                          // Agent declined; task pending again
	OfferTimedOut                          // Agent did not answer in time; task pending again
	TaskAssigned                           // Agent accepted; wait = At − Arrived
	TaskWrapping                           // handling ended, Agent in wrap-up
	TaskCompleted                          // done; handle time = At − Since
	TaskCanceled                           // Reason: abandoned, max-wait, system, erased; Agent: who had taken it, if anyone
	TaskMoved                              // left Queue for Reason (the overflow queue)
	PresenceChanged                        // Agent's Presence, Reason for away
	TaskReturned                           // Agent's task went back to the queue (Reason: agent removed, or who returned it); it waits again
	ConversationEnded                      // Agent's chat ended: the task waits for their wrap-up and stays theirs
)

var eventNames = map[EventKind]string{
	TaskCreated: "task-created", TaskOffered: "task-offered", OfferDeclined: "offer-declined",
	OfferTimedOut: "offer-timed-out", TaskAssigned: "task-assigned", TaskWrapping: "task-wrapping",
	TaskCompleted: "task-completed", TaskCanceled: "task-canceled", TaskMoved: "task-moved",
	PresenceChanged: "presence-changed", TaskReturned: "task-returned", ConversationEnded: "conversation-ended",
}

func (k EventKind) String() string { return eventNames[k] }

// MarshalText writes the kind's name, so that stored journals read well
// and survive renumbering.
func (k EventKind) MarshalText() ([]byte, error) {
	if n, ok := eventNames[k]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("unknown event kind %d", k)
}

// UnmarshalText reads a kind's name.
func (k *EventKind) UnmarshalText(b []byte) error {
	for kind, n := range eventNames {
		if n == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("unknown event kind %q", b)
}

// Event is one line of the router's journal.
type Event struct {
	At       time.Time `json:"at"`
	Kind     EventKind `json:"kind"`
	TaskID   uint64    `json:"task,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	Queue    string    `json:"queue,omitempty"`
	Channel  Channel   `json:"channel"`
	Arrived  time.Time `json:"arrived,omitzero"` // the task's original arrival
	Since    time.Time `json:"since,omitzero"`   // TaskCompleted: when the task was assigned
	Reason   string    `json:"reason,omitempty"`
	Presence Presence  `json:"presence"`
	// TaskCreated carries what a restart needs to queue the task again.
	Customer  uint64 `json:"customer,omitempty"`
	Tier      int    `json:"tier,omitempty"`
	Repeat    bool   `json:"repeat,omitempty"`
	Preferred string `json:"preferred,omitempty"`
	// Answered: the task was answered before (given back by its agent,
	// or taken before a restart); its answer has been counted.
	Answered bool `json:"answered,omitempty"`
	// Closed: its chat ended while it was taken (ConversationEnded).
	Closed bool `json:"closed,omitempty"`
}

// Reasons of a task queued again, and of its answers after the first.
const (
	// ReasonRecovered marks the TaskCreated of a task queued again after
	// a restart (statistics do not count it as offered again), and
	// ReasonReturned that of a task its agent gave back (Answered tells
	// statistics it was answered already).
	ReasonRecovered = "recovered"
	ReasonReturned  = "returned"
	// ReasonAnsweredBefore marks the TaskAssigned of a task answered
	// before it was given back or queued again after a restart: its first
	// answer is the one counted.
	ReasonAnsweredBefore = "answered-before"
)

// Journal keeps the router's events, in order. Record must not block on
// disk for long: the router calls it while it holds its lock.
type Journal interface {
	Record(Event)
}
