package policies

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

func parseTestPolicy(t testing.TB, site *config.Site, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy("p.yaml", []byte(src), site)
	require.NoError(t, err)
	return p
}

func f64ptr(v float64) *float64 { return &v }

func TestExamplePolicy4CP(t *testing.T) {
	site, err := config.LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	p, err := LoadPolicy(filepath.Join("..", "examples", "policies", "ercot-4cp.yaml"), site)
	require.NoError(t, err)

	var fb [switchd.NumSignals]float64
	var has [switchd.NumSignals]bool
	fb[switchd.SignalHashprice], has[switchd.SignalHashprice] = 48, true
	fb[switchd.SignalInferencePrice], has[switchd.SignalInferencePrice] = 2.10, true
	fb[switchd.SignalAIDemand], has[switchd.SignalAIDemand] = 2500, true
	require.Equal(t, fb, p.Fallbacks)
	require.Equal(t, has, p.HasFallback)
	require.Equal(t, 5.0, p.HysteresisUSDPerMWh)
	require.Equal(t, 4000.0, p.RampUpKWPerMin)
	require.Equal(t, Stagger{Batch: 500, Interval: 30 * time.Second}, p.Stagger)
	var fs [switchd.NumSignals]FailSafe
	fs[switchd.SignalPrice], fs[switchd.SignalGridLoad] = FailSafeCurtail, FailSafeHold
	require.Equal(t, fs, p.FailSafe)

	require.Len(t, p.Rules, 4)
	watch := p.Rules[0]
	require.Equal(t, "4cp-watch", watch.Name)
	require.Equal(t, f64ptr(75000), watch.When.GridLoadAbove)
	require.NotNil(t, watch.When.Window)
	require.Equal(t, "0 15 * 6-9 1-5", watch.When.Window.Spec)
	require.Equal(t, 4*time.Hour, watch.When.Window.For)
	noMining := NoFleetConstraint()
	noMining.Forbid[switchd.ModeMining] = true
	require.Equal(t, []FleetConstraint{noMining, NoFleetConstraint()}, watch.Then.Fleets)
	require.Nil(t, watch.Then.SiteCapKW)

	spike := p.Rules[1]
	require.Equal(t, f64ptr(1000), spike.When.PriceAbove)
	require.Equal(t, f64ptr(12000), spike.Then.SiteCapKW)
	require.Nil(t, spike.Then.Fleets, "no per-fleet part")

	emergency := p.Rules[2]
	asicsOff := NoFleetConstraint()
	asicsOff.Min[switchd.ModeOff] = 10000
	asicsOff.Forbid[switchd.ModeMining] = true
	asicsOff.Forbid[switchd.ModeInference] = true
	gpusUp := NoFleetConstraint()
	gpusUp.Min[switchd.ModeInference] = 2000
	require.Equal(t, []FleetConstraint{asicsOff, gpusUp}, emergency.Then.Fleets)

	blind := p.Rules[3]
	require.Equal(t, []switchd.Signal{switchd.SignalGridLoad}, blind.When.SignalStale)
}

func TestParsePolicyEffects(t *testing.T) {
	site := loadTestSite(t)
	off, mining, inference := switchd.ModeOff, switchd.ModeMining, switchd.ModeInference
	for _, tc := range []struct {
		name string
		then string
		want func() []FleetConstraint
	}{
		{"forbid a single mode written as a name", "forbid: {asics: mining}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[0].Forbid[mining] = true
			return c
		}},
		{"force mining keeps off allowed", "force: {asics: mining}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[0].Min[mining] = 1000
			c[0].Forbid[inference] = true
			return c
		}},
		{"force off", "force: {gpus: off}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[1].Min[off] = 800
			c[1].Forbid[mining] = true
			c[1].Forbid[inference] = true
			return c
		}},
		{"min and max", "min_devices: {gpus: {inference: 100}}\nmax_devices: {asics: {mining: 500}, gpus: {inference: 700}}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[1].Min[inference] = 100
			c[0].Max[mining] = 500
			c[1].Max[inference] = 700
			return c
		}},
		{"discourage", "discourage: {asics: [mining], gpus: inference}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[0].Discourage[mining] = true
			c[1].Discourage[inference] = true
			return c
		}},
		{"min of zero alongside a forbid", "forbid: {asics: [mining]}\nmin_devices: {asics: {mining: 0}}", func() []FleetConstraint {
			c := []FleetConstraint{NoFleetConstraint(), NoFleetConstraint()}
			c[0].Forbid[mining] = true
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parseTestPolicy(t, site, "rules:\n  - name: r\n    then:\n"+indentYAML(tc.then, "      "))
			require.Equal(t, tc.want(), p.Rules[0].Then.Fleets)
		})
	}
}

func indentYAML(s, by string) string {
	out := by
	for _, r := range s {
		out += string(r)
		if r == '\n' {
			out += by
		}
	}
	return out + "\n"
}

func TestParsePolicyConditions(t *testing.T) {
	site := loadTestSite(t)
	p := parseTestPolicy(t, site, `
rules:
  - name: empty-when
    then: {site_cap_kw: 1}
  - name: band
    when: {price_above_usd_mwh: -20, price_below_usd_mwh: 0, grid_load_above_mw: 50000}
    then: {site_cap_kw: 2}
  - name: stale-one
    when: {signal_stale: price}
    then: {site_cap_kw: 3}
  - name: stale-many
    when: {signal_stale: [ai_demand, hashprice, ai_demand]}
    then: {site_cap_kw: 4}
  - name: utc-window
    when: {schedule: "CRON_TZ=UTC 0 6 * * *", for: 90m}
    then: {site_cap_kw: 5}
`)
	require.Equal(t, Condition{}, p.Rules[0].When)
	require.Equal(t, Condition{PriceAbove: f64ptr(-20), PriceBelow: f64ptr(0), GridLoadAbove: f64ptr(50000)}, p.Rules[1].When)
	require.Equal(t, []switchd.Signal{switchd.SignalPrice}, p.Rules[2].When.SignalStale)
	require.Equal(t, []switchd.Signal{switchd.SignalAIDemand, switchd.SignalHashprice}, p.Rules[3].When.SignalStale, "duplicates dropped")
	w := p.Rules[4].When.Window
	require.Equal(t, 90*time.Minute, w.For)
	// CRON_TZ wins over the site's zone: 06:00 UTC, not 06:00 Chicago.
	require.True(t, w.Active(time.Date(2024, 7, 1, 6, 0, 0, 0, time.UTC), site.Location))
	require.False(t, w.Active(time.Date(2024, 7, 1, 11, 0, 0, 0, time.UTC), site.Location))
	require.Equal(t, Policy{}.FailSafe, p.FailSafe, "no fail-safe unless declared")
}

func TestParsePolicyNeedsSite(t *testing.T) {
	_, err := ParsePolicy("p.yaml", []byte("rules: []\n"), nil)
	require.EqualError(t, err, "policy p.yaml: no site to check it against")
}

func TestPolicySummary(t *testing.T) {
	site, err := config.LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	for _, tc := range []struct{ file, want string }{
		{"price-only.yaml", "policy ../examples/policies/price-only.yaml: 1 rule (price-spike); " +
			"fallbacks hashprice=48 inference_price=2.1 ai_demand=2500; hysteresis 5 USD/MWh; ramp up 4000 kW/min; " +
			"stagger 500 every 30s; fail-safe price=curtail"},
		{"ercot-4cp.yaml", "policy ../examples/policies/ercot-4cp.yaml: 4 rules (4cp-watch, price-spike, price-emergency, 4cp-blind); " +
			"fallbacks hashprice=48 inference_price=2.1 ai_demand=2500; hysteresis 5 USD/MWh; ramp up 4000 kW/min; " +
			"stagger 500 every 30s; fail-safe price=curtail grid_load=hold"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := LoadPolicy(filepath.Join("..", "examples", "policies", tc.file), site)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.Summary())
		})
	}
	require.Equal(t, "policy: 0 rules; hysteresis 0 USD/MWh; ramp unlimited", (&Policy{}).Summary())
}

// TestParseSchedule covers specs the cron library mishandles on its own
// (it panics on a zone prefix without fields) and the never-fires check.
func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		wantErr string
	}{
		{"0 15 * 6-9 1-5", ""},
		{"CRON_TZ=America/Chicago 0 15 * * *", ""},
		{"  TZ=UTC   0 15 * * *  ", ""},
		{"@daily", ""},
		{"0 0 29 2 *", ""}, // once every four years is still a schedule
		{"TZ=", `bad cron spec "TZ=": want CRON_TZ=<zone> followed by 5 fields`},
		{"TZ=UTC", `bad cron spec "TZ=UTC": want CRON_TZ=<zone> followed by 5 fields`},
		{"CRON_TZ= 0 15 * * *", `bad cron spec "CRON_TZ= 0 15 * * *": want CRON_TZ=<zone> followed by 5 fields`},
		{"CRON_TZ=Local 0 15 * * *", `bad cron spec "CRON_TZ=Local 0 15 * * *": name a zone such as America/Chicago, not Local`},
		{"TZ=UTC @every 5m", `bad cron spec "TZ=UTC @every 5m": @every is not a calendar schedule; use 5 fields`},
		{"", `bad cron spec "": empty spec string`},
		{"0 0 31 4 *", `cron spec "0 0 31 4 *" never fires`},
		{"*/0 * * * *", `bad cron spec "*/0 * * * *": step of range should be a positive number: */0`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := parseSchedule(tc.spec, time.UTC)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.EqualError(t, err, tc.wantErr)
		})
	}
}

// TestHandBuiltSite checks the zero values other packages' tests rely on
// when they build a Site in code: no Location means UTC, no MaxAge means a
// signal never goes stale.
func TestHandBuiltSite(t *testing.T) {
	site := &config.Site{PowerCapKW: 100, Fleets: []config.Fleet{{Spec: switchd.FleetSpec{Name: "a", Count: 10, Supports: [switchd.NumModes]bool{true, true, false}}}}}
	p := parseTestPolicy(t, site, `
rules:
  - {name: w, when: {schedule: "0 15 * * *", for: 1h}, then: {forbid: {a: mining}}}
`)
	now := time.Date(2024, 7, 1, 15, 30, 0, 0, time.UTC)
	var snap switchd.Snapshot
	snap.Set(switchd.Sample{Time: now.AddDate(-1, 0, 0), Signal: switchd.SignalPrice, Value: 40})
	ev := p.Evaluate(now, &snap, site)
	require.Equal(t, []string{"w"}, ev.Fired)
	require.Empty(t, ev.Stale)
	require.True(t, ev.Constraints.Fleets[0].Forbid[switchd.ModeMining])
}
