package mqttio

import (
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// gatedTCP is mochi's TCP listener with a gate in front of each accepted
// connection, so that the broker can be closed while clients connect.
//
// Mochi counts a connection in a WaitGroup (Add in attachClient) that its
// Close waits on; a connection accepted just before Close calls Add while
// Close is already in Wait, which the race detector reports and the
// WaitGroup contract forbids. The gate closes that window: once closing is
// set no connection reaches mochi, and close waits until every connection
// that did has been counted — a connection has been counted once mochi
// first reads from it, since attachClient calls Add before its first read.
type gatedTCP struct {
	*listeners.TCP
	mu       sync.Mutex
	closing  bool
	counting sync.WaitGroup // connections handed to mochi, not yet read from
}

// Serve accepts connections until the listener closes, handing each to
// establish unless the gate is shut.
func (g *gatedTCP) Serve(establish listeners.EstablishFn) {
	g.TCP.Serve(func(id string, c net.Conn) error {
		g.mu.Lock()
		if g.closing {
			g.mu.Unlock()
			return c.Close()
		}
		g.counting.Add(1)
		g.mu.Unlock()
		rc := &firstReadConn{Conn: c, counted: g.counting.Done}
		defer rc.markCounted() // establish may return without reading
		return establish(id, rc)
	})
}

// shut stops handing connections to mochi and waits until every one it was
// handed has been counted by it. Mochi's Close may run after.
func (g *gatedTCP) shut() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.counting.Wait()
}

// firstReadConn calls counted once, on the first Read (or when marked).
type firstReadConn struct {
	net.Conn
	once    sync.Once
	counted func()
}

func (c *firstReadConn) markCounted() { c.once.Do(c.counted) }

// Read marks the connection counted, then reads.
func (c *firstReadConn) Read(p []byte) (int, error) {
	c.markCounted()
	return c.Conn.Read(p)
}
