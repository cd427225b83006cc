package whatsminer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// API v3 (port 4433, firmware from about 2024) frames every message, both
// ways, as a 4-byte little-endian length and that many bytes of JSON.
// Replies are {"code":0,"when":…,"msg":…,"desc":cmd}: code 0 success, -1
// failure, -2 invalid command, -4 no permission. The driver reads
// get.device.info (model, firmware, miner.working, the salt for writes)
// and get.miner.status "summary" (hash-realtime TH/s, power-realtime W,
// elapsed s), and writes set.miner.service "stop" / "start", signed with
// ts, account and token = base64(SHA-256(cmd + password + salt + ts))[:8]
// (../shared/docs/device-protocols.md §5). Only get.device.info has a
// recorded reply; the rest follows the documentation, unconfirmed on a
// unit (README).

// maxV3Reply bounds a v3 frame; get.device.info is about 1 KiB.
const maxV3Reply = 1 << 20

// deviceInfoV3 is what the driver reads from a v3 get.device.info reply.
type deviceInfoV3 struct {
	Model    string // msg.miner.type, e.g. "M60S_VK40"
	Firmware string // msg.system.fwversion
	API      string // msg.system.api, e.g. "3.0.2"
	Working  string // msg.miner.working: "false" once the mining service is stopped
	Salt     string // msg.salt, for signing writes
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
		Salt   any            `json:"salt"`
	}
	if err := json.Unmarshal(r.Msg, &m); err != nil {
		return deviceInfoV3{}, fmt.Errorf("get.device.info: msg: %w", err)
	}
	info := deviceInfoV3{
		Model:    cgrpc.String(m.Miner["type"]),
		Working:  cgrpc.String(m.Miner["working"]),
		Firmware: cgrpc.String(m.System["fwversion"]),
		API:      cgrpc.String(m.System["api"]),
		Salt:     cgrpc.String(m.Salt),
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
		return nil, switchd.Unreachable(cgrpc.NetError("dial", addr, err))
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
		return nil, switchd.Unreachable(cgrpc.NetError("write", addr, err))
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, switchd.Unreachable(cgrpc.NetError("read", addr, err))
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > maxV3Reply {
		return nil, switchd.Retriable(fmt.Errorf("read %s: v3 frame length %d", addr, n))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, switchd.Retriable(cgrpc.NetError("read", addr, err))
	}
	return buf, nil
}

// v3Code reads a v3 reply's code and msg. A reply without a readable
// code is never acted on (retriable); a non-zero code is the device's
// refusal: -4 (no permission) an authentication problem, others permanent.
func v3Code(cmd string, raw []byte) (json.RawMessage, error) {
	var r struct {
		Code *json.Number    `json:"code"`
		Msg  json.RawMessage `json:"msg"`
	}
	if err := json.Unmarshal(cgrpc.Repair(raw), &r); err != nil || r.Code == nil {
		return nil, switchd.Retriable(fmt.Errorf("%s: unreadable reply (%q)", cmd, excerptV3(raw)))
	}
	code := r.Code.String()
	if code == "0" {
		return r.Msg, nil
	}
	var msg string
	if json.Unmarshal(r.Msg, &msg) != nil {
		msg = excerptV3(r.Msg)
	}
	err := fmt.Errorf("%s: device says code %s: %s", cmd, code, msg)
	if code == "-4" {
		return nil, switchd.AuthError(fmt.Errorf("%w (wrong password for the account, or writes disabled?)", err))
	}
	return nil, switchd.Permanent(err)
}

func excerptV3(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}

// summaryV3 is what get.miner.status "summary" says.
type summaryV3 struct {
	HashrateTHs float64
	HasHashrate bool
	PowerW      float64
	HasPower    bool
	Elapsed     time.Duration // -1 when absent
}

// parseSummaryV3 reads a get.miner.status "summary" reply.
func parseSummaryV3(raw []byte) (summaryV3, error) {
	msg, err := v3Code("get.miner.status", raw)
	if err != nil {
		return summaryV3{}, err
	}
	var m struct {
		Summary map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(msg, &m); err != nil || m.Summary == nil {
		return summaryV3{}, switchd.Retriable(fmt.Errorf("get.miner.status: no summary in %q", excerptV3(msg)))
	}
	s := summaryV3{Elapsed: -1}
	if v, ok := cgrpc.Number(m.Summary["hash-realtime"]); ok && v >= 0 {
		s.HashrateTHs, s.HasHashrate = v, true
	}
	if v, ok := cgrpc.Number(m.Summary["power-realtime"]); ok && v >= 0 {
		s.PowerW, s.HasPower = v, true
	}
	if v, ok := cgrpc.Number(m.Summary["elapsed"]); ok && v >= 0 && v < 1e9 {
		s.Elapsed = time.Duration(v) * time.Second
	}
	return s, nil
}

// callV3 sends one v3 request.
func (d *Device) callV3(ctx context.Context, req map[string]any) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, switchd.Permanent(err)
	}
	return exchangeV3(ctx, d.addr, b, d.timeout)
}

// infoV3 reads get.device.info.
func (d *Device) infoV3(ctx context.Context) (deviceInfoV3, error) {
	raw, err := d.callV3(ctx, map[string]any{"cmd": "get.device.info"})
	if err != nil {
		return deviceInfoV3{}, err
	}
	info, err := parseDeviceInfoV3(raw)
	if err != nil && !switchd.IsPermanent(err) {
		err = switchd.Retriable(err) // garbage now may read later
	}
	return info, err
}

// observeV3 reads a v3 unit: miner.working "false" is the mining service
// stopped (off, as set.miner.service stop leaves it); "true" is mining,
// judged by the summary's hash-realtime (zero past the warm-up: a fault).
func (d *Device) observeV3(ctx context.Context) (pool.Observation, error) {
	info, err := d.infoV3(ctx)
	if err != nil {
		return pool.Observation{}, err
	}
	o := pool.Observation{Model: info.Model, Firmware: info.Firmware}
	switch strings.ToLower(strings.TrimSpace(info.Working)) {
	case "false":
		o.Mode, o.Known = switchd.ModeOff, true
		o.Detail = "mining service stopped"
		return o, nil
	case "true":
	default:
		o.Detail = "API v3 " + info.API + ": get.device.info has no miner.working"
		return o, nil
	}
	raw, err := d.callV3(ctx, map[string]any{"cmd": "get.miner.status", "param": "summary"})
	if err != nil {
		return pool.Observation{}, err
	}
	sum, err := parseSummaryV3(raw)
	if err != nil {
		return pool.Observation{}, err
	}
	o.Mode, o.Known = switchd.ModeMining, true
	o.HashrateTHs, o.PowerW, o.HasPower = sum.HashrateTHs, sum.PowerW, sum.HasPower
	switch {
	case !sum.HasHashrate:
		o.Known, o.Detail = false, "get.miner.status summary has no hash-realtime"
	case sum.HashrateTHs > 0:
	case sum.Elapsed >= 0 && sum.Elapsed < d.cfg.Warmup:
		o.Detail = fmt.Sprintf("warming up: mining for %s, no hashrate yet", sum.Elapsed)
	default:
		o.Fault, o.Detail = true, "mining service running (miner.working true) with zero hashrate"
	}
	return o, nil
}

// tokenV3 signs a v3 write: the first 8 characters of the base64 of
// SHA-256(cmd + password + salt + ts).
func tokenV3(cmd, password, salt string, ts int64) string {
	sum := sha256.Sum256([]byte(cmd + password + salt + strconv.FormatInt(ts, 10)))
	return base64.StdEncoding.EncodeToString(sum[:])[:8]
}

// setV3 stops (off) or starts (mining) the mining service. The salt is
// read fresh for each write (a reboot may change it).
func (d *Device) setV3(ctx context.Context, mode switchd.Mode) error {
	const cmd = "set.miner.service"
	var param string
	switch mode {
	case switchd.ModeOff:
		param = "stop"
	case switchd.ModeMining:
		param = "start"
	default:
		return switchd.Permanent(fmt.Errorf("whatsminer (API v3) cannot enter mode %s", mode))
	}
	pw, err := d.cfg.Credentials.Password(d.dev)
	if err != nil {
		return switchd.AuthError(fmt.Errorf("%s: %w", cmd, err))
	}
	if pw == "" {
		return switchd.AuthError(fmt.Errorf("%s: no password configured (password_file or password_env)", cmd))
	}
	info, err := d.infoV3(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if info.Salt == "" {
		return switchd.Retriable(fmt.Errorf("%s: get.device.info gave no salt", cmd))
	}
	account := d.cfg.Username
	if account == "" {
		account = "super"
	}
	ts := d.now().Unix()
	raw, err := d.callV3(ctx, map[string]any{"cmd": cmd, "param": param, "ts": ts, "account": account, "token": tokenV3(cmd, pw, info.Salt, ts)})
	if err != nil {
		return err
	}
	_, err = v3Code(cmd, raw)
	return err
}
