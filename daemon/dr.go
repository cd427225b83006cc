package daemon

import (
	"encoding/json"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/dr"
)

// drQueue is how many demand-response events may wait for the loop; a
// program sends a handful a day, so a full queue means the loop is stuck.
const drQueue = 64

// daemonDR is the daemon's demand-response plumbing: events from MQTT to
// the loop (the metrics are web.Metrics').
type daemonDR struct {
	in chan dr.Event
}

// initDR makes the queue. A daemon built without it (unit tests of its
// parts) has no demand-response input.
func (d *daemon) initDR() {
	d.dr.in = make(chan dr.Event, drQueue)
}

// drSourceOptions adds the demand-response topic to the MQTT source's
// options when the site has one.
func (d *daemon) drSourceOptions(o *mqttio.SourceOptions) {
	if d.site.DR.Topic == "" {
		return
	}
	o.DRTopic = d.site.DR.Topic
	o.OnDR = d.onDR
	o.OnDRReject = func(reason string) { d.metrics.SignalRejected("dr", reason) }
	o.DRPublisherKey = d.site.DR.PublisherKey
}

// onDR is the MQTT callback: hand the event to the loop.
func (d *daemon) onDR(ev dr.Event) {
	select {
	case d.dr.in <- ev:
	default:
		d.metrics.SignalRejected("dr", "overload")
	}
}

// addDR gives the controller an event; called from the loop.
func (d *daemon) addDR(ev dr.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed, err := d.ctl.AddDREvent(d.clock.Now(), ev)
	switch {
	case err != nil:
		d.metrics.SignalRejected("dr", mqttio.ReasonRefused)
		d.log.Warn("demand-response event refused", zap.String("event", ev.ID), zap.Error(err))
	case changed:
		d.metrics.DRReceived()
	}
}

// DR implements controller.DRRecorder: every moment of an event is
// journalled with its record, logged, and alarms counted.
func (d *daemon) DR(now time.Time, moment string, rec *dr.Record) {
	log := d.log.With(zap.String("event", rec.Event.ID), zap.String("program", rec.Event.Program))
	switch moment {
	case controller.DRReceived:
		log.Info("demand-response event received", zap.Time("notice", rec.Event.Notice),
			zap.Time("start", rec.Event.Start), zap.Time("end", rec.Event.End), zap.Time("deadline", rec.Event.DeadlineOrStart()))
	case controller.DRStarted:
		log.Info("demand-response event started", zap.Float64("baseline_kw", rec.BaselineKW), zap.Float64("cap_kw", rec.CapKW), zap.Bool("met", !rec.MetAt.IsZero()))
	case controller.DRAlarm:
		d.metrics.DRAlarm()
		log.Error("demand-response target not met", zap.String("alarm", rec.Alarm), zap.Float64("cap_kw", rec.CapKW),
			zap.Float64("max_over_kw", rec.MaxOverKW), zap.Float64("shortfall_kwh", rec.ShortfallKWh))
	case controller.DREnded:
		log.Info("demand-response event ended", zap.Bool("met", rec.Met), zap.Float64("shortfall_kwh", rec.ShortfallKWh), zap.String("alarm", rec.Alarm))
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		log.Error("demand-response record not journalled", zap.Error(err))
		return
	}
	// A journal failure is counted and logged by appendJournal's health
	// watch; the record stays in memory and in the state API.
	_ = d.appendJournal(journal.Entry{Time: now, Kind: journal.KindDR, Reason: moment, DR: raw})
}

// refreshDR puts the events' records in the state view and the gauges.
// Called with d.mu held, after refreshViews.
func (d *daemon) refreshDR() {
	recs := d.ctl.DRRecords()
	d.view.DR = recs
	n := map[dr.Phase]int{}
	for i := range recs {
		n[recs[i].Phase]++
	}
	d.metrics.DREvents(n[dr.PhaseScheduled], n[dr.PhaseActive])
}

// resumeDR gives the controller back the events the journal at path shows
// in progress (their last entry is not "ended"), with their records.
func (d *daemon) resumeDR(path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		d.log.Warn("demand-response events not resumed: journal unreadable", zap.Error(err))
		return
	}
	defer f.Close()
	entries, err := journal.DREntries(f)
	if err != nil {
		d.log.Warn("demand-response events not resumed: journal unreadable", zap.Error(err))
		return
	}
	last := map[string]dr.Record{}
	var order []string
	for _, e := range entries {
		var rec dr.Record
		if err := json.Unmarshal(e.DR, &rec); err != nil {
			d.log.Warn("demand-response record unreadable", zap.Uint64("seq", e.Seq), zap.Error(err))
			continue
		}
		if _, ok := last[rec.Event.ID]; !ok {
			order = append(order, rec.Event.ID)
		}
		if e.Reason == controller.DREnded {
			rec.Phase = dr.PhaseEnded
		}
		last[rec.Event.ID] = rec
	}
	recs := make([]dr.Record, 0, len(order))
	for _, id := range order {
		recs = append(recs, last[id])
	}
	if n := d.ctl.ResumeDR(recs); n > 0 {
		d.log.Info("demand-response events resumed from the journal", zap.Int("events", n))
	}
}
