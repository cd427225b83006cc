package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/fakes"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
)

// buildSwitchd builds this command into a temporary directory for the
// end-to-end tests that run the binary, and returns its path.
func buildSwitchd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// luxosFakes starts six fake LuxOS miners, mining, each on its own
// loopback address 127.X.third.1–6 (X from the process ID, so parallel
// test binaries do not collide) on port 4028, and returns their addresses
// and a way to reach each fake. It skips the test where the machine has
// no loopback addresses beyond 127.0.0.1.
func luxosFakes(t *testing.T, third int) (addrs []string, miner func(i int) *luxosfake.Miner) {
	t.Helper()
	oct := 100 + os.Getpid()%100
	var devs []switchd.Device
	for i := 1; i <= 6; i++ {
		d := switchd.Device{Addr: fmt.Sprintf("127.%d.%d.%d", oct, third, i)}
		devs = append(devs, d)
		addrs = append(addrs, d.Addr)
	}
	set, err := fakes.Start([]fakes.Fleet{{Driver: "luxos", Devices: devs, Running: true, Ramp: 300 * time.Millisecond}})
	if err != nil && strings.Contains(err.Error(), "cannot assign") {
		t.Skipf("loopback addresses beyond 127.0.0.1 not available: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(set.Close)
	return addrs, func(i int) *luxosfake.Miner { return set.Get(addrs[i]).(*luxosfake.Miner) }
}
