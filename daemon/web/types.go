// Package web is switchd's HTTP surface: the JSON API (/api/v1/state,
// /api/v1/plan, /api/v1/devices, /api/v1/history, /api/v1/override),
// health and readiness probes, the Prometheus endpoint and a small
// self-refreshing status page with charts. It serves whatever a Backend
// (the daemon) reports; it holds no state of its own beyond the override
// token.
package web

import (
	"context"
	"errors"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/dr"
)

// StateView is the site as the daemon sees it now (GET /api/v1/state, and
// the retained MQTT state topic).
type StateView struct {
	Site      string    `json:"site"`
	Time      time.Time `json:"time"`
	PowerKW   float64   `json:"power_kw"`    // site draw now
	SiteCapKW float64   `json:"site_cap_kw"` // cap in force (interconnect, rule or override)
	Ready     bool      `json:"ready"`
	// FailSafe is "none", "hold" or "curtail": what stale signals impose now.
	FailSafe  string         `json:"fail_safe"`
	Stale     []string       `json:"stale_signals"`
	Signals   []SignalView   `json:"signals"`
	Fleets    []FleetView    `json:"fleets"`
	Overrides []OverrideView `json:"overrides"`
	// Decisions are the latest decisions that changed something, newest first.
	Decisions []DecisionView `json:"decisions"`
	Policy    PolicyView     `json:"policy"`
	// Journal is the head of the decision journal: its last entry's
	// sequence number and hash. Recording it elsewhere (a SCADA historian
	// reading the state topic) anchors the hash chain, so a rewritten
	// journal tail would not verify against it.
	Journal *JournalView `json:"journal,omitempty"`
	// MQTT is the signal broker connection; nil when none is configured.
	MQTT *MQTTView `json:"mqtt,omitempty"`
	// Waiting says what the controller waits for before it can act as the
	// policy wants (the first signals after a start, devices landing, the
	// journal); empty when nothing.
	Waiting []string `json:"waiting"`
	// DR is the demand-response events tracked (scheduled, active and the
	// recent ended ones) with their compliance so far; an alarm shows in
	// each record's alarm field.
	DR []dr.Record `json:"dr_events,omitempty"`
	// HA is this instance's high-availability role; nil without `ha:`.
	HA *HAView `json:"ha,omitempty"`
}

// MQTTView is the broker connection.
type MQTTView struct {
	Broker    string    `json:"broker"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// JournalView is the journal's head, and its trouble if appends fail.
type JournalView struct {
	Path string `json:"path"`
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// Error is the last append failure while appends keep failing (starts
	// are held back meanwhile; sheds are still sent); empty when healthy.
	Error      string     `json:"error,omitempty"`
	ErrorSince *time.Time `json:"error_since,omitempty"`
}

// SignalView is one signal's latest accepted value.
type SignalView struct {
	Name       string     `json:"name"`
	Topic      string     `json:"topic,omitempty"`
	Value      *float64   `json:"value"` // nil: never received
	At         *time.Time `json:"at"`
	AgeSeconds *float64   `json:"age_seconds"`
	MaxAge     string     `json:"max_age"`
	Stale      bool       `json:"stale"`
	Fallback   *float64   `json:"fallback,omitempty"`
}

// FleetView is one fleet's observed state and target. The counts are what
// the driver reported at the controller's last tick; nothing here polls.
type FleetView struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Driver  string `json:"driver"`
	Devices int    `json:"devices"` // as configured
	// Observed is false until the driver has answered a state request:
	// the counts are zero until then, not guessed.
	Observed bool           `json:"observed"`
	Modes    map[string]int `json:"modes"`  // steady devices per mode
	Moving   int            `json:"moving"` // devices in transition
	Target   map[string]int `json:"target"` // the plan
	PowerKW  float64        `json:"power_kw"`
	// PowerByModeKW is the draw per mode of the devices in that mode:
	// steady ones and unusable ones last seen there, from the catalog
	// power. Devices in transition are not in it: they are in
	// MovingPowerByModeKW, so a mode's row never shows miners still waking
	// as if they were running.
	PowerByModeKW map[string]float64 `json:"power_by_mode_kw"`
	// MovingTo counts the devices in transition by the mode they are
	// heading to ("mining": waking miners; "off": devices stopping).
	MovingTo map[string]int `json:"moving_to"`
	// MovingPowerByModeKW is what the devices in transition draw, by the
	// mode they are heading to, each at the larger of its two modes'
	// catalog power.
	MovingPowerByModeKW map[string]float64 `json:"moving_power_by_mode_kw"`
	Failed              int                `json:"failed"`
	// Unusable are devices the controller does not count on until they
	// recover, by reason.
	Unusable UnusableView `json:"unusable"`
	// Drifted counts devices found out of their commanded mode at the
	// last tick (and commanded again).
	Drifted int `json:"drifted"`
	// Transitions are the transition times the driver measured, keyed
	// "from->to" like the site file's transitions, so that they can be set
	// from what was observed. Absent when the driver does not measure.
	Transitions map[string]TransitionView `json:"transitions,omitempty"`
	// Problems are the first devices with a problem (at most
	// MaxProblemDevices); ProblemsTotal counts them all. The full list is
	// at /api/v1/devices?fleet=NAME&problem=1.
	Problems      []switchd.DeviceStatus `json:"problems,omitempty"`
	ProblemsTotal int                    `json:"problems_total"`
	// DriverUp is whether the driver answered its last state request.
	DriverUp  bool   `json:"driver_up"`
	LastError string `json:"last_error,omitempty"`
	// LastErrorOp ("state" or "apply") and LastErrorClass ("retriable" or
	// "permanent") describe LastError.
	LastErrorOp    string `json:"last_error_op,omitempty"`
	LastErrorClass string `json:"last_error_class,omitempty"`
	// LastDecision is the last decision that commanded this fleet (sent
	// or held), with this fleet's commands only; nil when none since the
	// start.
	LastDecision *DecisionView `json:"last_decision,omitempty"`
}

// MaxProblemDevices bounds the problem devices listed per fleet in the
// state view and on the status page.
const MaxProblemDevices = 100

// UnusableView counts a fleet's unusable devices. ByReason has every
// reason of switchd.Problems, zeros included.
type UnusableView struct {
	Total    int            `json:"total"`
	ByReason map[string]int `json:"by_reason"`
}

// TransitionView is one kind of transition as measured: how many were seen
// and the median and 95th percentile from command to observed arrival.
type TransitionView struct {
	Count      int     `json:"count"`
	P50Seconds float64 `json:"p50_seconds"`
	P95Seconds float64 `json:"p95_seconds"`
}

// DevicesQuery selects devices for GET /api/v1/devices.
type DevicesQuery struct {
	Fleet string
	// ProblemOnly keeps only devices with a problem.
	ProblemOnly bool
	// Offset skips that many matching devices; Limit bounds the page.
	Offset, Limit int
}

// DevicesView is one page of a fleet's devices as last observed.
type DevicesView struct {
	Fleet  string `json:"fleet"`
	Driver string `json:"driver"`
	// Reported is false when the driver does not report single devices
	// (the simulated fleet): the list is then empty.
	Reported bool `json:"reported"`
	Total    int  `json:"total"`   // devices the driver reported
	Matched  int  `json:"matched"` // of those, the ones the query selects
	Offset   int  `json:"offset"`
	Limit    int  `json:"limit"`
	// Devices are Matched[Offset:Offset+Limit], in the site file's order.
	Devices []switchd.DeviceStatus `json:"devices"`
}

// ErrUnknownFleet is returned by Backend.Devices for a fleet the site does
// not have (HTTP 404).
var ErrUnknownFleet = errors.New("unknown fleet")

// DecisionView is one tick that sent commands.
type DecisionView struct {
	Time     time.Time     `json:"time"`
	Rules    []string      `json:"rules"` // rules and overrides that fired
	Reason   string        `json:"reason"`
	Commands []CommandView `json:"commands"`
	// Held are commands not sent because the journal could not record
	// them (starts wait for the journal; sheds go out regardless).
	Held []CommandView `json:"held,omitempty"`
}

// CommandView is one command: Count devices of Fleet from From to To.
type CommandView struct {
	Fleet string `json:"fleet"`
	From  string `json:"from"`
	To    string `json:"to"`
	Count int    `json:"count"`
}

// PolicyView identifies the policy in force.
type PolicyView struct {
	Source   string    `json:"source"`
	SHA256   string    `json:"sha256"`
	LoadedAt time.Time `json:"loaded_at"`
	Summary  string    `json:"summary"`
}

// PlanView is the last evaluation (GET /api/v1/plan): values used, the
// constraints in force, the rules fired and the target plan.
type PlanView struct {
	Time        time.Time                 `json:"time"`
	Values      map[string]float64        `json:"values"` // effective (received or fallback)
	SiteCapKW   float64                   `json:"site_cap_kw"`
	Constraints map[string]FleetLimitView `json:"constraints"` // by fleet
	Hold        bool                      `json:"hold"`
	Curtail     bool                      `json:"curtail"`
	Fired       []string                  `json:"fired"`
	Stale       []string                  `json:"stale"`
	Plan        map[string]map[string]int `json:"plan"` // fleet → mode → devices
}

// FleetLimitView is what the rules allow one fleet.
type FleetLimitView struct {
	Forbid     []string       `json:"forbid,omitempty"`
	Discourage []string       `json:"discourage,omitempty"` // modes a rule makes earn nothing
	Min        map[string]int `json:"min,omitempty"`
	Max        map[string]int `json:"max,omitempty"`
}

// OverrideRequest is the body of POST /api/v1/override: either force a
// fleet's mode (fleet + mode) or cap the site (site_cap_kw), for a duration
// (Go syntax: "30m", "2h").
type OverrideRequest struct {
	Fleet     string   `json:"fleet,omitempty"`
	Mode      string   `json:"mode,omitempty"`
	SiteCapKW *float64 `json:"site_cap_kw,omitempty"`
	Duration  string   `json:"duration"`
	Reason    string   `json:"reason,omitempty"`
}

// OverrideView is an override in force.
type OverrideView struct {
	ID        string    `json:"id"`
	Fleet     string    `json:"fleet,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	SiteCapKW *float64  `json:"site_cap_kw,omitempty"`
	Until     time.Time `json:"until"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Backend is what the HTTP layer serves. Implementations are safe for
// concurrent use.
type Backend interface {
	State() StateView
	Plan() PlanView
	// Ready is true once signals are fresh and every driver answered; the
	// reason says what is missing otherwise, or, when ready, what is worth
	// knowing anyway (unusable devices).
	Ready() (ok bool, reason string)
	// Devices pages through a fleet's devices as last observed, without
	// I/O. An error wrapping ErrUnknownFleet means no such fleet.
	Devices(q DevicesQuery) (DevicesView, error)
	// SetOverride validates and applies an override (journalled before it
	// takes effect). A *RequestError is a client mistake (HTTP 400).
	SetOverride(ctx context.Context, req OverrideRequest) (OverrideView, error)
	// History is the recent past of price, power and decisions, without
	// I/O.
	History() HistoryView
	// ClearOverrides removes the overrides of a fleet, or of the site cap
	// when fleet is "site-cap", or all when fleet is empty; it returns how
	// many were removed (journalled).
	ClearOverrides(ctx context.Context, fleet string) (int, error)
}

// RequestError is a bad request: the message is shown to the client.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

// HistoryView is the recent past for the status page's charts (GET
// /api/v1/history): the price and each fleet's power over the last
// HistorySpan, as columns of equal length (one entry per point, oldest
// first), and the decisions that commanded something. A point averages the
// ticks of at most StepSeconds; the resolution coarsens as the history
// fills, so memory stays bounded whatever the tick rate. The history is
// kept in memory: a restart starts it afresh.
type HistoryView struct {
	Site string    `json:"site"`
	Time time.Time `json:"time"` // now, on the daemon's clock
	// From is the oldest time shown (Time less the span); the points may
	// start later.
	From        time.Time `json:"from"`
	StepSeconds float64   `json:"step_seconds"`
	// TZOffsetSeconds is the UTC offset of Time's zone, for labels.
	TZOffsetSeconds int `json:"tz_offset_seconds"`
	// T is each point's start, in Unix seconds.
	T []float64 `json:"t"`
	// PriceUSDPerMWh is the mean price the controller used (received or
	// fallback) in each point, and PriceMin/PriceMax its extremes; null
	// where there was none.
	PriceUSDPerMWh    []*float64 `json:"price_usd_mwh"`
	PriceMinUSDPerMWh []*float64 `json:"price_min_usd_mwh"`
	PriceMaxUSDPerMWh []*float64 `json:"price_max_usd_mwh"`
	// SiteCapKW is the mean cap in force.
	SiteCapKW []float64         `json:"site_cap_kw"`
	Fleets    []HistoryFleet    `json:"fleets"`
	Decisions []HistoryDecision `json:"decisions"` // oldest first
}

// HistorySpan is how far back HistoryView reaches.
const HistorySpan = 24 * time.Hour

// HistoryFleet is one fleet's mean power per point: RunningKW is what its
// devices draw except those waking (in transition to a working mode), which
// are in WakingKW; the two add up to the fleet's power.
type HistoryFleet struct {
	Name      string    `json:"name"`
	RunningKW []float64 `json:"running_kw"`
	WakingKW  []float64 `json:"waking_kw"`
}

// HistoryDecision is one decision that commanded devices (or had commands
// held back), for the chart markers.
type HistoryDecision struct {
	Time   time.Time `json:"time"`
	Rules  []string  `json:"rules"`
	Reason string    `json:"reason"`
	// Summary lists the commands: "asics off→mining ×250; gpus …".
	Summary string `json:"summary"`
}
