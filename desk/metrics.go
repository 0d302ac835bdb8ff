package desk

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	logins        *prometheus.CounterVec
	offers        *prometheus.CounterVec
	wrapUps       *prometheus.CounterVec
	replies       prometheus.Counter
	eventsDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "http_requests_total",
			Help: "HTTP requests answered by the desk server, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "logins_total",
			Help: "Desk logins, by result: ok, refused (wrong name or password), rate_limited.",
		}, []string{"result"}),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "offers_total",
			Help: "Offers on agents' desks, by event: shown, accepted, declined, revoked.",
		}, []string{"event"}),
		wrapUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "wrap_ups_total",
			Help: "Tasks wrapped up on the desk, by wrap-up code (configured, so few).",
		}, []string{"code"}),
		replies: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "replies_total",
			Help: "Mail replies agents sent from the desk.",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "events_dropped_total",
			Help: "Live updates not delivered because a browser's event stream was full.",
		}),
	}
	collectors := []prometheus.Collector{m.requests, m.duration, m.logins, m.offers, m.wrapUps, m.replies, m.eventsDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "sessions",
			Help: "Desk sessions (logged-in users).",
		}, func() float64 { return float64(s.sessions.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "desk", Name: "event_streams",
			Help: "Open server-sent event streams.",
		}, func() float64 { return float64(s.events.count()) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(m.requests, promhttp.InstrumentHandlerDuration(m.duration, h))
}
