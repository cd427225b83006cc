// Package fakes starts fake devices, each speaking its driver's real wire
// protocol, at a site's loopback device addresses: `switchd run` with
// demo.fake_devices runs a whole site on one machine, and end-to-end tests
// drive the built binary against them. Every address must be on loopback:
// a fake never listens anywhere else.
//
// It imports the fakes (never the drivers they stand in for).
package fakes

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/antminer/antminerfake"
	"github.com/switchd/switchd/drivers/bosminer/bosminerfake"
	"github.com/switchd/switchd/drivers/cgminer/cgminerfake"
	"github.com/switchd/switchd/drivers/inferencefake"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
	"github.com/switchd/switchd/drivers/whatsminer/whatsminerfake"
)

// Fleet is one fleet's devices to fake.
type Fleet struct {
	Driver  string
	Devices []switchd.Device
	// Password is what the fakes accept (the fleet's configured one).
	Password string
	// Ramp is how long a waking device takes to reach full output; keep
	// it below the fleet's transition time.
	Ramp time.Duration
	// Running starts the devices working (mining or serving) rather than
	// asleep.
	Running bool
}

// Set is a running set of fakes.
type Set struct {
	closers []func()
	byAddr  map[string]any
}

// Supported reports whether a driver's devices can be faked.
func Supported(driver string) bool {
	switch driver {
	case "luxos", "whatsminer", "bosminer", "antminer", "cgminer", "vllm", "http":
		return true
	}
	return false
}

// Start starts a fake at every device of every fleet; on error, those
// started are closed again.
func Start(fleets []Fleet) (*Set, error) {
	s := &Set{byAddr: map[string]any{}}
	for _, f := range fleets {
		for _, d := range f.Devices {
			if err := s.start(f, d); err != nil {
				s.Close()
				return nil, fmt.Errorf("fake %s at %s: %w", f.Driver, d.Addr, err)
			}
		}
	}
	return s, nil
}

// withPort adds a default port and checks the host is on loopback.
func withPort(addr, port string) (string, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		host, p = strings.Trim(addr, "[]"), port
	}
	if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return "", errors.New("not a loopback address: fakes listen on 127.0.0.0/8 only")
	}
	return net.JoinHostPort(host, p), nil
}

func (s *Set) start(f Fleet, d switchd.Device) error {
	switch f.Driver {
	case "luxos":
		addr, err := withPort(d.Addr, "4028")
		if err != nil {
			return err
		}
		m := luxosfake.New(luxosfake.Options{Asleep: !f.Running, WakeRamp: f.Ramp, ProfileRamp: f.Ramp, RebootDelay: 10 * time.Second})
		if err := m.Start(addr); err != nil {
			return err
		}
		s.add(d.Addr, m, func() { _ = m.Close() })
	case "whatsminer":
		addr, err := withPort(d.Addr, "4028")
		if err != nil {
			return err
		}
		ramp := f.Ramp
		if ramp == 0 {
			ramp = -1 // instant
		}
		m := whatsminerfake.New(whatsminerfake.Options{Password: f.Password, Off: !f.Running, Ramp: ramp, RebootDelay: 10 * time.Second})
		if err := m.Start(addr); err != nil {
			return err
		}
		s.add(d.Addr, m, m.Close)
	case "bosminer":
		addr, err := withPort(d.Addr, "4028")
		if err != nil {
			return err
		}
		m := bosminerfake.New(bosminerfake.Options{Ramp: f.Ramp, RebootFor: 10 * time.Second})
		m.SetPaused(!f.Running)
		if err := m.Start(addr); err != nil {
			return err
		}
		s.add(d.Addr, m, m.Close)
	case "cgminer":
		addr, err := withPort(d.Addr, "4028")
		if err != nil {
			return err
		}
		m := cgminerfake.New(cgminerfake.Options{})
		if err := m.Start(addr); err != nil {
			return err
		}
		s.add(d.Addr, m, m.Close)
	case "antminer":
		// The device address names the web UI (default port 80); the
		// cgminer API is on the same host at 4028.
		web, err := withPort(d.Addr, "80")
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(web)
		mode := "1"
		if f.Running {
			mode = "0"
		}
		m := antminerfake.New(antminerfake.Options{Password: f.Password, Mode: mode, Ramp: f.Ramp, RebootFor: 10 * time.Second})
		if err := m.Start(web, net.JoinHostPort(host, "4028")); err != nil {
			return err
		}
		s.add(d.Addr, m, m.Close)
	case "vllm", "http":
		addr, err := withPort(d.Addr, "8000")
		if err != nil {
			return err
		}
		srv := inferencefake.New(inferencefake.Options{Token: f.Password, Sleeping: !f.Running, ReadyDelay: f.Ramp})
		if err := srv.Start(addr); err != nil {
			return err
		}
		s.add(d.Addr, srv, srv.Close)
	default:
		return fmt.Errorf("no fake for driver %q", f.Driver)
	}
	return nil
}

func (s *Set) add(addr string, fake any, closer func()) {
	s.byAddr[addr] = fake
	s.closers = append(s.closers, closer)
}

// Len is the number of fakes running.
func (s *Set) Len() int { return len(s.closers) }

// Get returns the fake at a device address (one of the fake packages'
// types), or nil.
func (s *Set) Get(addr string) any { return s.byAddr[addr] }

// Close stops every fake.
func (s *Set) Close() {
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}
