package router

import (
	"fmt"
	"time"
)

// Channel is how a task reached dirigent.
type Channel uint8

// The channels, in the order capacity arrays use.
const (
	Voice Channel = iota
	Email
	Message
	numChannels
)

var channelNames = [numChannels]string{"voice", "email", "message"}

func (c Channel) String() string {
	if c < numChannels {
		return channelNames[c]
	}
	return fmt.Sprintf("channel(%d)", c)
}

// MarshalText writes the channel's name.
func (c Channel) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a channel's name.
func (c *Channel) UnmarshalText(b []byte) error {
	v, err := ParseChannel(string(b))
	*c = v
	return err
}

// ParseChannel turns "voice", "email" or "message" into a Channel.
func ParseChannel(s string) (Channel, error) {
	for i, n := range channelNames {
		if n == s {
			return Channel(i), nil
		}
	}
	return 0, fmt.Errorf("unknown channel %q", s)
}

// State is where a task is in its life.
type State uint8

// Task states: pending → reserved → assigned → wrapping → completed, or
// canceled from pending or reserved, and from any state when its customer
// is erased.
const (
	Pending State = iota
	Reserved
	Assigned
	Wrapping
	Completed
	Canceled
)

var stateNames = []string{"pending", "reserved", "assigned", "wrapping", "completed", "canceled"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// Presence is what an agent has said about being reachable. Busy is not a
// presence: it follows from capacity in use.
type Presence uint8

// MarshalText writes the presence's name.
func (p Presence) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a presence's name.
func (p *Presence) UnmarshalText(b []byte) error {
	for i, n := range presenceNames {
		if n == string(b) {
			*p = Presence(i)
			return nil
		}
	}
	return fmt.Errorf("unknown presence %q", b)
}

// Presences.
const (
	Offline Presence = iota
	Available
	Away
)

var presenceNames = [...]string{"offline", "available", "away"}

func (p Presence) String() string {
	if int(p) < len(presenceNames) {
		return presenceNames[p]
	}
	return fmt.Sprintf("presence(%d)", p)
}

// Cancel reasons.
const (
	ReasonAbandoned = "abandoned" // the customer gave up (hung up) while waiting
	ReasonMaxWait   = "max-wait"  // waited longer than the queue's max_wait with no overflow queue
	ReasonSystem    = "system"    // dirigent stopped while the call waited
	ReasonErased    = "erased"    // the customer was erased (GDPR) while the task was open (see EraseCustomer)
)

// ReasonMissedOffers is the away reason of an agent the router set away
// for missing offers (Config.MaxMissedOffers).
const ReasonMissedOffers = "missed offers"

// Strategy chooses among free, qualified agents.
type Strategy uint8

// Strategies. Every one first honours a task's preferred agent while its
// window lasts (see Task.PreferredAgent).
const (
	// LongestIdle: the agent idle longest, where idle since means the latest
	// of becoming available, being assigned a task, and ending a task or
	// its wrap-up.
	LongestIdle Strategy = iota
	// MostSkilled: the highest sum of proficiencies in the skills the task
	// requires at its current widening step; ties go to the longest idle.
	MostSkilled
	// LastAgent: like LongestIdle, but every task with a preferred agent
	// (the customer's previous agent) waits for that agent for up to the
	// queue's last_agent_wait while the agent is logged in.
	LastAgent
	// LeastOccupied: the agent with the fewest tasks in progress on all
	// channels; ties go to the longest idle.
	LeastOccupied
	// RoundRobin: qualified agents in turn, in the order the configuration
	// lists them: the first free agent after the one this queue chose last.
	RoundRobin
)

var strategyNames = []string{"longest-idle", "most-skilled", "last-agent", "least-occupied", "round-robin"}

func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", s)
}

// ParseStrategy turns a configuration name into a Strategy.
func ParseStrategy(s string) (Strategy, error) {
	for i, n := range strategyNames {
		if n == s {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown strategy %q", s)
}

// Config is the router's part of the configuration.
type Config struct {
	Skills []string
	Agents []AgentSpec
	Queues []QueueSpec
	// OfferTimeout is how long an offer waits for accept (or a phone rings).
	OfferTimeout time.Duration
	// MaxMissedOffers consecutive missed or declined offers put an agent
	// away with reason ReasonMissedOffers, like Asterisk's autopause. 0: never.
	MaxMissedOffers int
	// RetryDelay keeps an agent who missed or declined a task from being
	// offered that same task again for this long.
	RetryDelay time.Duration
	// VoiceBlocksOthers: an agent on a call gets no mails or messages.
	VoiceBlocksOthers bool
	// Priority weights: + TierWeight per customer value tier, + RepeatBoost
	// for a repeat contact, + AgingPerMinute for every minute waited.
	TierWeight     float64
	RepeatBoost    float64
	AgingPerMinute float64
}

// AgentSpec is an agent as configured.
type AgentSpec struct {
	ID       string
	Skills   map[string]int // skill → proficiency 1–5
	Capacity [numChannels]int
}

// QueueSpec is a queue as configured.
type QueueSpec struct {
	Name     string
	Skills   map[string]int // required skill → minimum proficiency
	Channels []Channel
	Priority float64
	Strategy Strategy
	// ServiceLevelThreshold: answered within it counts towards service level.
	ServiceLevelThreshold time.Duration
	// ServiceLevelTarget is the service level aimed for (0.8 = 80 %):
	// shown beside it, for supervisors and alerts; routing does not use it.
	ServiceLevelTarget float64
	WrapUp             time.Duration
	// MaxWait: then the task moves to OverflowQueue, or is canceled
	// (ReasonMaxWait) when that is empty. 0: no limit.
	MaxWait       time.Duration
	OverflowQueue string
	// Widening replaces the required skills after a task has waited
	// After; later steps must have later After values.
	Widening []WideningStep
	// LastAgentWait is how long a task waits for its preferred agent.
	LastAgentWait time.Duration
}

// WideningStep relaxes a queue's requirements for tasks that have waited.
type WideningStep struct {
	After  time.Duration
	Skills map[string]int
}

// Task is what a channel hands to the router.
type Task struct {
	ID         uint64
	Channel    Channel
	Queue      string
	CustomerID uint64
	ValueTier  int
	// Repeat marks a repeat contact (an unresolved earlier contact within
	// the journey package's window): priority boost, previous agent first.
	Repeat bool
	// PreferredAgent is the customer's previous agent; honoured for the
	// queue's LastAgentWait when the queue's strategy is last-agent or the
	// task is a repeat contact, the agent is logged in, and fewer tasks
	// wait for the agent on the channel than its capacity.
	PreferredAgent string
	Arrived        time.Time
}

// Offer is a task reserved for one agent until Deadline.
type Offer struct {
	TaskID   uint64
	Agent    string
	Channel  Channel
	Queue    string
	Deadline time.Time
}
