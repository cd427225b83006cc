package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/daemon"
	"go.uber.org/zap/zaptest"
)

// sameSite is a valid site that names its policy; each nonsense case
// changes one line of it or of samePolicy.
const sameSite = `site: {name: s, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
tick: 10s
signals:
  price: {max_future: 1m}
http: {listen: '127.0.0.1:0', token_file: token}
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

const samePolicy = `fallbacks: {inference_usd_gpu_hour: 2.1, ai_demand_gpus: 40}
hysteresis_usd_mwh: 5
ramp_up_kw_per_min: 500
rules:
  - name: spike
    when: {price_above_usd_mwh: 1000}
    then: {site_cap_kw: 500}
stagger: {batch: 10, interval: 30s}
`

// TestValidateRefusesWhatRunRefuses checks, for each kind of nonsense, that
// `switchd validate` and the loader `switchd run` uses refuse the files
// with the same message, naming the file, line and key.
func TestValidateRefusesWhatRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		name         string
		site, policy [2]string // replace [0] with [1]
		token        string
		want         string // in the message; DIR/ is the files' directory
	}{
		{name: "empty condition", policy: [2]string{"when: {price_above_usd_mwh: 1000}", "when: {}"},
			want: "DIR/policy.yaml:6: rules[0].when: empty: an empty condition always holds"},
		{name: "empty policy", policy: [2]string{samePolicy, "# nothing yet\n"},
			want: "DIR/policy.yaml:1: empty policy"},
		{name: "hysteresis beyond the price range", policy: [2]string{"hysteresis_usd_mwh: 5", "hysteresis_usd_mwh: 1e9"},
			want: "DIR/policy.yaml:2: hysteresis_usd_mwh: must be at most 21000 USD/MWh"},
		{name: "stagger of hours", policy: [2]string{"interval: 30s", "interval: 30h"},
			want: "DIR/policy.yaml:8: stagger.interval: must be at most 1h (got 30h)"},
		{name: "ramp of 0", policy: [2]string{"ramp_up_kw_per_min: 500", "ramp_up_kw_per_min: 0"},
			want: "DIR/policy.yaml:3: ramp_up_kw_per_min: must be positive (got 0); write unlimited for no limit"},
		{name: "rule cap above the interconnect", policy: [2]string{"site_cap_kw: 500", "site_cap_kw: 5000"},
			want: "DIR/policy.yaml:7: rules[0].then.site_cap_kw: must be at most the interconnect cap"},
		{name: "5,000-hour transition", site: [2]string{"off->inference: 5m", "off->inference: 5000h"},
			want: "DIR/site.yaml:15: fleets[0].transitions.off->inference: must be at most 24h"},
		{name: "tick 1ns", site: [2]string{"tick: 10s", "tick: 1ns"},
			want: "DIR/site.yaml:3: tick: must be at least 1s"},
		{name: "max_future of hours", site: [2]string{"max_future: 1m", "max_future: 5h"},
			want: "DIR/site.yaml:5: signals.price.max_future: must be at most 10m"},
		{name: "power cap 1e308", site: [2]string{"power_cap_kw: 1000", "power_cap_kw: 1e308"},
			want: "DIR/site.yaml:1: site.power_cap_kw: must be at most 10000000 kW"},
		{name: "ai_demand above the GPUs", site: [2]string{"price: {max_future: 1m}", "ai_demand: {max: 2500}"},
			want: "DIR/site.yaml:5: signals.ai_demand.max: must be at most 40"},
		{name: "ai_demand fallback above the GPUs", policy: [2]string{"ai_demand_gpus: 40", "ai_demand_gpus: 2500"},
			want: "DIR/policy.yaml:1: fallbacks.ai_demand_gpus: must be at most 40, the devices that can serve inference (got 2500)"},
		{name: "short token", token: "hunter2",
			want: "DIR/site.yaml:6: http.token_file: the token in DIR/token is 7 bytes: at least 16 are needed"},
		{name: "empty token file", token: "\n",
			want: "DIR/site.yaml:6: http.token_file: DIR/token is empty"},
		{name: "unknown driver", site: [2]string{"driver: sim", "driver: sims"},
			want: `DIR/site.yaml:11: fleets[0].driver: unknown driver "sims"`},
		{name: "policy the site names is missing", site: [2]string{"policy: policy.yaml", "policy: nope.yaml"},
			want: "DIR/site.yaml:2: policy: open DIR/nope.yaml: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			site, policy, token := sameSite, samePolicy, "0123456789abcdef\n"
			if tc.site[0] != "" {
				require.Contains(t, site, tc.site[0])
				site = strings.Replace(site, tc.site[0], tc.site[1], 1)
			}
			if tc.policy[0] != "" {
				require.Contains(t, policy, tc.policy[0])
				policy = strings.Replace(policy, tc.policy[0], tc.policy[1], 1)
			}
			if tc.token != "" {
				token = tc.token
			}
			for name, data := range map[string]string{"site.yaml": site, "policy.yaml": policy, "token": token} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
			}
			cfg := filepath.Join(dir, "site.yaml")
			want := strings.ReplaceAll(tc.want, "DIR/", dir+"/")

			code, _, errOut := runCmd("validate", "--config", cfg)
			require.Equal(t, 1, code, errOut)
			require.Contains(t, errOut, want)

			// run refuses before it starts anything (no broker, no port).
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := daemon.Run(ctx, daemon.Options{ConfigPath: cfg, Logger: zaptest.NewLogger(t)})
			require.Error(t, err)
			require.Equal(t, strings.TrimSuffix(errOut, "\n"), err.Error(), "validate prints exactly what run refuses")
		})
	}

	// The files unchanged are valid: each case above fails for its one
	// change only.
	dir := t.TempDir()
	for name, data := range map[string]string{"site.yaml": sameSite, "policy.yaml": samePolicy, "token": "0123456789abcdef\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
	}
	code, out, errOut := runCmd("validate", "--config", filepath.Join(dir, "site.yaml"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "site s")
	require.Empty(t, errOut)
}

// TestValidateWarns checks that validate prints the site's warnings (the
// daemon logs the same at start) and still passes.
func TestValidateWarns(t *testing.T) {
	dir := t.TempDir()
	site := strings.Replace(sameSite, "http: {listen: '127.0.0.1:0', token_file: token}", "http: {listen: ':8080'}", 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(samePolicy), 0o600))
	code, _, errOut := runCmd("validate", "--config", filepath.Join(dir, "site.yaml"))
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "warning: "+filepath.Join(dir, "site.yaml")+`:6: http.listen: ":8080" is reachable beyond this machine and no token_file or token_env is set: anyone who can reach it reads the site's state, and overrides are refused`+"\n", errOut)
}
