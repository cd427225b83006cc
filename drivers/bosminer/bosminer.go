// Package bosminer is the driver (YAML name "bosminer") for Braiins OS and
// OS+ units through the legacy bosminer API: cgminer-compatible on TCP 4028
// with the extra commands pause and resume. Off is "pause" (hashboards
// stop, the unit stays up and answers), mining is "resume". There is no
// power target over this API (it needs an SSH edit of /etc/bosminer.toml
// and a bosminer restart, which is neither fast nor safe to automate).
//
// The legacy API reports no "paused" flag in summary or tunerstatus, so the
// driver keeps a per-device note of the last pause or resume the unit
// acknowledged and confirms it by the hashrate: see Classify.
//
// It imports the root, the shared wire (internal/cgrpc), the device pool and
// the cgminer driver's readers; never the controller.
package bosminer

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/cgminer"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool"
)

// Sample is a commented settings block, validated by drivers/all's tests.
//
//go:embed sample.yaml
var Sample string

// Config is the driver's settings block in the site file: the same keys as
// the cgminer driver's (the pool's keys and the API port).
type Config = cgminer.Config

// ParseConfig decodes the settings strictly and validates them, without
// I/O.
func ParseConfig(s switchd.Settings) (Config, error) { return cgminer.ParseConfig(s) }

// New builds the fleet's driver: one device per listed address.
func New(d pool.Deps) (switchd.Driver, error) {
	cfg, err := ParseConfig(d.Settings)
	if err != nil {
		return nil, err
	}
	devs := make([]pool.Device, len(d.Devices))
	for i, dv := range d.Devices {
		devs[i] = NewDevice(&cfg, dv)
	}
	return pool.New(d, cfg.Settings, devs), nil
}

// Note is what the driver last told a device and the device acknowledged.
type Note uint8

// Notes.
const (
	NoteUnknown Note = iota // nothing acknowledged since switchd started
	NotePaused
	NoteResumed
)

// String names the note.
func (n Note) String() string {
	switch n {
	case NotePaused:
		return "paused"
	case NoteResumed:
		return "resumed"
	}
	return "unknown"
}

// Device is one Braiins OS unit.
type Device struct {
	addr string
	opts cgrpc.Options

	mu       sync.Mutex // guards note (Set and Observe may follow each other from different goroutines)
	note     Note
	model    string
	firmware string
	// modelDone is set once devdetails answered, with or without a model.
	modelDone bool
}

var (
	_ pool.Device       = (*Device)(nil)
	_ pool.Capabilities = (*Device)(nil)
)

// NewDevice returns the device at dev.Addr (host or host:port; the
// configured port is added when none is given). The legacy API has no
// authentication.
func NewDevice(cfg *Config, dev switchd.Device) pool.Device {
	return &Device{
		addr: cgrpc.WithPort(dev.Addr, strconv.Itoa(cfg.Port)),
		opts: cgrpc.Options{Timeout: cfg.Timeout},
	}
}

// Addr implements pool.Device.
func (d *Device) Addr() string { return d.addr }

// Supports implements pool.Capabilities.
func (d *Device) Supports() []string { return []string{"pause", "resume"} }

// Note returns the device's pause note.
func (d *Device) Note() Note {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.note
}

// Set implements pool.Device: pause for off, resume for mining. It returns
// once the unit acknowledged; the hashrate falls (or ramps up) afterwards.
func (d *Device) Set(ctx context.Context, mode switchd.Mode) error {
	var cmd, section string
	var note Note
	switch mode {
	case switchd.ModeOff:
		cmd, section, note = "pause", "PAUSE", NotePaused
	case switchd.ModeMining:
		cmd, section, note = "resume", "RESUME", NoteResumed
	default:
		return switchd.Permanent(fmt.Errorf("bosminer: mode %s is not supported", mode))
	}
	r, err := call(ctx, d.addr, cmd, d.opts)
	if err != nil {
		if accessDenied(err) {
			return switchd.AuthError(fmt.Errorf("%w (the miner's API does not let this host write: give it write access, as with cgminer's --api-allow W:<host>)", err))
		}
		return err
	}
	if _, err := Ack(r, section); err != nil {
		return err
	}
	d.mu.Lock()
	d.note = note
	d.mu.Unlock()
	return nil
}

// accessDenied reports whether err is the API refusing a privileged
// command to this client: cgminer's code 45, "Access denied to 'cmd'
// command" (MSG_ACCDENY in api.c).
func accessDenied(err error) bool {
	var se *cgrpc.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Status.Code == 45 || strings.Contains(strings.ToLower(se.Status.Msg), "access denied")
}

// Ack reads a pause or resume reply: STATUS success and a section holding
// a boolean ({"PAUSE":[true]}, bosminer/pause-s17.json). A false value is
// accepted (changed reports it): the unit understood, and the observed
// hashrate confirms the mode. A reply without the section is not from
// bosminer.
func Ack(r cgrpc.Reply, section string) (changed bool, err error) {
	list, ok := r[section].([]any)
	if !ok || len(list) == 0 {
		return false, switchd.Permanent(fmt.Errorf("%s: reply has no %s section (not bosminer?)", strings.ToLower(section), section))
	}
	b, ok := cgrpc.Bool(list[0])
	if !ok {
		return false, switchd.Retriable(fmt.Errorf("%s: unreadable %s value %v", strings.ToLower(section), section, list[0]))
	}
	return b, nil
}

// Observe implements pool.Device. It reads summary (hashrate, firmware),
// devs when summary has no hashrate, tunerstatus (power) when hashing, and
// devdetails (model, and the "Unavailable" status a paused unit is said to
// give) when not hashing or the model is not known yet.
func (d *Device) Observe(ctx context.Context) (pool.Observation, error) {
	sum, err := call(ctx, d.addr, "summary", d.opts)
	if err != nil {
		return pool.Observation{}, err
	}
	if st, err := sum.Status(); err == nil && d.firmware == "" {
		d.firmware = st.Description
	}
	ths, has := cgminer.Hashrate(sum)
	if !has {
		if devs, err := call(ctx, d.addr, "devs", d.opts); err == nil {
			ths, has = DevsHashrate(devs)
		}
	}
	var unavailable bool
	if !d.modelDone || (has && ths == 0) {
		r, err := call(ctx, d.addr, "devdetails", d.opts)
		var model string
		model, unavailable = Devdetails(r, err)
		if model != "" {
			d.model = model
		}
		// A paused unit's "Unavailable" says nothing of the model: ask
		// again once it mines.
		d.modelDone = d.modelDone || model != "" || err == nil || switchd.IsPermanent(err) && !unavailable
	}
	o := Classify(ths, has, d.Note(), unavailable)
	if has && ths > 0 {
		if r, err := call(ctx, d.addr, "tunerstatus", d.opts); err == nil {
			o.PowerW, o.HasPower = TunerPower(r)
		}
	}
	o.Model, o.Firmware = d.model, d.firmware
	return o, nil
}

// Classify is the mode rule. Hashing is mining (also right after a pause
// was acknowledged: the unit is still ramping down). Zero hashrate is off
// on purpose when the unit was paused (the last acknowledged command was
// pause, or devdetails answers "Unavailable"); zero hashrate otherwise is a
// fault: mining mode, not mining. A summary without a hashrate is unknown.
func Classify(ths float64, has bool, note Note, unavailable bool) pool.Observation {
	switch {
	case !has:
		return pool.Observation{Detail: "summary has no hashrate field"}
	case ths > 0:
		o := pool.Observation{Mode: switchd.ModeMining, Known: true, HashrateTHs: ths}
		if note == NotePaused {
			o.Detail = "pause acknowledged, still hashing"
		}
		return o
	case note == NotePaused:
		return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "paused (acknowledged), zero hashrate"}
	case unavailable:
		return pool.Observation{Mode: switchd.ModeOff, Known: true, Detail: "paused (devdetails unavailable), zero hashrate"}
	}
	return pool.Observation{Mode: switchd.ModeMining, Known: true, Fault: true,
		Detail: "zero hashrate while not paused (last command " + note.String() + ")"}
}

// DevsHashrate sums the per-chain hashrate of a devs reply, in TH/s.
func DevsHashrate(r cgrpc.Reply) (float64, bool) {
	var sum float64
	var any bool
	for _, e := range r.Section("DEVS") {
		if h, ok := cgminer.EntryHashrate(e); ok {
			sum += h
			any = true
		}
	}
	return sum, any
}

// Devdetails reads a devdetails reply (r, err as the call returned them):
// the model of the first chain ("Bitmain Antminer S9",
// bosminer/devdetails-s9.json), and whether the unit answered with the
// status message "Unavailable", which pyasic takes to mean "not mining"
// (paused). That answer is not in any recorded reply: treat it as a hint.
func Devdetails(r cgrpc.Reply, err error) (model string, unavailable bool) {
	var se *cgrpc.StatusError
	switch {
	case errors.As(err, &se):
		return "", strings.EqualFold(strings.TrimSpace(se.Status.Msg), "Unavailable")
	case err != nil || r == nil:
		return "", false
	}
	if st, err := r.Status(); err == nil && strings.EqualFold(strings.TrimSpace(st.Msg), "Unavailable") {
		unavailable = true
	}
	for _, e := range r.Section("DEVDETAILS") {
		if m := cgrpc.String(e["Model"]); m != "" {
			return m, unavailable
		}
	}
	return "", unavailable
}

// TunerPower reads the tuner's estimate of the whole miner's draw in watts
// (TUNERSTATUS[0].ApproximateMinerPowerConsumption,
// bosminer/tunerstatus-s9.json). It is an estimate for running chains; the
// driver reads it only while the unit hashes.
func TunerPower(r cgrpc.Reply) (float64, bool) {
	t := r.First("TUNERSTATUS")
	if t == nil {
		return 0, false
	}
	w, ok := cgrpc.Number(t["ApproximateMinerPowerConsumption"])
	if !ok || w <= 0 {
		return 0, false
	}
	return w, true
}

// call sends one command and checks its reply's STATUS.
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
