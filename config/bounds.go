package config

import (
	"time"

	"github.com/switchd/switchd"
)

// Bounds on what a site file may say. Each is far beyond any real site, so
// that only a slip (an extra zero, kW for W, hours for minutes) hits one;
// the policy parser and the override check use the same figures.
const (
	// MaxPowerKW bounds every power figure: 10 GW, beyond the largest
	// power station. A bigger cap or draw is a unit mistake.
	MaxPowerKW = 10_000_000
	// MaxTransition bounds a transition time: a device that takes more
	// than a day to change mode is broken, not slow.
	MaxTransition = 24 * time.Hour
	// MinTick bounds how often the controller runs: more often than once
	// a second only burns a core (drivers are polled every tick).
	MinTick = time.Second
	// MaxTick bounds the longest tick: the controller also polls the
	// devices each tick, so an hour without one leaves a device that
	// drifted (rebooted, changed mode by hand) unseen for that long.
	MaxTick = time.Hour
	// MaxMinDwell bounds a fleet's min_dwell as MaxTransition bounds a
	// transition: a device held in a mode for more than a day cannot
	// follow a grid that changes price every 5 to 15 minutes.
	MaxMinDwell = 24 * time.Hour
	// MaxMaxAge bounds a signal's max_age: the slowest feed (a monthly
	// index) may be a month old; a value older than that is no signal.
	MaxMaxAge = 31 * 24 * time.Hour
	// MaxMaxFuture bounds how far ahead of the clock a signal may be
	// stamped: clocks drift by seconds; further ahead is a time zone or
	// unit mistake, and accepting it would let a sample shadow the next
	// hour's.
	MaxMaxFuture = 10 * time.Minute
	// MaxStaggerInterval bounds the pause between start batches: a
	// restore of ten batches an hour apart takes most of a day, which is
	// a unit slip (hours for seconds), not pacing.
	MaxStaggerInterval = time.Hour
	// MinTokenBytes is the shortest override token accepted: shorter is
	// guessable.
	MinTokenBytes = 16
	// MaxOverrides bounds the operator overrides in force at once.
	MaxOverrides = 64
)

// InferenceGPUs returns how many devices of the site can serve inference:
// the most an ai_demand signal can plausibly ask of it.
func (s *Site) InferenceGPUs() int {
	n := 0
	for i := range s.Fleets {
		if f := &s.Fleets[i].Spec; f.Supports[switchd.ModeInference] {
			n += f.Count
		}
	}
	return n
}

// SignalRange returns the plausible range of signal sig on this site
// (signals.<sig>.min and max, or their defaults).
func (s *Site) SignalRange(sig switchd.Signal) (lo, hi float64) {
	c := &s.Daemon.Signals[sig]
	return c.Min, c.Max
}
