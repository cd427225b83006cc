package web

import "github.com/prometheus/client_golang/prometheus"

// drMetrics are the demand-response series.
type drMetrics struct {
	received prometheus.Counter
	alarms   prometheus.Counter
	events   *prometheus.GaugeVec
}

// drPhases are the label values of switchd_dr_events.
var drPhases = []string{"scheduled", "active"}

// newDRMetrics makes the demand-response series, for NewMetrics to register.
func newDRMetrics() (drMetrics, []prometheus.Collector) {
	d := drMetrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchd_dr_events_received_total",
			Help: "Demand-response events (and updates of them) accepted."}),
		alarms: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchd_dr_alarms_total",
			Help: "Demand-response events whose target the site failed: not met by the deadline, or lost before the end."}),
		events: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switchd_dr_events",
			Help: "Demand-response events tracked, by phase (scheduled: before start; active: start to end)."}, []string{"phase"}),
	}
	for _, p := range drPhases {
		d.events.WithLabelValues(p)
	}
	return d, []prometheus.Collector{d.received, d.alarms, d.events}
}

// DRReceived counts an accepted demand-response event.
func (m *Metrics) DRReceived() {
	if m == nil {
		return
	}
	m.dr.received.Inc()
}

// DRAlarm counts a demand-response alarm.
func (m *Metrics) DRAlarm() {
	if m == nil {
		return
	}
	m.dr.alarms.Inc()
}

// DREvents sets how many events are scheduled and active.
func (m *Metrics) DREvents(scheduled, active int) {
	if m == nil {
		return
	}
	m.dr.events.WithLabelValues("scheduled").Set(float64(scheduled))
	m.dr.events.WithLabelValues("active").Set(float64(active))
}
