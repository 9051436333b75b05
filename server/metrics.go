package server

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	checkIns  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	batch     prometheus.Histogram
	autoHalts *prometheus.CounterVec
	webhooks  *prometheus.CounterVec
	snapshots prometheus.Counter
	// failedRecords counts check-in records that could not be written even
	// alone.
	failedRecords prometheus.Counter
	// statusRenders is registered by setupStatus (status.go).
	statusRenders prometheus.Counter
	// quotaRejections counts check-ins refused by a quota.
	quotaRejections *prometheus.CounterVec

	// checkInsOK and byLabels hold the check-in path's counters once their
	// labels were resolved, so a check-in costs no label hashing and no
	// string formatting (byLabels: a few dozen label combinations at most).
	checkInsOK prometheus.Counter
	byLabels   sync.Map // decisionLabels → prometheus.Counter
}

// decisionLabels are the labels of ringfence_decisions_total.
type decisionLabels struct {
	status, action string
	offer          bool
}

// checkIn counts a check-in answered with HTTP status code.
func (m *metrics) checkIn(code int) {
	if code == 200 {
		m.checkInsOK.Inc()
		return
	}
	m.checkIns.WithLabelValues(strconv.Itoa(code)).Inc()
}

// decision counts an answer by its current version's status and action and
// whether it offered an upgrade.
func (m *metrics) decision(status, action string, offer bool) {
	k := decisionLabels{status, action, offer}
	if c, ok := m.byLabels.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	o := "no"
	if offer {
		o = "yes"
	}
	c := m.decisions.WithLabelValues(status, action, o)
	m.byLabels.Store(k, c)
	c.Inc()
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		checkIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_checkins_total",
			Help: "Check-ins received, by HTTP status of the answer.",
		}, []string{"code"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_decisions_total",
			Help: "Check-in answers, by the status of the installation's version, its action, and whether an upgrade was offered.",
		}, []string{"status", "action", "offer"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ringfence_checkin_duration_seconds",
			Help:    "Time to answer a check-in, including the commit of reported events.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ringfence_checkin_batch_records",
			Help:    "Check-in records written per store transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		autoHalts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_auto_halts_total",
			Help: "Releases paused by auto-halt (by this server).",
		}, []string{"product"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_incident_webhooks_total",
			Help: "Incident webhook deliveries, by outcome (delivered, failed).",
		}, []string{"outcome"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_snapshot_rebuilds_total",
			Help: "Rebuilds of the in-memory decision snapshot.",
		}),
		failedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringfence_checkin_records_failed_total",
			Help: "Check-in records the store refused even when written alone.",
		}),
		quotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringfence_quota_rejections_total",
			Help: "Check-ins answered 429 because a quota was exhausted, by quota.",
		}, []string{"quota"}),
	}
	m.checkInsOK = m.checkIns.WithLabelValues("200")
	m.registry.MustRegister(m.checkIns, m.decisions, m.latency, m.batch, m.autoHalts, m.webhooks, m.snapshots, m.failedRecords, m.quotaRejections,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
