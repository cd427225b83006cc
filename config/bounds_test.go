package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// boundsSite is a valid site with 40 GPUs that serve inference; a case's
// YAML comes after it, from line 11.
const boundsSite = `site: {name: s, timezone: UTC, power_cap_kw: 1000}
fleets:
  - name: gpus
    kind: gpu
    count: 40
    driver: sim
    modes:
      off: {power_kw: 0.1}
      inference: {power_kw: 1.0}
    transitions: {off->inference: 5m}
`

// TestSiteBounds checks the range checks that refuse nonsense a site file
// could otherwise hold: each is one error, with the file, line and key.
func TestSiteBounds(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"short.token": "hunter2\n",
		"empty.token": "\n",
		"good.token":  "0123456789abcdef\n",
	})
	t.Setenv("SWITCHD_TEST_SHORT_TOKEN", "abc")
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"a power cap of 1e308", "", "s.yaml:1: site.power_cap_kw: must be at most 10000000 kW (10 GW; got 1e+308): a unit mistake?"},
		{"a mode drawing 1e308 kW", "", "s.yaml:9: fleets[0].modes.inference.power_kw: must be at most 10000000 kW (10 GW; got 1e+308): a unit mistake?"},
		{"a 5,000-hour transition", "", "s.yaml:10: fleets[0].transitions.off->inference: must be at most 24h (got 5000h): a device that takes longer is broken, not slow"},
		{"a default transition beyond a day", "", "s.yaml:10: fleets[0].transitions.default: must be at most 24h (got 25h): a device that takes longer is broken, not slow"},
		{"tick 1ns", "tick: 1ns\n", "s.yaml:11: tick: must be at least 1s (got 1ns): the controller polls every driver each tick"},
		{"a tick of days", "tick: 100h\n", "s.yaml:11: tick: must be at most 1h (got 100h): devices are only polled each tick"},
		{"a max_age beyond a month", "signals:\n  hashprice: {max_age: 1000h}\n", "s.yaml:12: signals.hashprice.max_age: must be at most 744h (got 1000h): an older value is no signal"},
		{"a forecast max_age beyond a month", "signals:\n  price_forecast: {max_age: 1000h}\n", "s.yaml:12: signals.price_forecast.max_age: must be at most 744h (got 1000h): an older forecast is no signal"},
		{"a min_dwell beyond a day", "", "s.yaml:6: fleets[0].min_dwell: must be at most 24h (got 1000h): a fleet held longer cannot follow the grid"},
		{"max_future beyond minutes", "signals:\n  price: {max_future: 2h}\n", "s.yaml:12: signals.price.max_future: must be at most 10m (got 2h): clocks drift by seconds, not hours"},
		{"ai_demand max above the GPUs", "signals:\n  ai_demand: {max: 2500}\n", "s.yaml:12: signals.ai_demand.max: must be at most 40, the devices that can serve inference (got 2500)"},
		{"ai_demand min at the GPUs", "signals:\n  ai_demand: {min: 40}\n", "s.yaml:12: signals.ai_demand.min: must be less than 40, the devices that can serve inference (got 40)"},
		{"a token file shorter than 16 bytes", "http: {listen: '127.0.0.1:8080', token_file: DIR/short.token}\n",
			"s.yaml:11: http.token_file: the token in DIR/short.token is 7 bytes: at least 16 are needed (e.g. openssl rand -hex 16)"},
		{"an empty token file", "http: {listen: '127.0.0.1:8080', token_file: DIR/empty.token}\n", "s.yaml:11: http.token_file: DIR/empty.token is empty"},
		{"a missing token file", "http: {listen: '127.0.0.1:8080', token_file: DIR/nope.token}\n", "s.yaml:11: http.token_file: DIR/nope.token does not exist"},
		{"a token variable shorter than 16 bytes", "http: {listen: '127.0.0.1:8080', token_env: SWITCHD_TEST_SHORT_TOKEN}\n",
			"s.yaml:11: http.token_env: the token in environment variable SWITCHD_TEST_SHORT_TOKEN is 3 bytes: at least 16 are needed (e.g. openssl rand -hex 16)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := boundsSite + tc.yaml
			switch tc.name {
			case "a power cap of 1e308":
				src = strings.Replace(src, "power_cap_kw: 1000", "power_cap_kw: 1e308", 1)
			case "a mode drawing 1e308 kW":
				src = strings.Replace(src, "inference: {power_kw: 1.0}", "inference: {power_kw: 1e308}", 1)
			case "a 5,000-hour transition":
				src = strings.Replace(src, "off->inference: 5m", "off->inference: 5000h", 1)
			case "a min_dwell beyond a day":
				src = strings.Replace(src, "    driver: sim\n", "    min_dwell: 1000h\n    driver: sim\n", 1)
			case "a default transition beyond a day":
				src = strings.Replace(src, "off->inference: 5m", "default: 25h", 1)
			}
			src = strings.ReplaceAll(src, "DIR/", dir+"/")
			_, err := ParseSite("s.yaml", []byte(src))
			require.EqualError(t, err, strings.ReplaceAll(tc.want, "DIR/", dir+"/"))
		})
	}
	t.Run("in bounds", func(t *testing.T) {
		src := strings.ReplaceAll(boundsSite+"tick: 1s\nsignals:\n  price: {max_future: 10m}\n  hashprice: {max_age: 744h}\n  ai_demand: {max: 40}\nhttp: {listen: '127.0.0.1:8080', token_file: DIR/good.token}\n", "DIR/", dir+"/")
		s, err := ParseSite("s.yaml", []byte(src))
		require.NoError(t, err)
		require.Empty(t, s.Warnings)
	})
}

// TestAIDemandDefaultsToGPUs checks that an ai_demand above the GPUs that
// can serve inference is implausible by default: the signal's maximum,
// which MQTT payloads are checked against, is that count.
func TestAIDemandDefaultsToGPUs(t *testing.T) {
	s, err := ParseSite("s.yaml", []byte(boundsSite))
	require.NoError(t, err)
	require.Equal(t, 40, s.InferenceGPUs())
	require.Equal(t, 40.0, s.Daemon.Signals[switchd.SignalAIDemand].Max)

	// Without a fleet that serves inference the signal is never read: the
	// default stands.
	s, err = ParseSite("s.yaml", []byte(strings.Replace(boundsSite, "inference: {power_kw: 1.0}\n    transitions: {off->inference: 5m}", "mining: {power_kw: 1.0, hashrate_ths: 100}", 1)))
	require.NoError(t, err)
	require.Equal(t, DefaultSignals()[switchd.SignalAIDemand].Max, s.Daemon.Signals[switchd.SignalAIDemand].Max)
}

// TestHTTPWarnings checks the warning for an API reachable beyond this
// machine without a token, and its absence where it does not apply.
func TestHTTPWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"good.token": "0123456789abcdef\n"})
	t.Setenv("SWITCHD_TEST_GOOD_TOKEN", "0123456789abcdef")
	require.NoError(t, os.Unsetenv("SWITCHD_TEST_UNSET_TOKEN"))
	for _, tc := range []struct {
		name, http string
		warn       string
	}{
		{"every interface, no token", "http: {listen: ':8080'}\n",
			`s.yaml:11: http.listen: ":8080" is reachable beyond this machine and no token_file or token_env is set: anyone who can reach it reads the site's state, and overrides are refused`},
		{"a LAN address, no token", "http:\n  listen: 10.0.0.5:8080\n",
			`s.yaml:12: http.listen: "10.0.0.5:8080" is reachable beyond this machine and no token_file or token_env is set: anyone who can reach it reads the site's state, and overrides are refused`},
		{"loopback, no token", "http: {listen: '127.0.0.1:8080'}\n", ""},
		{"localhost, no token", "http: {listen: 'localhost:8080'}\n", ""},
		{"every interface with a token", "http: {listen: ':8080', token_file: DIR/good.token}\n", ""},
		{"a token variable that is not set", "http: {listen: '127.0.0.1:8080', token_env: SWITCHD_TEST_UNSET_TOKEN}\n",
			"s.yaml:11: http.token_env: SWITCHD_TEST_UNSET_TOKEN is not set: overrides are refused (the API is read-only)"},
		{"a token variable that is set", "http: {listen: ':8080', token_env: SWITCHD_TEST_GOOD_TOKEN}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSite("s.yaml", []byte(strings.ReplaceAll(boundsSite+tc.http, "DIR/", dir+"/")))
			require.NoError(t, err)
			if tc.warn == "" {
				require.Empty(t, s.Warnings)
			} else {
				require.Equal(t, []string{tc.warn}, s.Warnings)
			}
		})
	}
}

// TestTokenReadEachTime checks HTTPConfig.Token, which the daemon calls on
// every override request: a file emptied or shortened after the start is
// an error, never "overrides off"; a rotated file is read as it now is.
func TestTokenReadEachTime(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("0123456789abcdef\n"), 0o600))
	c := HTTPConfig{TokenFile: file}
	tok, err := c.Token()
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef", tok)

	require.NoError(t, os.WriteFile(file, []byte("fedcba9876543210fedc"), 0o600))
	tok, err = c.Token()
	require.NoError(t, err)
	require.Equal(t, "fedcba9876543210fedc", tok)

	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = c.Token()
	require.EqualError(t, err, file+" is empty")

	require.NoError(t, os.WriteFile(file, []byte("short"), 0o600))
	_, err = c.Token()
	require.EqualError(t, err, "the token in "+file+" is 5 bytes: at least 16 are needed (e.g. openssl rand -hex 16)")

	t.Setenv("SWITCHD_TEST_TOKEN", "abc")
	_, err = (&HTTPConfig{TokenEnv: "SWITCHD_TEST_TOKEN"}).Token()
	require.Error(t, err)
	tok, err = (&HTTPConfig{TokenEnv: "SWITCHD_TEST_UNSET_TOKEN"}).Token()
	require.NoError(t, err)
	require.Empty(t, tok, "an unset variable: overrides off, as documented")
	tok, err = (&HTTPConfig{}).Token()
	require.NoError(t, err)
	require.Empty(t, tok)
}
