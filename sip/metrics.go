package sip

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	calls         *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	registrations prometheus.Gauge
	registers     *prometheus.CounterVec
	rtpRelayed    prometheus.Counter
	rtpLost       prometheus.Counter
	rtpSent       prometheus.Counter
	setupSeconds  prometheus.Histogram
	agentLegs     *prometheus.CounterVec
	activeCalls   prometheus.Gauge
	messages      *prometheus.CounterVec

	// The hold-audio pacer's: which scheduling its thread got, and how
	// late its ticks were.
	holdScheduling *prometheus.GaugeVec
	holdLateness   prometheus.Histogram
}

// Outcomes of a call, the label of calls_total.
const (
	outcomeAnswered  = "answered"  // an agent talked to the caller
	outcomeAbandoned = "abandoned" // the caller hung up while waiting
	outcomeCanceled  = "canceled"  // the router gave up (max wait) or dirigent stopped
	outcomeFailed    = "failed"    // media or store failure
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "calls_total",
			Help: "Calls answered by dirigent that ended, by outcome: answered (by an agent), abandoned, canceled, failed.",
		}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "rejected_total",
			Help: "Requests refused, by reason: trunk (not from a trunk, 403), auth (bad digest), number (404), sdp (400), codec (488), malformed (400), draining (503), message (MESSAGE 400, 403, 413, 415), message_rate (MESSAGE 503).",
		}, []string{"reason"}),
		registrations: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "registrations",
			Help: "Registered contacts (agents' phones) that have not expired.",
		}),
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "register_requests_total",
			Help: "REGISTER requests, by result: ok, challenged (401), stale, forbidden (unknown user or wrong password), error.",
		}, []string{"result"}),
		rtpRelayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "rtp_packets_relayed_total",
			Help: "RTP packets relayed between a caller and an agent.",
		}),
		rtpLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "rtp_packets_lost_total",
			Help: "RTP packets missing in the sequence numbers of relayed streams.",
		}),
		rtpSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "rtp_packets_played_total",
			Help: "RTP packets of hold audio and prompts sent to callers.",
		}),
		setupSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "setup_seconds",
			Help:    "From a caller's INVITE to dirigent's 200 OK.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		agentLegs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "agent_rings_total",
			Help: "Offers rung on agents' phones, by result: answered, declined (busy or refused), timeout, revoked, unreachable.",
		}, []string{"result"}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "active_calls",
			Help: "Calls in progress (waiting or talking).",
		}),
		holdScheduling: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "hold_audio_scheduling",
			Help: "1 for the scheduling the hold-audio pacer's thread got, 0 for the others: realtime (SCHED_FIFO 10), nice (nice -10), normal.",
		}, []string{"policy"}),
		holdLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "hold_audio_tick_lateness_seconds",
			Help:    "How long after its 20 ms deadline each tick of the hold-audio pacer had sent its last packet: waking up plus sending every waiting caller's packet.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1},
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dirigent", Subsystem: "sip", Name: "messages_total",
			Help: "SIP MESSAGE requests, by direction and result: in accepted, refused, error; out sent, failed.",
		}, []string{"direction", "result"}),
	}
	for _, p := range []string{schedRealtime, schedNice, schedNormal} {
		m.holdScheduling.WithLabelValues(p)
	}
	for _, o := range []string{outcomeAnswered, outcomeAbandoned, outcomeCanceled, outcomeFailed} {
		m.calls.WithLabelValues(o)
	}
	for _, r := range []string{"trunk", "auth", "number", "sdp", "codec", "malformed", "draining", "message", "message_rate"} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "challenged", "stale", "forbidden", "error"} {
		m.registers.WithLabelValues(r)
	}
	for _, r := range []string{"answered", "declined", "timeout", "revoked", "unreachable"} {
		m.agentLegs.WithLabelValues(r)
	}
	for _, r := range []string{"accepted", "refused", "error"} {
		m.messages.WithLabelValues("in", r)
	}
	for _, r := range []string{"sent", "failed"} {
		m.messages.WithLabelValues("out", r)
	}
	for _, c := range []prometheus.Collector{m.calls, m.rejected, m.registrations, m.registers, m.rtpRelayed, m.rtpLost, m.rtpSent, m.setupSeconds, m.agentLegs, m.activeCalls, m.holdScheduling, m.holdLateness, m.messages} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
