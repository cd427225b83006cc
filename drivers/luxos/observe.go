package luxos

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// replies holds the replies a poll reads; a nil one was refused or absent.
type replies struct {
	config, summary, power, devs cgrpc.Reply
}

func (rs *replies) set(cmd string, r cgrpc.Reply) {
	switch cmd {
	case "config":
		rs.config = r
	case "summary":
		rs.summary = r
	case "power":
		rs.power = r
	case "devs":
		rs.devs = r
	}
}

// replyParts are the parts a multi-command reply may hold.
var replyParts = []string{"config", "summary", "power", "devs"}

// errNoMulti marks a miner that answered a multi-command request with one
// plain reply (an error): it does not take multi-commands.
var errNoMulti = errors.New("multi-command refused")

// splitMulti reads a multi-command reply: each command's full reply nested,
// as a list of one, under the command's name. A part whose STATUS is an
// error, or cannot be read, is left nil. A reply that cannot be read at
// all, or that has no readable part, is a retriable error: it is never
// acted on.
func splitMulti(raw []byte) (replies, error) {
	var rs replies
	r, err := cgrpc.Decode(raw)
	if err != nil {
		return rs, switchd.Retriable(fmt.Errorf("poll: %w", err))
	}
	if _, ok := r["STATUS"]; ok {
		// One plain reply: the firmware did not split the request.
		if st, err := r.Status(); err == nil && !st.OK() {
			return rs, fmt.Errorf("%w: %s", errNoMulti, st.Msg)
		}
		return rs, fmt.Errorf("%w: a plain reply", errNoMulti)
	}
	readable := 0
	for _, cmd := range replyParts {
		sub := r.First(cmd)
		if sub == nil {
			continue
		}
		part := cgrpc.Reply(sub)
		st, err := part.Status()
		if err != nil || !st.OK() {
			continue
		}
		readable++
		rs.set(cmd, part)
	}
	if readable == 0 {
		return rs, switchd.Retriable(fmt.Errorf("poll: %w in any part of the reply", cgrpc.ErrNoStatus))
	}
	return rs, nil
}

// observe turns a poll's replies into an observation. The rule, in order:
//
//  1. config's CurtailMode "Sleep" (or "Idle", which an older revision of
//     the curtail command had) means curtailed on purpose: off, never a
//     fault, whatever the hashrate says.
//  2. CurtailMode "None" (or absent, on firmware without it) means the
//     miner is meant to mine: mining. With zero hashrate it is a fault,
//     unless a board reports IsRamping (waking up, a profile change): a
//     waking miner hashes nothing for a while and is not broken.
//  3. Any other CurtailMode is judged by the evidence: hashing means
//     mining; power supply off (IsPowerSupplyOn false) and no hashrate
//     means off; otherwise the mode is unknown.
//  4. Without a readable config the hashrate decides: hashing is mining,
//     anything else is unknown (an asleep miner and a broken one look
//     alike there).
//
// Hashrate is SUMMARY "GHS 5s" (GH/s, shown in TH/s); power is POWER
// "Watts", absent when the miner does not say.
func observe(rs replies) (pool.Observation, error) {
	if rs.config == nil && rs.summary == nil && rs.power == nil && rs.devs == nil {
		return pool.Observation{}, switchd.Retriable(errors.New("poll: no readable reply"))
	}
	var o pool.Observation
	for _, r := range []cgrpc.Reply{rs.config, rs.summary, rs.power, rs.devs} {
		if r == nil {
			continue
		}
		if st, err := r.Status(); err == nil && st.Description != "" {
			o.Firmware = st.Description
			break
		}
	}
	ths, hasRate := hashrate(rs.summary)
	o.HashrateTHs = ths
	if pw := rs.power.First("POWER"); pw != nil {
		if w, ok := cgrpc.Number(pw["Watts"]); ok && w >= 0 {
			o.PowerW, o.HasPower = w, true
		}
	}
	ramping := isRamping(rs.devs)
	cfg := rs.config.First("CONFIG")
	if cfg != nil {
		o.Model = cgrpc.String(cfg["Model"])
	}
	hashing := hasRate && ths > 0
	if cfg == nil {
		if hashing {
			o.Mode, o.Known = switchd.ModeMining, true
			return o, nil
		}
		o.Detail = "config unreadable and no hashrate: cannot tell asleep from stopped"
		return o, nil
	}
	curtail := strings.TrimSpace(cgrpc.String(cfg["CurtailMode"]))
	psuOn, hasPSU := cgrpc.Bool(cfg["IsPowerSupplyOn"])
	switch strings.ToLower(curtail) {
	case "sleep", "idle":
		o.Mode, o.Known = switchd.ModeOff, true
		o.Detail = "curtailed (" + curtail + ")"
		return o, nil
	case "", "none":
		o.Mode, o.Known = switchd.ModeMining, true
	default:
		switch {
		case hashing:
			o.Mode, o.Known = switchd.ModeMining, true
		case hasPSU && !psuOn:
			o.Mode, o.Known = switchd.ModeOff, true
			o.Detail = "curtail mode " + curtail + ", power supply off"
			return o, nil
		default:
			o.Detail = fmt.Sprintf("curtail mode %q not understood and no hashrate", curtail)
			return o, nil
		}
	}
	switch {
	case hashing && ramping:
		o.Detail = "ramping up"
	case hashing:
	case ramping:
		o.Detail = "ramping up, not hashing yet"
	case !hasRate:
		o.Detail = "summary unreadable: hashrate unknown"
	case hasPSU && !psuOn:
		o.Fault, o.Detail = true, "not curtailed but power supply off"
	default:
		o.Fault, o.Detail = true, "not curtailed but hashrate is zero"
	}
	return o, nil
}

// hashrate reads SUMMARY's 5-second hashrate in TH/s, falling back to the
// average, then to MH/s fields some cgminer builds send.
func hashrate(summary cgrpc.Reply) (float64, bool) {
	s := summary.First("SUMMARY")
	if s == nil {
		return 0, false
	}
	for _, f := range []struct {
		key   string
		toTHs float64
	}{{"GHS 5s", 1e-3}, {"GHS av", 1e-3}, {"MHS 5s", 1e-6}, {"MHS av", 1e-6}} {
		if v, ok := cgrpc.Number(s[f.key]); ok && v >= 0 {
			return v * f.toTHs, true
		}
	}
	return 0, false
}

// isRamping reports whether any board says it is ramping up.
func isRamping(devs cgrpc.Reply) bool {
	for _, b := range devs.Section("DEVS") {
		if r, ok := cgrpc.Bool(b["IsRamping"]); ok && r {
			return true
		}
	}
	return false
}

// profile is one LuxOS power profile.
type profile struct {
	Name        string
	Step        string
	Watts       float64
	HashrateTHs float64
}

// parseProfiles reads the profiles reply; profiles without a name or an
// estimated power are left out.
func parseProfiles(r cgrpc.Reply) ([]profile, error) {
	var out []profile
	for _, p := range r.Section("PROFILES") {
		name := cgrpc.String(p["Profile Name"])
		w, ok := cgrpc.Number(p["Watts"])
		if name == "" || !ok || w <= 0 {
			continue
		}
		ths, _ := cgrpc.Number(p["Hashrate"])
		out = append(out, profile{Name: name, Step: cgrpc.String(p["Step"]), Watts: w, HashrateTHs: ths})
	}
	if len(out) == 0 {
		return nil, errors.New("profiles: no profile with a name and a power estimate")
	}
	return out, nil
}

// nominal is the default profile: Step 0, else the one named "default".
func nominal(ps []profile) (profile, bool) {
	for _, p := range ps {
		if p.Step == "0" {
			return p, true
		}
	}
	for _, p := range ps {
		if strings.EqualFold(p.Name, "default") {
			return p, true
		}
	}
	return profile{}, false
}

// nearestProfile picks the profile whose power is nearest pct percent of
// the default profile's; a tie goes to the lower power.
func nearestProfile(ps []profile, pct float64) (profile, error) {
	nom, ok := nominal(ps)
	if !ok {
		return profile{}, errors.New("profiles: no default profile (Step 0) to take a percentage of")
	}
	target := nom.Watts * pct / 100
	best, bestDiff := profile{}, math.Inf(1)
	for _, p := range ps {
		diff := math.Abs(p.Watts - target)
		if diff < bestDiff || (diff == bestDiff && p.Watts < best.Watts) {
			best, bestDiff = p, diff
		}
	}
	return best, nil
}

// sessionID reads SESSION[0].SessionID ("" when no session is active).
func sessionID(r cgrpc.Reply) (string, error) {
	s := r.First("SESSION")
	if s == nil {
		return "", errors.New("reply has no SESSION")
	}
	return cgrpc.String(s["SessionID"]), nil
}
