package web

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchd/switchd"
)

// fakeBackend serves canned views and records override calls.
type fakeBackend struct {
	mu     sync.Mutex
	state  StateView
	plan   PlanView
	ready  bool
	reason string

	setErr   error
	setCalls []OverrideRequest

	clearN     int
	clearErr   error
	clearCalls []string

	devices      map[string][]switchd.DeviceStatus // by fleet
	devicesCalls []DevicesQuery

	history HistoryView
}

var _ Backend = (*fakeBackend)(nil)

func (b *fakeBackend) State() StateView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *fakeBackend) Plan() PlanView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.plan
}

func (b *fakeBackend) Ready() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready, b.reason
}

func (b *fakeBackend) Devices(q DevicesQuery) (DevicesView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devicesCalls = append(b.devicesCalls, q)
	devs, ok := b.devices[q.Fleet]
	if !ok {
		return DevicesView{}, fmt.Errorf("fleet %q: %w", q.Fleet, ErrUnknownFleet)
	}
	v := PageDevices(devs, q)
	v.Driver, v.Reported = "luxos", true
	return v, nil
}

func (b *fakeBackend) History() HistoryView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.history
}

func (b *fakeBackend) SetOverride(_ context.Context, req OverrideRequest) (OverrideView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setCalls = append(b.setCalls, req)
	if b.setErr != nil {
		return OverrideView{}, b.setErr
	}
	d, _ := time.ParseDuration(req.Duration)
	return OverrideView{
		ID:        "ov-1",
		Fleet:     req.Fleet,
		Mode:      req.Mode,
		SiteCapKW: req.SiteCapKW,
		Until:     testNow.Add(d),
		Reason:    req.Reason,
		CreatedAt: testNow,
	}, nil
}

func (b *fakeBackend) ClearOverrides(_ context.Context, fleet string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearCalls = append(b.clearCalls, fleet)
	return b.clearN, b.clearErr
}

func (b *fakeBackend) calls() ([]OverrideRequest, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]OverrideRequest(nil), b.setCalls...), append([]string(nil), b.clearCalls...)
}

var testNow = time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// cannedState is a small site: a fresh price, a stale grid load, a
// hashprice never received (fallback), two fleets, one override and two
// decisions.
func cannedState() StateView {
	at := testNow.Add(-12 * time.Second)
	old := testNow.Add(-20 * time.Minute)
	dec := DecisionView{
		Time:   testNow.Add(-5 * time.Minute),
		Rules:  []string{"price-spike"},
		Reason: "price above breakeven",
		Commands: []CommandView{
			{Fleet: "asics", From: "off", To: "mining", Count: 500},
		},
	}
	return StateView{
		Site:      "texas-1",
		Time:      testNow,
		PowerKW:   6100,
		SiteCapKW: 10000,
		Ready:     true,
		FailSafe:  "none",
		Stale:     []string{"grid_load"},
		Signals: []SignalView{
			{Name: "price", Topic: "switchd/texas-1/signals/price", Value: ptr(42.5), At: &at, AgeSeconds: ptr(12.0), MaxAge: "1m30s"},
			{Name: "grid_load", Value: ptr(78000.0), At: &old, AgeSeconds: ptr(1200.0), MaxAge: "10m0s", Stale: true},
			{Name: "hashprice", MaxAge: "48h0m0s", Fallback: ptr(48.0)},
		},
		Fleets: []FleetView{
			{
				Name: "asics", Kind: "asic", Driver: "luxos", Devices: 1000, Observed: true,
				Modes:         map[string]int{"off": 400, "mining": 500},
				Moving:        100,
				Target:        map[string]int{"off": 400, "mining": 600},
				PowerKW:       3850,
				PowerByModeKW: map[string]float64{"off": 0, "mining": 3500},
				// 100 miners waking, at 3.5 kW each.
				MovingTo:            map[string]int{"off": 0, "mining": 100},
				MovingPowerByModeKW: map[string]float64{"off": 0, "mining": 350},
				Unusable:            UnusableView{Total: 3, ByReason: map[string]int{"unreachable": 2, "auth": 0, "protocol": 0, "fault": 1, "stuck": 0}},
				Drifted:             1,
				Transitions: map[string]TransitionView{
					"off->mining": {Count: 12, P50Seconds: 41.2, P95Seconds: 55},
					"mining->off": {Count: 30, P50Seconds: 2.5, P95Seconds: 4},
				},
				Problems: []switchd.DeviceStatus{
					{Addr: "10.0.0.7:4028", Mode: "unknown", Commanded: "mining", Problem: "unreachable", LastError: "dial 10.0.0.7:4028: i/o timeout"},
					{Addr: "10.0.0.9:4028", Mode: "mining", Commanded: "mining", Since: testNow.Add(-time.Hour), Problem: "fault", LastError: "<hashboard 2> dead"},
				},
				ProblemsTotal: 3,
				DriverUp:      true,
				LastDecision:  &dec,
			},
			{
				Name: "gpus", Kind: "gpu", Driver: "sim", Devices: 200,
				Modes:         map[string]int{"off": 50, "inference": 150},
				Target:        map[string]int{"off": 50, "inference": 150},
				PowerKW:       2250,
				PowerByModeKW: map[string]float64{"inference": 2250},
				Failed:        2,
				Observed:      true,
				DriverUp:      false,
				LastError:     `dial 10.0.0.5:4028: <connection refused>`,
			},
		},
		Overrides: []OverrideView{
			{ID: "ov-7", Fleet: "gpus", Mode: "inference", Until: testNow.Add(time.Hour), Reason: "customer demo", CreatedAt: testNow.Add(-time.Minute)},
		},
		Decisions: []DecisionView{
			dec,
			{Time: testNow.Add(-time.Hour), Rules: []string{"override:gpus"}, Commands: []CommandView{{Fleet: "gpus", From: "off", To: "inference", Count: 150}}},
		},
		Policy: PolicyView{
			Source:   "/etc/switchd/policy.yaml",
			SHA256:   "deadbeef0123456789abcdef0123456789abcdef0123456789abcdef01234567",
			LoadedAt: testNow.Add(-24 * time.Hour),
			Summary:  "3 rules, fail-safe price: curtail",
		},
	}
}

func cannedPlan() PlanView {
	return PlanView{
		Time:      testNow,
		Values:    map[string]float64{"price": 42.5, "hashprice": 48},
		SiteCapKW: 10000,
		Constraints: map[string]FleetLimitView{
			"asics": {Forbid: []string{"inference"}},
			"gpus":  {Min: map[string]int{"inference": 200}},
		},
		Fired: []string{"price-spike", "override:gpus"},
		Stale: []string{"grid_load"},
		Plan: map[string]map[string]int{
			"asics": {"off": 400, "mining": 600},
			"gpus":  {"off": 0, "inference": 200},
		},
	}
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{state: cannedState(), plan: cannedPlan(), ready: true, clearN: 2,
		devices: map[string][]switchd.DeviceStatus{"asics": nil, "gpus": nil}, history: cannedHistory()}
}

// cannedHistory is three points a minute apart: cheap, a spike (the asics
// curtailed by a decision) and cheap again with miners waking.
func cannedHistory() HistoryView {
	t0 := testNow.Add(-3 * time.Minute)
	u := func(d time.Duration) float64 { return float64(t0.Add(d).Unix()) }
	return HistoryView{
		Site: "texas-1", Time: testNow, From: testNow.Add(-HistorySpan), StepSeconds: 60,
		T:                 []float64{u(0), u(time.Minute), u(2 * time.Minute)},
		PriceUSDPerMWh:    []*float64{ptr(42.5), ptr(900.0), nil},
		PriceMinUSDPerMWh: []*float64{ptr(40.0), ptr(850.0), nil},
		PriceMaxUSDPerMWh: []*float64{ptr(45.0), ptr(950.0), nil},
		SiteCapKW:         []float64{10000, 10000, 10000},
		Fleets: []HistoryFleet{
			{Name: "asics", RunningKW: []float64{3500, 4, 3500}, WakingKW: []float64{0, 0, 350}},
			{Name: "gpus", RunningKW: []float64{2250, 2250, 2250}, WakingKW: []float64{0, 0, 0}},
		},
		Decisions: []HistoryDecision{
			{Time: t0.Add(time.Minute), Rules: []string{"price-spike"}, Reason: "price 900.00 USD/MWh", Summary: "asics mining→off ×1000"},
		},
	}
}
