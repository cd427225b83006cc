package strictyaml

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  ConfigError
		want string
	}{
		{"full", ConfigError{File: "site.yaml", Line: 22, Path: "fleets[0].modes.mining.power_kw", Msg: "must not be negative (got -3.5)"},
			"site.yaml:22: fleets[0].modes.mining.power_kw: must not be negative (got -3.5)"},
		{"syntax", ConfigError{File: "p.yaml", Line: 3, Msg: "yaml: did not find expected key"}, "p.yaml:3: yaml: did not find expected key"},
		{"no line", ConfigError{File: "p.yaml", Msg: "yaml: control characters are not allowed"}, "p.yaml: yaml: control characters are not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.err.Error())
		})
	}
}

func TestClosest(t *testing.T) {
	known := []string{"price_above_usd_mwh", "price_below_usd_mwh", "grid_load_above_mw", "for", "schedule"}
	for _, tc := range []struct{ key, want string }{
		{"price_abov_usd_mwh", "price_above_usd_mwh"},
		{"grid_load_above", "grid_load_above_mw"},
		{"fro", "for"},
		{"colour", ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			require.Equal(t, tc.want, Closest(tc.key, known))
		})
	}
}
