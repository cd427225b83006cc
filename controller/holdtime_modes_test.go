package controller

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestHoldBitPowerTargets checks that the power-target modes share the bit
// of the mode they are a level of, so that the mask still holds 21 fleets.
func TestHoldBitPowerTargets(t *testing.T) {
	require.Equal(t, holdBit(1, switchd.ModeMining), holdBit(1, switchd.ModeMiningReduced))
	require.Equal(t, holdBit(3, switchd.ModeInference), holdBit(3, switchd.ModeSleep))
	require.Equal(t, uint64(1)<<(20*3+1), holdBit(20, switchd.ModeMiningReduced))
	require.Zero(t, holdBit(22, switchd.ModeSleep))
}
