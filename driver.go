package switchd

import (
	"context"
	"errors"
	"time"
)

// Driver errors are classified: a retriable error (unreachable, timeout,
// busy) is worth trying again after a backoff; a permanent one (login
// refused, command unsupported, settings wrong) is not, and the device is
// marked failed until an operator fixes it. Check with errors.Is.
var (
	ErrRetriable = errors.New("retriable")
	ErrPermanent = errors.New("permanent")
)

// Finer classes, for the problem a device is reported with. An unreachable
// error is also retriable; an authentication error is also permanent.
var (
	ErrUnreachable = errors.New("unreachable") // no answer: refused, timed out, no route
	ErrAuth        = errors.New("auth")        // login refused, session held by another client
)

// Unreachable marks err as a device that did not answer (retriable).
func Unreachable(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) {
		return err
	}
	return &classified{err: Retriable(err), class: ErrUnreachable}
}

// AuthError marks err as a refused login (permanent).
func AuthError(err error) error {
	if err == nil || errors.Is(err, ErrAuth) {
		return err
	}
	return &classified{err: Permanent(err), class: ErrAuth}
}

// ProblemOf names the problem reason for a device error.
func ProblemOf(err error) string {
	switch {
	case errors.Is(err, ErrUnreachable):
		return ProblemUnreachable
	case errors.Is(err, ErrAuth):
		return ProblemAuth
	}
	return ProblemProtocol
}

// classified wraps an error with its class, keeping both for errors.Is.
type classified struct {
	err   error
	class error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }

// Retriable marks err as worth retrying. A nil err stays nil.
func Retriable(err error) error {
	if err == nil || errors.Is(err, ErrRetriable) {
		return err
	}
	return &classified{err: err, class: ErrRetriable}
}

// Permanent marks err as not worth retrying. A nil err stays nil.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return &classified{err: err, class: ErrPermanent}
}

// IsPermanent reports whether err was marked permanent. Unclassified errors
// count as retriable: a driver that cannot tell should not give up.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Settings is a fleet's driver settings block from the site file. Decode is
// strict (an unknown or misspelt key, a wrong type is an error) and its
// errors, like those of Errorf, name the site file, the line and the key
// path, as every other configuration error does.
type Settings interface {
	// Decode fills v, a pointer to a struct with yaml tags. Fields of type
	// time.Duration take Go durations ("30s"); types implementing
	// encoding.TextUnmarshaler decode themselves. An absent or empty block
	// leaves v as it was (its defaults).
	Decode(v any) error
	// Errorf returns a validation error located at key, a path relative
	// to the settings block such as "port" or "auth.password_file".
	Errorf(key, format string, args ...any) error
	// Resolve makes a file path relative to the site file's directory.
	Resolve(path string) string
}

// Device is one device of a fleet as the site file lists it.
type Device struct {
	// Addr is host or host:port; a driver adds its default port.
	Addr string
	// Secret, when set, overrides the fleet's credentials for this device:
	// "file:PATH" or "env:NAME" (never the secret itself).
	Secret string
}

// DeviceStatus is what one device last reported, for the state API and
// `switchd probe`. It is observed, never the commanded mode.
type DeviceStatus struct {
	Addr        string    `json:"addr"`
	Mode        string    `json:"mode"`              // mining, off, inference or unknown
	Commanded   string    `json:"commanded"`         // the mode switchd wants it in
	Since       time.Time `json:"since,omitzero"`    // observed in Mode since
	HashrateTHs float64   `json:"hashrate_ths"`      // 0 when not hashing
	PowerW      *float64  `json:"power_w"`           // nil when the device does not say
	Problem     string    `json:"problem,omitempty"` // a Problem reason, when unusable
	LastError   string    `json:"last_error,omitempty"`
	Model       string    `json:"model,omitempty"`
	Firmware    string    `json:"firmware,omitempty"`
}

// TransitionStats is what a driver measured of one kind of transition: how
// long devices took from command to observed arrival.
type TransitionStats struct {
	From, To Mode
	Count    int
	P50, P95 time.Duration
}

// Optional driver abilities, found by type assertion. Each driver states
// the ones it has with var _ switchd.X = (*Driver)(nil).

// Restorer is a driver that can be told where its devices are after a
// restart (the simulated fleet: real devices report it themselves).
type Restorer interface {
	// Restore puts counts[m] devices steady in m since the given instant.
	Restore(counts [NumModes]int, since time.Time) error
}

// Starter is a driver with background work (connections, subscriptions)
// to start before the first State call.
type Starter interface {
	Start(ctx context.Context) error
}

// Stopper is a driver that holds resources to release at shutdown.
type Stopper interface {
	Stop()
}

// DeviceReporter is a driver that can list its devices' last observed
// status, without I/O (from its last poll).
type DeviceReporter interface {
	Devices() []DeviceStatus
}

// ProblemReporter is a driver that can list the devices it has marked with
// a problem without copying the whole fleet: at most max of them, and how
// many there are. No I/O.
type ProblemReporter interface {
	ProblemDevices(max int) (list []DeviceStatus, total int)
}

// TransitionReporter is a driver that measures its transitions.
type TransitionReporter interface {
	Transitions() []TransitionStats
}

// PowerReporter is a driver that knows its fleet's draw without I/O (from
// its last poll or its model), in kW.
type PowerReporter interface {
	PowerKW() float64
}

// PowerTargeter is a driver whose devices accept a power target between
// off and full power (LuxOS profiles, Whatsminer set_power_pct). The
// dispatcher does not use it yet.
type PowerTargeter interface {
	// SetPowerPercent sets n devices steady in mining to pct percent of
	// their nominal power.
	SetPowerPercent(ctx context.Context, n int, pct float64) error
}

// ProbeResult is what `switchd probe` shows of one device: observed, never
// changed.
type ProbeResult struct {
	Fleet       string   `json:"fleet,omitempty"`
	Driver      string   `json:"driver"`
	Addr        string   `json:"addr"`
	Reachable   bool     `json:"reachable"`
	Mode        string   `json:"mode"` // mining, off, inference or unknown
	Fault       bool     `json:"fault"`
	Detail      string   `json:"detail,omitempty"`
	HashrateTHs float64  `json:"hashrate_ths"`
	PowerW      *float64 `json:"power_w"` // null when the device does not say
	Model       string   `json:"model"`
	Firmware    string   `json:"firmware"`
	Supports    []string `json:"supports"` // control commands it accepts
	Error       string   `json:"error"`
}
