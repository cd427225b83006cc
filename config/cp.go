package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchd/switchd/internal/strictyaml"
)

// CoincidentPeak is a site's coincident-peak (CP) transmission charge: the
// grid operator finds the system's peak intervals of the season after the
// fact, and bills each site for the next year by its own load in them.
// ERCOT's 4CP takes the highest 15-minute interval of system load in each of
// June to September; a 12-peak, 30-minute variant (one peak in each month)
// is under review. Both are one Scheme apart.
//
// The annual charge is RateUSDPerKWYear × the site's average load (kW) over
// the PeaksPerSeason() peaks. The simulator charges each peak it finds its
// share, rate × kW / PeaksPerSeason(), so a trace that holds only some of a
// season's peaks is charged only for those.
type CoincidentPeak struct {
	// Scheme is the named scheme the settings come from ("4cp_15m",
	// "12cp_30m"), or empty when the file gives them key by key.
	Scheme string
	// PeaksPerMonth is how many peaks each listed month holds, on distinct
	// days (1 for ERCOT).
	PeaksPerMonth int
	// Months are the months that hold peaks, in the site's timezone,
	// ascending.
	Months []time.Month
	// Interval is the length of a peak interval; it divides an hour, and
	// intervals are aligned to the site's clock (:00, :15, ...).
	Interval         time.Duration
	RateUSDPerKWYear float64
}

// PeaksPerSeason is how many peaks a year holds: the divisor of the annual
// charge.
func (c *CoincidentPeak) PeaksPerSeason() int { return c.PeaksPerMonth * len(c.Months) }

// InMonth reports whether m holds peaks.
func (c *CoincidentPeak) InMonth(m time.Month) bool {
	for _, x := range c.Months {
		if x == m {
			return true
		}
	}
	return false
}

// String describes the settings in one phrase, e.g. "4cp_15m: 4 peaks a
// year (1 a month in Jun, Jul, Aug, Sep), 15m intervals, 55 USD/kW-year".
func (c *CoincidentPeak) String() string {
	var b strings.Builder
	if c.Scheme != "" {
		b.WriteString(c.Scheme + ": ")
	}
	names := make([]string, len(c.Months))
	for i, m := range c.Months {
		names[i] = m.String()[:3]
	}
	fmt.Fprintf(&b, "%d %s a year (%d a month in %s), %s intervals, %s USD/kW-year",
		c.PeaksPerSeason(), plural(c.PeaksPerSeason(), "peak", "peaks"), c.PeaksPerMonth,
		strings.Join(names, ", "), strictyaml.FmtDuration(c.Interval), strictyaml.FmtFloat(c.RateUSDPerKWYear))
	return b.String()
}

// cpSchemes are the named schemes: everything but the rate, which changes
// every year and is always written out.
var cpSchemes = []struct {
	name string
	cp   CoincidentPeak
}{
	// ERCOT 4CP today: the highest 15-minute interval of each of June to
	// September.
	{"4cp_15m", CoincidentPeak{PeaksPerMonth: 1, Months: []time.Month{6, 7, 8, 9}, Interval: 15 * time.Minute}},
	// The variant under review: the highest 30-minute interval of every
	// month.
	{"12cp_30m", CoincidentPeak{PeaksPerMonth: 1, Months: []time.Month{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Interval: 30 * time.Minute}},
}

// maxCPRateUSDPerKWYear bounds the rate: real CP charges run from tens to a
// few hundred USD per kW-year, so a larger figure is a rate per MW-year (or
// per kW-month) written in the wrong key.
const maxCPRateUSDPerKWYear = 1000

// cpSection is the coincident_peak section of a site file.
type cpSection struct {
	Scheme           string               `yaml:"scheme"`
	PeaksPerMonth    *int                 `yaml:"peaks_per_month"`
	Months           []int                `yaml:"months"`
	Interval         *strictyaml.Duration `yaml:"interval"`
	RateUSDPerKWYear *float64             `yaml:"rate_usd_per_kw_year"`
}

// validate checks the section and returns the settings; the result is only
// meaningful when l has no errors.
func (c *cpSection) validate(l *strictyaml.Loader, path string) *CoincidentPeak {
	out := &CoincidentPeak{PeaksPerMonth: 1}
	keyPath := func(k string) string { return strictyaml.JoinPath(path, k) }
	if c.Scheme != "" {
		known := make([]string, len(cpSchemes))
		found := false
		for i, s := range cpSchemes {
			known[i] = s.name
			if s.name == c.Scheme {
				*out = s.cp
				out.Months = append([]time.Month(nil), s.cp.Months...)
				out.Scheme = s.name
				found = true
			}
		}
		if !found {
			l.Errorf(keyPath("scheme"), "unknown scheme %q (want %s, or give peaks_per_month, months and interval instead)",
				c.Scheme, strings.Join(known, " or "))
		}
		// A scheme and a key it sets would leave the reader guessing which
		// one holds: one or the other.
		for _, k := range []string{"peaks_per_month", "months", "interval"} {
			if l.Has(keyPath(k)) {
				l.Errorf(keyPath(k), "set by scheme %s already; give either scheme or the keys, not both", c.Scheme)
			}
		}
	} else {
		if c.PeaksPerMonth != nil {
			switch n := *c.PeaksPerMonth; {
			case n < 1 || n > 28:
				// Peaks fall on distinct days: a month holds 28 at least.
				l.Errorf(keyPath("peaks_per_month"), "must be from 1 to 28 (got %d)", n)
			default:
				out.PeaksPerMonth = n
			}
		}
		out.Months = validateCPMonths(l, keyPath("months"), c.Months)
		switch {
		case c.Interval == nil:
			l.Errorf(keyPath("interval"), "required (15m for ERCOT 4CP), or give a scheme (4cp_15m or 12cp_30m)")
		default:
			d := time.Duration(*c.Interval)
			if d < time.Minute || d > time.Hour || time.Hour%d != 0 {
				l.Errorf(keyPath("interval"), "must divide an hour, from 1m to 1h, such as 15m or 30m (got %s)", strictyaml.FmtDuration(d))
			} else {
				out.Interval = d
			}
		}
	}
	switch r := c.RateUSDPerKWYear; {
	case r == nil:
		l.Errorf(keyPath("rate_usd_per_kw_year"), "required (USD per kW-year of average peak load; ERCOT's runs about 50 to 150)")
	case *r <= 0:
		l.Errorf(keyPath("rate_usd_per_kw_year"), "must be positive (got %s)", strictyaml.FmtFloat(*r))
	case *r > maxCPRateUSDPerKWYear:
		l.Errorf(keyPath("rate_usd_per_kw_year"), "must be at most %d USD/kW-year (got %s: a rate per MW-year?)",
			maxCPRateUSDPerKWYear, strictyaml.FmtFloat(*r))
	default:
		out.RateUSDPerKWYear = *r
	}
	return out
}

// validateCPMonths checks a list of month numbers and returns them sorted.
func validateCPMonths(l *strictyaml.Loader, path string, months []int) []time.Month {
	if len(months) == 0 {
		l.Errorf(path, "required: the months that hold peaks, as numbers (6, 7, 8, 9 for June to September)")
		return nil
	}
	var seen [13]bool
	for i, m := range months {
		p := strictyaml.IndexPath(path, i)
		switch {
		case m < 1 || m > 12:
			l.Errorf(p, "must be a month number from 1 to 12 (got %d)", m)
		case seen[m]:
			l.Errorf(p, "month %d is listed twice", m)
		default:
			seen[m] = true
		}
	}
	var out []time.Month
	for m := 1; m <= 12; m++ {
		if seen[m] {
			out = append(out, time.Month(m))
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
