package router

import (
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The benchmark site: 10,000 agents in 50 skill combinations and 100,000
// waiting tasks (issue #3). Half the combinations (group A) serve queues
// qa*, the other half (group B) queues qb*. Every group A agent is on a
// call and 100,000 calls wait for them; group B agents are free. So a new
// qb* call finds a free agent among 5,000 at once, and a group A agent
// who hangs up gets the best of 100,000 waiting calls.
const (
	benchAgents  = 10_000
	benchCombos  = 50
	benchWaiting = 100_000
)

type discardJournal struct{}

func (discardJournal) Record(Event) {}

func benchConfig() Config {
	cfg := Config{OfferTimeout: 20 * time.Second, VoiceBlocksOthers: true, TierWeight: 1, RepeatBoost: 2, AgingPerMinute: 1}
	for i := range 10 {
		cfg.Skills = append(cfg.Skills, fmt.Sprintf("s%d", i))
	}
	for q := range 20 {
		group, base := "qa", 0
		if q >= 10 {
			group, base = "qb", 5
		}
		cfg.Queues = append(cfg.Queues, QueueSpec{
			Name:     fmt.Sprintf("%s%d", group, q%10),
			Skills:   map[string]int{cfg.Skills[base+q%5]: 1 + q%3},
			Channels: []Channel{Voice, Email, Message},
			Priority: float64(q % 3), Strategy: Strategy(q % 5),
			ServiceLevelThreshold: 20 * time.Second, MaxWait: time.Hour,
			Widening: []WideningStep{{After: 10 * time.Minute, Skills: map[string]int{cfg.Skills[base+q%5]: 1}}},
		})
	}
	for i := range benchAgents {
		combo := i % benchCombos
		base := 0
		if combo >= benchCombos/2 {
			base = 5
		}
		skills := map[string]int{
			cfg.Skills[base+combo%5]:     5,
			cfg.Skills[base+(combo+1)%5]: 1 + combo%4,
			cfg.Skills[base+(combo+2)%5]: 1 + (combo/5)%5,
		}
		cfg.Agents = append(cfg.Agents, AgentSpec{ID: fmt.Sprintf("agent%05d", i), Skills: skills, Capacity: cap3(1, 3, 2)})
	}
	return cfg
}

type benchSite struct {
	r      *Router
	now    time.Time
	nextID uint64
	offers []Offer
	busyA  []uint64 // tasks assigned to group A agents
}

func newBenchSite(b *testing.B) *benchSite {
	b.Helper()
	s := &benchSite{now: t0}
	r, err := New(benchConfig(), Deps{
		Logger:  slog.New(slog.DiscardHandler),
		Now:     func() time.Time { return s.now },
		Journal: discardJournal{},
		OnOffer: func(o Offer) { s.offers = append(s.offers, o) },
	})
	if err != nil {
		b.Fatal(err)
	}
	s.r = r
	// Group A agents come in and each takes a call.
	for i := range benchAgents {
		if (i % benchCombos) < benchCombos/2 {
			s.must(b, r.SetPresence(fmt.Sprintf("agent%05d", i), Available, ""))
		}
	}
	for len(s.busyA) < benchAgents/2 {
		s.enqueue(b, "qa", Voice)
		for _, o := range s.takeOffers() {
			s.must(b, r.Accept(o.TaskID, o.Agent))
			s.busyA = append(s.busyA, o.TaskID)
		}
	}
	for range benchWaiting {
		s.enqueue(b, "qa", Voice)
	}
	if n := len(s.takeOffers()); n != 0 {
		b.Fatalf("%d offers while every group A agent is busy", n)
	}
	for i := range benchAgents {
		if (i % benchCombos) >= benchCombos/2 {
			s.must(b, r.SetPresence(fmt.Sprintf("agent%05d", i), Available, ""))
		}
	}
	return s
}

func (s *benchSite) must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

func (s *benchSite) enqueue(b *testing.B, group string, ch Channel) {
	s.nextID++
	s.now = s.now.Add(time.Millisecond)
	q := fmt.Sprintf("%s%d", group, s.nextID%10)
	s.must(b, s.r.Enqueue(Task{ID: s.nextID, Queue: q, Channel: ch, ValueTier: int(s.nextID % 3), Arrived: s.now}))
}

func (s *benchSite) takeOffers() []Offer {
	o := s.offers
	s.offers = s.offers[:0:0]
	return o
}

func (s *benchSite) oneOffer(b *testing.B) Offer {
	offers := s.takeOffers()
	if len(offers) != 1 {
		b.Fatalf("got %d offers, want 1", len(offers))
	}
	return offers[0]
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkRouteNewTask: a new call is offered to the best of 5,000 free
// agents while 100,000 other calls wait.
func BenchmarkRouteNewTask(b *testing.B) {
	s := newBenchSite(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		s.nextID++
		s.now = s.now.Add(time.Millisecond)
		task := Task{ID: s.nextID, Queue: fmt.Sprintf("qb%d", s.nextID%10), Channel: Voice, Arrived: s.now}
		start := time.Now()
		err := s.r.Enqueue(task)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		s.must(b, err)
		agent := s.oneOffer(b).Agent
		s.must(b, s.r.Accept(task.ID, agent))
		s.must(b, s.r.Complete(task.ID, agent))
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkFreedAgentNextTask: a group A agent completes a call and is
// offered the best of 100,000 waiting calls.
func BenchmarkFreedAgentNextTask(b *testing.B) {
	s := newBenchSite(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id := s.busyA[i%len(s.busyA)]
		agent := s.r.holder(id)
		s.now = s.now.Add(time.Millisecond)
		b.StartTimer()
		start := time.Now()
		err := s.r.Complete(id, agent)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		s.must(b, err)
		o := s.oneOffer(b)
		s.must(b, s.r.Accept(o.TaskID, o.Agent))
		s.busyA[i%len(s.busyA)] = o.TaskID
		s.enqueue(b, "qa", Voice) // keep 100,000 waiting
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkMemoryPerWaitingTask reports the heap bytes 100,000 waiting
// tasks take.
func BenchmarkMemoryPerWaitingTask(b *testing.B) {
	for range b.N {
		s := &benchSite{now: t0}
		r, err := New(benchConfig(), Deps{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return s.now }, Journal: discardJournal{}})
		if err != nil {
			b.Fatal(err)
		}
		s.r = r
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range benchWaiting {
			s.enqueue(b, "qa", Voice)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchWaiting, "bytes/task")
		runtime.KeepAlive(r)
	}
}
