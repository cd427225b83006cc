package whatsminer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// btminer status codes (API v2 documentation as transcribed in
// device-protocols.md §5; uncertain).
const (
	codeInvalidCmd   = 14  // invalid command or data
	codeInvalidJSON  = 23  // invalid JSON
	codeMissingCmd   = 24  // cgminer: "Missing JSON 'command'" (a build that wants "command")
	codeDenied       = 45  // permission denied: write API off, or password never changed
	codeTokenInvalid = 135 // token check error: wrong password or expired token
	codeTokenMax     = 136 // token over max times
	codeBase64       = 137 // base64 decode error
)

// minerStatus is the Msg of a `status` reply (flat v2 shape).
type minerStatus struct {
	// Off is btmineroff: mining stopped on purpose (power_off).
	Off      bool
	HasOff   bool
	Firmware string
}

// summary is what the driver reads from a `summary` reply.
type summary struct {
	HashrateTHs float64
	HasHashrate bool
	PowerW      float64
	HasPower    bool
	Firmware    string
	// Elapsed is how long btminer has been mining (its uptime), which
	// restarts at power_on and at boot; negative when absent.
	Elapsed time.Duration
}

// tokenMsg is the Msg of a get_token reply.
type tokenMsg struct {
	Time, Salt, NewSalt string
}

// statusOf reads a checked `status` reply. Msg is an object in the flat
// v2 shape; btmineroff is the string "true" or "false".
func statusOf(r cgrpc.Reply) (minerStatus, error) {
	st, err := r.Status()
	if err != nil {
		return minerStatus{}, err
	}
	m, ok := st.MsgValue.(map[string]any)
	if !ok {
		return minerStatus{}, fmt.Errorf("status: Msg is not an object (%q)", st.Msg)
	}
	var out minerStatus
	out.Off, out.HasOff = cgrpc.Bool(m["btmineroff"])
	out.Firmware = cgrpc.String(m["Firmware Version"])
	if !out.HasOff {
		return out, errors.New("status: no readable btmineroff")
	}
	return out, nil
}

// summaryOf reads a checked `summary` reply. Hash rates are in MH/s;
// "HS RT" (real time, newer firmware) is preferred, then the 5 s, 1 min
// and lifetime averages. The lifetime average ("MHS av") stays above zero
// for a while after mining stops, so it is the last resort.
func summaryOf(r cgrpc.Reply) (summary, error) {
	s := r.First("SUMMARY")
	if s == nil {
		return summary{}, errors.New("summary: no SUMMARY section")
	}
	var out summary
	for _, k := range []string{"HS RT", "MHS 5s", "MHS 1m", "MHS av"} {
		if v, ok := cgrpc.Number(s[k]); ok {
			out.HashrateTHs, out.HasHashrate = max(v, 0)/1e6, true
			break
		}
	}
	// Power_RT is the power supply's real-time reading; Power the value
	// the firmware reports as current draw on builds without it.
	for _, k := range []string{"Power_RT", "Power"} {
		if v, ok := cgrpc.Number(s[k]); ok && v >= 0 {
			out.PowerW, out.HasPower = v, true
			break
		}
	}
	out.Firmware = cgrpc.String(s["Firmware Version"])
	out.Elapsed = -1
	if v, ok := cgrpc.Number(s["Elapsed"]); ok && v >= 0 && v < 1e9 {
		out.Elapsed = time.Duration(v) * time.Second
	}
	return out, nil
}

// devsOf adds up the boards of a checked `devs` or `edevs` reply, in
// TH/s; ok is false when no board gives a hash rate.
func devsOf(r cgrpc.Reply) (ths float64, boards int, ok bool) {
	for _, b := range r.Section("DEVS") {
		boards++
		for _, k := range []string{"MHS 5s", "MHS 1m", "MHS av"} {
			if v, found := cgrpc.Number(b[k]); found {
				ths += max(v, 0) / 1e6
				ok = true
				break
			}
		}
	}
	return ths, boards, ok
}

// versionOf reads the firmware version of a checked get_version reply.
func versionOf(r cgrpc.Reply) string {
	st, err := r.Status()
	if err != nil {
		return ""
	}
	if m, ok := st.MsgValue.(map[string]any); ok {
		return cgrpc.String(m["fw_ver"])
	}
	return ""
}

// tokenOf reads a checked get_token reply.
func tokenOf(r cgrpc.Reply) (tokenMsg, error) {
	st, err := r.Status()
	if err != nil {
		return tokenMsg{}, err
	}
	m, ok := st.MsgValue.(map[string]any)
	if !ok {
		return tokenMsg{}, fmt.Errorf("get_token: Msg is not an object (%q)", st.Msg)
	}
	t := tokenMsg{
		Time:    strings.TrimSpace(cgrpc.String(m["time"])),
		Salt:    strings.TrimSpace(cgrpc.String(m["salt"])),
		NewSalt: strings.TrimSpace(cgrpc.String(m["newsalt"])),
	}
	if t.Time == "" || t.Salt == "" || t.NewSalt == "" {
		return tokenMsg{}, errors.New("get_token: Msg lacks time, salt or newsalt")
	}
	return t, nil
}

// modelOf reads the model from a checked `devdetails` reply
// (DEVDETAILS[0].Model, e.g. "M30S+V40"); "" when absent.
func modelOf(r cgrpc.Reply) string {
	if d := r.First("DEVDETAILS"); d != nil {
		return cgrpc.String(d["Model"])
	}
	return ""
}

// observation turns a status (nil when the firmware has no `status`
// command) and a summary (nil when the unit is off and would not give one)
// into what the pool sees. A unit mining for less than warmup (by its own
// Elapsed) with no hashrate yet is waking up, not faulted.
func observation(st *minerStatus, sum *summary, warmup time.Duration) pool.Observation {
	var o pool.Observation
	if sum != nil {
		o.HashrateTHs, o.PowerW, o.HasPower = sum.HashrateTHs, sum.PowerW, sum.HasPower
		o.Firmware = sum.Firmware
	}
	if st != nil && st.Firmware != "" {
		o.Firmware = st.Firmware
	}
	switch {
	case st != nil && st.Off:
		// Asleep on purpose: power_off was obeyed.
		o.Mode, o.Known = switchd.ModeOff, true
	case st != nil:
		o.Mode, o.Known = switchd.ModeMining, true
		switch {
		case sum == nil || !sum.HasHashrate || sum.HashrateTHs > 0:
		case sum.Elapsed >= 0 && sum.Elapsed < warmup:
			o.Detail = fmt.Sprintf("warming up: mining for %s, no hashrate yet", sum.Elapsed)
		default:
			o.Fault, o.Detail = true, "mining (btmineroff false) with zero hashrate"
		}
	case sum != nil && sum.HashrateTHs > 0:
		o.Mode, o.Known = switchd.ModeMining, true
	default:
		o.Detail = "zero hashrate and no status command: asleep and faulted cannot be told apart"
	}
	return o
}

// writeReply checks the reply to an encrypted command: {"enc":"<base64>"}
// decrypted with the session key, or a plaintext error in the flat shape.
// A STATUS error is a permanent *cgrpc.StatusError; the caller reclassifies
// the token codes.
func writeReply(cmd string, key, raw []byte) error {
	r, err := cgrpc.Decode(raw)
	if err != nil {
		return switchd.Retriable(fmt.Errorf("%s: %w", cmd, err))
	}
	if enc, ok := r["enc"].(string); ok {
		plain, err := decrypt(key, enc)
		if err != nil {
			return switchd.Retriable(fmt.Errorf("%s: %w", cmd, err))
		}
		raw = plain
	}
	_, err = cgrpc.Check(cmd, raw)
	return err
}

// statusCode returns the code of a STATUS error, or 0.
func statusCode(err error) int {
	var se *cgrpc.StatusError
	if errors.As(err, &se) {
		return se.Status.Code
	}
	return 0
}
