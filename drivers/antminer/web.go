package antminer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
)

// The web UI's CGI scripts.
const (
	pathGetConf    = "/cgi-bin/get_miner_conf.cgi"
	pathSetConf    = "/cgi-bin/set_miner_conf.cgi"
	pathSystemInfo = "/cgi-bin/get_system_info.cgi"
)

// maxBody bounds a CGI reply.
const maxBody = 1 << 20

// web is one unit's web UI client. It keeps the last Digest challenge, so
// that a request usually needs one round trip (the nonce is reused with an
// increasing nonce count until the unit calls it stale).
type web struct {
	client *http.Client
	base   string // scheme://host:port
	user   string

	ch    challenge
	hasCh bool
	nc    uint32
}

// do sends one request with Digest auth and returns the body of a 200
// reply. Errors: no answer is unreachable; credentials refused is an auth
// error; a missing CGI (404) is permanent; other statuses are retriable.
func (w *web) do(ctx context.Context, method, path, pass string, body []byte) ([]byte, error) {
	resp, err := w.send(ctx, method, path, pass, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// First contact, a stale nonce, or refused credentials: answer the
		// new challenge once.
		ch, cerr := parseChallenge(resp.Header.Values("WWW-Authenticate"))
		drain(resp)
		if cerr != nil {
			return nil, switchd.AuthError(fmt.Errorf("%s %s: 401: %w", method, path, cerr))
		}
		refused := w.hasCh && !ch.stale && ch.nonce == w.ch.nonce
		w.ch, w.hasCh, w.nc = ch, true, 0
		if refused {
			return nil, switchd.AuthError(fmt.Errorf("%s %s: credentials refused for user %q", method, path, w.user))
		}
		if resp, err = w.send(ctx, method, path, pass, body); err != nil {
			return nil, err
		}
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		w.hasCh = false
		return nil, switchd.AuthError(fmt.Errorf("%s %s: credentials refused for user %q (%s)", method, path, w.user, resp.Status))
	case resp.StatusCode == http.StatusNotFound:
		return nil, switchd.Permanent(fmt.Errorf("%s %s: %s (not stock Antminer firmware?)", method, path, resp.Status))
	case resp.StatusCode != http.StatusOK:
		return nil, switchd.Retriable(fmt.Errorf("%s %s: %s", method, path, resp.Status))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, switchd.Unreachable(fmt.Errorf("%s %s: read: %w", method, path, err))
	}
	if len(b) > maxBody {
		return nil, switchd.Retriable(fmt.Errorf("%s %s: reply longer than %d bytes", method, path, maxBody))
	}
	return b, nil
}

// send sends the request once, with an Authorization header when a
// challenge is known.
func (w *web) send(ctx context.Context, method, path, pass string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		return nil, switchd.Permanent(fmt.Errorf("%s %s: %w", method, path, err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.hasCh {
		w.nc++
		req.Header.Set("Authorization", w.ch.authorization(method, path, w.user, pass, w.nc))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// Refused, reset, timed out, cancelled: no answer.
		return nil, switchd.Unreachable(fmt.Errorf("%s %s: %w", method, path, err))
	}
	return resp, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
}

// Work modes of stock firmware (PF service.go, PA config/mining).
const (
	WorkNormal   = "0"
	WorkSleep    = "1"
	WorkLowPower = "3"
)

// modeKeys are the work-mode keys, in the order their value is read:
// "bitmain-work-mode" on the firmware the recorded configs come from,
// "miner-mode" on others.
var modeKeys = [...]string{"bitmain-work-mode", "miner-mode"}

// MinerConf is a unit's miner configuration as get_miner_conf.cgi returns
// it.
type MinerConf struct {
	// Fields are all the keys, to be written back unchanged but for the
	// work mode.
	Fields map[string]any
	// Keys are the work-mode keys the unit uses (usually one).
	Keys []string
	// Mode is the work mode ("0" normal, "1" sleep, "3" low power; "" on
	// an unconfigured unit).
	Mode string
}

// ParseMinerConf reads get_miner_conf.cgi's reply leniently: the firmware
// writes one key per line, a "]\n," line, sometimes leading blank lines,
// and on an unconfigured unit a key with no value
// (antminer-web/get_miner_conf-*.bin).
func ParseMinerConf(b []byte) (MinerConf, error) {
	r, err := cgrpc.Decode(b)
	if err != nil {
		return MinerConf{}, fmt.Errorf("miner conf: %w", err)
	}
	c := MinerConf{Fields: map[string]any(r)}
	if _, ok := r["pools"]; !ok {
		found := false
		for _, k := range modeKeys {
			_, ok := r[k]
			found = found || ok
		}
		if !found {
			// Not a configuration (an error page, another device): never
			// written back.
			return MinerConf{}, fmt.Errorf("miner conf: neither pools nor a work mode in %s", excerpt(b))
		}
	}
	for _, k := range modeKeys {
		v, ok := r[k]
		if !ok {
			continue
		}
		if len(c.Keys) == 0 {
			c.Mode = cgrpc.String(v)
		}
		c.Keys = append(c.Keys, k)
	}
	return c, nil
}

// With returns the configuration with the work mode set to mode, each key
// keeping the JSON type the unit used for it (a string "1" or a number 1).
func (c MinerConf) With(mode string) ([]byte, error) {
	if len(c.Keys) == 0 {
		return nil, errors.New("miner conf has neither bitmain-work-mode nor miner-mode: cannot set the work mode")
	}
	out := make(map[string]any, len(c.Fields))
	for k, v := range c.Fields {
		out[k] = v
	}
	for _, k := range c.Keys {
		if _, isNum := c.Fields[k].(float64); isNum {
			n, _ := strconv.Atoi(mode)
			out[k] = n
		} else {
			out[k] = mode
		}
	}
	return json.Marshal(out)
}

// CheckSetReply reads set_miner_conf.cgi's reply: "ok" on stock firmware
// ("ok\nok\n" on Hiveon, per Foreman's tests), or on newer firmware a JSON
// object whose "stats" is "success" (uncertain: not in a recorded reply).
func CheckSetReply(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(strings.ToLower(s), "ok") {
		return nil
	}
	var j struct {
		Stats string `json:"stats"`
		Code  string `json:"code"`
		Msg   string `json:"msg"`
	}
	if json.Unmarshal(b, &j) == nil && j.Stats != "" {
		if strings.EqualFold(j.Stats, "success") {
			return nil
		}
		return switchd.Permanent(fmt.Errorf("set_miner_conf: unit says %s %s: %s", j.Stats, j.Code, j.Msg))
	}
	return switchd.Retriable(fmt.Errorf("set_miner_conf: unrecognised reply %s", excerpt(b)))
}

// SystemInfo is what get_system_info.cgi tells of a unit.
type SystemInfo struct {
	Model    string // "Antminer S19 Pro"
	Firmware string // the filesystem build ("FR-1.12(251009-S21)" or a date)
}

// ParseSystemInfo reads get_system_info.cgi's reply.
func ParseSystemInfo(b []byte) (SystemInfo, error) {
	r, err := cgrpc.Decode(b)
	if err != nil {
		return SystemInfo{}, fmt.Errorf("system info: %w", err)
	}
	return SystemInfo{
		Model:    cgrpc.String(r["minertype"]),
		Firmware: cgrpc.String(r["system_filesystem_version"]),
	}, nil
}

func excerpt(b []byte) string {
	const n = 60
	s := string(b)
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strconv.Quote(s)
}
