package whatsminer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// API v3 (port 4433, firmware from about 2024) frames every message, both
// ways, as a 4-byte little-endian length and that many bytes of JSON. The
// driver reads `get.device.info` only, to identify the unit; v3 writes
// (set.miner.service start/stop, set.miner.power_percent) are not
// implemented.

// maxV3Reply bounds a v3 frame; get.device.info is about 1 KiB.
const maxV3Reply = 1 << 20

// deviceInfoV3 is what the driver reads from a v3 get.device.info reply.
type deviceInfoV3 struct {
	Model    string // msg.miner.type, e.g. "M60S_VK40"
	Firmware string // msg.system.fwversion
	API      string // msg.system.api, e.g. "3.0.2"
	Working  string // msg.miner.working, "true" or "false" (meaning uncertain)
}

// parseDeviceInfoV3 reads a v3 get.device.info reply: lower-case
// code/msg/when, code 0 on success, every number sent as a string.
func parseDeviceInfoV3(raw []byte) (deviceInfoV3, error) {
	var r struct {
		Code *json.Number `json:"code"`
		Desc string       `json:"desc"`
		Msg  json.RawMessage
	}
	if err := json.Unmarshal(cgrpc.Repair(raw), &r); err != nil {
		return deviceInfoV3{}, fmt.Errorf("get.device.info: unreadable reply: %w", err)
	}
	if r.Code == nil {
		return deviceInfoV3{}, errors.New("get.device.info: reply has no code")
	}
	if r.Code.String() != "0" {
		var msg string
		_ = json.Unmarshal(r.Msg, &msg)
		return deviceInfoV3{}, switchd.Permanent(fmt.Errorf("get.device.info: device says code %s: %s", r.Code, msg))
	}
	var m struct {
		Miner  map[string]any `json:"miner"`
		System map[string]any `json:"system"`
	}
	if err := json.Unmarshal(r.Msg, &m); err != nil {
		return deviceInfoV3{}, fmt.Errorf("get.device.info: msg: %w", err)
	}
	info := deviceInfoV3{
		Model:    cgrpc.String(m.Miner["type"]),
		Working:  cgrpc.String(m.Miner["working"]),
		Firmware: cgrpc.String(m.System["fwversion"]),
		API:      cgrpc.String(m.System["api"]),
	}
	if info.Model == "" && info.Firmware == "" {
		return info, errors.New("get.device.info: no miner type or firmware version")
	}
	return info, nil
}

// exchangeV3 sends one framed request on a new connection and reads one
// framed reply.
func exchangeV3(ctx context.Context, addr string, req []byte, timeout time.Duration) ([]byte, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, switchd.Unreachable(fmt.Errorf("dial %s: %w", addr, err))
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	frame := make([]byte, 4+len(req))
	binary.LittleEndian.PutUint32(frame, uint32(len(req)))
	copy(frame[4:], req)
	if _, err := conn.Write(frame); err != nil {
		return nil, switchd.Unreachable(fmt.Errorf("write %s: %w", addr, err))
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, switchd.Unreachable(fmt.Errorf("read %s: %w", addr, err))
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > maxV3Reply {
		return nil, switchd.Retriable(fmt.Errorf("read %s: v3 frame length %d", addr, n))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, switchd.Retriable(fmt.Errorf("read %s: %w", addr, err))
	}
	return buf, nil
}

// observeV3 identifies a v3 unit. Its mode is reported unknown: without
// v3 status parsing confirmed on hardware the driver does not claim one.
func (d *Device) observeV3(ctx context.Context) (pool.Observation, error) {
	raw, err := exchangeV3(ctx, d.addr, []byte(`{"cmd":"get.device.info"}`), d.timeout)
	if err != nil {
		return pool.Observation{}, err
	}
	info, err := parseDeviceInfoV3(raw)
	if err != nil {
		if !switchd.IsPermanent(err) {
			err = switchd.Retriable(err) // garbage now may read later
		}
		return pool.Observation{}, err
	}
	detail := "API v3 " + info.API + ": identification only"
	if info.Working != "" {
		detail += " (miner working=" + strings.ToLower(info.Working) + ")"
	}
	return pool.Observation{Model: info.Model, Firmware: info.Firmware, Detail: detail}, nil
}
