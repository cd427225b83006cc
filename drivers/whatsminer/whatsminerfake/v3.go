package whatsminerfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// API v3 as ../shared/docs/device-protocols.md §5 describes it (after
// pyasic's BTMinerV3RPCAPI and MicroBT's v3 document): port 4433, every
// message a 4-byte little-endian length and JSON; replies
// {"code":0,"when":…,"msg":…,"desc":cmd}, code 0 success, -1 failure, -2
// invalid command, -4 no permission. Reads: get.device.info (with the salt
// for writes), get.miner.status "summary". Writes carry ts, account and
// token = base64(SHA-256(cmd + password + salt + ts)) cut to 8 characters;
// set.miner.service "stop" / "start" stop and start mining. The figures
// are the fake's own; nothing here was recorded from a unit except the
// shape of get.device.info (whatsminer/get_device_info-m60svk40-apiv3.json).
// Written separately from the driver: it shares no code with it.

// maxV3Request bounds a request frame.
const maxV3Request = 64 << 10

func readV3(c net.Conn) (map[string]any, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > maxV3Request {
		return nil, errors.New("bad frame length")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	var req map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return map[string]any{}, nil // answered as an invalid command
	}
	return req, nil
}

func frameV3(b []byte) []byte {
	out := make([]byte, 4+len(b))
	binary.LittleEndian.PutUint32(out, uint32(len(b)))
	copy(out[4:], b)
	return out
}

func replyV3(now time.Time, code int, cmd string, msg any) []byte {
	b, _ := json.Marshal(map[string]any{"code": code, "when": now.Unix(), "msg": msg, "desc": cmd})
	return b
}

// tokenV3 is the fake's own computation of a write's token.
func tokenV3(cmd, password, salt, ts string) string {
	sum := sha256.Sum256([]byte(cmd + password + salt + ts))
	return base64.StdEncoding.EncodeToString(sum[:])[:8]
}

// handleV3 answers one v3 request.
func (m *Miner) handleV3(req map[string]any) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opt.Now()
	cmd, _ := req["cmd"].(string)
	param, _ := req["param"].(string)
	switch cmd {
	case "get.device.info":
		all := map[string]any{
			"miner":  map[string]any{"type": m.opt.Model, "working": strconv.FormatBool(!m.off), "board-num": "3"},
			"system": map[string]any{"api": "3.0.2", "fwversion": m.opt.Firmware, "platform": "H616"},
			"power":  map[string]any{"model": "P221B"},
			"salt":   m.salt,
		}
		if param != "" {
			return replyV3(now, 0, cmd, map[string]any{param: all[param]})
		}
		return replyV3(now, 0, cmd, all)
	case "get.miner.status":
		if param != "summary" {
			return replyV3(now, -1, cmd, "unsupported param")
		}
		ths, watts := m.readingLocked(now)
		elapsed := int64(now.Sub(m.since) / time.Second)
		return replyV3(now, 0, cmd, map[string]any{"summary": map[string]any{
			"elapsed": max(elapsed, 0), "hash-realtime": ths, "hash-average": ths,
			"power-realtime": int(watts), "factory-hash": m.opt.HashrateTHs, "power-limit": int(m.opt.PowerW),
		}})
	case "set.miner.service":
		if !m.signedV3Locked(cmd, req) {
			return replyV3(now, -4, cmd, "no permission")
		}
		switch param {
		case "stop":
			m.setOffLocked(true)
		case "start":
			m.setOffLocked(false)
		default:
			return replyV3(now, -1, cmd, "invalid param")
		}
		m.writes = append(m.writes, cmd+" "+param)
		return replyV3(now, 0, cmd, "ok")
	}
	return replyV3(now, -2, cmd, "invalid command")
}

// signedV3Locked checks a write's account and token.
func (m *Miner) signedV3Locked(cmd string, req map[string]any) bool {
	account, _ := req["account"].(string)
	token, _ := req["token"].(string)
	var ts string
	switch v := req["ts"].(type) {
	case json.Number:
		ts = v.String()
	case string:
		ts = v
	}
	return account == m.opt.Account && ts != "" && token == tokenV3(cmd, m.password, m.salt, ts)
}
