package mail

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	processed    *prometheus.CounterVec
	received     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	connections  prometheus.Gauge
	sent         prometheus.Counter
	sendFailures prometheus.Counter
	autoAcks     *prometheus.CounterVec
	fetchErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "messages_processed_total",
			Help: "Stored messages processed, by outcome: new (conversation), reply, bounce (a delivery report about one of the site's replies; a task when an agent wrote it), automatic (no task), already (processed before a restart), gone (its customer was erased or merged meanwhile), unreadable, error.",
		}, []string{"outcome"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "messages_received_total",
			Help: "Messages stored durably (and then acknowledged), by source.",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "rejected_total",
			Help: "SMTP refusals, by reason: recipient, size, rate, connections, store.",
		}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "smtp_connections",
			Help: "Open SMTP connections.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "replies_sent_total",
			Help: "Replies the smarthost accepted.",
		}),
		sendFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "send_failures_total",
			Help: "Delivery attempts to the smarthost that failed: retried with backoff, unless the smarthost refused the reply for good or it waited its queue time (then it bounces).",
		}),
		autoAcks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "mail", Name: "auto_acks_total",
			Help: "Automatic acknowledgements of new conversations: sent, or suppressed (the recipient had one within the hour).",
		}, []string{"result"}),
	}
	m.fetchErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "dirigent", Subsystem: "mail", Name: "fetch_errors_total",
		Help: "Mailbox (IMAP) sessions that failed; each is retried after the poll interval.",
	})
	m.received.WithLabelValues("imap")
	m.autoAcks.WithLabelValues("sent")
	m.autoAcks.WithLabelValues("suppressed")
	m.received.WithLabelValues("smtp")
	for _, o := range []string{"new", "reply", "bounce", "automatic", "already", "unreadable", "error"} {
		m.processed.WithLabelValues(o)
	}
	for _, r := range []string{"recipient", "size", "rate", "connections", "store"} {
		m.rejected.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.processed, m.received, m.rejected, m.connections, m.sent, m.sendFailures, m.autoAcks, m.fetchErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
