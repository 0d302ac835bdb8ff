package router

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors returned to channels and the desk.
var (
	ErrUnknownTask  = errors.New("unknown task")
	ErrUnknownAgent = errors.New("unknown agent")
	ErrUnknownQueue = errors.New("unknown queue")
	ErrWrongState   = errors.New("task is not in a state that allows this")
	ErrDuplicate    = errors.New("task already known")
	ErrErased       = errors.New("customer erased")
)

// Deps are what the router needs from the daemon.
type Deps struct {
	Logger  *slog.Logger
	Now     func() time.Time // the clock; tests drive it
	Journal Journal
	// OnOffer is called, without the router's lock held, for every new
	// offer: the channel rings the agent or the desk shows it.
	//
	// OnOffer and OnRevoke are called on the goroutine of whichever
	// method made the offer or ended it, and every method, reading ones
	// such as Agents and Stats too, first handles the deadlines that are
	// due, which may do either. So no method may be called holding a lock
	// that OnOffer or OnRevoke take, nor may they wait for one held while
	// a method is called: hand the work to a goroutine.
	OnOffer func(Offer)
	// OnRevoke is called when an offer ends without accept or decline
	// (timeout, caller hung up, agent went away): stop ringing.
	OnRevoke func(Offer)
}

// Router is the universal queue. Its methods are safe for concurrent use.
type Router struct {
	mu   sync.Mutex
	cfg  Config
	deps Deps

	skills   map[string]int
	agents   map[string]*agent
	byOrder  []*agent
	aclasses map[string]*agentClass
	queues   map[string]*queue
	tclasses []*taskClass
	tasks    map[uint64]*task
	erased   map[uint64]bool   // customers erased since the start: their tasks are refused
	merged   map[uint64]uint64 // customer merged away → the customer kept
	tiers    map[uint64]int    // the value tiers merges and unmerges left customers with
	timers   indexHeap[*timer]
	seq      uint64
	stats    *statsBook

	// outbox collects offers and revocations made under the lock; they are
	// delivered after it is released.
	outbox []notice
	// op counts the times the lock was taken: an offer made under the
	// current one has not been delivered yet.
	op uint64

	beat heartbeat
}

type notice struct {
	offer  Offer
	revoke bool
}

type req struct {
	skill int
	min   int8
}

type queue struct {
	spec     QueueSpec
	steps    [][]req        // step 0: the queue's skills; then each widening step
	classes  [][]*taskClass // [step][channel], nil where the channel is not taken
	rrCursor int            // round robin: order of the agent chosen last
	waiting  indexHeap[*task]
	rate     float64 // priority per second waited
}

// takes reports whether q takes tasks of channel ch; a nil q (no such
// queue) takes none.
func (q *queue) takes(ch Channel) bool {
	return q != nil && ch < numChannels && q.classes[0][ch] != nil
}

type taskClass struct {
	q      *queue
	step   int
	ch     Channel
	reqs   []req
	tasks  indexHeap[*task]
	compat []*agentClass // most skilled first
	score  map[*agentClass]int
}

type agentClass struct {
	prof    []int8
	free    [numChannels]indexHeap[*agent] // longest idle first
	byLoad  [numChannels]indexHeap[*agent] // fewest tasks in progress first
	freeSet [numChannels]bitset            // by agent order, for round robin
	compat  []*taskClass
}

type agent struct {
	spec     AgentSpec
	order    int
	class    *agentClass
	load     [numChannels]int
	total    int
	presence Presence
	reason   string
	removed  bool // by RemoveAgent: offline and offered nothing until SetAgent brings it back
	// idleSince is the latest of becoming available, being assigned and
	// ending a task or wrap-up, in unix nanoseconds.
	idleSince int64
	wrapping  int // tasks in wrap-up; the agent gets nothing meanwhile
	offer     *task
	missed    int
	// excluded are the tasks this agent missed, declined or had taken
	// back, each not offered to it again before its time.
	excluded  map[*task]time.Time
	heapPos   [2 * numChannels]int
	inFree    [numChannels]bool
	preferred []*task // tasks waiting for this agent in particular
	tasks     map[uint64]*task
	occ       occupancy
}

type task struct {
	Task
	state     State
	q         *queue
	step      int
	class     *taskClass
	prio      float64 // priority at arrival
	key       float64 // priority projected to time zero: order within a class
	seq       uint64
	heapPos   int
	waitPos   int
	parked    int       // parkedNowhere, parkedInClass or parkedForAgent
	entered   time.Time // entered its current queue: widening and max wait count from here
	maxWaitAt time.Time // when it has waited its queue's max wait; zero: no limit
	expired   bool      // max wait passed while an offer was out
	recovered bool      // queued again after a restart: its previous agent first
	answered  bool      // assigned before (also before a restart): statistics count that answer
	erased    bool      // a call whose customer was erased while it went on: canceled when it ends
	closed    bool      // its chat ended while taken: only its wrap-up is left, and that is its agent's
	agent     *agent
	deadline  time.Time // offer deadline while reserved
	offerOp   uint64    // the op in which the current offer was made
	assigned  time.Time
	waitFor   *agent // preferred agent while its window lasts
	waitUntil time.Time
}

// New builds a router from cfg. It validates what the config package
// cannot know, such as widening steps in order.
func New(cfg Config, deps Deps) (*Router, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		return nil, errors.New("router: Logger is required")
	}
	if deps.Journal == nil {
		return nil, errors.New("router: Journal is required")
	}
	cfg = withDefaults(cfg)
	r := &Router{
		cfg:      cfg,
		deps:     deps,
		skills:   map[string]int{},
		agents:   map[string]*agent{},
		aclasses: map[string]*agentClass{},
		queues:   map[string]*queue{},
		tasks:    map[uint64]*task{},
		erased:   map[uint64]bool{},
		merged:   map[uint64]uint64{},
		tiers:    map[uint64]int{},
		stats:    newStatsBook(thresholds(cfg)),
	}
	r.timers = indexHeap[*timer]{
		less:   timerLess,
		setPos: func(t *timer, i int) {},
	}
	for i, s := range cfg.Skills {
		r.skills[s] = i
	}
	var errs []error
	for _, qs := range cfg.Queues {
		if err := r.addQueue(qs); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, r.undefinedOverflows(cfg.Queues)...)
	for _, as := range cfg.Agents {
		if err := r.addAgent(as); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Router) reqs(owner string, m map[string]int) ([]req, error) {
	var rs []req
	for _, name := range sortedSkillNames(m) {
		i, ok := r.skills[name]
		if !ok {
			return nil, fmt.Errorf("%s: undefined skill %q", owner, name)
		}
		rs = append(rs, req{skill: i, min: int8(m[name])})
	}
	return rs, nil
}

func sortedSkillNames(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

func (r *Router) addQueue(qs QueueSpec) error {
	if _, dup := r.queues[qs.Name]; dup {
		return fmt.Errorf("queue %s defined twice", qs.Name)
	}
	q := &queue{spec: qs, rate: r.cfg.AgingPerMinute / 60, rrCursor: -1}
	q.waiting = indexHeap[*task]{
		less: func(a, b *task) bool {
			return a.Arrived.Before(b.Arrived) || a.Arrived.Equal(b.Arrived) && a.seq < b.seq
		},
		setPos: func(t *task, i int) { t.waitPos = i },
	}
	base, err := r.reqs("queue "+qs.Name, qs.Skills)
	if err != nil {
		return err
	}
	q.steps = append(q.steps, base)
	var last time.Duration
	for i, w := range qs.Widening {
		if w.After <= last {
			return fmt.Errorf("queue %s: widening step %d must come later than the one before", qs.Name, i+1)
		}
		last = w.After
		rs, err := r.reqs(fmt.Sprintf("queue %s widening step %d", qs.Name, i+1), w.Skills)
		if err != nil {
			return err
		}
		q.steps = append(q.steps, rs)
	}
	q.classes = make([][]*taskClass, len(q.steps))
	for step, rs := range q.steps {
		q.classes[step] = make([]*taskClass, numChannels)
		for _, ch := range qs.Channels {
			tc := &taskClass{q: q, step: step, ch: ch, reqs: rs, score: map[*agentClass]int{}}
			tc.tasks = indexHeap[*task]{less: taskLess, setPos: func(t *task, i int) { t.heapPos = i }}
			q.classes[step][ch] = tc
			r.tclasses = append(r.tclasses, tc)
			for _, ac := range r.aclasses {
				r.link(tc, ac)
			}
		}
	}
	r.queues[qs.Name] = q
	return nil
}

// taskLess orders a task class: highest priority first, then oldest.
// Priority grows with waiting at one rate per queue, so this order never
// changes while tasks wait: key is the priority projected to time zero.
func taskLess(a, b *task) bool {
	if a.key != b.key {
		return a.key > b.key
	}
	if !a.Arrived.Equal(b.Arrived) {
		return a.Arrived.Before(b.Arrived)
	}
	return a.seq < b.seq
}

func (r *Router) addAgent(as AgentSpec) error {
	if _, dup := r.agents[as.ID]; dup {
		return fmt.Errorf("agent %s defined twice", as.ID)
	}
	a := &agent{spec: as, order: len(r.byOrder), tasks: map[uint64]*task{}, excluded: map[*task]time.Time{}}
	for i := range a.heapPos {
		a.heapPos[i] = -1
	}
	ac, err := r.classFor(as)
	if err != nil {
		return err
	}
	a.class = ac
	r.agents[as.ID] = a
	r.byOrder = append(r.byOrder, a)
	return nil
}

// classFor finds or makes the agent class of as's skills.
func (r *Router) classFor(as AgentSpec) (*agentClass, error) {
	prof := make([]int8, len(r.cfg.Skills))
	var key strings.Builder
	for _, name := range sortedSkillNames(as.Skills) {
		i, ok := r.skills[name]
		if !ok {
			return nil, fmt.Errorf("agent %s: undefined skill %q", as.ID, name)
		}
		prof[i] = int8(as.Skills[name])
	}
	for _, p := range prof {
		key.WriteByte(byte('0' + p))
	}
	if ac, ok := r.aclasses[key.String()]; ok {
		return ac, nil
	}
	ac := &agentClass{prof: prof}
	for ch := range numChannels {
		ac.free[ch] = indexHeap[*agent]{less: idleLess, setPos: func(a *agent, i int) { a.heapPos[ch] = i }}
		ac.byLoad[ch] = indexHeap[*agent]{less: loadLess, setPos: func(a *agent, i int) { a.heapPos[numChannels+ch] = i }}
	}
	r.aclasses[key.String()] = ac
	for _, tc := range r.tclasses {
		r.link(tc, ac)
	}
	return ac, nil
}

func idleLess(a, b *agent) bool {
	if a.idleSince != b.idleSince {
		return a.idleSince < b.idleSince
	}
	return a.order < b.order
}

func loadLess(a, b *agent) bool {
	if a.total != b.total {
		return a.total < b.total
	}
	return idleLess(a, b)
}

// link records that agents of ac can take tasks of tc, if they can.
func (r *Router) link(tc *taskClass, ac *agentClass) {
	score := 0
	for _, rq := range tc.reqs {
		p := ac.prof[rq.skill]
		if p < rq.min {
			return
		}
		score += int(p)
	}
	tc.score[ac] = score
	i, _ := slices.BinarySearchFunc(tc.compat, score, func(c *agentClass, s int) int { return s - tc.score[c] })
	tc.compat = slices.Insert(tc.compat, i, ac)
	ac.compat = append(ac.compat, tc)
}

// deliver hands the collected offers and revocations to the channels. It
// is called after the lock is released, so callbacks may call back in.
func (r *Router) deliver(out []notice) {
	for _, n := range out {
		switch {
		case n.revoke && r.deps.OnRevoke != nil:
			r.deps.OnRevoke(n.offer)
		case !n.revoke && r.deps.OnOffer != nil:
			r.deps.OnOffer(n.offer)
		}
	}
}

// lock takes the lock for an operation and handles every deadline that
// has passed (offer timeouts, wrap-up ends, max wait, widening) before the
// operation looks at any task or agent: a deadline that fell due since the
// last Tick decides first, so a caller acting at that moment gets the
// answer the deadline gave (an offer that timed out cannot be accepted, a
// wrap-up that ended is unknown, not in the wrong state). It returns the
// time for the operation. Every operation takes the lock through it and
// releases it with unlock; only reads of the configuration (Queues,
// Skills), which neither decide nor notify, take mu alone.
func (r *Router) lock() time.Time {
	r.mu.Lock()
	r.op++
	return r.clock()
}

// unlock releases the lock and delivers what the operation produced.
func (r *Router) unlock() {
	out := r.outbox
	r.outbox = nil
	r.mu.Unlock()
	r.deliver(out)
}

func (r *Router) record(e Event) {
	r.deps.Journal.Record(e)
	r.stats.apply(e)
}

// now is the wall clock without Go's monotonic reading, so that times
// computed live equal those recomputed from the stored journal.
func (r *Router) now() time.Time { return r.deps.Now().Round(0) }

// effective is a task's priority at now.
func (t *task) effective(now time.Time) float64 {
	return t.prio + t.q.rate*now.Sub(t.Arrived).Seconds()
}

// String is for logs and test failures.
func (t *task) String() string {
	return fmt.Sprintf("task %d (%s, %s, %s)", t.ID, t.Queue, t.Channel, t.state)
}
