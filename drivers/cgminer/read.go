package cgminer

import (
	"strconv"
	"strings"

	"github.com/switchd/switchd/drivers/internal/cgrpc"
)

// hashKey is a hashrate field and its scale to TH/s.
type hashKey struct {
	key   string
	scale float64
}

// hashKeys are the hashrate fields in order of preference: the shortest
// window first, because a unit that has just stopped shows it there first.
// Averages since start ("MHS av", "GHS av") are never used: they stay high
// for hours after a stop (cgminer/summary-avalon-q.json: "MHS av" 44.5
// TH/s while "MHS 5s" is 0 on a soft-off unit).
var hashKeys = [...]hashKey{
	{"THS 5s", 1}, {"GHS 5s", 1e-3}, {"MHS 5s", 1e-6},
	{"THS 30s", 1}, {"GHS 30s", 1e-3}, {"MHS 30s", 1e-6},
	{"THS 1m", 1}, {"GHS 1m", 1e-3}, {"MHS 1m", 1e-6},
}

// EntryHashrate reads the current hashrate of one SUMMARY or STATS entry in
// TH/s. Values may be numbers or numeric strings (bmminer sends
// "GHS 5s":"504.56"); a negative, NaN or missing value is not a hashrate.
func EntryHashrate(e map[string]any) (float64, bool) {
	for _, k := range hashKeys {
		v, ok := e[k.key]
		if !ok {
			continue
		}
		f, ok := cgrpc.Number(v)
		if !ok || f < 0 {
			continue
		}
		return f * k.scale, true
	}
	return 0, false
}

// sub returns the reply to cmd nested in a multi-report reply
// ("summary+stats" nests each command's reply under its name), or nil.
func sub(r cgrpc.Reply, cmd string) cgrpc.Reply {
	list, ok := r[cmd].([]any)
	if !ok || len(list) == 0 {
		return nil
	}
	m, ok := list[0].(map[string]any)
	if !ok {
		return nil
	}
	return cgrpc.Reply(m)
}

// Hashrate reads a reply's current hashrate in TH/s: from SUMMARY, else
// from the first STATS entry that has one (bmminer puts "GHS 5s" there),
// else from the summary or stats nested in a multi-report reply. DEVS is
// not read: stock bmminer reports 0 there while mining
// (bmminer/devs-s19pro.json next to summary-s19pro.json).
func Hashrate(r cgrpc.Reply) (float64, bool) {
	if h, ok := flatHashrate(r); ok {
		return h, true
	}
	for _, cmd := range [...]string{"summary", "stats"} {
		if s := sub(r, cmd); s != nil {
			if h, ok := flatHashrate(s); ok {
				return h, true
			}
		}
	}
	return 0, false
}

func flatHashrate(r cgrpc.Reply) (float64, bool) {
	for _, sec := range [...]string{"SUMMARY", "STATS"} {
		for _, e := range r.Section(sec) {
			if h, ok := EntryHashrate(e); ok {
				return h, true
			}
		}
	}
	return 0, false
}

// Idle reports whether a stats reply shows a unit idle on purpose: Canaan
// Avalon units that were soft-switched off report "SoftOFF[n]" with n
// non-zero and "SYSTEMSTATU[Work: In Idle, ...]" inside their "MM ID"
// strings (cgminer/stats-avalon-q.json). detail names what was seen.
// Stock Antminer (bmminer) stats carry no such field: a sleeping S19
// (bmminer/stats-s19-sleeping.json) cannot be told from a faulted one.
func Idle(r cgrpc.Reply) (idle bool, detail string) {
	secs := r.Section("STATS")
	if s := sub(r, "stats"); s != nil {
		secs = append(secs, s.Section("STATS")...)
	}
	var seen []string
	for _, e := range secs {
		for _, v := range e {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if strings.Contains(s, "Work: In Idle") {
				idle = true
				seen = append(seen, "Work: In Idle")
			}
			if n, ok := bracketed(s, "SoftOFF["); ok && n != "" && n != "0" {
				idle = true
				seen = append(seen, "SoftOFF["+n+"]")
			}
		}
	}
	if idle {
		detail = "idle on purpose (" + strings.Join(seen, ", ") + ")"
	}
	return idle, detail
}

// bracketed returns the text between key (ending in "[") and the next "]".
func bracketed(s, key string) (string, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return "", false
	}
	rest := s[i+len(key):]
	j := strings.IndexByte(rest, ']')
	if j < 0 {
		return "", false
	}
	v := strings.TrimSpace(rest[:j])
	if _, err := strconv.ParseFloat(v, 64); err != nil {
		return "", false
	}
	return v, true
}

// Version reads the model and firmware a version (or stats) reply names:
// bmminer's "Type" ("Antminer S19 Pro") and "Miner" build, Avalon's "PROD"
// and "LVERSION", and the STATUS Description ("cgminer 4.11.1").
func Version(r cgrpc.Reply) (model, firmware string) {
	var desc string
	if st, err := r.Status(); err == nil {
		desc = st.Description
	}
	entries := r.Section("VERSION")
	entries = append(entries, r.Section("STATS")...)
	var build string
	for _, e := range entries {
		for _, k := range [...]string{"Type", "PROD", "MODEL"} {
			if model == "" {
				model = cgrpc.String(e[k])
			}
		}
		for _, k := range [...]string{"LVERSION", "Miner", "BMMiner", "CGMiner"} {
			if build == "" {
				build = cgrpc.String(e[k])
			}
		}
	}
	switch {
	case desc != "" && build != "":
		firmware = desc + " (" + build + ")"
	case desc != "":
		firmware = desc
	default:
		firmware = build
	}
	return model, firmware
}
