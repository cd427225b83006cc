// Package whatsminer drives MicroBT Whatsminer units through the btminer
// API v2 on TCP 4028: plaintext cgminer-style reads (status, summary,
// devdetails) and AES-encrypted writes after a get_token handshake
// (power_off, power_on, set_power_pct). API v3 units (port 4433) are
// stopped and started with set.miner.service (v3.go). See README.md for firmware versions and quirks.
//
// It never sends adjust_power_limit: that command reboots the unit, which
// takes minutes and is not a curtailment.
//
// It imports the root package, the shared wire (cgrpc) and the device
// pool; never its fake.
package whatsminer

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block for a Whatsminer fleet.
//
//go:embed sample.yaml
var Sample string

// Ports of the two API generations.
const (
	portV2 = 4028
	portV3 = 4433
)

// tokenTTL is how long a get_token session is reused. The firmware keeps a
// token 30 min (uncertain, device-protocols.md §5); renewing earlier leaves
// room for the device's clock and ours to disagree.
const tokenTTL = 25 * time.Minute

// API is the btminer API generation a fleet speaks.
type API string

// API generations.
const (
	APIv2 API = "v2"
	APIv3 API = "v3"
)

// UnmarshalText accepts v2 or v3.
func (a *API) UnmarshalText(b []byte) error {
	switch API(b) {
	case APIv2, APIv3:
		*a = API(b)
		return nil
	}
	return fmt.Errorf("api %q: want v2 or v3", b)
}

// Config is a Whatsminer fleet's settings.
type Config struct {
	pool.Settings `yaml:",inline"`
	// Credentials hold the admin password (btminer v2 has one account,
	// "admin"; username may be left out).
	pool.Credentials `yaml:",inline"`
	// API is v2 (default) or v3 (set.miner.service stop/start; no power
	// target). With v3, username is the account writes are signed for
	// (default "super").
	API API `yaml:"api"`
	// Port is used for device addresses without one (default 4028 for
	// v2, 4433 for v3).
	Port int `yaml:"port"`
	// Warmup is how long after power_on (by the unit's own Elapsed
	// counter) zero hashrate means waking up rather than a fault
	// (default 5m).
	Warmup time.Duration `yaml:"warmup"`
}

// ParseConfig decodes and validates a fleet's settings, without I/O
// beyond checking that a password file exists.
func ParseConfig(s switchd.Settings) (Config, error) {
	cfg := Config{API: APIv2, Warmup: 5 * time.Minute}
	if err := s.Decode(&cfg); err != nil {
		return Config{}, err
	}
	cfg.Settings.Defaults()
	if cfg.Port == 0 {
		cfg.Port = portV2
		if cfg.API == APIv3 {
			cfg.Port = portV3
		}
	}
	errs := []error{cfg.Settings.Validate(s)}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, s.Errorf("port", "must be between 1 and 65535 (got %d)", cfg.Port))
	}
	if cfg.Warmup < 0 || cfg.Warmup > time.Hour {
		errs = append(errs, s.Errorf("warmup", "must be between 0 and 1h (got %s)", cfg.Warmup))
	}
	if cfg.API == APIv2 && cfg.Username != "" && cfg.Username != "admin" {
		errs = append(errs, s.Errorf("username", "btminer API v2 has only the admin account (got %q)", cfg.Username))
	}
	// Reads need no password, but a fleet switchd cannot curtail is
	// misconfigured: require one for v2.
	errs = append(errs, cfg.Credentials.Validate(s, cfg.API == APIv2))
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// New builds a fleet driver: one Device per listed device, under the
// shared pool.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	if cfg.API == APIv3 {
		// Probing a v3 unit needs no password; driving a fleet does.
		if cfg.PasswordFile == "" && cfg.PasswordEnv == "" && !allHaveSecrets(d.Devices) {
			return nil, d.Settings.Errorf("password_file", "required (or password_env) for an api: v3 fleet: its writes are signed with the account's password")
		}
		if d.Spec.Supports[switchd.ModeMiningReduced] {
			return nil, d.Settings.Errorf("api", "v3 power targets (set.miner.power_percent) are not implemented: drop mining_reduced from this fleet or use v2")
		}
	}
	now := time.Now
	if d.Clock != nil {
		now = d.Clock.Now
	}
	devs := make([]pool.Device, len(d.Devices))
	for i, dv := range d.Devices {
		devs[i] = NewDevice(&cfg, dv, now)
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// allHaveSecrets reports whether every device has its own credential
// reference (devices_file CSV).
func allHaveSecrets(devs []switchd.Device) bool {
	for _, d := range devs {
		if d.Secret == "" {
			return false
		}
	}
	return len(devs) > 0
}

// Device is one Whatsminer unit. Its methods are safe for concurrent use,
// though the pool never calls them concurrently for one device.
type Device struct {
	cfg     *Config
	dev     switchd.Device
	addr    string
	now     func() time.Time // token expiry only; never for decisions
	timeout time.Duration
	opts    cgrpc.Options

	mu      sync.Mutex
	sess    *session
	sessExp time.Time
	// key is the request key that worked ("cmd" or "command"), learned
	// from the firmware's error replies; "" until one was needed.
	key string
	id  identity
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
	_ pool.PowerSetter  = (*Device)(nil)
)

// NewDevice returns the device at dev.Addr (the configured port added when
// it has none). now is the clock that ages cached tokens.
func NewDevice(cfg *Config, dev switchd.Device, now func() time.Time) pool.Device {
	return &Device{
		cfg:     cfg,
		dev:     dev,
		addr:    cgrpc.WithPort(dev.Addr, strconv.Itoa(cfg.Port)),
		now:     now,
		timeout: cfg.Timeout,
		opts:    cgrpc.Options{Timeout: cfg.Timeout},
	}
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.addr }

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string {
	if d.cfg.API == APIv3 {
		return []string{"set.miner.service stop", "set.miner.service start"}
	}
	return []string{"power_off", "power_on", "set_power_pct"}
}

// Observe implements pool.Device: `status` tells asleep on purpose
// (btmineroff "true") from mining, `summary` gives hashrate and watts.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	if d.cfg.API == APIv3 {
		return d.observeV3(ctx)
	}
	var st *minerStatus
	r, err := d.read(ctx, "status")
	switch {
	case err == nil:
		s, err := statusOf(r)
		if err != nil {
			// A reply that does not say whether mining is off is never
			// acted on.
			return pool.Observation{}, switchd.Retriable(err)
		}
		st = &s
	case statusCode(err) == 0:
		return pool.Observation{}, err
	default:
		// The firmware refused `status` (too old): judge by hashrate.
	}

	var sum *summary
	r, err = d.read(ctx, "summary")
	switch {
	case err == nil:
		s, err := summaryOf(r)
		if err != nil {
			return pool.Observation{}, switchd.Retriable(err)
		}
		if !s.HasHashrate {
			// Some builds keep the hash rate to the per-board report.
			if r, err := d.read(ctx, "edevs"); err == nil {
				s.HashrateTHs, _, s.HasHashrate = devsOf(r)
			}
		}
		sum = &s
	case st != nil && st.Off && statusCode(err) != 0:
		// Some units refuse summary while btminer is off.
	default:
		return pool.Observation{}, err
	}

	o := observation(st, sum, d.cfg.Warmup)
	id := d.identify(ctx, o.Firmware == "")
	o.Model = id.model
	if o.Firmware == "" {
		o.Firmware = id.firmware
	}
	return o, nil
}

// identity is what a device is, read once.
type identity struct {
	model, firmware string
	done            bool
}

// identify reads the model (devdetails) and, when the other replies do
// not carry it, the firmware (get_version), once per device. Failures are
// not errors (this is for display); a timeout is tried again next poll.
func (d *Device) identify(ctx context.Context, needFirmware bool) identity {
	d.mu.Lock()
	id := d.id
	d.mu.Unlock()
	if id.done {
		return id
	}
	r, err := d.read(ctx, "devdetails")
	if err != nil && statusCode(err) == 0 {
		return id
	}
	if err == nil {
		id.model = modelOf(r)
	}
	if needFirmware {
		if r, err := d.read(ctx, "get_version"); err == nil {
			id.firmware = versionOf(r)
		}
	}
	id.done = true
	d.mu.Lock()
	d.id = id
	d.mu.Unlock()
	return id
}

// Set implements pool.Device: power_off (reply first, then stop hashing;
// the control board and the API stay up) for off, power_on for mining.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	if d.cfg.API == APIv3 {
		return d.setV3(ctx, mode)
	}
	switch mode {
	case switchd.ModeOff:
		return d.privileged(ctx, "power_off", map[string]string{"respbefore": "true"})
	case switchd.ModeMining:
		return d.privileged(ctx, "power_on", nil)
	}
	return switchd.Permanent(fmt.Errorf("whatsminer cannot enter mode %s", mode))
}

// SetPowerPercent implements pool.PowerSetter with set_power_pct, a
// temporary adjustment that takes effect without a reboot. (Never
// adjust_power_limit: it reboots the unit.)
func (d *Device) SetPowerPercent(ctx context.Context, pct float64) error {
	if math.IsNaN(pct) || pct < 0 || pct > 100 {
		return switchd.Permanent(fmt.Errorf("set_power_pct: percent %v out of 0..100", pct))
	}
	return d.privileged(ctx, "set_power_pct", map[string]string{"percent": strconv.Itoa(int(math.Round(pct)))})
}

// defaultKey is the request key a command is first sent with: btminer's
// own commands take "cmd", the cgminer reports "command". Builds that want
// the other one say so (cgminer: code 24 "Missing JSON 'command'"), and the
// device remembers what worked.
func defaultKey(cmd string) string {
	switch cmd {
	case "status", "get_token", "get_version":
		return "cmd"
	}
	return "command"
}

// otherKey returns the key to retry with after err, if err says the
// firmware wants the other one.
func otherKey(key string, err error) (string, bool) {
	switch c := statusCode(err); {
	case key == "cmd" && c == codeMissingCmd:
		return "command", true
	case key == "command" && (c == codeInvalidCmd || c == codeInvalidJSON):
		return "cmd", true
	}
	return "", false
}

// read sends a plaintext read and checks its STATUS.
func (d *Device) read(ctx context.Context, cmd string) (cgrpc.Reply, error) {
	d.mu.Lock()
	key := d.key
	d.mu.Unlock()
	if key == "" {
		key = defaultKey(cmd)
	}
	for attempt := 0; ; attempt++ {
		req, _ := json.Marshal(map[string]string{key: cmd})
		raw, err := cgrpc.Exchange(ctx, d.addr, req, d.opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		r, err := cgrpc.Check(cmd, raw)
		if err != nil {
			if alt, ok := otherKey(key, err); ok && attempt == 0 {
				key = alt
				continue
			}
			return nil, err
		}
		if attempt > 0 {
			d.mu.Lock()
			d.key = key
			d.mu.Unlock()
		}
		return r, nil
	}
}

// session returns a cached get_token session, or a new one when none is
// valid or fresh is set. The password is read now, so a rotated secret is
// picked up at the next token.
func (d *Device) session(ctx context.Context, fresh bool) (session, error) {
	d.mu.Lock()
	if !fresh && d.sess != nil && d.now().Before(d.sessExp) {
		s := *d.sess
		d.mu.Unlock()
		return s, nil
	}
	d.sess = nil
	d.mu.Unlock()

	pw, err := d.cfg.Password(d.dev)
	if err != nil {
		return session{}, err
	}
	if pw == "" {
		return session{}, switchd.AuthError(errors.New("no admin password configured"))
	}
	r, err := d.read(ctx, "get_token")
	if err != nil {
		return session{}, classifyToken(err)
	}
	t, err := tokenOf(r)
	if err != nil {
		return session{}, switchd.Retriable(err)
	}
	s := newSession(pw, t)
	d.mu.Lock()
	d.sess, d.sessExp = &s, d.now().Add(tokenTTL)
	d.mu.Unlock()
	return s, nil
}

// privileged sends an encrypted write. A token refused (expired, dropped
// by a reboot, over the limit) gets one fresh token and one more try; a
// second refusal is a wrong admin password.
func (d *Device) privileged(ctx context.Context, cmd string, params map[string]string) error {
	if d.cfg.API == APIv3 {
		return switchd.Permanent(fmt.Errorf("%s: not implemented over API v3 (only set.miner.service stop/start)", cmd))
	}
	for attempt := 0; ; attempt++ {
		s, err := d.session(ctx, attempt > 0)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		err = d.sendEncrypted(ctx, s, cmd, params)
		if err == nil {
			return nil
		}
		if attempt == 0 && tokenRefused(statusCode(err)) {
			continue
		}
		if tokenRefused(statusCode(err)) {
			d.mu.Lock()
			d.sess = nil
			d.mu.Unlock()
		}
		return classifyToken(err)
	}
}

// sendEncrypted sends one {"enc":1,"data":...} command and checks the
// reply.
func (d *Device) sendEncrypted(ctx context.Context, s session, cmd string, params map[string]string) error {
	body := make(map[string]string, len(params)+2)
	for k, v := range params {
		body[k] = v
	}
	body["cmd"], body["token"] = cmd, s.sign
	plain, err := json.Marshal(body)
	if err != nil {
		return switchd.Permanent(fmt.Errorf("%s: %w", cmd, err))
	}
	data, err := encrypt(s.key, plain)
	if err != nil {
		return switchd.Permanent(fmt.Errorf("%s: %w", cmd, err))
	}
	req, _ := json.Marshal(struct {
		Enc  int    `json:"enc"`
		Data string `json:"data"`
	}{1, data})
	raw, err := cgrpc.Exchange(ctx, d.addr, req, d.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return writeReply(cmd, s.key, raw)
}

// tokenRefused reports whether a write's status code means the device did
// not accept the session: an invalid or expired token, too many tokens,
// or a command it could not decrypt (a key from a wrong password).
func tokenRefused(code int) bool {
	switch code {
	case codeTokenInvalid, codeTokenMax, codeInvalidJSON, codeBase64:
		return true
	}
	return false
}

// classifyToken reclassifies the btminer status codes about access:
// a refused token or permission is an authentication error, a token
// budget spent is worth retrying later.
func classifyToken(err error) error {
	var se *cgrpc.StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Status.Code {
	case codeTokenInvalid, codeInvalidJSON, codeBase64:
		return switchd.AuthError(fmt.Errorf("%w (wrong admin password?)", err))
	case codeDenied:
		return switchd.AuthError(fmt.Errorf("%w (write API disabled, or admin password never changed from the default?)", err))
	case codeTokenMax:
		// Tokens expire; the budget comes back on its own.
		return switchd.Retriable(fmt.Errorf("%w (token budget spent: tokens expire after 30 min)", se))
	}
	return err
}

// OpenDevice builds one device from a settings block, without I/O: the
// device `switchd probe` reads.
func OpenDevice(s switchd.Settings, dev switchd.Device) (pool.Device, error) {
	cfg, err := ParseConfig(s)
	if err != nil {
		return nil, err
	}
	return NewDevice(&cfg, dev, time.Now), nil
}
