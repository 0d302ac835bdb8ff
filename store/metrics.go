package store

import (
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

type metrics struct {
	writeSeconds  prometheus.Histogram
	writeErrors   prometheus.Counter
	commitSeconds prometheus.Histogram
	commitWrites  prometheus.Histogram
	// intakeSyncSeconds is one append and fdatasync of the intake log.
	intakeSyncSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "store", Name: "write_seconds",
			Help:    "Time from submitting a write to its fsynced commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "store", Name: "write_errors_total",
			Help: "Writes that failed.",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "store", Name: "commit_seconds",
			Help:    "Duration of one write transaction, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "store", Name: "commit_writes",
			Help:    "Writes carried by one transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		intakeSyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "store", Name: "intake_sync_seconds",
			Help:    "Duration of one append and fdatasync of the mail intake log (one group of senders).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "dirigent", Subsystem: "store", Name: "intake_backlog_messages",
		Help: "Accepted messages in the intake log not yet applied to the store.",
	}, func() float64 {
		if s.intake == nil {
			return 0
		}
		return float64(s.intake.backlog.Load())
	})
	for _, c := range []prometheus.Collector{m.writeSeconds, m.writeErrors, m.commitSeconds, m.commitWrites, m.intakeSyncSeconds, backlog, &boltCollector{s}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var (
	descSize     = prometheus.NewDesc("dirigent_store_size_bytes", "Size of the store's data.", nil, nil)
	descFree     = prometheus.NewDesc("dirigent_store_free_pages", "Pages on the free list.", nil, nil)
	descPending  = prometheus.NewDesc("dirigent_store_pending_pages", "Pages freed but still held by open read transactions.", nil, nil)
	descOpenRead = prometheus.NewDesc("dirigent_store_open_read_transactions", "Read transactions open now.", nil, nil)
	descTx       = prometheus.NewDesc("dirigent_store_read_transactions_total", "Read transactions started.", nil, nil)
)

// boltCollector reads bbolt's statistics at scrape time.
type boltCollector struct{ s *Store }

func (c *boltCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSize, descFree, descPending, descOpenRead, descTx} {
		ch <- d
	}
}

func (c *boltCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.db.Stats()
	var size int64
	_ = c.s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(size))
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(st.FreePageN))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.PendingPageN))
	ch <- prometheus.MustNewConstMetric(descOpenRead, prometheus.GaugeValue, float64(st.OpenTxN))
	ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(st.TxN))
}
