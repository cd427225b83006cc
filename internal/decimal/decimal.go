// Package decimal formats computed quantities for files people and
// spreadsheets read: rounded to a stated number of decimal places, then
// written in the shortest form, so that arithmetic noise in a float64
// (3 × 0.1 kW is 0.30000000000000004) never reaches an export.
//
// It imports only the standard library.
package decimal

import (
	"strconv"
	"strings"
)

// Format writes v rounded to places decimal places (the exact binary value
// to the nearest, ties to even) without trailing zeros or a trailing point:
// 0.3, 12, -1.5. Negative zero prints as 0; NaN and infinities as strconv
// writes them (NaN, +Inf, -Inf). places is clamped to 0..15: past 15 a
// float64 has no noise left to round away.
func Format(v float64, places int) string {
	places = min(max(places, 0), 15)
	s := strconv.FormatFloat(v, 'f', places, 64)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}
