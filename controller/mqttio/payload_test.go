package mqttio

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/config"
)

func TestParsePayload(t *testing.T) {
	arrival := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	cdt := time.FixedZone("", -5*3600)
	tests := []struct {
		name    string
		payload string
		value   float64
		ts      time.Time
		reason  string // "" when accepted
	}{
		{name: "json", payload: `{"ts":"2024-08-20T19:30:00-05:00","value":42.5}`, value: 42.5, ts: time.Date(2024, 8, 20, 19, 30, 0, 0, cdt)},
		{name: "json utc fraction", payload: `{"ts":"2024-08-20T19:30:00.25Z","value":-3}`, value: -3, ts: arrival.Add(250 * time.Millisecond)},
		{name: "json spaces and newline", payload: " \n{ \"value\" : 1e3 , \"ts\" : \"2024-08-20T19:30:00Z\" }\r\n", value: 1000, ts: arrival},
		{name: "json extra field ignored", payload: `{"ts":"2024-08-20T19:30:00Z","value":7,"unit":"USD/MWh"}`, value: 7, ts: arrival},
		{name: "bare integer", payload: "120", value: 120, ts: arrival},
		{name: "bare negative with spaces", payload: "  -12.75\n", value: -12.75, ts: arrival},
		{name: "bare exponent", payload: "2.5E+2", value: 250, ts: arrival},
		{name: "bare zero", payload: "0", value: 0, ts: arrival},
		{name: "underflow is zero", payload: "1e-400", value: 0, ts: arrival},

		{name: "empty", payload: "", reason: ReasonMalformed},
		{name: "only spaces", payload: " \t\n", reason: ReasonMalformed},
		{name: "too long", payload: strings.Repeat(" ", MaxPayloadBytes) + "1", reason: ReasonMalformed},
		{name: "broken json", payload: `{"ts":"2024-08-20T19:30:00Z","value":`, reason: ReasonMalformed},
		{name: "json trailing garbage", payload: `{"ts":"2024-08-20T19:30:00Z","value":1}x`, reason: ReasonMalformed},
		{name: "missing ts", payload: `{"value":42}`, reason: ReasonMalformed},
		{name: "missing value", payload: `{"ts":"2024-08-20T19:30:00Z"}`, reason: ReasonMalformed},
		{name: "ts without offset", payload: `{"ts":"2024-08-20T19:30:00","value":1}`, reason: ReasonMalformed},
		{name: "ts as unix number", payload: `{"ts":1724200200,"value":1}`, reason: ReasonMalformed},
		{name: "ts null", payload: `{"ts":null,"value":1}`, reason: ReasonMalformed},
		{name: "ts garbage", payload: `{"ts":"yesterday","value":1}`, reason: ReasonMalformed},
		{name: "ts hour 25", payload: `{"ts":"2024-08-20T25:30:00Z","value":1}`, reason: ReasonMalformed},
		{name: "value string", payload: `{"ts":"2024-08-20T19:30:00Z","value":"42"}`, reason: ReasonNotANumber},
		{name: "value null", payload: `{"ts":"2024-08-20T19:30:00Z","value":null}`, reason: ReasonNotANumber},
		{name: "value bool", payload: `{"ts":"2024-08-20T19:30:00Z","value":true}`, reason: ReasonNotANumber},
		{name: "value object", payload: `{"ts":"2024-08-20T19:30:00Z","value":{"v":1}}`, reason: ReasonNotANumber},
		{name: "value huge", payload: `{"ts":"2024-08-20T19:30:00Z","value":1e400}`, reason: ReasonNonFinite},
		{name: "bare huge", payload: "-1e309", reason: ReasonNonFinite},
		{name: "bare NaN", payload: "NaN", reason: ReasonNonFinite},
		{name: "bare inf", payload: "+Inf", reason: ReasonNonFinite},
		{name: "bare infinity", payload: "-infinity", reason: ReasonNonFinite},
		{name: "bare word", payload: "high", reason: ReasonNotANumber},
		{name: "bare quoted number", payload: `"42"`, reason: ReasonNotANumber},
		{name: "bare hex float", payload: "0x1p3", reason: ReasonNotANumber},
		{name: "bare plus sign", payload: "+5", reason: ReasonNotANumber},
		{name: "bare underscore", payload: "1_000", reason: ReasonNotANumber},
		{name: "bare two numbers", payload: "1 2", reason: ReasonNotANumber},
		{name: "bare leading zero", payload: "012", reason: ReasonNotANumber},
		{name: "bare array", payload: "[1]", reason: ReasonNotANumber},
		{name: "binary garbage", payload: "\x00\xff\xfe", reason: ReasonNotANumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ts, reason, err := ParsePayload([]byte(tt.payload), arrival)
			if tt.reason != "" {
				require.Error(t, err)
				require.Equal(t, tt.reason, reason)
				return
			}
			require.NoError(t, err)
			require.Empty(t, reason)
			require.Equal(t, tt.value, v)
			require.True(t, tt.ts.Equal(ts), "ts %s, want %s", ts, tt.ts)
		})
	}
}

func TestCheck(t *testing.T) {
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	cfg := config.SignalConfig{Min: -500, Max: 5000, MaxFuture: 30 * time.Second}
	tests := []struct {
		name   string
		value  float64
		ts     time.Time
		last   time.Time
		reason string // "" when accepted
	}{
		{name: "plain", value: 42, ts: now},
		{name: "at min", value: -500, ts: now},
		{name: "at max", value: 5000, ts: now},
		{name: "old but first", value: 1, ts: now.Add(-24 * time.Hour)},
		{name: "future within skew", value: 1, ts: now.Add(30 * time.Second)},
		{name: "newer than last", value: 1, ts: now, last: now.Add(-time.Minute)},
		{name: "duplicate of last", value: 1, ts: now, last: now},
		{name: "below min", value: -500.01, ts: now, reason: ReasonOutOfRange},
		{name: "above max", value: 5001, ts: now, reason: ReasonOutOfRange},
		{name: "nan", value: math.NaN(), ts: now, reason: ReasonNonFinite},
		{name: "inf", value: math.Inf(1), ts: now, reason: ReasonNonFinite},
		{name: "future beyond skew", value: 1, ts: now.Add(31 * time.Second), reason: ReasonFuture},
		{name: "older than last", value: 1, ts: now.Add(-time.Nanosecond), last: now, reason: ReasonOutOfOrder},
		{name: "range before order", value: 1e9, ts: now.Add(-time.Hour), last: now, reason: ReasonOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := Check(cfg, tt.value, tt.ts, now, tt.last)
			require.Equal(t, tt.reason == "", ok)
			require.Equal(t, tt.reason, reason)
		})
	}
}

func TestAppendPayloadRoundTrip(t *testing.T) {
	cdt := time.FixedZone("", -5*3600)
	for _, v := range []float64{0, -0.5, 42.125, 1e21, 1e-7, -123456789.25, math.MaxFloat64} {
		ts := time.Date(2024, 8, 20, 19, 30, 0, 123, cdt)
		got, gotTS, reason, err := ParsePayload(appendPayload(nil, ts, v), time.Time{})
		require.NoError(t, err, "value %v", v)
		require.Empty(t, reason)
		require.Equal(t, v, got)
		require.True(t, ts.Equal(gotTS))
	}
}

func FuzzParsePayload(f *testing.F) {
	for _, seed := range []string{
		`{"ts":"2024-08-20T19:30:00-05:00","value":42.5}`,
		`{"ts":"2024-08-20T19:30:00Z","value":"42"}`,
		`{"value":1}`,
		"42", " -1.5e3 ", "NaN", "-Inf", "1e400", "", "{", "[]", `"x"`, "0x10", "\xff",
	} {
		f.Add([]byte(seed))
	}
	arrival := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	cfg := config.SignalConfig{Min: -1000, Max: 10000, MaxFuture: time.Minute}
	valid := map[string]bool{}
	for _, r := range Reasons {
		valid[r] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, ts, reason, err := ParsePayload(data, arrival)
		if err != nil {
			require.True(t, valid[reason], "reason %q", reason)
			require.NotEqual(t, ReasonUnknownTopic, reason)
			return
		}
		require.Empty(t, reason)
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "accepted %v", v)
		require.False(t, ts.IsZero())
		// Whatever parses can be checked without trouble.
		if r, ok := Check(cfg, v, ts, arrival, arrival); !ok {
			require.True(t, valid[r], "reason %q", r)
		}
	})
}
