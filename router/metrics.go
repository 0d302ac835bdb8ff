package router

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Register adds the router's metrics to reg. They are computed at scrape
// time from the same statistics the desk shows, so the two always agree.
func (r *Router) Register(reg prometheus.Registerer) error {
	return reg.Register(&collector{r: r})
}

var (
	descWaiting = prometheus.NewDesc("dirigent_router_tasks_waiting",
		"Tasks waiting in the queue now (pending or being offered).", []string{"queue"}, nil)
	descLongest = prometheus.NewDesc("dirigent_router_longest_wait_seconds",
		"How long the oldest waiting task of the queue has waited.", []string{"queue"}, nil)
	descOffered = prometheus.NewDesc("dirigent_router_tasks_offered",
		"Tasks that entered the queue in the window.", []string{"queue", "window"}, nil)
	descAnswered = prometheus.NewDesc("dirigent_router_tasks_answered",
		"Tasks answered (accepted by an agent) in the window.", []string{"queue", "window"}, nil)
	descAbandoned = prometheus.NewDesc("dirigent_router_tasks_abandoned",
		"Tasks the customer gave up on while waiting, in the window.", []string{"queue", "window"}, nil)
	descSL = prometheus.NewDesc("dirigent_router_service_level_ratio",
		"Answered within the queue's threshold ÷ answered, in the window (absent with nothing answered).", []string{"queue", "window"}, nil)
	descSL2 = prometheus.NewDesc("dirigent_router_service_level2_ratio",
		"(Answered + abandoned within the threshold) ÷ (answered + abandoned), in the window.", []string{"queue", "window"}, nil)
	descASA = prometheus.NewDesc("dirigent_router_average_speed_of_answer_seconds",
		"Mean wait of the tasks answered in the window.", []string{"queue", "window"}, nil)
	descAbandonRate = prometheus.NewDesc("dirigent_router_abandon_ratio",
		"Abandoned ÷ offered to the queue, in the window.", []string{"queue", "window"}, nil)
	descAHT = prometheus.NewDesc("dirigent_router_average_handle_time_seconds",
		"Mean time from answer to completion (wrap-up included) of tasks completed in the window.", []string{"queue", "window"}, nil)
	descSLThreshold = prometheus.NewDesc("dirigent_router_service_level_threshold_seconds",
		"The queue's service-level threshold: answers within it count as in time.", []string{"queue"}, nil)
	descSLTarget = prometheus.NewDesc("dirigent_router_service_level_target_ratio",
		"The service level the queue aims for (0.8 = 80 %).", []string{"queue"}, nil)
	descAgents = prometheus.NewDesc("dirigent_router_agents",
		"Agents by presence.", []string{"presence"}, nil)
	descOccupancy = prometheus.NewDesc("dirigent_router_occupancy_ratio",
		"All agents' time on tasks ÷ (time on tasks + available idle time), today.", nil, nil)
)

type collector struct{ r *Router }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWaiting, descLongest, descOffered, descAnswered, descAbandoned, descSL, descSL2, descASA, descAbandonRate, descAHT, descSLThreshold, descSLTarget, descAgents, descOccupancy} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, q := range c.r.Stats() {
		gauge(descWaiting, float64(q.Waiting), q.Queue)
		gauge(descLongest, q.LongestWait.Seconds(), q.Queue)
		gauge(descSLThreshold, q.ServiceLevelThreshold.Seconds(), q.Queue)
		gauge(descSLTarget, q.ServiceLevelTarget, q.Queue)
		for _, w := range []struct {
			name string
			s    WindowStats
		}{{"15m", q.Last15m}, {"1h", q.LastHour}, {"today", q.Today}} {
			gauge(descOffered, float64(w.s.Offered), q.Queue, w.name)
			gauge(descAnswered, float64(w.s.Answered), q.Queue, w.name)
			gauge(descAbandoned, float64(w.s.Abandoned), q.Queue, w.name)
			if sl, ok := w.s.ServiceLevel(); ok {
				gauge(descSL, sl, q.Queue, w.name)
			}
			if sl, ok := w.s.ServiceLevel2(); ok {
				gauge(descSL2, sl, q.Queue, w.name)
			}
			gauge(descASA, w.s.ASA().Seconds(), q.Queue, w.name)
			gauge(descAbandonRate, w.s.AbandonRate(), q.Queue, w.name)
			gauge(descAHT, w.s.AHT().Seconds(), q.Queue, w.name)
		}
	}
	var byPresence [len(presenceNames)]int
	var busy, idle float64
	for _, a := range c.r.Agents() {
		byPresence[a.Presence]++
		busy += a.Busy.Seconds()
		idle += a.Idle.Seconds()
	}
	for p, n := range byPresence {
		gauge(descAgents, float64(n), Presence(p).String())
	}
	if busy+idle > 0 {
		gauge(descOccupancy, busy/(busy+idle))
	}
}
