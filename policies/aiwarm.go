package policies

import (
	"time"

	"github.com/switchd/switchd/internal/strictyaml"
)

// AIWarm keeps GPUs loaded for AI demand that may come back, so that a
// rise is served at once instead of after a model load (a GPU still
// loading serves nothing). The controller's planner dispatches inference
// for the highest ai_demand received in the last Hold, plus HeadroomGPUs;
// the GPUs kept warm beyond the present demand earn nothing, draw their
// inference power and count under the site cap. The zero value keeps
// nothing warm: inference follows ai_demand exactly.
type AIWarm struct {
	Hold         time.Duration
	HeadroomGPUs int
}

// MaxAIWarmHold bounds ai_warm.hold: a day of demand history.
const MaxAIWarmHold = 24 * time.Hour

// aiWarmSection is the policy file's ai_warm.
type aiWarmSection struct {
	Hold         *strictyaml.Duration `yaml:"hold"`
	HeadroomGPUs *int                 `yaml:"headroom_gpus"`
}

func (s *aiWarmSection) validate(l *strictyaml.Loader, p *Policy) {
	if s.Hold != nil {
		switch d := time.Duration(*s.Hold); {
		case d < 0:
			l.Errorf("ai_warm.hold", "must not be negative (got %s)", strictyaml.FmtDuration(d))
		case d > MaxAIWarmHold:
			l.Errorf("ai_warm.hold", "must be at most %s (got %s)", strictyaml.FmtDuration(MaxAIWarmHold), strictyaml.FmtDuration(d))
		default:
			p.AIWarm.Hold = d
		}
	}
	if h := s.HeadroomGPUs; h != nil {
		if *h < 0 {
			l.Errorf("ai_warm.headroom_gpus", "must not be negative (got %d)", *h)
		} else {
			p.AIWarm.HeadroomGPUs = *h
		}
	}
}
