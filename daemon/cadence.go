package daemon

import (
	"time"

	"github.com/switchd/switchd"
	"go.uber.org/zap"
)

// cadenceWatch warns, once per signal, when a signal arrives more slowly
// than its max_age: two intervals in a row between samples longer than the
// max age mean the feed's cadence exceeds it (one alone may be an outage),
// so the signal goes stale between samples and its fail-safe applies.
// Used by the loop only.
type cadenceWatch struct {
	last   [switchd.NumSignals]time.Time // time of the previous sample
	slow   [switchd.NumSignals]bool      // the previous interval was too long
	warned [switchd.NumSignals]bool
}

// observe notes sample s; maxAge is the site's max age per signal.
func (c *cadenceWatch) observe(s switchd.Sample, maxAge *[switchd.NumSignals]time.Duration, log *zap.Logger) {
	sig := s.Signal
	if int(sig) >= switchd.NumSignals {
		return
	}
	prev := c.last[sig]
	if !s.Time.After(prev) {
		return // a duplicate or an older sample
	}
	c.last[sig] = s.Time
	if prev.IsZero() || maxAge[sig] <= 0 {
		return
	}
	gap := s.Time.Sub(prev)
	slow := gap > maxAge[sig]
	if slow && c.slow[sig] && !c.warned[sig] {
		c.warned[sig] = true
		log.Warn("signal cadence exceeds max_age",
			zap.String("signal", sig.String()), zap.Duration("interval", gap), zap.Duration("max_age", maxAge[sig]))
	}
	c.slow[sig] = slow
}
