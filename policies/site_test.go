package policies

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// testSite is testdata/site.yaml: asics (1000, off/mining) and gpus (800,
// off/inference), in America/Chicago, capped at 20 MW.
func loadTestSite(t testing.TB) *Site {
	t.Helper()
	s, err := LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	return s
}

func TestExampleSite(t *testing.T) {
	s, err := LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	require.Equal(t, "ercot-west-1", s.Name)
	require.Equal(t, "America/Chicago", s.Location.String())
	require.Equal(t, 36000.0, s.PowerCapKW)
	require.Equal(t, DefaultMaxAge(), s.MaxAge)
	require.Len(t, s.Fleets, 2)

	asics := s.Fleets[0].Spec
	var tr [switchd.NumModes][switchd.NumModes]time.Duration
	tr[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	tr[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	require.Equal(t, switchd.FleetSpec{
		Name:     "asics",
		Kind:     switchd.KindASIC,
		Count:    10000,
		Supports: [switchd.NumModes]bool{true, true, false},
		Modes: [switchd.NumModes]switchd.ModeSpec{
			switchd.ModeOff:    {PowerKW: 0.02},
			switchd.ModeMining: {PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice},
		},
		Transition:    tr,
		MinDwell:      15 * time.Minute,
		SwitchCostUSD: 0.05,
	}, asics)
	require.Equal(t, "sim", s.Fleets[0].Driver)

	gpus := s.Fleets[1].Spec
	require.Equal(t, switchd.KindGPU, gpus.Kind)
	require.Equal(t, 3000, gpus.Count)
	require.Equal(t, [switchd.NumModes]bool{true, false, true}, gpus.Supports)
	require.Equal(t, switchd.ModeSpec{PowerKW: 1.275, Revenue: switchd.RevenueInference}, gpus.Modes[switchd.ModeInference])
	require.Equal(t, 3*time.Minute, gpus.Transition[switchd.ModeOff][switchd.ModeInference])

	// The figures the example's comments quote.
	v := switchd.Values{}
	v.V[switchd.SignalHashprice], v.Present[switchd.SignalHashprice] = 48, true
	v.V[switchd.SignalInferencePrice], v.Present[switchd.SignalInferencePrice] = 2.10, true
	require.InDelta(t, 114.3, asics.BreakevenUSDPerMWh(switchd.ModeMining, &v), 0.1)
	require.InDelta(t, 1647, gpus.BreakevenUSDPerMWh(switchd.ModeInference, &v), 1)
	require.Greater(t, 10000*3.5+3000*1.275, s.PowerCapKW, "the cap must bind flat out")
}

func TestParseSite(t *testing.T) {
	const head = "site: {name: s, timezone: UTC, power_cap_kw: 100}\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *Site)
	}{
		{"transition default fills unset pairs", head + `
fleets:
  - name: g
    kind: gpu
    count: 4
    driver: sim
    modes: {off: {power_kw: 0.2}, mining: {power_kw: 1, hashrate_ths: 0.5}, inference: {power_kw: 1.2}}
    transitions: {default: 1m, off->inference: 3m, inference->off: 30s}
`, func(t *testing.T, s *Site) {
			off, mine, inf := switchd.ModeOff, switchd.ModeMining, switchd.ModeInference
			tr := s.Fleets[0].Spec.Transition
			require.Equal(t, 3*time.Minute, tr[off][inf])
			require.Equal(t, 30*time.Second, tr[inf][off])
			require.Equal(t, time.Minute, tr[off][mine])
			require.Equal(t, time.Minute, tr[mine][inf])
			for _, m := range switchd.Modes {
				require.Zero(t, tr[m][m], "no transition to itself")
			}
			require.Equal(t, [switchd.NumModes]bool{true, true, true}, s.Fleets[0].Spec.Supports)
		}},
		{"no transitions means instant", head + `
fleets: [{name: a, kind: asic, count: 1, driver: sim, modes: {off: {power_kw: 0}, mining: {power_kw: 3, hashrate_ths: 100}}}]
`, func(t *testing.T, s *Site) {
			require.Equal(t, [switchd.NumModes][switchd.NumModes]time.Duration{}, s.Fleets[0].Spec.Transition)
			require.Zero(t, s.Fleets[0].Spec.MinDwell)
			require.Zero(t, s.Fleets[0].Spec.SwitchCostUSD)
		}},
		{"revenue overrides", head + `
fleets:
  - name: hosted
    kind: asic
    count: 2
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, revenue: fixed, usd_per_hour: 0.35}
      inference: {power_kw: 1, revenue: none}
`, func(t *testing.T, s *Site) {
			m := s.Fleets[0].Spec.Modes
			require.Equal(t, switchd.ModeSpec{PowerKW: 3.5, Revenue: switchd.RevenueFixed, FixedUSDPerHour: 0.35}, m[switchd.ModeMining])
			require.Equal(t, switchd.ModeSpec{PowerKW: 1, Revenue: switchd.RevenueNone}, m[switchd.ModeInference])
			require.Equal(t, switchd.RevenueNone, m[switchd.ModeOff].Revenue)
		}},
		{"devices give the count", head + `
fleets: [{name: a, kind: asic, devices: [10.0.0.1:4028, 10.0.0.2:4028, 10.0.0.3:4028], driver: cgminer, modes: {off: {power_kw: 0}}}]
`, func(t *testing.T, s *Site) {
			require.Equal(t, 3, s.Fleets[0].Spec.Count)
			require.Equal(t, []string{"10.0.0.1:4028", "10.0.0.2:4028", "10.0.0.3:4028"}, s.Fleets[0].Devices)
			require.Equal(t, [switchd.NumModes]bool{true, false, false}, s.Fleets[0].Spec.Supports)
		}},
		{"signal max ages override defaults", head + `
signals: {price: {max_age: 20m}, hashprice: {max_age: 72h}}
fleets: [{name: a, kind: asic, count: 1, driver: sim, modes: {off: {power_kw: 0}}}]
`, func(t *testing.T, s *Site) {
			want := DefaultMaxAge()
			want[switchd.SignalPrice] = 20 * time.Minute
			want[switchd.SignalHashprice] = 72 * time.Hour
			require.Equal(t, want, s.MaxAge)
		}},
		{"zero durations may be bare", head + `
fleets: [{name: a, kind: asic, count: 1, driver: sim, min_dwell: 0, modes: {off: {power_kw: 0}}, transitions: {default: 0}}]
`, func(t *testing.T, s *Site) {
			require.Zero(t, s.Fleets[0].Spec.MinDwell)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSite("s.yaml", []byte(tc.yaml))
			require.NoError(t, err)
			require.Equal(t, "s.yaml", s.Source)
			tc.check(t, s)
		})
	}
}

func TestSiteSummary(t *testing.T) {
	s, err := LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	require.Equal(t, "site ercot-west-1 (America/Chicago): cap 36000 kW; asics: 10000 asic [off mining] via sim, "+
		"gpus: 3000 gpu [off inference] via sim; flat out 38825 kW", s.Summary())
}

func TestSiteHelpers(t *testing.T) {
	s := loadTestSite(t)
	require.Equal(t, 1, s.FleetIndex("gpus"))
	require.Equal(t, -1, s.FleetIndex("fpgas"))
	specs := s.Specs()
	require.Len(t, specs, 2)
	require.Equal(t, "asics", specs[0].Name)
}
