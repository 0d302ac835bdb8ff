package journey

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	trainSeconds    prometheus.Histogram
	trainedContacts prometheus.Gauge
	trainErrors     prometheus.Counter
	textsDropped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		trainSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "journey", Name: "train_seconds",
			Help:    "Time to rebuild the learned intent and resolution model from the store.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		trainedContacts: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "journey", Name: "model_contacts",
			Help: "Contacts with a known intent the current learned model was trained on.",
		}),
		trainErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "journey", Name: "train_errors_total",
			Help: "Retrainings that failed (the previous model stayed).",
		}),
		textsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "journey", Name: "texts_dropped_total",
			Help: "Contact texts dropped by journey.text_retention.",
		}),
	}
	for _, c := range []prometheus.Collector{m.trainSeconds, m.trainedContacts, m.trainErrors, m.textsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
