package main

import "github.com/prometheus/client_golang/prometheus"

// daemonMetrics are the lifecycle's own metrics.
type daemonMetrics struct {
	reloads        *prometheus.CounterVec
	lastReloadGood prometheus.Gauge
	journalErrors  prometheus.Counter
}

func newDaemonMetrics(reg prometheus.Registerer) (*daemonMetrics, error) {
	m := &daemonMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "config", Name: "reloads_total",
			Help: "Configuration reloads (SIGHUP), by result: applied or refused.",
		}, []string{"result"}),
		lastReloadGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "config", Name: "last_reload_successful",
			Help: "1 if the last reload was applied (or none was tried), 0 if it was refused.",
		}),
		journalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "router", Name: "journal_write_errors_total",
			Help: "Batches of router events the store refused (lost from the journal).",
		}),
	}
	m.reloads.WithLabelValues("applied")
	m.reloads.WithLabelValues("refused")
	m.lastReloadGood.Set(1)
	for _, c := range []prometheus.Collector{m.reloads, m.lastReloadGood, m.journalErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
