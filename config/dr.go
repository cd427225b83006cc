package config

import (
	"crypto/ed25519"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/strictyaml"
)

// DemandResponse is the site's demand-response settings: where events
// arrive live, and the capacity committed to programs.
type DemandResponse struct {
	// Topic is the MQTT topic demand-response events are read from (one
	// JSON event a message, see package dr); default
	// <signal_prefix>/dr when the site has an mqtt section, "" without.
	Topic string
	// Programs are the programs the site has committed capacity to.
	Programs []Program
	// PublisherKey, when set, is the Ed25519 public key of the events'
	// publisher: each event must then come signed (publisherkey.go).
	PublisherKey ed25519.PublicKey
}

// Program is capacity committed to a demand-response program: CommittedKW
// of load the site must be able to shed within Within (ERCOT Load
// Resources: 10 minutes for ECRS, seconds for under-frequency relays). The
// dispatcher keeps at least that much load running in fleets whose
// transition to off takes at most Within, except while an event of any
// program is in force (that is when the capacity is used).
type Program struct {
	Name        string
	CommittedKW float64
	Within      time.Duration
}

// drSection is the demand_response section as written.
type drSection struct {
	Topic    string           `yaml:"topic"`
	Programs []programSection `yaml:"programs"`
	// PublisherKey is the events' publisher key (publisherkey.go).
	PublisherKey string `yaml:"publisher_key"`
}

type programSection struct {
	Name        string               `yaml:"name"`
	CommittedKW *float64             `yaml:"committed_kw"`
	Within      *strictyaml.Duration `yaml:"within"`
}

// SheddableKW is the load that fleet f can shed within d, with every device
// in the mode that sheds the most in time: devices × the largest drop from a
// supported mode to off whose transition takes at most d.
func SheddableKW(f *switchd.FleetSpec, d time.Duration) float64 {
	best := 0.0
	for _, m := range switchd.Modes[1:] {
		if f.Supports[m] && f.Transition[m][switchd.ModeOff] <= d {
			best = max(best, f.Modes[m].PowerKW-f.Modes[switchd.ModeOff].PowerKW)
		}
	}
	return float64(f.Count) * best
}

// validateDR fills s.DR; it runs after the fleets and the MQTT section.
func (f *siteFile) validateDR(l *strictyaml.Loader, s *Site) {
	if l.Has("mqtt") {
		s.DR.Topic = s.Daemon.MQTT.SignalPrefix + "/dr"
	}
	if f.DR == nil {
		return
	}
	topic(l, "demand_response.topic", f.DR.Topic, &s.DR.Topic, false)
	if t := s.DR.Topic; t != "" && l.Has("mqtt") {
		for _, sig := range switchd.AllSignals {
			if s.Daemon.Signals[sig].Topic == t {
				l.Errorf("demand_response.topic", "%q is also the topic of signal %s: events need their own", t, sig)
			}
		}
	}
	names := map[string]string{}
	committed := map[time.Duration]float64{}
	for i := range f.DR.Programs {
		p := &f.DR.Programs[i]
		path := strictyaml.IndexPath("demand_response.programs", i)
		prog := Program{Name: p.Name}
		switch {
		case !l.Given(strictyaml.JoinPath(path, "name"), p.Name):
			l.Errorf(strictyaml.JoinPath(path, "name"), "required")
		default:
			if prev, dup := names[p.Name]; dup {
				l.Errorf(strictyaml.JoinPath(path, "name"), "duplicate program %q (also %s)", p.Name, prev)
			}
			names[p.Name] = path
		}
		kwPath := strictyaml.JoinPath(path, "committed_kw")
		switch {
		case p.CommittedKW == nil:
			l.Errorf(kwPath, "required")
		case !(*p.CommittedKW > 0):
			l.Errorf(kwPath, "must be above 0 (got %s)", strictyaml.FmtFloat(*p.CommittedKW))
		case atMostKW(l, kwPath, *p.CommittedKW):
			prog.CommittedKW = *p.CommittedKW
		}
		wPath := strictyaml.JoinPath(path, "within")
		switch {
		case p.Within == nil:
			l.Errorf(wPath, "required: how fast the committed load must shed, e.g. 10m")
		case *p.Within < 0:
			l.Errorf(wPath, "must not be negative (got %s)", strictyaml.FmtDuration(time.Duration(*p.Within)))
		default:
			prog.Within = time.Duration(*p.Within)
		}
		if prog.CommittedKW > 0 && p.Within != nil {
			// Programs with a shorter or equal time draw on the same fast load.
			committed[prog.Within] += prog.CommittedKW
			need := 0.0
			for w, kw := range committed {
				if w <= prog.Within {
					need += kw
				}
			}
			can := 0.0
			for j := range s.Fleets {
				can += SheddableKW(&s.Fleets[j].Spec, prog.Within)
			}
			if need > can*(1+1e-9) {
				l.Errorf(kwPath, "%s kW committed to shed within %s, but the fleets can shed only %s kW that fast (their transitions to off)",
					strictyaml.FmtFloat(need), strictyaml.FmtDuration(prog.Within), strictyaml.FmtFloat(can))
			}
		}
		s.DR.Programs = append(s.DR.Programs, prog)
	}
}
