package mqttio

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/internal/mqtttest"
)

// mqttConnect is a minimal MQTT 3.1.1 CONNECT packet: clean session,
// keep-alive 60 s, client ID "big".
var mqttConnect = []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 3, 'b', 'i', 'g'}

// TestBrokerRefusesHugePacket announces a 100 MB PUBLISH to the embedded
// broker and streams it: the broker cuts the connection off after the
// header instead of buffering the packet (before, it allocated 100 MB per
// such message, and four in parallel took switchd to 1.6 GB).
func TestBrokerRefusesHugePacket(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	b := startTestBroker(t)
	c, err := net.DialTimeout("tcp", b.Addr(), waitMax)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(waitMax)))
	_, err = c.Write(mqttConnect)
	require.NoError(t, err)
	ack := make([]byte, 4)
	_, err = c.Read(ack)
	require.NoError(t, err)
	require.Equal(t, []byte{0x20, 2, 0, 0}, ack, "CONNACK accepted")

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const size = 100 << 20
	hdr := []byte{0x30}
	for n := size; ; {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		hdr = append(hdr, d)
		if n == 0 {
			break
		}
	}
	hdr = append(hdr, 0, 1, 'x') // topic "x"
	_, err = c.Write(hdr)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	sent := 0
	for sent < size {
		n, werr := c.Write(chunk)
		sent += n
		if werr != nil {
			break
		}
	}
	require.Less(t, sent, size, "the broker closed the connection before the packet was sent")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(32<<20), "allocated while refusing a 100 MB packet")
}
