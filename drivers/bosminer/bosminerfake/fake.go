// Package bosminerfake is a fake Braiins OS unit speaking the legacy
// bosminer API (cgminer-compatible, TCP 4028) with pause and resume, for
// tests, benchmarks and the demo. Replies follow the shapes of the vendor's
// documented examples (../shared/fixtures/miners/bosminer/): PAUSE and
// RESUME sections holding a bare boolean, tunerstatus with the tuner's
// power estimate, devdetails with hash chains 6, 7 and 8 of an S9.
//
// It shares no parsing code with the driver (requests are decoded by
// cgminerfake's Server with encoding/json) and runs no background
// goroutine besides its accept loop.
package bosminerfake

import (
	"sync"
	"time"

	"github.com/switchd/switchd/drivers/cgminer/cgminerfake"
)

// Fault re-exports the faults a fake can inject.
type Fault = cgminerfake.Fault

// Faults.
const (
	FaultNone    = cgminerfake.FaultNone
	FaultRefuse  = cgminerfake.FaultRefuse
	FaultReset   = cgminerfake.FaultReset
	FaultTimeout = cgminerfake.FaultTimeout
	FaultGarbage = cgminerfake.FaultGarbage
	FaultReboot  = cgminerfake.FaultReboot
)

// Options configure a fake unit. Zero values take the defaults.
type Options struct {
	NominalTHs float64          // hashrate when fully up (default 13.5, an S9)
	PowerW     float64          // tuner's estimate when fully up (default 1419)
	Ramp       time.Duration    // time from resume to full hashrate (default 2m)
	StopAfter  time.Duration    // time from pause to zero hashrate (default 0)
	RebootFor  time.Duration    // silence of a reboot fault (default 30s)
	Now        func() time.Time // clock (default time.Now)
	NoNUL      bool             // leave out the trailing NUL
	// NoUnavailable makes devdetails answer normally while paused; by
	// default a paused unit answers devdetails with STATUS E
	// "Unavailable" (pyasic's reading; not in a recorded reply).
	NoUnavailable bool
	// DenyWrites makes the API refuse pause and resume from this client,
	// as cgminer-family APIs do for a host without write access
	// (--api-allow without W:): STATUS E, code 45, "Access denied to
	// 'pause' command".
	DenyWrites bool
}

const desc = "BOSminer+ 0.2.0-36c56a9363"

// Miner is a fake bosminer unit.
type Miner struct {
	srv  cgminerfake.Server
	opts Options

	mu       sync.Mutex
	paused   bool
	pausedAt time.Time
	since    time.Time // last resume or boot (zero: long ago)
	broken   bool
	start    time.Time
	pauses   int
	resumes  int
}

// New returns a fake unit, mining at full rate.
func New(o Options) *Miner {
	if o.NominalTHs <= 0 {
		o.NominalTHs = 13.5
	}
	if o.PowerW <= 0 {
		o.PowerW = 1419
	}
	if o.Ramp <= 0 {
		o.Ramp = 2 * time.Minute
	}
	if o.RebootFor <= 0 {
		o.RebootFor = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Miner{opts: o, start: o.Now()}
	m.srv = cgminerfake.Server{
		Handle:    m.handle,
		IsWrite:   func(cmd string) bool { return cmd == "pause" || cmd == "resume" },
		OnReboot:  m.reboot,
		Now:       o.Now,
		RebootFor: o.RebootFor,
		NoNUL:     o.NoNUL,
	}
	return m
}

// Start listens on addr ("127.0.0.1:0" in tests).
func (m *Miner) Start(addr string) error { return m.srv.Start(addr) }

// Addr is the API address.
func (m *Miner) Addr() string { return m.srv.Addr() }

// Close stops the fake.
func (m *Miner) Close() { m.srv.Close() }

// SetFault injects a fault (FaultNone clears).
func (m *Miner) SetFault(f Fault) error { return m.srv.SetFault(f) }

// SetPaused pauses or resumes the unit as another client would (drift).
func (m *Miner) SetPaused(p bool) {
	m.mu.Lock()
	m.setPaused(p)
	m.mu.Unlock()
}

// SetBroken makes the unit stop hashing without being told.
func (m *Miner) SetBroken(b bool) {
	m.mu.Lock()
	m.broken = b
	m.mu.Unlock()
}

// Paused reports whether the unit is paused.
func (m *Miner) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// Commands returns how many pause and resume commands the unit accepted.
func (m *Miner) Commands() (pauses, resumes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pauses, m.resumes
}

// HashrateTHs is the current hashrate.
func (m *Miner) HashrateTHs() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashrate()
}

func (m *Miner) setPaused(p bool) {
	now := m.opts.Now()
	if p && !m.paused {
		m.pausedAt = now
	}
	if !p && m.paused {
		m.since = now
	}
	m.paused = p
}

func (m *Miner) ramp() float64 {
	if m.since.IsZero() {
		return 1
	}
	f := float64(m.opts.Now().Sub(m.since)) / float64(m.opts.Ramp)
	return min(max(f, 0), 1)
}

// hashrate in TH/s. Under mu.
func (m *Miner) hashrate() float64 {
	if m.broken {
		return 0
	}
	if m.paused && !m.opts.Now().Before(m.pausedAt.Add(m.opts.StopAfter)) {
		return 0
	}
	return m.opts.NominalTHs * m.ramp()
}

// reboot: bosminer comes back mining (a pause does not survive it).
func (m *Miner) reboot() {
	m.mu.Lock()
	m.paused, m.broken = false, false
	m.since = m.opts.Now().Add(m.opts.RebootFor)
	m.start = m.since
	m.mu.Unlock()
}

func (m *Miner) status(code int, msg string) cgminerfake.Status {
	return cgminerfake.Status{Status: "S", When: m.opts.Now().Unix(), Code: code, Msg: msg, Description: desc}
}

func (m *Miner) handle(r cgminerfake.Request) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	elapsed := int64(m.opts.Now().Sub(m.start) / time.Second)
	h := m.hashrate()
	mhs := h * 1e6
	switch r.Command {
	case "summary":
		return cgminerfake.Reply(m.status(11, "Summary"), "SUMMARY", cgminerfake.Section(map[string]any{
			"Elapsed": elapsed, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs,
			"MHS av": m.opts.NominalTHs * 1e6, "Accepted": 153, "Rejected": 0, "Hardware Errors": 186,
		}))
	case "devs":
		var chains []any
		for i := 6; i <= 8; i++ {
			chains = append(chains, map[string]any{
				"ASC": i - 6, "ID": i, "Enabled": "Y", "Status": "Alive", "MHS 5s": mhs / 3,
				"MHS 1m": mhs / 3, "Nominal MHS": m.opts.NominalTHs * 1e6 / 3,
			})
		}
		return cgminerfake.Reply(m.status(9, "3 ASC(s)"), "DEVS", cgminerfake.Section(chains...))
	case "devdetails":
		if m.paused && !m.opts.NoUnavailable {
			st := m.status(0, "Unavailable")
			st.Status = "E"
			return cgminerfake.Reply(st, "", nil)
		}
		var chains []any
		for i := 6; i <= 8; i++ {
			chains = append(chains, map[string]any{
				"DEVDETAILS": i - 6, "ID": i, "Chips": 63, "Model": "Bitmain Antminer S9",
				"Name": "Hash Chain " + string(rune('0'+i)),
			})
		}
		return cgminerfake.Reply(m.status(69, "Device Details"), "DEVDETAILS", cgminerfake.Section(chains...))
	case "tunerstatus":
		// The tuner's estimate for its chains; it does not drop while
		// paused, which is why the driver reads it only while hashing.
		w := m.opts.PowerW
		return cgminerfake.Reply(m.status(203, "Tuner Status"), "TUNERSTATUS", cgminerfake.Section(map[string]any{
			"ApproximateChainPowerConsumption": w - 75, "ApproximateMinerPowerConsumption": w,
			"DynamicPowerScaling": "Disabled", "PowerLimit": w + 1, "TunerChainStatus": []any{},
		}))
	case "version":
		return cgminerfake.Reply(m.status(22, "BOSminer+ versions"), "VERSION", cgminerfake.Section(map[string]any{
			"API": "3.7", "BOSminer+": "0.2.0-36c56a9363",
		}))
	case "pause", "resume":
		if m.opts.DenyWrites {
			return cgminerfake.ErrorReply(45, "Access denied to '"+r.Command+"' command", desc)
		}
	}
	switch r.Command {
	case "pause":
		m.setPaused(true)
		m.pauses++
		return cgminerfake.Reply(m.status(204, "Pause"), "PAUSE", []byte("[true]"))
	case "resume":
		m.setPaused(false)
		m.resumes++
		return cgminerfake.Reply(m.status(205, "Resume"), "RESUME", []byte("[true]"))
	}
	return cgminerfake.ErrorReply(14, "Invalid command", desc)
}
