package all

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestBuildRefusesUndoableModes checks that a fleet declaring a power-target
// mode its driver cannot command is refused when built (as `switchd
// validate` does), naming the mode, the fleet and the drivers that can.
func TestBuildRefusesUndoableModes(t *testing.T) {
	tests := []struct {
		driver string
		mode   switchd.Mode
		ok     bool
	}{
		{"sim", switchd.ModeMiningReduced, true},
		{"sim", switchd.ModeSleep, true},
		{"luxos", switchd.ModeMiningReduced, true},
		{"whatsminer", switchd.ModeMiningReduced, true},
		{"bosminer", switchd.ModeMiningReduced, false},
		{"cgminer", switchd.ModeMiningReduced, false},
		{"luxos", switchd.ModeSleep, false},
	}
	for _, tt := range tests {
		t.Run(tt.driver+"/"+tt.mode.String(), func(t *testing.T) {
			e, err := Lookup(tt.driver)
			require.NoError(t, err)
			t.Setenv("SWITCHD_SAMPLE_DIR", t.TempDir())
			s := site(t, tt.driver, e.Sample)
			for _, f := range []string{"miner.pass", "token"} {
				require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(s.Source), f), []byte("secret\n"), 0o600))
			}
			d := deps(s)
			d.Spec.Supports[tt.mode] = true
			d.Spec.Modes[tt.mode] = switchd.ModeSpec{PowerKW: 1, HashrateTHs: 100, Revenue: switchd.RevenueHashprice}
			drv, err := Build(tt.driver, d)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, drv)
				return
			}
			require.ErrorContains(t, err, "driver "+tt.driver+" cannot command mode "+tt.mode.String()+` (fleet "f" declares it)`)
			require.ErrorContains(t, err, "drivers that can: [")
		})
	}
}

// TestBuildVLLMSleep checks that vllm takes a declared sleep mode only with
// off_action stop: with its sample's off_action sleep, off already is
// vLLM's sleep, and the factory says so.
func TestBuildVLLMSleep(t *testing.T) {
	e, err := Lookup("vllm")
	require.NoError(t, err)
	d := deps(site(t, "vllm", e.Sample))
	d.Spec.Supports[switchd.ModeSleep] = true
	d.Spec.Modes[switchd.ModeSleep] = switchd.ModeSpec{PowerKW: 0.3}
	_, err = Build("vllm", d)
	require.ErrorContains(t, err, `fleet "f" declares a sleep mode: with off_action sleep, off already is vLLM's sleep`)
	d = deps(site(t, "vllm", "off_action: stop\nstop_command: [/bin/true]\nstart_command: [/bin/true]"))
	d.Spec.Supports[switchd.ModeSleep] = true
	_, err = Build("vllm", d)
	require.NoError(t, err)
}
