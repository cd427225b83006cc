package sim

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/strictyaml"
	"github.com/switchd/switchd/trace"
)

// Coincident-peak charges.
//
// The grid operator finds the season's system peaks after the fact and bills
// a site for the following year by its load in them. The simulator does the
// same with the trace: it cuts the trace into the site's peak intervals
// (coincident_peak.interval, aligned to the site's clock), averages the
// trace's grid_load_mw over each, takes in every listed month the highest
// intervals (peaks_per_month of them, on distinct days), and charges every
// run
//
//	charge = rate_usd_per_kw_year × Σ_peaks site_kW(peak) / peaks_per_season
//
// where site_kW(peak) is the run's average draw over the peak interval and
// peaks_per_season = peaks_per_month × len(months). Over a whole season that
// is the average peak load times the annual rate, as ERCOT allocates 4CP; a
// trace that holds only some of the season's peaks is charged only their
// share (one August peak of ERCOT's four: a quarter of the annual rate).
//
// Cadence. Rows finer than the interval are averaged over it (time-weighted);
// rows coarser than it give every interval inside a row the row's load, so
// they tie. Ties are common on real data: ERCOT publishes system load
// hourly, so the four quarter-hours of the peak hour carry the same load and
// nobody can tell which of them was the peak. The simulator then charges
// each run its average draw over all the tied intervals of that day, not
// the draw in whichever came first (a policy could otherwise dodge the
// charge by being off for a quarter-hour that merely sorts first). A run's
// draw is metered per trace row, so within a row coarser than the interval
// the row's average draw is used.
//
// Only intervals fully covered by grid load count: a partial one at the
// trace's edges or in a gap is left out, and the report says how many.

// CPReport is the trace's coincident peaks and how the charge was found.
type CPReport struct {
	Settings       string `json:"settings"` // e.g. "4cp_15m: 4 peaks a year (...)"
	Scheme         string `json:"scheme,omitempty"`
	PeaksPerMonth  int    `json:"peaks_per_month"`
	Months         []int  `json:"months"`
	IntervalMin    int    `json:"interval_minutes"`
	PeaksPerSeason int    `json:"peaks_per_season"`
	// RateUSDPerKWYear is the annual rate per kW of average peak load.
	RateUSDPerKWYear float64 `json:"rate_usd_per_kw_year"`
	// Computed is false when the trace cannot say where the peaks were (no
	// grid load, or none in the listed months); Reason says why, and no run
	// is charged.
	Computed bool     `json:"computed"`
	Reason   string   `json:"reason,omitempty"`
	Peaks    []CPPeak `json:"peaks"`
	Notes    []string `json:"notes,omitempty"`
	// Oracle says how the perfect-foresight bound treats the charge.
	Oracle string `json:"oracle"`
	// LeastChargeUSD is the charge at the least draw any run can have in
	// the peaks (every device in its lowest-power mode), and
	// OracleNetBoundUSD the oracle's bound less it: no run's profit net of
	// the charge can exceed it. Nil when no charge was computed.
	LeastChargeUSD    *float64 `json:"least_charge_usd,omitempty"`
	OracleNetBoundUSD *float64 `json:"oracle_net_bound_usd,omitempty"`
}

// CPPeak is one peak found in the trace.
type CPPeak struct {
	Month string    `json:"month"` // 2024-08, in the site's timezone
	Start time.Time `json:"start"` // first tied interval
	End   time.Time `json:"end"`   // end of the last tied interval
	// Intervals is how many intervals tie for the day's highest grid load
	// (more than one when the load data is coarser than the interval).
	Intervals  int     `json:"intervals"`
	GridLoadMW float64 `json:"grid_load_mw"`
	// MonthCoverage is the share of the month the trace gives a grid load
	// for: below 1, the peak is only the highest of the part covered.
	MonthCoverage float64 `json:"month_coverage"`
}

// RunCP is one run's coincident-peak charge.
type RunCP struct {
	ChargeUSD     float64   `json:"charge_usd"`
	ProfitNetUSD  float64   `json:"profit_net_usd"` // profit − charge
	AvoidedUSD    float64   `json:"charge_avoided_usd"`
	AvgPeakLoadKW float64   `json:"avg_peak_load_kw"`
	PeakLoadKW    []float64 `json:"peak_load_kw"` // per peak, in the order of coincident_peak.peaks
}

// cpOracleNote is what the report says of the oracle and the charge.
const cpOracleNote = "the perfect-foresight bound ignores coincident-peak charges; since profit net of the charge ≤ profit ≤ bound, it still bounds every run's net profit, and so does the bound less the least charge any run can pay (every device in its lowest-power mode in each peak)"

// cpStudy is the coincident peaks of one trace for one site, and the spans
// each run's draw is metered over.
type cpStudy struct {
	cfg   *config.CoincidentPeak
	rep   CPReport
	spans []cpSpan // the peaks' intervals, by start
}

// cpSpan is one peak interval.
type cpSpan struct {
	start, end time.Time
	peak       int // index in rep.Peaks
}

// cpBucket is one peak-interval candidate: grid load integrated over the part
// of it the trace covers.
type cpBucket struct {
	start   time.Time
	mwSec   float64 // Σ MW × seconds
	covered time.Duration
}

func (b *cpBucket) loadMW() float64 { return b.mwSec / b.covered.Seconds() }

// cpMonthKey is a calendar month in the site's timezone.
type cpMonthKey struct {
	year  int
	month time.Month
}

// newCPStudy finds the coincident peaks of s; nil when the site has no
// coincident_peak section.
func newCPStudy(cfg *config.CoincidentPeak, loc *time.Location, s *trace.Series) *cpStudy {
	if cfg == nil {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	st := &cpStudy{cfg: cfg}
	r := &st.rep
	r.Settings, r.Scheme, r.PeaksPerMonth = cfg.String(), cfg.Scheme, cfg.PeaksPerMonth
	for _, m := range cfg.Months {
		r.Months = append(r.Months, int(m))
	}
	r.IntervalMin = int(cfg.Interval / time.Minute)
	r.PeaksPerSeason, r.RateUSDPerKWYear = cfg.PeaksPerSeason(), cfg.RateUSDPerKWYear
	r.Oracle = cpOracleNote
	r.Peaks = []CPPeak{}

	if !slices.Contains(s.Signals(), switchd.SignalGridLoad) {
		r.Reason = "the trace has no grid_load_mw column, so its system peaks are unknown: no coincident-peak charge computed"
		return st
	}
	buckets, covered := cpBuckets(cfg, loc, s)
	byMonth := map[cpMonthKey][]cpBucket{}
	var months []cpMonthKey
	partial := 0
	for _, b := range buckets {
		if b.covered < cfg.Interval {
			partial++
			continue
		}
		t := b.start.In(loc)
		k := cpMonthKey{t.Year(), t.Month()}
		if _, ok := byMonth[k]; !ok {
			months = append(months, k)
		}
		byMonth[k] = append(byMonth[k], b)
	}
	if len(months) == 0 {
		r.Reason = fmt.Sprintf("the trace has no %s interval with a grid load in the peak months (%s): no coincident-peak charge computed",
			cfgInterval(cfg), monthNames(cfg.Months))
		return st
	}
	r.Computed = true
	for _, k := range months {
		cov := covered[k].Seconds() / monthLength(k, loc).Seconds()
		for _, day := range cpTopDays(byMonth[k], cfg.PeaksPerMonth, loc) {
			p := CPPeak{
				Month: fmt.Sprintf("%04d-%02d", k.year, int(k.month)), GridLoadMW: day[0].loadMW(),
				Start: day[0].start.In(loc), End: day[len(day)-1].start.Add(cfg.Interval).In(loc),
				Intervals: len(day), MonthCoverage: cov,
			}
			for _, b := range day {
				st.spans = append(st.spans, cpSpan{start: b.start, end: b.start.Add(cfg.Interval), peak: len(r.Peaks)})
			}
			r.Peaks = append(r.Peaks, p)
		}
	}
	slices.SortFunc(st.spans, func(a, b cpSpan) int { return a.start.Compare(b.start) })
	st.notes(partial, months, covered, loc, s)
	return st
}

// notes explains what the figures rest on.
func (st *cpStudy) notes(partial int, months []cpMonthKey, covered map[cpMonthKey]time.Duration, loc *time.Location, s *trace.Series) {
	r, cfg := &st.rep, st.cfg
	add := func(format string, args ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, args...)) }
	if step := minStep(s); step > 0 && step < cfg.Interval {
		add("grid load averaged over each %s interval from the trace's %s rows", cfgInterval(cfg), strictyaml.FmtDuration(step))
	}
	tied := 0
	for _, p := range r.Peaks {
		if p.Intervals > 1 {
			tied++
		}
	}
	if tied > 0 {
		add("%d of %d peaks span several %s intervals of equal grid load (load data coarser than the interval, e.g. ERCOT's hourly load): the data cannot tell which was the system peak, so each run is charged its average draw over all of them",
			tied, len(r.Peaks), cfgInterval(cfg))
	}
	for _, k := range months {
		if c := covered[k].Seconds() / monthLength(k, loc).Seconds(); c < 1-1e-9 {
			add("%04d-%02d: the trace gives grid load for %.0f%% of the month; its peak is the highest of that part only", k.year, int(k.month), 100*c)
		}
	}
	if partial > 0 {
		add("%d %s intervals in the peak months are only partly covered by grid load (trace edges or gaps) and were left out",
			partial, cfgInterval(cfg))
	}
	// How many of each season's peaks the trace holds.
	perYear := map[int]int{}
	var years []int
	for _, p := range r.Peaks {
		y := p.Start.Year()
		if perYear[y] == 0 {
			years = append(years, y)
		}
		perYear[y]++
	}
	for _, y := range years {
		if n := perYear[y]; n < cfg.PeaksPerSeason() {
			add("%d of the %d peaks of %d are in the trace: each run is charged their share (%d/%d of the annual rate), not a full year's",
				n, cfg.PeaksPerSeason(), y, n, cfg.PeaksPerSeason())
		}
	}
}

// cpBuckets integrates the series' grid load over the site's peak
// intervals in the listed months, and sums per month how long a grid load
// is known.
func cpBuckets(cfg *config.CoincidentPeak, loc *time.Location, s *trace.Series) ([]cpBucket, map[cpMonthKey]time.Duration) {
	var out []cpBucket
	covered := map[cpMonthKey]time.Duration{}
	n := s.Len()
	for i := range n {
		v, ok := s.Value(i, switchd.SignalGridLoad)
		if !ok {
			continue
		}
		t, end := s.Time(i), s.End()
		if i+1 < n {
			end = s.Time(i + 1)
		}
		for t.Before(end) {
			bs := cpIntervalStart(t, cfg.Interval, loc)
			be := bs.Add(cfg.Interval)
			if end.Before(be) {
				be = end
			}
			seg := be.Sub(t)
			lt := bs.In(loc)
			if cfg.InMonth(lt.Month()) {
				if len(out) == 0 || !out[len(out)-1].start.Equal(bs) {
					out = append(out, cpBucket{start: bs})
				}
				b := &out[len(out)-1]
				b.mwSec += v * seg.Seconds()
				b.covered += seg
				covered[cpMonthKey{lt.Year(), lt.Month()}] += seg
			}
			t = t.Add(seg)
		}
	}
	return out, covered
}

// cpIntervalStart is the start of the peak interval holding t: intervals
// divide the hour and are aligned to the site's clock (:00, :15, :30, :45),
// which also holds for zones offset from UTC by a part of an hour.
func cpIntervalStart(t time.Time, interval time.Duration, loc *time.Location) time.Time {
	lt := t.In(loc)
	intoHour := time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	return t.Add(-(intoHour % interval))
}

// cpTopDays returns, for the n days of a month with the highest interval of
// grid load, each day's intervals tied at that day's highest load, the days
// ordered by time. Equal days go earliest first.
func cpTopDays(bs []cpBucket, n int, loc *time.Location) [][]cpBucket {
	type day struct {
		key  string
		max  float64
		tied []cpBucket
	}
	var days []*day
	idx := map[string]*day{}
	for _, b := range bs {
		k := b.start.In(loc).Format(time.DateOnly)
		d := idx[k]
		if d == nil {
			d = &day{key: k}
			idx[k] = d
			days = append(days, d)
		}
		switch v := b.loadMW(); {
		case len(d.tied) > 0 && cpSame(v, d.max):
			d.tied = append(d.tied, b)
		case len(d.tied) == 0 || v > d.max:
			d.max, d.tied = v, append(d.tied[:0], b)
		}
	}
	// Highest first; the stable sort keeps equal days in time order.
	slices.SortStableFunc(days, func(a, b *day) int { return cmp.Compare(b.max, a.max) })
	days = days[:min(n, len(days))]
	slices.SortFunc(days, func(a, b *day) int { return strings.Compare(a.key, b.key) })
	out := make([][]cpBucket, len(days))
	for i, d := range days {
		out[i] = d.tied
	}
	return out
}

// cpSame reports whether two interval loads are equal up to rounding: the
// same hourly value averaged over differently split intervals may differ in
// the last bits.
func cpSame(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// monthLength is the length of a calendar month in loc (DST included).
func monthLength(k cpMonthKey, loc *time.Location) time.Duration {
	start := time.Date(k.year, k.month, 1, 0, 0, 0, 0, loc)
	return start.AddDate(0, 1, 0).Sub(start)
}

// minStep is the shortest step between the series' rows, or 0 for one row.
func minStep(s *trace.Series) time.Duration {
	var m time.Duration
	for i := 1; i < s.Len(); i++ {
		if d := s.Time(i).Sub(s.Time(i - 1)); m == 0 || d < m {
			m = d
		}
	}
	return m
}

func cfgInterval(cfg *config.CoincidentPeak) string { return strictyaml.FmtDuration(cfg.Interval) }

func monthNames(ms []time.Month) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.String()[:3]
	}
	return strings.Join(names, ", ")
}

// cpMeter measures one run's average draw in each peak interval from the
// run's interval records, and passes each record on to next.
type cpMeter struct {
	st   *cpStudy
	kWs  []float64 // per span: Σ kW × seconds
	secs []float64
	i    int // first span that may still overlap a record
	next func(*IntervalRecord)
}

// meter returns a meter for one run; on a nil study it meters nothing.
func (st *cpStudy) meter(next func(*IntervalRecord)) *cpMeter {
	m := &cpMeter{st: st, next: next}
	if st != nil {
		m.kWs, m.secs = make([]float64, len(st.spans)), make([]float64, len(st.spans))
	}
	return m
}

// onInterval is the run's OnInterval hook, or next alone when nothing is
// metered (so a run without peaks pays nothing for the hook).
func (m *cpMeter) onInterval() func(*IntervalRecord) {
	if m.st == nil || len(m.st.spans) == 0 {
		return m.next
	}
	return m.record
}

func (m *cpMeter) record(r *IntervalRecord) {
	spans := m.st.spans
	for m.i < len(spans) && !spans[m.i].end.After(r.Start) {
		m.i++
	}
	for j := m.i; j < len(spans) && spans[j].start.Before(r.End); j++ {
		from, to := spans[j].start, spans[j].end
		if r.Start.After(from) {
			from = r.Start
		}
		if r.End.Before(to) {
			to = r.End
		}
		if ov := to.Sub(from).Seconds(); ov > 0 {
			m.kWs[j] += r.PowerKW * ov
			m.secs[j] += ov
		}
	}
	if m.next != nil {
		m.next(r)
	}
}

// result is the run's charge; profit is the run's profit before it. Nil
// when no charge could be computed.
func (m *cpMeter) result(profit float64) *RunCP {
	st := m.st
	if st == nil || !st.rep.Computed {
		return nil
	}
	n := len(st.rep.Peaks)
	kws, secs := make([]float64, n), make([]float64, n)
	for j, sp := range st.spans {
		kws[sp.peak] += m.kWs[j]
		secs[sp.peak] += m.secs[j]
	}
	rc := &RunCP{PeakLoadKW: make([]float64, n)}
	sum := 0.0
	for p := range n {
		if secs[p] > 0 {
			rc.PeakLoadKW[p] = kws[p] / secs[p]
		}
		sum += rc.PeakLoadKW[p]
	}
	rc.AvgPeakLoadKW = sum / float64(n)
	rc.ChargeUSD = CPChargeUSD(rc.PeakLoadKW, st.cfg)
	rc.ProfitNetUSD = profit - rc.ChargeUSD
	return rc
}

// CPChargeUSD is the coincident-peak charge for a site's loads (kW) in the
// peaks found: rate × Σ kW / peaks per season. Over a whole season it is
// the average peak load times the annual rate.
func CPChargeUSD(peakLoadKW []float64, cfg *config.CoincidentPeak) float64 {
	sum := 0.0
	for _, kw := range peakLoadKW {
		sum += kw
	}
	return cfg.RateUSDPerKWYear * sum / float64(cfg.PeaksPerSeason())
}

// fill puts the coincident peaks and each run's charge into the report.
func (st *cpStudy) fill(rep *Report, site *config.Site, pol, ao, th *cpMeter) {
	if st == nil {
		return
	}
	cr := st.rep
	rep.CoincidentPeak = &cr
	if cr.Computed {
		least := make([]float64, len(cr.Peaks))
		for i := range least {
			least[i] = leastDrawKW(site)
		}
		c := CPChargeUSD(least, st.cfg)
		b := rep.Baselines.Oracle.ProfitUSD - c
		cr.LeastChargeUSD, cr.OracleNetBoundUSD = &c, &b
	}
	rep.RunReport.CP = pol.result(rep.RunReport.ProfitUSD)
	rep.Baselines.AlwaysOn.CP = ao.result(rep.Baselines.AlwaysOn.ProfitUSD)
	rep.Baselines.ThresholdDebounce.CP = th.result(rep.Baselines.ThresholdDebounce.ProfitUSD)
	if a := rep.Baselines.AlwaysOn.CP; a != nil {
		for _, rc := range []*RunCP{rep.RunReport.CP, rep.Baselines.AlwaysOn.CP, rep.Baselines.ThresholdDebounce.CP} {
			rc.AvoidedUSD = a.ChargeUSD - rc.ChargeUSD
		}
	}
}

// cpRows adds the charge's rows to the text report's table.
func (r *Report) cpRows(line func(name string, f func(*RunReport) string, oracle string)) {
	if r.CoincidentPeak == nil || !r.CoincidentPeak.Computed {
		return
	}
	f := func(get func(*RunCP) float64, format string) func(*RunReport) string {
		return func(rr *RunReport) string {
			if rr.CP == nil {
				return "-"
			}
			return fmt.Sprintf(format, get(rr.CP))
		}
	}
	line("coincident-peak load (avg kW)", f(func(c *RunCP) float64 { return c.AvgPeakLoadKW }, "%.0f"), "")
	least, bound := "", ""
	if cp := r.CoincidentPeak; cp.LeastChargeUSD != nil && cp.OracleNetBoundUSD != nil {
		least, bound = fmt.Sprintf("≥ %.0f", *cp.LeastChargeUSD), fmt.Sprintf("%.0f", *cp.OracleNetBoundUSD)
	}
	line("coincident-peak charge (USD)", f(func(c *RunCP) float64 { return c.ChargeUSD }, "%.0f"), least)
	line("CP charge avoided vs always_on (USD)", f(func(c *RunCP) float64 { return c.AvoidedUSD }, "%.0f"), "")
	line("profit net of CP charge (USD)", f(func(c *RunCP) float64 { return c.ProfitNetUSD }, "%.0f"), bound)
}

// writeCPText writes the coincident-peak section of the text report.
func (r *Report) writeCPText(b *strings.Builder) error {
	cp := r.CoincidentPeak
	if cp == nil {
		return nil
	}
	fmt.Fprintf(b, "\ncoincident peaks (%s)\n", cp.Settings)
	if !cp.Computed {
		fmt.Fprintf(b, "  %s\n", cp.Reason)
		return nil
	}
	fmt.Fprintf(b, "  charge = %s USD/kW-year × Σ site kW in each peak / %d peaks a year\n", fmtUSDRate(cp.RateUSDPerKWYear), cp.PeaksPerSeason)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "month\tpeak start\tend\tintervals\tgrid load (MW)\tpolicy kW\talways_on kW\tthreshold_debounce kW\t")
	runs := []*RunReport{&r.RunReport, &r.Baselines.AlwaysOn, &r.Baselines.ThresholdDebounce}
	for i, p := range cp.Peaks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t", p.Month, p.Start.Format("2006-01-02 15:04 MST"), p.End.Format("15:04"), p.Intervals, p.GridLoadMW)
		for _, rr := range runs {
			if rr.CP == nil || i >= len(rr.CP.PeakLoadKW) {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%.0f\t", rr.CP.PeakLoadKW[i])
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range cp.Notes {
		fmt.Fprintf(b, "  note: %s\n", n)
	}
	fmt.Fprintf(b, "  oracle: %s\n", cp.Oracle)
	return nil
}

func fmtUSDRate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// leastDrawKW is the least a site can draw: every device in its
// lowest-power mode (a device in transition draws the larger of two modes).
func leastDrawKW(site *config.Site) float64 {
	kw := 0.0
	for i := range site.Fleets {
		f := &site.Fleets[i].Spec
		least := math.Inf(1)
		for _, m := range switchd.Modes {
			if f.Supports[m] {
				least = min(least, f.Modes[m].PowerKW)
			}
		}
		if !math.IsInf(least, 1) {
			kw += least * float64(f.Count)
		}
	}
	return kw
}
