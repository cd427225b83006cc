package mqttagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Device is one device behind an agent.
type Device struct {
	c       *Conn
	id      string
	command string // its command topic
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Closer       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
)

// NewDevice returns the device dev.Addr (an id) on c. Close releases it.
func NewDevice(c *Conn, dev switchd.Device) pool.Device {
	c.acquire()
	return &Device{c: c, id: dev.Addr, command: strings.Replace(c.cfg.CommandTopic, deviceVar, dev.Addr, 1)}
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.id }

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string { return []string{"publish " + d.command} }

// Observe implements pool.Device: the device's last state message, if it
// is younger than max_age.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	if _, err := d.c.client(ctx); err != nil {
		return pool.Observation{}, err
	}
	st, ok := d.c.state(ctx, d.id)
	topic := d.c.prefix + d.id + d.c.suffix
	if !ok {
		return pool.Observation{}, switchd.Unreachable(fmt.Errorf("no state received on %s", topic))
	}
	if st.err != nil {
		return pool.Observation{}, switchd.Retriable(fmt.Errorf("state on %s: %w", topic, st.err))
	}
	if age := d.c.clock.Now().Sub(st.at); age > d.c.cfg.MaxAge {
		return pool.Observation{}, switchd.Unreachable(fmt.Errorf("no state for %s on %s (last at %s)", age.Round(time.Second), topic, st.at.Format(time.RFC3339)))
	}
	return st.obs, nil
}

// Set implements pool.Device: it publishes the mode retained at QoS 1 and
// returns when the broker acknowledged it (not when the agent acted).
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	cli, err := d.c.client(ctx)
	if err != nil {
		return err
	}
	payload := mode.String()
	if d.c.cfg.CommandPayload == PayloadJSON {
		payload = `{"mode":"` + mode.String() + `"}`
		if term, ok := switchd.TermFrom(ctx); ok {
			// High availability: the agent may refuse an older term.
			payload = `{"mode":"` + mode.String() + `","term":` + strconv.FormatInt(term, 10) + `}`
		}
	}
	t := cli.Publish(d.command, 1, true, payload)
	select {
	case <-t.Done():
	case <-ctx.Done():
		return switchd.Unreachable(fmt.Errorf("publish %s: not acknowledged: %w", d.command, ctx.Err()))
	}
	if err := t.Error(); err != nil {
		return switchd.Unreachable(fmt.Errorf("publish %s: %w", d.command, err))
	}
	return nil
}

// Close implements pool.Closer: the last device closed disconnects.
func (d *Device) Close(context.Context) error {
	d.c.release()
	return nil
}

// stateMsg is a JSON state message.
type stateMsg struct {
	Mode        *string  `json:"mode"`
	PowerW      *float64 `json:"power_w"`
	HashrateTHs *float64 `json:"hashrate_ths"`
	TS          string   `json:"ts"`
	Fault       bool     `json:"fault"`
	Detail      string   `json:"detail"`
	Model       string   `json:"model"`
	Firmware    string   `json:"firmware"`
}

// ParseState reads a state message: JSON
// {"mode":"mining","power_w":3400,"hashrate_ths":200,"ts":"RFC3339"} (only
// mode required; also fault, detail, model, firmware), or a plain mode
// name. A mode it does not know gives an observation with Known false.
// ts is zero when the message has none.
func ParseState(b []byte) (obs pool.Observation, ts time.Time, err error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return obs, ts, errors.New("empty state")
	}
	if !strings.HasPrefix(s, "{") {
		return modeObs(s), ts, nil
	}
	var m stateMsg
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return pool.Observation{}, ts, fmt.Errorf("state: %w", err)
	}
	if m.TS != "" {
		if ts, err = time.Parse(time.RFC3339Nano, m.TS); err != nil {
			return pool.Observation{}, time.Time{}, fmt.Errorf("state: ts %q: want RFC 3339", m.TS)
		}
	}
	if m.Mode == nil {
		obs = pool.Observation{Detail: "state without mode"}
	} else {
		obs = modeObs(*m.Mode)
	}
	if m.PowerW != nil {
		if *m.PowerW < 0 || math.IsInf(*m.PowerW, 0) {
			return pool.Observation{}, ts, fmt.Errorf("state: power_w %v out of range", *m.PowerW)
		}
		obs.PowerW, obs.HasPower = *m.PowerW, true
	}
	if m.HashrateTHs != nil {
		if *m.HashrateTHs < 0 {
			return pool.Observation{}, ts, fmt.Errorf("state: hashrate_ths %v out of range", *m.HashrateTHs)
		}
		obs.HashrateTHs = *m.HashrateTHs
	}
	if m.Fault {
		obs.Fault = true
	}
	if m.Detail != "" {
		obs.Detail = m.Detail
	}
	obs.Model, obs.Firmware = m.Model, m.Firmware
	return obs, ts, nil
}

// modeObs reads a mode name.
func modeObs(s string) pool.Observation {
	m, err := switchd.ParseMode(strings.ToLower(strings.TrimSpace(s)))
	if err != nil {
		return pool.Observation{Detail: fmt.Sprintf("unknown mode %q", s)}
	}
	return pool.Observation{Mode: m, Known: true}
}
