package cgminerfake

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Flavor is the firmware family the fake imitates.
type Flavor int

// Flavors.
const (
	// Avalon is upstream cgminer 4.11.1 on a Canaan Avalon: "MHS 5s"
	// numbers in SUMMARY, the soft-off state inside the stats "MM ID"
	// string, ascset softoff/softon.
	Avalon Flavor = iota
	// BMMiner is stock Bitmain firmware read over 4028: "GHS 5s" as a
	// string, STATS objects concatenated without a comma ("}{"), and no
	// field that tells sleep from fault.
	BMMiner
)

// Options configure a fake miner. Zero values take the defaults.
type Options struct {
	Flavor     Flavor
	NominalTHs float64          // hashrate when fully up (default 90)
	PowerW     float64          // draw when fully up (default 3400)
	IdleW      float64          // draw when idle (default 15)
	Ramp       time.Duration    // time from wake to full hashrate (default 5m)
	RebootFor  time.Duration    // silence of a reboot fault (default 30s)
	Now        func() time.Time // clock (default time.Now)
	NoNUL      bool             // leave out the trailing NUL
	Model      string           // default "Avalon Q" / "Antminer S19"
}

// Miner is a fake cgminer-API miner.
type Miner struct {
	srv  Server
	opts Options

	mu     sync.Mutex
	idle   bool      // soft-off (Avalon) or asleep (bmminer)
	broken bool      // stopped hashing on its own
	since  time.Time // when it last started working (zero: long ago)
	start  time.Time // for Elapsed
}

// New returns a fake miner, mining at full rate.
func New(o Options) *Miner {
	if o.NominalTHs <= 0 {
		o.NominalTHs = 90
	}
	if o.PowerW <= 0 {
		o.PowerW = 3400
	}
	if o.IdleW <= 0 {
		o.IdleW = 15
	}
	if o.Ramp <= 0 {
		o.Ramp = 5 * time.Minute
	}
	if o.RebootFor <= 0 {
		o.RebootFor = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Model == "" {
		o.Model = "Avalon Q"
		if o.Flavor == BMMiner {
			o.Model = "Antminer S19"
		}
	}
	m := &Miner{opts: o, start: o.Now()}
	m.srv = Server{
		Handle:    m.handle,
		IsWrite:   func(cmd string) bool { return cmd == "ascset" },
		OnReboot:  m.reboot,
		Now:       o.Now,
		RebootFor: o.RebootFor,
		NoNUL:     o.NoNUL,
	}
	return m
}

// Start listens on addr ("127.0.0.1:0" in tests, or a loopback address
// with port 4028).
func (m *Miner) Start(addr string) error { return m.srv.Start(addr) }

// Addr is the API address.
func (m *Miner) Addr() string { return m.srv.Addr() }

// Close stops the fake.
func (m *Miner) Close() { m.srv.Close() }

// SetFault injects a fault (FaultNone clears).
func (m *Miner) SetFault(f Fault) error { return m.srv.SetFault(f) }

// SetIdle puts the unit idle on purpose (true) or back to work (false), as
// an operator would; waking starts the ramp.
func (m *Miner) SetIdle(idle bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setIdle(idle)
}

func (m *Miner) setIdle(idle bool) {
	if m.idle && !idle {
		m.since = m.opts.Now()
	}
	m.idle = idle
}

// SetBroken makes the unit stop hashing without being told (a fault).
func (m *Miner) SetBroken(b bool) {
	m.mu.Lock()
	m.broken = b
	m.mu.Unlock()
}

// Idle reports whether the unit is idle on purpose.
func (m *Miner) Idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.idle
}

// HashrateTHs is the current hashrate.
func (m *Miner) HashrateTHs() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashrate()
}

// PowerW is the current draw (the fake's truth; the API does not say).
func (m *Miner) PowerW() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idle {
		return m.opts.IdleW
	}
	return m.opts.IdleW + (m.opts.PowerW-m.opts.IdleW)*m.ramp()
}

// ramp is the share of full rate reached since the last wake. Under mu.
func (m *Miner) ramp() float64 {
	if m.since.IsZero() {
		return 1
	}
	f := float64(m.opts.Now().Sub(m.since)) / float64(m.opts.Ramp)
	return min(max(f, 0), 1)
}

// hashrate in TH/s. Under mu.
func (m *Miner) hashrate() float64 {
	if m.idle || m.broken {
		return 0
	}
	return m.opts.NominalTHs * m.ramp()
}

// reboot: back in the default state (working, ramping up again).
func (m *Miner) reboot() {
	m.mu.Lock()
	m.idle, m.broken = false, false
	m.since = m.opts.Now().Add(m.opts.RebootFor)
	m.start = m.since
	m.mu.Unlock()
}

func (m *Miner) desc() string {
	if m.opts.Flavor == BMMiner {
		return "cgminer 1.0.0"
	}
	return "cgminer 4.11.1"
}

func (m *Miner) status(code int, msg string) Status {
	return Status{Status: "S", When: m.opts.Now().Unix(), Code: code, Msg: msg, Description: m.desc()}
}

func (m *Miner) handle(r Request) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	elapsed := int64(now.Sub(m.start) / time.Second)
	h := m.hashrate()
	switch r.Command {
	case "summary":
		if m.opts.Flavor == BMMiner {
			// GHS 5s as a string, as the L3+ capture shows.
			return Reply(m.status(11, "Summary"), "SUMMARY", Section(map[string]any{
				"Elapsed": elapsed, "GHS 5s": fmt.Sprintf("%.2f", h*1e3), "GHS av": m.opts.NominalTHs * 1e3,
				"Accepted": 100, "Rejected": 0, "Hardware Errors": 0,
			}))
		}
		return Reply(m.status(11, "Summary"), "SUMMARY", Section(map[string]any{
			"Elapsed": elapsed, "MHS av": m.opts.NominalTHs * 1e6, "MHS 5s": h * 1e6, "MHS 1m": h * 1e6,
			"MHS 5m": h * 1e6, "Accepted": 100, "Rejected": 0, "Hardware Errors": 0,
		}))
	case "stats":
		return m.stats(elapsed, h)
	case "version":
		if m.opts.Flavor == BMMiner {
			return Reply(m.status(22, "CGMiner versions"), "VERSION", Section(map[string]any{
				"BMMiner": "1.0.0", "API": "3.1", "Miner": "49.0.1.3", "Type": m.opts.Model,
			}))
		}
		return Reply(m.status(22, "CGMiner versions"), "VERSION", Section(map[string]any{
			"CGMiner": "4.11.1", "API": "3.7", "PROD": m.opts.Model, "LVERSION": "25052801_14a19a2",
		}))
	case "devs":
		return Reply(m.status(9, "1 ASC(s)"), "DEVS", Section(map[string]any{
			"ASC": 0, "Name": "AVALON", "ID": 0, "Enabled": "Y", "Status": "Alive", "MHS 5s": h * 1e6,
		}))
	case "ascset":
		if m.opts.Flavor == BMMiner {
			break
		}
		// "0,softoff,1:<unix time>" / "0,softon,1:<unix time>"
		parts := strings.Split(r.Parameter, ",")
		if len(parts) < 2 {
			return ErrorReply(120, "Missing option", m.desc())
		}
		switch parts[1] {
		case "softoff":
			m.setIdle(true)
		case "softon":
			m.setIdle(false)
		default:
			return Reply(m.status(119, "ASC 0 set OK"), "", nil)
		}
		st := m.status(118, fmt.Sprintf("ASC 0 set info: success %s:%d", parts[1], now.Unix()+5))
		st.Status = "I"
		return Reply(st, "", nil)
	}
	return ErrorReply(14, "Invalid command", m.desc())
}

func (m *Miner) stats(elapsed int64, h float64) []byte {
	st := m.status(70, "CGMiner stats")
	if m.opts.Flavor == BMMiner {
		// Objects concatenated without a comma, as bmminer sends them.
		head := Section(map[string]any{"BMMiner": "1.0.0", "Miner": "49.0.1.3", "Type": m.opts.Model})
		body := Section(map[string]any{
			"STATS": 0, "ID": "BTM_SOC0", "Elapsed": elapsed, "GHS 5s": fmt.Sprintf("%.2f", h*1e3),
			"GHS av": m.opts.NominalTHs * 1e3, "Mode": 2, "rate_unit": "GH",
		})
		joined := append(head[:len(head)-1:len(head)-1], body[1:]...)
		return Reply(st, "STATS", joined)
	}
	work, soft := "In Work", 0
	if m.idle {
		work, soft = "In Idle", 4
	}
	mm := "Ver[Q-25052801_14a19a2] SYSTEMSTATU[Work: " + work + ", Hash Board: 1] Elapsed[" +
		strconv.FormatInt(elapsed, 10) + "] GHSspd[" + fmt.Sprintf("%.2f", h*1e3) + "] SoftOFF[" +
		strconv.Itoa(soft) + "] WORKMODE[0]"
	return Reply(st, "STATS", Section(map[string]any{
		"STATS": 0, "ID": "AVALON0", "Elapsed": elapsed, "MM ID0:Summary": "'STATS':{" + mm + "}",
	}, map[string]any{"STATS": 1, "ID": "POOL0", "Elapsed": elapsed}))
}
