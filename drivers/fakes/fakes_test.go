package fakes

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
)

func TestStartAndClose(t *testing.T) {
	set, err := Start([]Fleet{
		{Driver: "luxos", Devices: []switchd.Device{{Addr: "127.0.0.1:0"}}, Running: true},
		{Driver: "vllm", Devices: []switchd.Device{{Addr: "127.0.0.2:0"}}},
		{Driver: "bosminer", Devices: []switchd.Device{{Addr: "localhost:0"}}},
	})
	require.NoError(t, err)
	defer set.Close()
	require.Equal(t, 3, set.Len())
	m, ok := set.Get("127.0.0.1:0").(*luxosfake.Miner)
	require.True(t, ok)
	require.False(t, m.Asleep(), "started running")
}

// TestLoopbackOnly: a fake never listens anywhere but loopback, and a
// failure closes what was started.
func TestLoopbackOnly(t *testing.T) {
	_, err := Start([]Fleet{
		{Driver: "luxos", Devices: []switchd.Device{{Addr: "127.0.0.1:0"}, {Addr: "10.0.0.5"}}},
	})
	require.ErrorContains(t, err, "not a loopback address")
	_, err = Start([]Fleet{{Driver: "sim", Devices: []switchd.Device{{Addr: "127.0.0.1:0"}}}})
	require.ErrorContains(t, err, `no fake for driver "sim"`)
	require.False(t, Supported("mqtt"))
}
