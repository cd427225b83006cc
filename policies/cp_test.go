package policies

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

func TestCPAlertRule(t *testing.T) {
	site := loadTestSite(t)
	p := parseTestPolicy(t, site, `
fallbacks: {hashprice_usd_ph_day: 48}
rules:
  - name: cp-alert
    when: {cp_alert_above: 0.5}
    then: {forbid: {asics: [mining]}}
  - name: cp-alert-afternoon
    when: {schedule: "0 15 * 6-9 *", for: 4h, cp_alert_above: 0.2}
    then: {site_cap_kw: 5000}
`)
	afternoon := time.Date(2024, 8, 20, 16, 0, 0, 0, site.Location)
	night := time.Date(2024, 8, 20, 2, 0, 0, 0, site.Location)
	alert := func(now time.Time, prob float64) switchd.Snapshot {
		return snapshotAt(now, map[switchd.Signal]float64{switchd.SignalPrice: 30, switchd.SignalCPAlert: prob}, time.Hour)
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		snap switchd.Snapshot
		want []string
	}{
		{"likely peak day", night, alert(night, 0.7), []string{"cp-alert"}},
		{"threshold is strict", night, alert(night, 0.5), nil},
		{"unlikely", night, alert(night, 0.1), nil},
		{"likely, in the afternoon window", afternoon, alert(afternoon, 0.9), []string{"cp-alert", "cp-alert-afternoon"}},
		{"possible, in the afternoon window", afternoon, alert(afternoon, 0.3), []string{"cp-alert-afternoon"}},
		// No alert received: a threshold on a value nobody sent never holds.
		{"no alert", afternoon, snapshotAt(afternoon, map[switchd.Signal]float64{switchd.SignalPrice: 30}, 0), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := p.Evaluate(tc.now, &tc.snap, site)
			require.Equal(t, tc.want, nilIfEmpty(ev.Fired))
			if len(tc.want) > 0 && tc.want[0] == "cp-alert" {
				require.True(t, ev.Constraints.Fleets[0].Forbid[switchd.ModeMining])
			}
		})
	}

	for _, v := range []string{"1", "1.5", "-0.1", "55"} {
		_, err := ParsePolicy("p.yaml", []byte("rules:\n  - name: a\n    when: {cp_alert_above: "+v+"}\n    then: {site_cap_kw: 0}\n"), site)
		require.Error(t, err, v)
		require.Equal(t, "p.yaml:3: rules[0].when.cp_alert_above: must be a probability from 0 to below 1 (got "+v+")", err.Error())
	}
	// A fail-safe and a staleness rule can name it like any other signal.
	p = parseTestPolicy(t, site, "fail_safe: {cp_alert: none}\nrules:\n  - name: blind\n    when: {signal_stale: [cp_alert]}\n    then: {site_cap_kw: 1}\n")
	require.Equal(t, []switchd.Signal{switchd.SignalCPAlert}, p.Rules[0].When.SignalStale)
}

// TestNearMonthPeak: the month's running peak follows grid-load samples in
// the site's month, and a rule on it fires only within its percentage.
func TestNearMonthPeak(t *testing.T) {
	var snap switchd.Snapshot
	loc := time.FixedZone("CDT", -5*3600)
	at := func(day, hour int) time.Time { return time.Date(2024, 7, day, hour, 0, 0, 0, loc) }
	snap.NotePeak(at(1, 16), 70000)
	snap.NotePeak(at(2, 16), 80000)
	snap.NotePeak(at(3, 16), 76000)
	require.Equal(t, 80000.0, snap.MonthPeakGridLoad)
	snap.NotePeak(time.Date(2024, 6, 30, 16, 0, 0, 0, loc), 90000)
	require.Equal(t, 80000.0, snap.MonthPeakGridLoad, "a sample of an earlier month leaves the peak alone")
	snap.NotePeak(time.Date(2024, 8, 1, 16, 0, 0, 0, loc), 60000)
	require.Equal(t, 60000.0, snap.MonthPeakGridLoad, "a new month starts its own peak")

	pct := 95.0
	c := Condition{NearMonthPeakPct: &pct}
	var stale [switchd.NumSignals]bool
	for _, tc := range []struct {
		load, peak float64
		have       bool
		want       bool
	}{
		{load: 76000, peak: 80000, have: true, want: true}, // exactly 95%
		{load: 75000, peak: 80000, have: true, want: false},
		{load: 81000, peak: 81000, have: true, want: true}, // a new high
		{load: 81000, have: false, want: false},            // no peak known
	} {
		v := switchd.Values{MonthPeakGridLoad: tc.peak, HasMonthPeak: tc.have}
		v.V[switchd.SignalGridLoad], v.Present[switchd.SignalGridLoad] = tc.load, true
		require.Equal(t, tc.want, c.holds(at(3, 16), loc, &v, &stale), "%+v", tc)
	}
	require.True(t, c.Reads()[switchd.SignalGridLoad])
}
