package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
)

// TestCheckOverride checks the override checks the daemon applies to every
// POST /api/v1/override: a cap above the interconnect cap, a negative one,
// a mode the fleet lacks, an unknown fleet and one override too many.
func TestCheckOverride(t *testing.T) {
	site := &config.Site{PowerCapKW: 1000, Fleets: []config.Fleet{{Spec: switchd.FleetSpec{Name: "asics", Count: 10, Supports: [switchd.NumModes]bool{true, true, false}}}}}
	now := time.Date(2024, 8, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		o    Override
		want string
	}{
		{"cap within", Override{HasCap: true, SiteCapKW: 500}, ""},
		{"cap at the interconnect", Override{HasCap: true, SiteCapKW: 1000}, ""},
		{"cap 1e308", Override{HasCap: true, SiteCapKW: 1e308}, "site_cap_kw 1e+308 is above the interconnect cap 1000 kW: an override narrows, never widens"},
		{"negative cap", Override{HasCap: true, SiteCapKW: -1}, "site_cap_kw must not be negative (got -1)"},
		{"mode the fleet lacks", Override{Fleet: "asics", HasMode: true, Mode: switchd.ModeInference}, `fleet "asics" has no inference mode`},
		{"unknown fleet", Override{Fleet: "gpus", HasMode: true, Mode: switchd.ModeOff}, `unknown fleet "gpus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOverride(site, &tc.o, nil, now)
			if tc.want == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tc.want)
			}
		})
	}
	t.Run("at most 64 in force", func(t *testing.T) {
		inForce := make([]Override, config.MaxOverrides)
		for i := range inForce {
			inForce[i] = Override{HasCap: true, SiteCapKW: 900, Until: now.Add(time.Hour)}
		}
		o := Override{HasCap: true, SiteCapKW: 800}
		require.EqualError(t, CheckOverride(site, &o, inForce, now), "64 overrides are in force already, the most allowed: clear some first")
		inForce[0].Until = now // expired: room for one more
		require.NoError(t, CheckOverride(site, &o, inForce, now))
	})
}
