// Package web is switchd's HTTP surface: the JSON API (/api/v1/state,
// /api/v1/plan, /api/v1/override), health and readiness probes, the
// Prometheus endpoint and a small self-refreshing status page. It serves
// whatever a Backend (the daemon) reports; it holds no state of its own
// beyond the override token.
package web

import (
	"context"
	"time"
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
}

// JournalView is the journal's head.
type JournalView struct {
	Path string `json:"path"`
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
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

// FleetView is one fleet's observed state and target.
type FleetView struct {
	Name    string         `json:"name"`
	Kind    string         `json:"kind"`
	Driver  string         `json:"driver"`
	Devices int            `json:"devices"`
	Modes   map[string]int `json:"modes"`  // steady devices per mode
	Moving  int            `json:"moving"` // devices in transition
	Target  map[string]int `json:"target"` // the plan
	PowerKW float64        `json:"power_kw"`
	// PowerByModeKW is the draw per mode (devices in transition count
	// under the mode they are heading to).
	PowerByModeKW map[string]float64 `json:"power_by_mode_kw"`
	Failed        int                `json:"failed"`
	DriverUp      bool               `json:"driver_up"`
	LastError     string             `json:"last_error,omitempty"`
	LastDecision  *DecisionView      `json:"last_decision,omitempty"`
}

// DecisionView is one tick that sent commands.
type DecisionView struct {
	Time     time.Time     `json:"time"`
	Rules    []string      `json:"rules"` // rules and overrides that fired
	Reason   string        `json:"reason"`
	Commands []CommandView `json:"commands"`
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
	Forbid []string       `json:"forbid,omitempty"`
	Min    map[string]int `json:"min,omitempty"`
	Max    map[string]int `json:"max,omitempty"`
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
	// reason says what is missing otherwise.
	Ready() (ok bool, reason string)
	// SetOverride validates and applies an override (journalled before it
	// takes effect). A *RequestError is a client mistake (HTTP 400).
	SetOverride(ctx context.Context, req OverrideRequest) (OverrideView, error)
	// ClearOverrides removes the overrides of a fleet, or of the site cap
	// when fleet is "site-cap", or all when fleet is empty; it returns how
	// many were removed (journalled).
	ClearOverrides(ctx context.Context, fleet string) (int, error)
}

// RequestError is a bad request: the message is shown to the client.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }
