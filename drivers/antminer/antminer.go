// Package antminer is the driver (YAML name "antminer") for Bitmain
// Antminers on stock firmware. The cgminer API on port 4028 is read-only
// there, so the work mode is changed through the web UI's CGI scripts with
// HTTP Digest authentication: get_miner_conf.cgi, then set_miner_conf.cgi
// with the same configuration and the work mode changed ("1" sleep for
// off, "0" normal for mining). Reads combine the work mode from the web UI
// with the hashrate from the 4028 API, which is what tells a unit asleep on
// purpose from one that stopped hashing (the API alone cannot).
//
// A device address is the unit's host, or host:port when its web UI is
// not on web_port; the API is always reached on the same host at
// api_port.
//
// It imports the root, the shared wire (internal/cgrpc), the device pool
// and the cgminer driver's readers; never the controller.
package antminer

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/cgminer"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block, validated by drivers/all's tests.
//
//go:embed sample.yaml
var Sample string

// Config is the driver's settings block in the site file.
type Config struct {
	pool.Settings    `yaml:",inline"`
	pool.Credentials `yaml:",inline"`
	// WebPort is the web UI's port for device addresses that give none
	// (default 80).
	WebPort int `yaml:"web_port"`
	// APIPort is the cgminer API's port on the same host (default 4028).
	APIPort int `yaml:"api_port"`
	// Scheme is the web UI's scheme: http (default; stock firmware) or
	// https.
	Scheme string `yaml:"scheme"`
}

// DefaultUsername is the web UI's user on stock firmware.
const DefaultUsername = "root"

// ParseConfig decodes the settings strictly and validates them; the only
// I/O is checking that a password file exists.
func ParseConfig(s switchd.Settings) (Config, error) {
	cfg := Config{WebPort: 80, APIPort: 4028, Scheme: "http"}
	cfg.Username = DefaultUsername
	if err := s.Decode(&cfg); err != nil {
		return Config{}, err
	}
	var errs []error
	errs = append(errs, cfg.Settings.Validate(s), cfg.Credentials.Validate(s, false))
	if cfg.WebPort < 1 || cfg.WebPort > 65535 {
		errs = append(errs, s.Errorf("web_port", "must be between 1 and 65535 (got %d)", cfg.WebPort))
	}
	if cfg.APIPort < 1 || cfg.APIPort > 65535 {
		errs = append(errs, s.Errorf("api_port", "must be between 1 and 65535 (got %d)", cfg.APIPort))
	}
	if cfg.Scheme != "http" && cfg.Scheme != "https" {
		errs = append(errs, s.Errorf("scheme", "must be http or https (got %q)", cfg.Scheme))
	}
	if cfg.Username == "" {
		errs = append(errs, s.Errorf("username", "must not be empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	cfg.Settings.Defaults()
	return cfg, nil
}

// New builds the fleet's driver: one device per listed address, sharing
// one HTTP transport. Every device needs a password: the fleet's
// password_file or password_env, or its own secret.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	if cfg.PasswordFile == "" && cfg.PasswordEnv == "" {
		for _, dv := range d.Devices {
			if dv.Secret == "" {
				return nil, d.Settings.Errorf("password_file", "required (or password_env): device %s has no secret of its own", dv.Addr)
			}
		}
	}
	client := newClient(&cfg)
	devs := make([]pool.Device, len(d.Devices))
	for i, dv := range d.Devices {
		devs[i] = newDevice(&cfg, dv, client)
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// newClient is the HTTP client for the web UIs: no redirects followed,
// a few idle connections per unit, bounded dials.
func newClient(cfg *Config) *http.Client {
	t := &http.Transport{
		Proxy:                 nil, // units sit on the site LAN: never through a proxy
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Device is one stock Antminer.
type Device struct {
	addr  string // the web UI's host:port
	dev   switchd.Device
	creds pool.Credentials
	web   web
	api   string
	opts  cgrpc.Options

	// Read once from get_system_info.cgi; the pool never calls one
	// device's methods concurrently, so these need no lock.
	info     SystemInfo
	infoDone bool
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
	_ pool.Closer       = (*Device)(nil)
)

// NewDevice returns the unit at dev.Addr: a host, or host:port for a web
// UI on another port than web_port. It has its own HTTP client; New shares
// one among a fleet's devices.
func NewDevice(cfg *Config, dev switchd.Device) pool.Device {
	return newDevice(cfg, dev, newClient(cfg))
}

func newDevice(cfg *Config, dev switchd.Device, client *http.Client) *Device {
	webAddr := cgrpc.WithPort(dev.Addr, strconv.Itoa(cfg.WebPort))
	host, port, err := net.SplitHostPort(webAddr)
	if err != nil {
		host = dev.Addr
	}
	if port == strconv.Itoa(cfg.APIPort) && cfg.APIPort != cfg.WebPort {
		// "host:4028" is the habit of every cgminer tool: it names the
		// unit, whose web UI is on web_port.
		webAddr = net.JoinHostPort(host, strconv.Itoa(cfg.WebPort))
	}
	return &Device{
		addr:  webAddr,
		dev:   dev,
		creds: cfg.Credentials,
		web:   web{client: client, base: cfg.Scheme + "://" + webAddr, user: cfg.Username},
		api:   net.JoinHostPort(host, strconv.Itoa(cfg.APIPort)),
		opts:  cgrpc.Options{Timeout: cfg.Timeout},
	}
}

// Addr implements pool.Device: the web UI's address.
func (d *Device) Addr() string { return d.addr }

// APIAddr is the cgminer API's address.
func (d *Device) APIAddr() string { return d.api }

// Close implements pool.Closer: it drops idle web connections (there is no
// session to log off).
func (d *Device) Close(context.Context) error {
	d.web.client.CloseIdleConnections()
	return nil
}

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string { return []string{"sleep", "normal"} }

func (d *Device) password() (string, error) {
	// Read at each use, so a rotated secret needs no reload; its errors
	// are permanent (a missing file does not come back by retrying).
	return d.creds.Password(d.dev)
}

// conf reads the miner configuration.
func (d *Device) conf(ctx context.Context, pass string) (MinerConf, error) {
	b, err := d.web.do(ctx, http.MethodGet, pathGetConf, pass, nil)
	if err != nil {
		return MinerConf{}, err
	}
	c, err := ParseMinerConf(b)
	if err != nil {
		return MinerConf{}, switchd.Retriable(err)
	}
	return c, nil
}

// Observe implements pool.Device: the work mode from get_miner_conf.cgi,
// the hashrate from the API's summary (stats when summary has none), and
// once the model and firmware from get_system_info.cgi.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	pass, err := d.password()
	if err != nil {
		return pool.Observation{}, err
	}
	c, err := d.conf(ctx, pass)
	if err != nil {
		return pool.Observation{}, err
	}
	sum, err := call(ctx, d.api, "summary", d.opts)
	if err != nil {
		return pool.Observation{}, err
	}
	ths, has := cgminer.Hashrate(sum)
	if !has {
		if st, err := call(ctx, d.api, "stats", d.opts); err == nil {
			ths, has = cgminer.Hashrate(st)
		}
	}
	if !d.infoDone {
		b, err := d.web.do(ctx, http.MethodGet, pathSystemInfo, pass, nil)
		if err == nil {
			if info, perr := ParseSystemInfo(b); perr == nil {
				d.info, d.infoDone = info, true
			}
		} else if switchd.IsPermanent(err) && !errors.Is(err, switchd.ErrAuth) {
			d.infoDone = true // no such CGI on this firmware
		}
	}
	o := Classify(c.Mode, ths, has)
	o.Model, o.Firmware = d.info.Model, d.info.Firmware
	return o, nil
}

// Classify is the mode rule (proto-fleet's): work mode "1" is asleep on
// purpose (off) once the hashrate is gone; any other work mode ("0"
// normal, "3" low power, "" unconfigured) is mining, and zero hashrate
// there is a fault. Without a hashrate field the mode is unknown unless
// the unit is set to sleep.
func Classify(workMode string, ths float64, has bool) pool.Observation {
	if workMode == WorkSleep {
		if has && ths > 0 {
			return pool.Observation{Mode: switchd.ModeMining, Known: true, HashrateTHs: ths,
				Detail: "work mode sleep set, still hashing"}
		}
		return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "asleep (work mode 1)"}
	}
	if !has {
		return pool.Observation{Detail: "summary has no hashrate field"}
	}
	if ths > 0 {
		o := pool.Observation{Mode: switchd.ModeMining, Known: true, HashrateTHs: ths}
		if workMode == WorkLowPower {
			o.Detail = "low power mode (work mode 3)"
		}
		return o
	}
	return pool.Observation{Mode: switchd.ModeMining, Known: true, Fault: true,
		Detail: fmt.Sprintf("zero hashrate in work mode %q (not asleep)", workMode)}
}

// Set implements pool.Device: it reads the configuration, and unless the
// unit is already in the wanted work mode writes it back with the work
// mode changed. Writing the configuration restarts the miner process on
// stock firmware, so an unchanged mode is not written again.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	var want string
	switch mode {
	case switchd.ModeOff:
		want = WorkSleep
	case switchd.ModeMining:
		want = WorkNormal
	default:
		return switchd.Permanent(fmt.Errorf("antminer: mode %s is not supported", mode))
	}
	pass, err := d.password()
	if err != nil {
		return err
	}
	c, err := d.conf(ctx, pass)
	if err != nil {
		return err
	}
	if c.Mode == want {
		return nil
	}
	body, err := c.With(want)
	if err != nil {
		return switchd.Permanent(err)
	}
	reply, err := d.web.do(ctx, http.MethodPost, pathSetConf, pass, body)
	if err != nil {
		return err
	}
	return CheckSetReply(reply)
}

// call sends one API command and checks its reply's STATUS.
func call(ctx context.Context, addr, cmd string, o cgrpc.Options) (cgrpc.Reply, error) {
	raw, err := cgrpc.Exchange(ctx, addr, cgrpc.Request(cmd, ""), o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return cgrpc.Check(cmd, raw)
}

// OpenDevice builds one device from a settings block, without I/O: the
// device `switchd probe` reads.
func OpenDevice(s switchd.Settings, dev switchd.Device) (pool.Device, error) {
	cfg, err := ParseConfig(s)
	if err != nil {
		return nil, err
	}
	return NewDevice(&cfg, dev), nil
}
