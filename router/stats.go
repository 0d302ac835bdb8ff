package router

import (
	"slices"
	"time"
)

// Statistics follow the industry's definitions (DESIGN.md):
//   - service level = answered within the threshold ÷ answered
//   - SL2 = (answered within + abandoned within the threshold) ÷ (answered + abandoned):
//     a caller who gives up within the threshold does not count against it
//   - ASA = mean wait of answered tasks
//   - abandon rate = abandoned ÷ offered to the queue
//   - average handle time = mean of completion − assignment (talk and wrap-up)
//   - occupancy = time on tasks ÷ (time on tasks + available idle time)
//
// They are folded from the journal's events, by the same code live and in
// Recompute, so the two cannot disagree.

// WindowStats are a queue's counts over a time window.
type WindowStats struct {
	Offered              int // entered the queue (new or overflowed in)
	Answered             int
	AnsweredInThreshold  int
	Abandoned            int
	AbandonedInThreshold int
	Moved                int // left for an overflow queue
	Completed            int
	WaitSum              time.Duration // of answered tasks
	HandleSum            time.Duration // of completed tasks
}

// ServiceLevel is answered within threshold ÷ answered; ok is false with
// nothing answered.
func (w WindowStats) ServiceLevel() (sl float64, ok bool) {
	if w.Answered == 0 {
		return 0, false
	}
	return float64(w.AnsweredInThreshold) / float64(w.Answered), true
}

// ServiceLevel2 also counts abandons within the threshold as in time.
func (w WindowStats) ServiceLevel2() (sl float64, ok bool) {
	n := w.Answered + w.Abandoned
	if n == 0 {
		return 0, false
	}
	return float64(w.AnsweredInThreshold+w.AbandonedInThreshold) / float64(n), true
}

// ASA is the average speed of answer.
func (w WindowStats) ASA() time.Duration {
	if w.Answered == 0 {
		return 0
	}
	return w.WaitSum / time.Duration(w.Answered)
}

// AbandonRate is abandoned ÷ offered.
func (w WindowStats) AbandonRate() float64 {
	if w.Offered == 0 {
		return 0
	}
	return float64(w.Abandoned) / float64(w.Offered)
}

// AHT is the average handle time.
func (w WindowStats) AHT() time.Duration {
	if w.Completed == 0 {
		return 0
	}
	return w.HandleSum / time.Duration(w.Completed)
}

func (w *WindowStats) add(o *WindowStats) {
	w.Offered += o.Offered
	w.Answered += o.Answered
	w.AnsweredInThreshold += o.AnsweredInThreshold
	w.Abandoned += o.Abandoned
	w.AbandonedInThreshold += o.AbandonedInThreshold
	w.Moved += o.Moved
	w.Completed += o.Completed
	w.WaitSum += o.WaitSum
	w.HandleSum += o.HandleSum
}

// QueueStats is a queue's live state and its rolling windows.
type QueueStats struct {
	Queue string
	// The queue's service-level goal: ServiceLevelTarget of the answers
	// within ServiceLevelThreshold.
	ServiceLevelThreshold time.Duration
	ServiceLevelTarget    float64
	Waiting               int           // pending or being offered
	LongestWait           time.Duration // of the tasks waiting now
	Last15m               WindowStats
	LastHour              WindowStats
	Today                 WindowStats // since local midnight
}

// minutes of history kept: enough for "today" at any hour.
const statsMinutes = 24*60 + 1

type minuteBucket struct {
	minute int64 // unix minute this bucket holds; others are stale
	WindowStats
}

// statsBook folds events into per-queue minute buckets.
type statsBook struct {
	threshold map[string]time.Duration
	buckets   map[string]*[statsMinutes]minuteBucket
}

func newStatsBook(thresholds map[string]time.Duration) *statsBook {
	return &statsBook{threshold: thresholds, buckets: map[string]*[statsMinutes]minuteBucket{}}
}

func (s *statsBook) bucket(queue string, at time.Time) *WindowStats {
	ring := s.buckets[queue]
	if ring == nil {
		ring = new([statsMinutes]minuteBucket)
		s.buckets[queue] = ring
	}
	m := at.Unix() / 60
	b := &ring[m%statsMinutes]
	if b.minute != m {
		*b = minuteBucket{minute: m}
	}
	return &b.WindowStats
}

func (s *statsBook) apply(e Event) {
	if e.Queue == "" {
		return
	}
	wait := e.At.Sub(e.Arrived)
	in := wait <= s.threshold[e.Queue]
	switch e.Kind {
	case TaskCreated:
		// Offered once: not again after a restart, nor when it comes back
		// (returned, or moved on after that).
		if e.Reason != ReasonRecovered && !e.Answered {
			s.bucket(e.Queue, e.At).Offered++
		}
	case TaskAssigned:
		if e.Reason == ReasonAnsweredBefore {
			return
		}
		b := s.bucket(e.Queue, e.At)
		b.Answered++
		b.WaitSum += wait
		if in {
			b.AnsweredInThreshold++
		}
	case TaskCanceled:
		if e.Reason == ReasonAbandoned && !e.Answered { // abandoned before it was answered
			b := s.bucket(e.Queue, e.At)
			b.Abandoned++
			if in {
				b.AbandonedInThreshold++
			}
		}
	case TaskMoved:
		s.bucket(e.Queue, e.At).Moved++
	case TaskCompleted:
		b := s.bucket(e.Queue, e.At)
		b.Completed++
		b.HandleSum += e.At.Sub(e.Since)
	}
}

// window sums the buckets of queue from since up to now.
func (s *statsBook) window(queue string, since, now time.Time) WindowStats {
	var w WindowStats
	ring := s.buckets[queue]
	if ring == nil {
		return w
	}
	from, to := since.Unix()/60, now.Unix()/60
	if to-from >= statsMinutes {
		from = to - statsMinutes + 1
	}
	for m := from; m <= to; m++ {
		if b := &ring[m%statsMinutes]; b.minute == m {
			w.add(&b.WindowStats)
		}
	}
	return w
}

func (s *statsBook) queueStats(qs QueueSpec, now time.Time) QueueStats {
	y, mo, d := now.Date()
	midnight := time.Date(y, mo, d, 0, 0, 0, 0, now.Location())
	return QueueStats{
		Queue:                 qs.Name,
		ServiceLevelThreshold: qs.ServiceLevelThreshold,
		ServiceLevelTarget:    qs.ServiceLevelTarget,
		Last15m:               s.window(qs.Name, now.Add(-15*time.Minute+time.Minute), now),
		LastHour:              s.window(qs.Name, now.Add(-time.Hour+time.Minute), now),
		Today:                 s.window(qs.Name, midnight, now),
	}
}

// Stats returns every queue's statistics, in configuration order.
func (r *Router) Stats() []QueueStats {
	now := r.lock()
	defer r.unlock()
	out := make([]QueueStats, 0, len(r.cfg.Queues))
	for _, qs := range r.cfg.Queues {
		st := r.stats.queueStats(qs, now)
		q := r.queues[qs.Name]
		st.Waiting = q.waiting.len()
		if st.Waiting > 0 {
			st.LongestWait = now.Sub(q.waiting.items[0].Arrived)
		}
		out = append(out, st)
	}
	return out
}

// Recompute folds a journal's events into statistics as the router would
// have, for the queues of cfg, as of now. Live counts (waiting, longest
// wait) are not in the journal's windows and stay zero.
func Recompute(cfg Config, events []Event, now time.Time) []QueueStats {
	s := newStatsBook(thresholds(cfg))
	for _, e := range events {
		s.apply(e)
	}
	out := make([]QueueStats, 0, len(cfg.Queues))
	for _, qs := range cfg.Queues {
		out = append(out, s.queueStats(qs, now))
	}
	return out
}

func thresholds(cfg Config) map[string]time.Duration {
	m := make(map[string]time.Duration, len(cfg.Queues))
	for _, q := range cfg.Queues {
		m[q.Name] = q.ServiceLevelThreshold
	}
	return m
}

// occupancy accumulates an agent's time on tasks and available idle time
// since local midnight.
type occupancy struct {
	day        int // year*1000 + day of year
	since      time.Time
	busy, idle time.Duration
}

// occupancy books the time since the last call by a's state before the
// change the caller is about to make.
func (r *Router) occupancy(a *agent, now time.Time) {
	o := &a.occ
	if day := now.Year()*1000 + now.YearDay(); day != o.day {
		*o = occupancy{day: day, since: now}
		return
	}
	d := now.Sub(o.since)
	o.since = now
	switch {
	case a.total > 0 || a.wrapping > 0:
		o.busy += d
	case a.presence == Available:
		o.idle += d
	}
}

// HeldTask is a task an agent has taken or wraps up.
type HeldTask struct {
	ID         uint64
	Channel    Channel
	Queue      string
	Returnable bool // ReturnTask may put it back into its queue
}

// AgentStats is an agent's live state and today's occupancy.
type AgentStats struct {
	Agent string
	// Skills and Capacity as the router routes by them now: the
	// configuration's, or an admin's change since. Skills is the router's
	// own map, shared (a change replaces it, never writes into it): read
	// it only.
	Skills    map[string]int
	Capacity  [numChannels]int
	Presence  Presence
	Reason    string
	Load      [numChannels]int
	Wrapping  int
	Offered   uint64 // task on offer, 0 for none
	Busy      time.Duration
	Idle      time.Duration
	Occupancy float64 // busy ÷ (busy + idle); 0 when both are 0
}

// Takes reports whether queue exists and takes tasks of channel ch.
func (r *Router) Takes(queue string, ch Channel) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[queue]
	return q.takes(ch)
}

// Staffed reports whether an available agent, free or busy, meets what
// a queue's tasks on channel ch require at their first step and takes
// that channel: whether anyone could answer such a task soon. It follows
// reloads and skill changes on the admin page.
func (r *Router) Staffed(queue string, ch Channel) bool {
	r.lock()
	defer r.unlock()
	q := r.queues[queue]
	if !q.takes(ch) {
		return false
	}
	tc := q.classes[0][ch]
	for _, a := range r.byOrder {
		if _, ok := tc.score[a.class]; ok && a.presence == Available && a.spec.Capacity[ch] > 0 {
			return true
		}
	}
	return false
}

// Queues are the queues as the router runs them, in configuration order:
// with the settings of the last reload SetSettings applied.
func (r *Router) Queues() []QueueSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cfg.Queues)
}

// Skills are the skills the router was built with, in order.
func (r *Router) Skills() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cfg.Skills)
}

// Held are the tasks each agent (not removed) has taken or wraps up,
// oldest first, by agent: the wallboard's, apart from Agents, which
// metrics, registrations and every /me read without needing them.
func (r *Router) Held() map[string][]HeldTask {
	r.lock()
	defer r.unlock()
	out := map[string][]HeldTask{}
	for _, a := range r.byOrder {
		if a.removed {
			continue
		}
		for _, t := range heldBy(a) {
			out[a.spec.ID] = append(out[a.spec.ID], HeldTask{ID: t.ID, Channel: t.Channel, Queue: t.Queue, Returnable: returnable(t)})
		}
	}
	return out
}

// Agents returns every agent's state, in configuration order; removed
// agents are not among them.
func (r *Router) Agents() []AgentStats {
	now := r.lock()
	defer r.unlock()
	out := make([]AgentStats, 0, len(r.byOrder))
	for _, a := range r.byOrder {
		if a.removed {
			continue
		}
		r.occupancy(a, now)
		st := AgentStats{Agent: a.spec.ID, Skills: a.spec.Skills, Capacity: a.spec.Capacity,
			Presence: a.presence, Reason: a.reason, Load: a.load, Wrapping: a.wrapping, Busy: a.occ.busy, Idle: a.occ.idle}
		if a.offer != nil {
			st.Offered = a.offer.ID
		}
		if sum := st.Busy + st.Idle; sum > 0 {
			st.Occupancy = float64(st.Busy) / float64(sum)
		}
		out = append(out, st)
	}
	return out
}
