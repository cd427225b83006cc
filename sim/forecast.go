package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/trace"
)

// ForecastHorizon is how far ahead each simulated price forecast reaches
// from its issue: issued at the site's midnight, it covers that day and the
// next, so the controller always sees 24 to 48 hours ahead, as with a
// day-ahead market result published the day before.
const ForecastHorizon = 48 * time.Hour

// ForecastColumn is the trace column a real price forecast is read from
// when --forecast is not given: the forecast (for example the day-ahead
// price) of each row's interval, USD/MWh.
const ForecastColumn = "price_forecast_usd_mwh"

// ForecastOptions say which price forecast the policy run is given
// (`switchd sim --forecast`). The baselines never get one, and the oracle
// has perfect foresight anyway, so it stays an upper bound.
type ForecastOptions struct {
	// Spec is the flag as given: "noisy:SIGMA" or "column:NAME".
	Spec string
	// Sigma, for a synthetic forecast, is the standard deviation of the
	// log of the noise factor each interval's actual price is multiplied
	// by (see noisyPrice).
	Sigma float64
	// Column, when set, names a trace column holding a real forecast (a
	// day-ahead price for each row's interval).
	Column string
	// Seed makes the synthetic noise reproducible.
	Seed uint64
}

// ParseForecastFlag parses --forecast: "noisy:SIGMA" (a synthetic
// forecast: actual prices with lognormal noise, SIGMA ≥ 0, e.g. 0.1; 0 is
// perfect foresight over the horizon), "column:NAME" (the trace file's
// column NAME, e.g. a day-ahead price) or "none" (nil: no forecast, even
// from a ForecastColumn).
func ParseForecastFlag(s string) (*ForecastOptions, error) {
	if s == "none" {
		return nil, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	switch {
	case !ok || arg == "":
		return nil, fmt.Errorf("--forecast %q: want noisy:SIGMA (e.g. noisy:0.1), column:NAME or none", s)
	case kind == "noisy":
		sigma, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(sigma >= 0) || sigma > 3 {
			return nil, fmt.Errorf("--forecast %q: SIGMA must be a number from 0 to 3", s)
		}
		return &ForecastOptions{Spec: s, Sigma: sigma, Seed: 1}, nil
	case kind == "column":
		return &ForecastOptions{Spec: s, Column: arg}, nil
	}
	return nil, fmt.Errorf("--forecast %q: unknown kind %q (want noisy or column)", s, kind)
}

// ForecastReport says what forecast the policy run had, so a result made
// with a synthetic one is labelled as such.
type ForecastReport struct {
	Source       string  `json:"source"`
	Synthetic    bool    `json:"synthetic"`
	Sigma        float64 `json:"sigma,omitempty"`
	HorizonHours float64 `json:"horizon_hours"`
	Issues       int     `json:"issues"`
	Description  string  `json:"description"`
	// The same policy replayed without the forecast, and what the forecast
	// gained over it: GapClosed is the gain over the gap between that run
	// and the oracle (null when there is no gap).
	ProfitWithoutUSD     float64  `json:"profit_without_usd"`
	OracleCaptureWithout *float64 `json:"oracle_capture_without"`
	GainUSD              float64  `json:"gain_usd"`
	GapClosed            *float64 `json:"gap_closed"`
}

// compareWithout fills the report's comparison with a run of the same
// policy without the forecast, whose profit is without, against the oracle's.
func (r *ForecastReport) compareWithout(with, without, oracle float64) {
	r.ProfitWithoutUSD, r.GainUSD = without, with-without
	if oracle > 0 {
		c := without / oracle
		r.OracleCaptureWithout = &c
	}
	if gap := oracle - without; gap > 0 {
		g := r.GainUSD / gap
		r.GapClosed = &g
	}
}

// writeText writes the forecast's lines of the text report.
func (r *ForecastReport) writeText(b *strings.Builder, withCapture *float64) {
	fmt.Fprintf(b, "price forecast (policy run only): %s; %d issued\n", r.Description, r.Issues)
	fmt.Fprintf(b, "       gain over the same policy without it: %+.0f USD (profit %.0f without)", r.GainUSD, r.ProfitWithoutUSD)
	if withCapture != nil && r.OracleCaptureWithout != nil {
		fmt.Fprintf(b, "; oracle capture %.1f%% without, %.1f%% with", 100**r.OracleCaptureWithout, 100**withCapture)
	}
	if r.GapClosed != nil {
		fmt.Fprintf(b, "; %.0f%% of the gap to the oracle closed", 100**r.GapClosed)
	}
	b.WriteString("\n")
}

// ForecastFeed issues the policy run's forecasts: one at the trace's start
// and one at every midnight of the site's time zone after it, each covering
// ForecastHorizon from its issue in intervals of the trace's step.
type ForecastFeed struct {
	opts    *ForecastOptions
	series  *trace.Series
	column  *trace.ValueColumn // a real forecast column; nil for synthetic
	loc     *time.Location
	step    time.Duration
	next    time.Time // next issue time
	end     time.Time // the trace's end
	issues  int
	scratch []float64
}

// NewForecastFeed returns the feed for o over series, or an error naming a
// bad column. files are the trace files (a column is read from the first
// that has it).
func NewForecastFeed(o *ForecastOptions, series *trace.Series, files []string, loc *time.Location) (*ForecastFeed, error) {
	if series.Len() < 2 {
		return nil, fmt.Errorf("--forecast: the trace needs at least two rows")
	}
	if loc == nil {
		loc = time.UTC
	}
	f := &ForecastFeed{opts: o, series: series, loc: loc, step: series.Time(1).Sub(series.Time(0)),
		next: series.Time(0), end: series.End()}
	if o.Column != "" {
		var errs []string
		for _, file := range files {
			c, err := trace.ReadColumn(file, o.Column)
			if err == nil {
				f.column = c
				break
			}
			errs = append(errs, err.Error())
		}
		if f.column == nil {
			return nil, fmt.Errorf("--forecast %s: %s", o.Spec, strings.Join(errs, "; "))
		}
	}
	return f, nil
}

// Due returns the forecast issued at or before now that has not been
// returned yet (the latest, when several are due), or nil.
func (f *ForecastFeed) Due(now time.Time) *controller.Forecast {
	var issue time.Time
	for !f.next.After(now) && f.next.Before(f.end) {
		issue = f.next
		y, m, d := f.next.In(f.loc).Date()
		f.next = time.Date(y, m, d+1, 0, 0, 0, 0, f.loc)
	}
	if issue.IsZero() {
		return nil
	}
	return f.build(issue)
}

// build makes the forecast issued at issue.
func (f *ForecastFeed) build(issue time.Time) *controller.Forecast {
	n := int(ForecastHorizon / f.step)
	prices := make([]float64, 0, n)
	for k := range n {
		t := issue.Add(time.Duration(k) * f.step)
		p, ok := f.priceAt(t)
		if !ok {
			break
		}
		prices = append(prices, p)
	}
	if len(prices) == 0 {
		return nil
	}
	f.issues++
	return &controller.Forecast{Issued: issue, Start: issue, Interval: f.step, PricesUSDPerMWh: prices, Source: f.opts.Spec}
}

// priceAt is the forecast price of the interval starting at t.
func (f *ForecastFeed) priceAt(t time.Time) (float64, bool) {
	if !t.Before(f.end) {
		return 0, false
	}
	if f.column != nil {
		return f.column.At(t)
	}
	i := f.series.Index(t)
	if i < 0 {
		return 0, false
	}
	p, ok := f.series.Value(i, switchd.SignalPrice)
	if !ok {
		return 0, false
	}
	return noisyPrice(p, f.opts.Sigma, f.opts.Seed, t), true
}

// noisyPrice is the synthetic forecast of an interval starting at t whose
// actual price was p: p × exp(σz − σ²/2), z standard normal. The factor's
// mean is one (the forecast is unbiased), its median exp(−σ²/2); a negative
// price stays negative. z depends only on the seed and t, so every issue
// that covers an interval forecasts it alike. Spikes are kept in place and
// only their size is blurred: this is kinder than a real day-ahead market,
// which often misses real-time spikes altogether.
func noisyPrice(p, sigma float64, seed uint64, t time.Time) float64 {
	if sigma == 0 {
		return p
	}
	z := rand.New(rand.NewPCG(seed, uint64(t.UnixNano()))).NormFloat64()
	return p * math.Exp(sigma*z-sigma*sigma/2)
}

// Report describes the feed for the report.
func (f *ForecastFeed) Report() *ForecastReport {
	r := &ForecastReport{Source: f.opts.Spec, HorizonHours: ForecastHorizon.Hours(), Issues: f.issues}
	if f.column != nil {
		r.Description = fmt.Sprintf("trace column %s, issued at each midnight (site time) for the next %s", f.opts.Column, strconv.FormatFloat(ForecastHorizon.Hours(), 'f', -1, 64)+" h")
		return r
	}
	r.Synthetic, r.Sigma = true, f.opts.Sigma
	r.Description = fmt.Sprintf("SYNTHETIC: the trace's actual prices × lognormal noise (σ=%g of the log, mean 1), issued at each midnight (site time) for the next %s",
		f.opts.Sigma, strconv.FormatFloat(ForecastHorizon.Hours(), 'f', -1, 64)+" h")
	return r
}

// forecastFromTrace returns the forecast a trace carries in a
// ForecastColumn (the first file that has one), or nil.
func forecastFromTrace(files []string) (*ForecastOptions, string, error) {
	for _, f := range files {
		ok, err := trace.HasColumn(f, ForecastColumn)
		if err != nil {
			return nil, "", err
		}
		if ok {
			return &ForecastOptions{Spec: "column:" + ForecastColumn, Column: ForecastColumn}, f, nil
		}
	}
	return nil, "", nil
}
