package chat

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages   *prometheus.CounterVec   // direction
	rejected   *prometheus.CounterVec   // reason
	delivery   *prometheus.HistogramVec // direction
	sessions   *prometheus.CounterVec   // result: new, resumed
	transcript *prometheus.CounterVec   // result: sent, failed
}

// newMetrics registers the channel's metrics; open is read at scrape
// time for the open-sessions gauge, connected for live connections.
func newMetrics(reg prometheus.Registerer, open, connected func() float64) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "messages_total",
			Help: "Chat messages stored, by direction: in from customers, out from agents and dirigent.",
		}, []string{"direction"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "frames_rejected_total",
			Help: "Frames refused with an error frame, by reason.",
		}, []string{"reason"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "delivery_seconds",
			Help:    "From a message's arrival to its hand-over: in, to the agent's callback after storing; out, to the customer's socket.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"direction"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "connections_total",
			Help: "Widget connections that said hello, by result: new session or resumed.",
		}, []string{"result"}),
		transcript: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "transcripts_mailed_total",
			Help: "Transcripts handed to the mail channel at the end of a chat, by result.",
		}, []string{"result"}),
	}
	for _, d := range []string{"in", "out"} {
		m.messages.WithLabelValues(d)
		m.delivery.WithLabelValues(d)
	}
	cs := []prometheus.Collector{m.messages, m.rejected, m.delivery, m.sessions, m.transcript,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "sessions_open",
			Help: "Chat sessions that have not ended.",
		}, open),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "chat", Name: "connections",
			Help: "Customers' browsers connected now.",
		}, connected),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
