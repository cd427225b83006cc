package mqttagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Connection tuning.
const (
	connectTimeout       = 5 * time.Second
	keepAlive            = 30 * time.Second
	writeTimeout         = 10 * time.Second
	maxReconnectInterval = 10 * time.Second
	subscribeTimeout     = 10 * time.Second
	disconnectQuiesce    = 250 // ms
	// settle is how long after subscribing a device without a state is
	// waited for: the broker sends the retained states right after the
	// subscription, and the first poll should see them.
	settle = 2 * time.Second
	// retryAfter is how long a failed connection attempt is reported to
	// every caller before the next attempt: a poll of thousands of devices
	// behind a refused login makes one attempt, not one per device.
	retryAfter = 2 * time.Second
)

// Conn is a fleet's broker connection, shared by its devices: one
// subscription to every state topic, one client publishing commands.
// It connects on first use; paho reconnects it after a loss.
type Conn struct {
	cfg    *Config
	clock  switchd.Clock
	prefix string // of the state topic, before {device}
	suffix string // of the state topic, after {device}

	mu    sync.Mutex
	cli   mqtt.Client // nil until first use, and after a failed connect
	tok   mqtt.Token  // cli's connect
	sub   chan struct{}
	subAt time.Time // wall clock: when the subscription was acknowledged
	refs  int       // devices not yet closed
	// lastErr is the last failed connection attempt, reported until
	// retryAt (wall clock).
	lastErr error
	retryAt time.Time

	smu    sync.Mutex
	states map[string]state // by device id
	notify chan struct{}    // closed and replaced when a state arrives
}

// state is a device's last state message.
type state struct {
	obs pool.Observation
	at  time.Time // its ts, else when it arrived
	err error     // an unreadable message
}

// NewConn returns a fleet's connection, not yet connected. clock dates
// the state messages without a ts and judges their age.
func NewConn(cfg *Config, clock switchd.Clock) *Conn {
	if clock == nil {
		clock = wallClock{}
	}
	prefix, suffix, _ := strings.Cut(cfg.StateTopic, deviceVar)
	return &Conn{cfg: cfg, clock: clock, prefix: prefix, suffix: suffix, states: map[string]state{}, notify: make(chan struct{})}
}

// acquire counts one more device using the connection.
func (c *Conn) acquire() {
	c.mu.Lock()
	c.refs++
	c.mu.Unlock()
}

// release counts one device less; the last one disconnects.
func (c *Conn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs > 0 {
		c.refs--
	}
	if c.refs == 0 && c.cli != nil {
		c.cli.Disconnect(disconnectQuiesce)
		c.cli = nil
	}
}

// client returns the connected client, connecting on first use. Only one
// connection attempt runs at a time; callers wait for it within ctx.
func (c *Conn) client(ctx context.Context) (mqtt.Client, error) {
	c.mu.Lock()
	if c.cli == nil && c.lastErr != nil && time.Now().Before(c.retryAt) {
		err := c.lastErr
		c.mu.Unlock()
		return nil, err
	}
	if c.cli == nil {
		if err := c.startLocked(); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	cli, tok, sub := c.cli, c.tok, c.sub
	c.mu.Unlock()

	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, switchd.Unreachable(fmt.Errorf("broker %s: connecting: %w", c.cfg.Broker, ctx.Err()))
	}
	if err := tok.Error(); err != nil {
		err = fmt.Errorf("broker %s: %w", c.cfg.Broker, err)
		if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			err = switchd.AuthError(err)
		} else {
			err = switchd.Unreachable(err)
		}
		c.mu.Lock()
		if c.cli == cli {
			c.cli = nil // a later call tries again
			c.lastErr, c.retryAt = err, time.Now().Add(retryAfter)
		}
		c.mu.Unlock()
		return nil, err
	}
	select {
	case <-sub:
	case <-ctx.Done():
		return nil, switchd.Unreachable(fmt.Errorf("broker %s: subscribing to %s: %w", c.cfg.Broker, c.filter(), ctx.Err()))
	}
	if !cli.IsConnectionOpen() {
		return nil, switchd.Unreachable(fmt.Errorf("broker %s: connection lost, reconnecting", c.cfg.Broker))
	}
	return cli, nil
}

// filter is the subscription covering every device's state topic.
func (c *Conn) filter() string { return c.prefix + "+" + c.suffix }

// startLocked creates the client and starts connecting.
func (c *Conn) startLocked() error {
	password, err := c.cfg.Password(switchd.Device{})
	if err != nil {
		return err
	}
	id := c.cfg.ClientID
	if id == "" {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		id = "switchd-mqttagent-" + hex.EncodeToString(b[:])
	}
	sub := make(chan struct{})
	var once sync.Once
	o := mqtt.NewClientOptions()
	o.AddBroker(c.cfg.Broker)
	o.SetClientID(id)
	o.SetUsername(c.cfg.Username)
	o.SetPassword(password)
	// A clean session: the retained states give the latest on subscribe,
	// and the subscription is made again on every connection.
	o.SetCleanSession(true)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(maxReconnectInterval)
	o.SetConnectTimeout(connectTimeout)
	o.SetKeepAlive(keepAlive)
	o.SetWriteTimeout(writeTimeout)
	// The handler only parses and stores; in order, so that two states of
	// one device are kept in the order the broker sent them.
	o.SetOrderMatters(true)
	o.SetOnConnectHandler(func(cli mqtt.Client) {
		// paho calls this in its own goroutine: waiting here is fine.
		t := cli.Subscribe(c.filter(), 1, c.onMessage)
		if t.WaitTimeout(subscribeTimeout) && t.Error() == nil {
			once.Do(func() {
				c.mu.Lock()
				c.subAt = time.Now()
				c.mu.Unlock()
				close(sub)
			})
		}
	})
	c.cli = mqtt.NewClient(o)
	c.sub = sub
	c.tok = c.cli.Connect()
	return nil
}

// onMessage stores a device's state.
func (c *Conn) onMessage(_ mqtt.Client, m mqtt.Message) {
	topic := m.Topic()
	if !strings.HasPrefix(topic, c.prefix) || !strings.HasSuffix(topic, c.suffix) || len(topic) < len(c.prefix)+len(c.suffix) {
		return
	}
	id := topic[len(c.prefix) : len(topic)-len(c.suffix)]
	now := c.clock.Now()
	c.smu.Lock()
	defer c.smu.Unlock()
	if len(m.Payload()) == 0 {
		delete(c.states, id) // a retained state cleared
	} else {
		obs, ts, err := ParseState(m.Payload())
		if ts.IsZero() {
			ts = now
		}
		c.states[id] = state{obs: obs, at: ts, err: err}
	}
	close(c.notify)
	c.notify = make(chan struct{})
}

// state returns a device's last state, waiting for it within ctx for a
// short while after the subscription (retained states are on their way).
func (c *Conn) state(ctx context.Context, id string) (state, bool) {
	c.mu.Lock()
	until := c.subAt.Add(settle)
	c.mu.Unlock()
	for {
		c.smu.Lock()
		st, ok := c.states[id]
		notify := c.notify
		c.smu.Unlock()
		wait := time.Until(until)
		if ok || wait <= 0 {
			return st, ok
		}
		t := time.NewTimer(wait)
		select {
		case <-notify:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return st, ok
		}
	}
}

// wallClock is the clock of a connection built without one (probe).
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
