package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/release"
)

// Metrics are the agent's Prometheus metrics, registered on a registry the
// caller owns. A nil *Metrics records nothing.
type Metrics struct {
	checkins    *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	undelivered prometheus.Gauge
	current     *prometheus.GaugeVec
	offer       prometheus.Gauge
	notices     prometheus.Gauge
	database    *prometheus.GaugeVec
}

// NewMetrics creates the agent's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checkins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ringfence_agent_checkins_total",
			Help: "Check-ins by result: ok (answer verified) or error."}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringfence_agent_last_verified_answer_timestamp_seconds",
			Help: "Unix time of the last verified answer."}),
		undelivered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringfence_agent_undelivered_events",
			Help: "Events in the outbox not yet acknowledged by a verified answer."}),
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringfence_agent_release_status",
			Help: "1 for the running release's status (ok, paused, pulled) and the guidance action, per the last verified answer."},
			[]string{"version", "status", "action"}),
		offer: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringfence_agent_upgrade_offered",
			Help: "1 when the last verified answer offers an upgrade."}),
		notices: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringfence_agent_notices",
			Help: "Notices in the last verified answer."}),
		database: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ringfence_agent_database_health",
			Help: "1 for each watched database's current health status."}, []string{"database", "status"}),
	}
	reg.MustRegister(m.checkins, m.lastSuccess, m.undelivered, m.current, m.offer, m.notices, m.database)
	return m
}

// observe records a check-in's outcome.
func (m *Metrics) observe(st *State, res Result, err error, now time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.checkins.WithLabelValues("error").Inc()
	} else {
		m.checkins.WithLabelValues("ok").Inc()
		m.lastSuccess.Set(float64(now.Unix()))
		c := res.Answer.Current
		m.current.Reset()
		m.current.WithLabelValues(c.Version.String(), string(c.Status), string(c.Action)).Set(1)
		m.offer.Set(0)
		if res.Answer.Offer != nil {
			m.offer.Set(1)
		}
		m.notices.Set(float64(len(res.Answer.Notices)))
	}
	m.database.Reset()
	for _, d := range st.Databases {
		for _, s := range []release.HealthStatus{release.HealthOK, release.HealthUnknown, release.HealthCollationChanged, release.HealthCorrupt} {
			v := 0.0
			if d.Status == s {
				v = 1
			}
			m.database.WithLabelValues(d.Name, string(s)).Set(v)
		}
	}
}

// SetUndelivered records the outbox's size.
func (m *Metrics) SetUndelivered(n int) {
	if m != nil {
		m.undelivered.Set(float64(n))
	}
}
