package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// cpSiteHead is a valid site file without a coincident_peak section; the
// section under test is appended, starting on line 10.
const cpSiteHead = `site: {name: s, timezone: America/Chicago, power_cap_kw: 100}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    modes:
      off: {power_kw: 0.02}
      mining: {power_kw: 3.5, hashrate_ths: 200}
`

func TestCoincidentPeakSettings(t *testing.T) {
	june, july, aug, sep := time.June, time.July, time.August, time.September
	for _, tc := range []struct {
		name string
		yaml string
		want CoincidentPeak
		desc string
	}{
		{"ERCOT 4CP by scheme", "coincident_peak: {scheme: 4cp_15m, rate_usd_per_kw_year: 55}\n",
			CoincidentPeak{Scheme: "4cp_15m", PeaksPerMonth: 1, Months: []time.Month{june, july, aug, sep}, Interval: 15 * time.Minute, RateUSDPerKWYear: 55},
			"4cp_15m: 4 peaks a year (1 a month in Jun, Jul, Aug, Sep), 15m intervals, 55 USD/kW-year"},
		// The variant under review is one setting away: only scheme changes.
		{"12CP 30-minute by scheme", "coincident_peak: {scheme: 12cp_30m, rate_usd_per_kw_year: 55}\n",
			CoincidentPeak{Scheme: "12cp_30m", PeaksPerMonth: 1, Months: []time.Month{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Interval: 30 * time.Minute, RateUSDPerKWYear: 55},
			"12cp_30m: 12 peaks a year (1 a month in Jan, Feb, Mar, Apr, May, Jun, Jul, Aug, Sep, Oct, Nov, Dec), 30m intervals, 55 USD/kW-year"},
		{"4CP key by key, months sorted, peaks_per_month defaults to 1",
			"coincident_peak: {months: [9, 6, 8, 7], interval: 15m, rate_usd_per_kw_year: 120.5}\n",
			CoincidentPeak{PeaksPerMonth: 1, Months: []time.Month{june, july, aug, sep}, Interval: 15 * time.Minute, RateUSDPerKWYear: 120.5},
			"4 peaks a year (1 a month in Jun, Jul, Aug, Sep), 15m intervals, 120.5 USD/kW-year"},
		{"hourly peaks, several a month", "coincident_peak:\n  peaks_per_month: 2\n  months: [7, 8]\n  interval: 1h\n  rate_usd_per_kw_year: 40\n",
			CoincidentPeak{PeaksPerMonth: 2, Months: []time.Month{july, aug}, Interval: time.Hour, RateUSDPerKWYear: 40},
			"4 peaks a year (2 a month in Jul, Aug), 1h intervals, 40 USD/kW-year"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSite("s.yaml", []byte(cpSiteHead+tc.yaml))
			require.NoError(t, err)
			require.NotNil(t, s.CoincidentPeak)
			require.Equal(t, tc.want, *s.CoincidentPeak)
			require.Equal(t, tc.desc, s.CoincidentPeak.String())
			require.Equal(t, len(tc.want.Months)*tc.want.PeaksPerMonth, s.CoincidentPeak.PeaksPerSeason())
		})
	}
	s, err := ParseSite("s.yaml", []byte(cpSiteHead))
	require.NoError(t, err)
	require.Nil(t, s.CoincidentPeak, "no section, no charge")
}

func TestCoincidentPeakErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown scheme", "coincident_peak: {scheme: 5cp, rate_usd_per_kw_year: 55}\n",
			`s.yaml:10: coincident_peak.scheme: unknown scheme "5cp" (want 4cp_15m or 12cp_30m, or give peaks_per_month, months and interval instead)`},
		{"scheme and a key it sets", "coincident_peak:\n  scheme: 4cp_15m\n  interval: 30m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:12: coincident_peak.interval: set by scheme 4cp_15m already; give either scheme or the keys, not both"},
		{"no rate", "coincident_peak: {scheme: 4cp_15m}\n",
			"s.yaml:10: coincident_peak.rate_usd_per_kw_year: required (USD per kW-year of average peak load; ERCOT's runs about 50 to 150)"},
		{"a rate per MW-year", "coincident_peak:\n  scheme: 4cp_15m\n  rate_usd_per_kw_year: 55000\n",
			"s.yaml:12: coincident_peak.rate_usd_per_kw_year: must be at most 1000 USD/kW-year (got 55000: a rate per MW-year?)"},
		{"zero rate", "coincident_peak:\n  scheme: 4cp_15m\n  rate_usd_per_kw_year: 0\n",
			"s.yaml:12: coincident_peak.rate_usd_per_kw_year: must be positive (got 0)"},
		{"rate not a number", "coincident_peak:\n  scheme: 4cp_15m\n  rate_usd_per_kw_year: 55/kW\n",
			`s.yaml:12: coincident_peak.rate_usd_per_kw_year: must be a number (got "55/kW")`},
		{"typo in a key", "coincident_peak:\n  scheme: 4cp_15m\n  rate_usd_per_kw_yr: 55\n",
			"s.yaml:12: coincident_peak.rate_usd_per_kw_yr: unknown key (did you mean rate_usd_per_kw_year?)"},
		{"no months", "coincident_peak:\n  interval: 15m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:10: coincident_peak.months: required: the months that hold peaks, as numbers (6, 7, 8, 9 for June to September)"},
		{"month out of range", "coincident_peak:\n  months:\n    - 6\n    - 13\n  interval: 15m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:13: coincident_peak.months[1]: must be a month number from 1 to 12 (got 13)"},
		{"month twice", "coincident_peak:\n  months: [6, 7, 6]\n  interval: 15m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:11: coincident_peak.months[2]: month 6 is listed twice"},
		{"month by name", "coincident_peak:\n  months: [jun]\n  interval: 15m\n  rate_usd_per_kw_year: 55\n",
			`s.yaml:11: coincident_peak.months[0]: must be a whole number (got "jun")`},
		{"no interval", "coincident_peak:\n  months: [6]\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:10: coincident_peak.interval: required (15m for ERCOT 4CP), or give a scheme (4cp_15m or 12cp_30m)"},
		{"interval that does not divide an hour", "coincident_peak:\n  months: [6]\n  interval: 7m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:12: coincident_peak.interval: must divide an hour, from 1m to 1h, such as 15m or 30m (got 7m)"},
		{"interval without unit", "coincident_peak:\n  months: [6]\n  interval: 15\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:12: coincident_peak.interval: bad duration 15: missing unit (want e.g. 15s or 15m)"},
		{"no peaks", "coincident_peak:\n  peaks_per_month: 0\n  months: [6]\n  interval: 15m\n  rate_usd_per_kw_year: 55\n",
			"s.yaml:11: coincident_peak.peaks_per_month: must be from 1 to 28 (got 0)"},
		{"empty section", "coincident_peak:\n  # scheme: 4cp_15m\n",
			"s.yaml:10: coincident_peak: empty: give a scheme (4cp_15m or 12cp_30m) and rate_usd_per_kw_year, or delete the section"},
		{"not a mapping", "coincident_peak: 4cp\n",
			`s.yaml:10: coincident_peak: must be a mapping (got "4cp")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSite("s.yaml", []byte(cpSiteHead+tc.yaml))
			require.Error(t, err)
			require.Equal(t, tc.want, err.Error())
		})
	}
	// Every problem at once, in line order.
	_, err := ParseSite("s.yaml", []byte(cpSiteHead+"coincident_peak:\n  months: [0]\n  interval: 45m\n  rate_usd_per_kw_year: -1\n"))
	require.Error(t, err)
	require.Equal(t, strings.Join([]string{
		"s.yaml:11: coincident_peak.months[0]: must be a month number from 1 to 12 (got 0)",
		"s.yaml:12: coincident_peak.interval: must divide an hour, from 1m to 1h, such as 15m or 30m (got 45m)",
		"s.yaml:13: coincident_peak.rate_usd_per_kw_year: must be positive (got -1)",
	}, "\n"), err.Error())
}

func TestCPAlertSignal(t *testing.T) {
	sig, err := switchd.ParseSignal("cp_alert")
	require.NoError(t, err)
	require.Equal(t, switchd.SignalCPAlert, sig)
	c := DefaultSignals()[switchd.SignalCPAlert]
	require.Equal(t, 0.0, c.Min)
	require.Equal(t, 1.0, c.Max, "a probability: 55 (a percentage) is rejected")
	require.Equal(t, 24*time.Hour, DefaultMaxAge()[switchd.SignalCPAlert])

	s, err := ParseSite("s.yaml", []byte(cpSiteHead+"signals:\n  cp_alert: {max_age: 6h}\n"))
	require.NoError(t, err)
	require.Equal(t, 6*time.Hour, s.MaxAge[switchd.SignalCPAlert])
}
