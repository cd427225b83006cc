package mqttio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/switchd/switchd/config"
)

// Reasons a signal payload is rejected. They are the values of the reason
// label of the daemon's reject counter, so the set is small and fixed.
const (
	ReasonMalformed    = "malformed"     // not a payload switchd understands (bad JSON, missing or bad ts, too long)
	ReasonNotANumber   = "not_a_number"  // the value is text, a string, a boolean or null
	ReasonNonFinite    = "non_finite"    // NaN, ±Inf, or a number too large for a float64
	ReasonOutOfRange   = "out_of_range"  // outside the signal's [min, max]
	ReasonFuture       = "future"        // ts further ahead of the local clock than max_future
	ReasonOutOfOrder   = "out_of_order"  // ts older than the signal's last accepted value
	ReasonUnknownTopic = "unknown_topic" // a message on a topic no signal is read from
)

// Reasons lists every reject reason, for pre-creating metric series.
var Reasons = []string{
	ReasonMalformed, ReasonNotANumber, ReasonNonFinite, ReasonOutOfRange,
	ReasonFuture, ReasonOutOfOrder, ReasonUnknownTopic,
	ReasonUnsigned, ReasonBadSignature, ReasonReplayed,
}

// MaxPayloadBytes is the longest payload ParsePayload reads. A signal is one
// number and a timestamp; anything much longer is not a signal, and refusing
// it before decoding keeps a flood of large messages cheap.
const MaxPayloadBytes = 4096

// jsonPayload is the structured form of a signal payload. Fields are raw so
// that a wrong type is told apart from a missing field.
type jsonPayload struct {
	TS    json.RawMessage `json:"ts"`
	Value json.RawMessage `json:"value"`
}

// ParsePayload parses a signal payload. Two forms are accepted, with
// surrounding whitespace:
//
//   - a JSON object {"ts": "2024-08-20T19:30:00-05:00", "value": 42.5}: ts is
//     RFC 3339 with a UTC offset (Z or ±hh:mm) and is when the value was
//     sampled; other fields are ignored;
//   - a bare JSON number such as 42.5: it was sampled at arrival (the
//     Source dates a retained one otherwise: see RetainedUntimed).
//
// A JSON object without ts is rejected rather than stamped with the arrival
// time: a producer that sends structure but forgets the time is broken, and a
// value of unknown age must not look fresh. On failure reason is one of the
// Reason constants and err says what is wrong; ParsePayload never panics.
// It does not check plausibility: see Check.
func ParsePayload(data []byte, arrival time.Time) (value float64, ts time.Time, reason string, err error) {
	if len(data) > MaxPayloadBytes {
		return 0, time.Time{}, ReasonMalformed, fmt.Errorf("payload of %d bytes, want at most %d", len(data), MaxPayloadBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return 0, time.Time{}, ReasonMalformed, errors.New("empty payload")
	}
	if data[0] != '{' {
		value, reason, err = parseBareNumber(data)
		if err != nil {
			return 0, time.Time{}, reason, err
		}
		return value, arrival, "", nil
	}

	var p jsonPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return 0, time.Time{}, ReasonMalformed, fmt.Errorf("decode json: %w", err)
	}
	if p.Value == nil {
		return 0, time.Time{}, ReasonMalformed, errors.New(`missing "value"`)
	}
	if p.TS == nil {
		return 0, time.Time{}, ReasonMalformed, errors.New(`missing "ts" (send a bare number to mean "now")`)
	}
	value, reason, err = parseJSONNumber(p.Value)
	if err != nil {
		return 0, time.Time{}, reason, fmt.Errorf("value: %w", err)
	}
	var s string
	if err := json.Unmarshal(p.TS, &s); err != nil {
		return 0, time.Time{}, ReasonMalformed, fmt.Errorf("ts: want an RFC 3339 string, got %.40s", p.TS)
	}
	ts, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, ReasonMalformed, fmt.Errorf("ts: want RFC 3339 with a UTC offset: %w", err)
	}
	return value, ts, "", nil
}

// parseBareNumber parses a payload that is not a JSON object. NaN and
// infinities, which strconv spells but JSON cannot, are non-finite rather
// than not numbers, so a sensor sending "NaN" is counted as what it is.
func parseBareNumber(data []byte) (float64, string, error) {
	if isJSONNumber(data) {
		return parseJSONNumber(data)
	}
	if v, err := strconv.ParseFloat(string(data), 64); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		return 0, ReasonNonFinite, fmt.Errorf("value %.40q is not finite", data)
	}
	return 0, ReasonNotANumber, fmt.Errorf("payload %.40q is not a number", data)
}

// parseJSONNumber parses a JSON value that must be a number.
func parseJSONNumber(raw []byte) (float64, string, error) {
	raw = bytes.TrimSpace(raw)
	if !isJSONNumber(raw) {
		return 0, ReasonNotANumber, fmt.Errorf("%.40s is not a number", raw)
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// The grammar was checked, so the only failure is a magnitude
		// beyond float64 (1e400).
		return 0, ReasonNonFinite, fmt.Errorf("%.40s overflows a float64", raw)
	}
	return v, "", nil
}

// isJSONNumber reports whether b is exactly one JSON number: -?int frac? exp?
// with no leading zeros, no '+', no hex, no underscores.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

// skipDigits returns the index of the first non-digit at or after i.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Check applies the plausibility rules to a parsed value of a signal with
// configuration cfg, at local time now. In order: the value must be finite
// and within [cfg.Min, cfg.Max]; ts must not be more than cfg.MaxFuture after
// now (clocks drift, but a value from the future is a broken producer or a
// replay stamped wrong); and ts must not be strictly before lastAccepted,
// the time of the signal's last accepted value (zero when none), so a late
// message never overwrites a newer value. An equal ts is accepted: QoS 1
// redelivers duplicates, and the value is the same. Staleness (max_age) is
// not checked here: an old value is still the latest one, and the controller
// judges its age at each tick. On rejection reason is a Reason constant.
func Check(cfg config.SignalConfig, value float64, ts, now, lastAccepted time.Time) (reason string, ok bool) {
	switch {
	case math.IsNaN(value) || math.IsInf(value, 0):
		return ReasonNonFinite, false
	case value < cfg.Min || value > cfg.Max:
		return ReasonOutOfRange, false
	case ts.After(now.Add(cfg.MaxFuture)):
		return ReasonFuture, false
	case !lastAccepted.IsZero() && ts.Before(lastAccepted):
		return ReasonOutOfOrder, false
	}
	return "", true
}

// HasTimestamp reports whether a payload is of the structured form, which
// carries its own ts; a bare number does not.
func HasTimestamp(payload []byte) bool {
	payload = bytes.TrimSpace(payload)
	return len(payload) > 0 && payload[0] == '{'
}

// RetainedUntimed is the time given to a retained bare number arriving at
// arrival for a signal whose values are stale after maxAge. The broker kept
// it from an unknown past, so its age is unknown; it is dated just past
// maxAge so that it is shown but counts as stale until a fresh value
// arrives. Without a max_age (0) nothing judges staleness, and the arrival
// is kept.
func RetainedUntimed(arrival time.Time, maxAge time.Duration) time.Time {
	if maxAge <= 0 {
		return arrival
	}
	return arrival.Add(-maxAge - time.Nanosecond)
}

// ClampFuture returns ts, or now when ts is after now. Check has refused a
// ts further ahead than max_future; one within it (a producer's clock a
// little fast) is taken as sampled now, so that it never makes a later
// true value look out of order.
func ClampFuture(ts, now time.Time) time.Time {
	if ts.After(now) {
		return now
	}
	return ts
}
