package web

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// exercise touches every metric, so lint and promtool see every family.
func exercise(m *Metrics) {
	s, p := cannedState(), cannedPlan()
	m.Update(&s, &p)
	m.Decision(true)
	m.Decision(false)
	m.Switches("asics", "mining", 500)
	m.CommandLatency("asics", 120*time.Millisecond)
	m.DriverSeries("gpus", "sim")
	m.DriverError("gpus", "sim", OpState, false)
	m.DriverError("gpus", "sim", OpApply, true)
	m.DriverRequest("gpus", "sim", OpState, 3*time.Second)
	m.Drifted("asics", 3)
	m.SignalAccepted("price")
	m.SignalRejected("price", "out_of_range")
	m.Reload(true, s.Policy.SHA256, testNow)
	m.JournalAppend(2*time.Millisecond, nil)
	m.JournalAppend(time.Millisecond, errors.New("disk full"))
	m.MQTTConnected(true)
	m.overrideRequest(resultCreated)
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	exercise(NewMetrics(reg, "v1.2.3"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestMetricsUpdate(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "v1.2.3")
	s, p := cannedState(), cannedPlan()
	m.Update(&s, &p)

	want := `
# HELP switchd_site_power_watts Power the whole site draws now, in watts.
# TYPE switchd_site_power_watts gauge
switchd_site_power_watts 6.1e+06
# HELP switchd_site_cap_watts Site power cap in force (interconnect, rule or override), in watts.
# TYPE switchd_site_cap_watts gauge
switchd_site_cap_watts 1e+07
# HELP switchd_fleet_devices Devices of a fleet steady in a mode (observed).
# TYPE switchd_fleet_devices gauge
switchd_fleet_devices{fleet="asics",mode="mining"} 500
switchd_fleet_devices{fleet="asics",mode="off"} 400
switchd_fleet_devices{fleet="gpus",mode="inference"} 150
switchd_fleet_devices{fleet="gpus",mode="off"} 50
# HELP switchd_fleet_devices_moving Devices of a fleet in transition between modes.
# TYPE switchd_fleet_devices_moving gauge
switchd_fleet_devices_moving{fleet="asics"} 100
switchd_fleet_devices_moving{fleet="gpus"} 0
# HELP switchd_driver_up 1 if the fleet's driver answered its last state request, else 0.
# TYPE switchd_driver_up gauge
switchd_driver_up{driver="luxos",fleet="asics"} 1
switchd_driver_up{driver="sim",fleet="gpus"} 0
# HELP switchd_signal_stale 1 if a signal is stale (its latest value is older than its max_age), else 0.
# TYPE switchd_signal_stale gauge
switchd_signal_stale{signal="grid_load"} 1
switchd_signal_stale{signal="hashprice"} 0
switchd_signal_stale{signal="price"} 0
# HELP switchd_ready 1 once signals are fresh and every driver answered, else 0.
# TYPE switchd_ready gauge
switchd_ready 1
# HELP switchd_failsafe_active 1 while stale signals impose a fail-safe (hold or curtail), else 0.
# TYPE switchd_failsafe_active gauge
switchd_failsafe_active 0
# HELP switchd_build_info Always 1; the labels give the version of switchd and of Go it was built with.
# TYPE switchd_build_info gauge
switchd_build_info{goversion="` + runtime.Version() + `",version="v1.2.3"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"switchd_site_power_watts", "switchd_site_cap_watts", "switchd_fleet_devices", "switchd_fleet_devices_moving",
		"switchd_driver_up", "switchd_signal_stale", "switchd_ready", "switchd_failsafe_active", "switchd_build_info"))

	// The plan, not the fleets' copy, is the source of targets.
	require.NoError(t, testutil.CollectAndCompare(m.fleetTarget.vec, strings.NewReader(`
# HELP switchd_fleet_target_devices Devices of a fleet the current plan wants in a mode.
# TYPE switchd_fleet_target_devices gauge
switchd_fleet_target_devices{fleet="asics",mode="mining"} 600
switchd_fleet_target_devices{fleet="asics",mode="off"} 400
switchd_fleet_target_devices{fleet="gpus",mode="inference"} 200
switchd_fleet_target_devices{fleet="gpus",mode="off"} 0
`)))
	require.NoError(t, testutil.CollectAndCompare(m.fleetPower.vec, strings.NewReader(`
# HELP switchd_fleet_power_watts Power a fleet draws per mode, in watts; devices in transition count under the mode they are heading to.
# TYPE switchd_fleet_power_watts gauge
switchd_fleet_power_watts{fleet="asics",mode="mining"} 3.85e+06
switchd_fleet_power_watts{fleet="asics",mode="off"} 0
switchd_fleet_power_watts{fleet="gpus",mode="inference"} 2.25e+06
`)))
	require.NoError(t, testutil.CollectAndCompare(m.signalValue.vec, strings.NewReader(`
# HELP switchd_signal_value Latest accepted value of a signal in its own unit (price USD/MWh, grid_load MW, hashprice USD/PH/day, inference_price USD/GPU-hour, ai_demand GPUs, cp_alert probability 0-1); absent until one is received.
# TYPE switchd_signal_value gauge
switchd_signal_value{signal="grid_load"} 78000
switchd_signal_value{signal="price"} 42.5
`)))
	require.InDelta(t, 12, testutil.ToFloat64(m.signalAge.vec.WithLabelValues("price")), 0)
	require.InDelta(t, 2, testutil.ToFloat64(m.rulesFired), 0)
	require.InDelta(t, 1, testutil.ToFloat64(m.overrides), 0)
	require.InDelta(t, float64(testNow.Add(-5*time.Minute).Unix()), testutil.ToFloat64(m.lastDecisionTS), 0)
	require.InDelta(t, 48, testutil.ToFloat64(m.signalEff.vec.WithLabelValues("hashprice")), 0)
}

func TestMetricsDevices(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	s := cannedState()
	m.Update(&s, nil)
	// Every reason of every fleet, zeros included; transition times per
	// kind; never a device label.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP switchd_devices_unusable Devices of a fleet left out of its usable capacity until they recover, by reason (unreachable, auth, protocol, fault, stuck).
# TYPE switchd_devices_unusable gauge
switchd_devices_unusable{fleet="asics",reason="auth"} 0
switchd_devices_unusable{fleet="asics",reason="fault"} 1
switchd_devices_unusable{fleet="asics",reason="protocol"} 0
switchd_devices_unusable{fleet="asics",reason="stuck"} 0
switchd_devices_unusable{fleet="asics",reason="unreachable"} 2
switchd_devices_unusable{fleet="gpus",reason="auth"} 0
switchd_devices_unusable{fleet="gpus",reason="fault"} 0
switchd_devices_unusable{fleet="gpus",reason="protocol"} 0
switchd_devices_unusable{fleet="gpus",reason="stuck"} 0
switchd_devices_unusable{fleet="gpus",reason="unreachable"} 0
# HELP switchd_transition_seconds Measured time from command to observed arrival of a fleet's transitions, at a percentile (50 or 95) of the recent ones, in seconds.
# TYPE switchd_transition_seconds gauge
switchd_transition_seconds{fleet="asics",from="mining",percentile="50",to="off"} 2.5
switchd_transition_seconds{fleet="asics",from="mining",percentile="95",to="off"} 4
switchd_transition_seconds{fleet="asics",from="off",percentile="50",to="mining"} 41.2
switchd_transition_seconds{fleet="asics",from="off",percentile="95",to="mining"} 55
# HELP switchd_transitions_measured Transitions of a fleet measured since the start (the percentiles cover the most recent ones).
# TYPE switchd_transitions_measured gauge
switchd_transitions_measured{fleet="asics",from="mining",to="off"} 30
switchd_transitions_measured{fleet="asics",from="off",to="mining"} 12
`), "switchd_devices_unusable", "switchd_transition_seconds", "switchd_transitions_measured"))

	// A transition no longer reported goes; reasons stay at zero.
	s.Fleets[0].Transitions = nil
	s.Fleets[0].Unusable = UnusableView{}
	m.Update(&s, nil)
	require.Equal(t, 0, testutil.CollectAndCount(m.transitionSec.vec))
	require.Equal(t, 10, testutil.CollectAndCount(m.unusable.vec))
	require.InDelta(t, 0, testutil.ToFloat64(m.unusable.vec.WithLabelValues("asics", "unreachable")), 0)

	m.DriverSeries("asics", "luxos")
	require.Equal(t, 4, testutil.CollectAndCount(m.driverErrors), "both ops, both classes, from the start")
	require.Equal(t, 1, testutil.CollectAndCount(m.drifted))
}

func TestMetricsUpdateRemovesGoneSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	s := cannedState()
	m.Update(&s, nil)
	require.Equal(t, 2, testutil.CollectAndCount(m.signalValue.vec))
	require.Equal(t, 4, testutil.CollectAndCount(m.fleetTarget.vec), "fleet targets stand in without a plan")

	// The price falls silent, asics leave mining, a fail-safe starts.
	s.Signals[0].Value, s.Signals[0].AgeSeconds = nil, nil
	s.Fleets[0].Modes = map[string]int{"off": 1000}
	s.Fleets[0].Target = map[string]int{"off": 1000}
	s.FailSafe = "hold"
	m.Update(&s, nil)
	require.Equal(t, 1, testutil.CollectAndCount(m.signalValue.vec))
	require.Equal(t, 1, testutil.CollectAndCount(m.signalAge.vec))
	require.Equal(t, 3, testutil.CollectAndCount(m.fleetDevices.vec))
	require.Equal(t, 3, testutil.CollectAndCount(m.fleetTarget.vec))
	require.InDelta(t, 1, testutil.ToFloat64(m.failSafe), 0)

	// A plan without a Plan map leaves the targets alone.
	m.Update(nil, &PlanView{})
	require.Equal(t, 3, testutil.CollectAndCount(m.fleetTarget.vec))
	require.Equal(t, 0, testutil.CollectAndCount(m.signalEff.vec))
	m.Update(nil, nil)
	require.Equal(t, 3, testutil.CollectAndCount(m.fleetDevices.vec))
}

func TestMetricsEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")

	t.Run("initialised before the first event", func(t *testing.T) {
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP switchd_decisions_total Controller ticks, by whether the decision sent commands (changed) or not (unchanged).
# TYPE switchd_decisions_total counter
switchd_decisions_total{result="changed"} 0
switchd_decisions_total{result="unchanged"} 0
# HELP switchd_policy_reloads_total Policy loads and reloads, by result (success or failure).
# TYPE switchd_policy_reloads_total counter
switchd_policy_reloads_total{result="failure"} 0
switchd_policy_reloads_total{result="success"} 0
`), "switchd_decisions_total", "switchd_policy_reloads_total"))
		require.Equal(t, 6, testutil.CollectAndCount(m.signalAccepted), "one series per signal")
	})
	t.Run("decisions and switches", func(t *testing.T) {
		m.Decision(true)
		m.Decision(false)
		m.Decision(false)
		m.Switches("asics", "mining", 500)
		m.Switches("asics", "mining", 0)
		m.Switches("asics", "off", -3) // never a negative counter increment
		require.InDelta(t, 1, testutil.ToFloat64(m.decisions.WithLabelValues("changed")), 0)
		require.InDelta(t, 2, testutil.ToFloat64(m.decisions.WithLabelValues("unchanged")), 0)
		require.InDelta(t, 500, testutil.ToFloat64(m.switches.WithLabelValues("asics", "mining")), 0)
		require.Equal(t, 1, testutil.CollectAndCount(m.switches))
	})
	t.Run("reload", func(t *testing.T) {
		m.Reload(true, "deadbeef0123", testNow)
		require.InDelta(t, 1, testutil.ToFloat64(m.reloadOK), 0)
		require.InDelta(t, 0xdeadbeef, testutil.ToFloat64(m.configHash), 0)
		require.InDelta(t, float64(testNow.Unix()), testutil.ToFloat64(m.reloadTS), 0)

		// A failed reload keeps the hash and timestamp of the policy in force.
		m.Reload(false, "", testNow.Add(time.Hour))
		require.InDelta(t, 0, testutil.ToFloat64(m.reloadOK), 0)
		require.InDelta(t, 0xdeadbeef, testutil.ToFloat64(m.configHash), 0)
		require.InDelta(t, float64(testNow.Unix()), testutil.ToFloat64(m.reloadTS), 0)
		require.InDelta(t, 1, testutil.ToFloat64(m.reloads.WithLabelValues("failure")), 0)
		require.InDelta(t, 1, testutil.ToFloat64(m.reloads.WithLabelValues("success")), 0)

		// A malformed hash does not move the gauge.
		m.Reload(true, "not-hex!", testNow)
		require.InDelta(t, 0xdeadbeef, testutil.ToFloat64(m.configHash), 0)
	})
	t.Run("signals", func(t *testing.T) {
		m.SignalAccepted("price")
		m.SignalRejected("price", "malformed")
		m.SignalRejected("price", "malformed")
		require.InDelta(t, 1, testutil.ToFloat64(m.signalAccepted.WithLabelValues("price")), 0)
		require.InDelta(t, 2, testutil.ToFloat64(m.signalRejected.WithLabelValues("price", "malformed")), 0)
	})
	t.Run("driver and journal", func(t *testing.T) {
		m.DriverError("asics", "luxos", OpState, false)
		m.DriverError("asics", "luxos", OpApply, true)
		m.DriverError("asics", "luxos", OpApply, true)
		m.DriverRequest("asics", "luxos", OpState, 40*time.Millisecond)
		m.Drifted("asics", 4)
		m.Drifted("asics", 0)
		m.CommandLatency("asics", -time.Second) // a clock step back counts as 0
		m.JournalAppend(time.Millisecond, nil)
		m.JournalAppend(time.Millisecond, errors.New("fsync: input/output error"))
		m.MQTTConnected(true)
		require.InDelta(t, 1, testutil.ToFloat64(m.driverErrors.WithLabelValues("asics", "luxos", "state", "retriable")), 0)
		require.InDelta(t, 2, testutil.ToFloat64(m.driverErrors.WithLabelValues("asics", "luxos", "apply", "permanent")), 0)
		require.InDelta(t, 4, testutil.ToFloat64(m.drifted.WithLabelValues("asics")), 0)
		require.Equal(t, 1, testutil.CollectAndCount(m.driverRequest))
		require.InDelta(t, 1, testutil.ToFloat64(m.journalErrors), 0)
		require.InDelta(t, 1, testutil.ToFloat64(m.mqttConnected), 0)
		var h dto.Metric
		require.NoError(t, m.journalLatency.(prometheus.Metric).Write(&h))
		require.Equal(t, uint64(2), h.GetHistogram().GetSampleCount())
		require.NoError(t, testutil.CollectAndCompare(m.commandLatency, strings.NewReader(`
# HELP switchd_command_duration_seconds Time a fleet's driver took to accept a batch of commands, in seconds.
# TYPE switchd_command_duration_seconds histogram
switchd_command_duration_seconds_bucket{fleet="asics",le="0.005"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.01"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.025"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.05"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.1"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.25"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="0.5"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="1"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="2.5"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="5"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="10"} 1
switchd_command_duration_seconds_bucket{fleet="asics",le="+Inf"} 1
switchd_command_duration_seconds_sum{fleet="asics"} 0
switchd_command_duration_seconds_count{fleet="asics"} 1
`)))
	})
}

func TestMetricsBadInputNeverPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	require.NotPanics(t, func() {
		s := cannedState()
		s.Fleets[0].Name = "bad\xffname"
		m.Update(&s, nil)
		m.Switches("\xfe", "mining", 1)
		m.SignalRejected("price", "\xc3")
	})
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)

	var nilM *Metrics
	require.NotPanics(t, func() { exercise(nilM) }, "a nil *Metrics is a no-op")
}

func TestNewMetricsTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg, "test")
	require.Panics(t, func() { NewMetrics(reg, "test") })
}

// TestMetricsScrapePromtool scrapes /metrics as Prometheus would and lets
// promtool judge the exposition.
func TestMetricsScrapePromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SWITCHD_REQUIRE_PROMTOOL") == "1" {
			t.Fatalf("promtool required (SWITCHD_REQUIRE_PROMTOOL=1): %v", err)
		}
		t.Skipf("promtool not installed: %v", err)
	}
	ts := newTestServer(t, Options{})
	exercise(ts.metrics)

	r := do(t, "GET", ts.url+"/metrics", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `switchd_signal_value{signal="price"} 42.5`)

	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(r.body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "promtool check metrics:\n%s", out.String())
}
