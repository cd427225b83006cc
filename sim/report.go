package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/sim/oracle"
	"github.com/switchd/switchd/trace"
)

// TopFraction is the share of the trace's priced intervals, by count, whose
// energy the report calls "top price" (the top 1%).
const TopFraction = 0.01

// CompareOptions configure a full comparison: the policy, the baselines and
// the oracle over one trace.
type CompareOptions struct {
	Site   *config.Site
	Policy *policies.Policy
	Series *trace.Series
	Files  []string // trace files, for the report
	// OnInterval, when set, receives the policy run's intervals.
	OnInterval func(*IntervalRecord)
	// OnBaselineInterval, when set, receives each baseline run's intervals
	// with the baseline's report name ("always_on", "threshold_debounce").
	OnBaselineInterval func(baseline string, r *IntervalRecord)
	// Inputs say how to treat the trace's inputs (inputs.go).
	Inputs InputOptions
	Oracle oracle.Options
	// Forecast, when set, gives the policy run a price forecast
	// (forecast.go); the baselines and the oracle are unchanged.
	Forecast *ForecastOptions
	// Repeated says which trace files were tiled over the timeline, for
	// the report (repeatedNotes).
	Repeated []string
	// Events are demand-response events replayed into the policy run (not
	// the baselines, which know nothing of programs).
	Events []dr.Event
}

// ModeFigures is a figure split by mode.
type ModeFigures struct {
	Off        float64 `json:"off"`
	Mining     float64 `json:"mining"`
	Inference  float64 `json:"inference"`
	Transition float64 `json:"transition,omitempty"`
	Total      float64 `json:"total"`

	// MiningReduced and Sleep are the power-target modes, shown only
	// when a fleet uses them.
	MiningReduced float64 `json:"mining_reduced,omitempty"`
	Sleep         float64 `json:"sleep,omitempty"`
}

func modeFigures(v [switchd.NumModes]float64, transition float64) ModeFigures {
	f := ModeFigures{
		Off: v[switchd.ModeOff], Mining: v[switchd.ModeMining], Inference: v[switchd.ModeInference],
		Transition: transition,
		Total:      v[switchd.ModeOff] + v[switchd.ModeMining] + v[switchd.ModeInference] + transition,
	}
	f.MiningReduced, f.Sleep = v[switchd.ModeMiningReduced], v[switchd.ModeSleep]
	f.Total += f.MiningReduced + f.Sleep
	return f
}

// RunReport is one strategy's outcome over the trace.
type RunReport struct {
	ProfitUSD         float64     `json:"profit_usd"`
	EnergyMWh         ModeFigures `json:"energy_mwh"`
	CostUSD           float64     `json:"cost_usd"` // energy + switching
	EnergyCostUSD     float64     `json:"energy_cost_usd"`
	SwitchCostUSD     float64     `json:"switch_cost_usd"`
	RevenueUSD        ModeFigures `json:"revenue_usd"`
	Switches          int         `json:"switches"`
	Failures          int         `json:"failures"`
	CurtailedHours    float64     `json:"curtailed_hours"`
	TopPriceMWh       float64     `json:"top_price_mwh"`         // energy drawn in the top-1% intervals
	TopPriceMWhAvoid  float64     `json:"top_price_mwh_avoided"` // vs always-on
	AvgPricePaid      *float64    `json:"avg_price_paid_usd_mwh"`
	MaxPowerKW        float64     `json:"max_power_kw"`
	SiteCapExceeded   int         `json:"site_cap_exceeded_ticks"`
	Ticks             int         `json:"ticks"`
	ForcedMoves       int         `json:"forced_moves"`
	EarlyMoves        int         `json:"early_moves"`
	TopPriceIntervals int         `json:"-"`
	// CP is the run's coincident-peak charge (sim/cp.go); nil when the
	// site has none or the trace cannot say where the peaks were.
	CP *RunCP `json:"coincident_peak_charge,omitempty"`
	// AI is AI demand served and unserved (ai.go); nil when the site
	// serves no inference and the trace has no ai_demand.
	AI *AIReport `json:"ai_demand,omitempty"`
}

func runReport(r *Result, alwaysOn *Result) RunReport {
	rr := RunReport{
		ProfitUSD:         r.ProfitUSD,
		EnergyMWh:         modeFigures(r.EnergyMWh, r.TransitionMWh),
		CostUSD:           r.EnergyCostUSD + r.SwitchCostUSD,
		EnergyCostUSD:     r.EnergyCostUSD,
		SwitchCostUSD:     r.SwitchCostUSD,
		RevenueUSD:        modeFigures(r.RevenueUSD, 0),
		Switches:          r.Switches,
		Failures:          r.Failures,
		CurtailedHours:    r.CurtailedHours,
		TopPriceMWh:       r.TopPriceEnergyMWh,
		MaxPowerKW:        r.MaxPowerKW,
		SiteCapExceeded:   r.SiteCapExceeded,
		Ticks:             r.Ticks,
		ForcedMoves:       r.ForcedMoves,
		EarlyMoves:        r.EarlyMoves,
		TopPriceIntervals: r.TopPriceIntervals,
		AI:                aiReport(r),
	}
	if alwaysOn != nil {
		rr.TopPriceMWhAvoid = alwaysOn.TopPriceEnergyMWh - r.TopPriceEnergyMWh
	}
	if e := r.EnergyTotalMWh(); e > 0 {
		p := r.EnergyCostUSD / e
		rr.AvgPricePaid = &p
	}
	return rr
}

// OracleReport is the perfect-foresight bound.
type OracleReport struct {
	ProfitUSD float64 `json:"profit_usd"`
	Exact     bool    `json:"exact"`
	Method    string  `json:"method"`
}

// TraceReport describes the replayed trace.
type TraceReport struct {
	Files             []string  `json:"files"`
	Start             time.Time `json:"start"`
	End               time.Time `json:"end"`
	Intervals         int       `json:"intervals"`
	Hours             float64   `json:"hours"`
	Signals           []string  `json:"signals"`
	AvgPrice          *float64  `json:"avg_price_usd_mwh"`
	TopPriceThreshold *float64  `json:"top1pct_price_threshold_usd_mwh"`
	TopPriceIntervals int       `json:"top1pct_intervals"`
	// Repeated names the files tiled over the timeline (--repeat) and how.
	Repeated []string `json:"repeated,omitempty"`
}

// Report is the whole comparison. The policy's figures are at the top level.
type Report struct {
	Simulated bool   `json:"simulated"` // always true: a replay on simulated devices
	Site      string `json:"site"`
	Policy    string `json:"policy"`
	RunReport
	Baselines struct {
		AlwaysOn          RunReport    `json:"always_on"`
		ThresholdDebounce RunReport    `json:"threshold_debounce"`
		Oracle            OracleReport `json:"oracle"`
	} `json:"baselines"`
	// OracleCapture is policy profit / oracle profit; null when the oracle
	// does not earn anything.
	OracleCapture *float64    `json:"oracle_capture"`
	Trace         TraceReport `json:"trace"`
	// CoincidentPeak is the trace's coincident peaks; nil when the site has
	// no coincident_peak section.
	CoincidentPeak *CPReport `json:"coincident_peak,omitempty"`
	// Inputs is each signal's coverage, gaps, fail-safe time and what was
	// imputed (inputs.go).
	Inputs *InputsReport `json:"inputs"`
	// Forecast is the price forecast the policy run had; nil for none.
	Forecast *ForecastReport `json:"forecast,omitempty"`
	// DR is the demand-response compliance of the policy run, when events
	// were replayed (events.go).
	DR *DRReport `json:"dr,omitempty"`
}

// Compare replays the series through the policy and the two baselines, and
// computes the oracle bound.
func Compare(ctx context.Context, o CompareOptions) (*Report, error) {
	if o.Series.Len() == 0 {
		return nil, fmt.Errorf("trace has no rows")
	}
	// Without a price every strategy would be charged nothing for energy:
	// refuse rather than report a meaningless profit. The merged series
	// carries values forward, so a price on the first row means one on all.
	if _, ok := o.Series.Value(0, switchd.SignalPrice); !ok && !o.Policy.HasFallback[switchd.SignalPrice] {
		return nil, fmt.Errorf("trace has no price at its start (%s) and the policy has no price fallback: give a trace with a price_usd_mwh column first", o.Series.Time(0).Format(time.RFC3339))
	}
	in, err := planInputs(o.Site, o.Policy, o.Series, o.Files, o.Inputs)
	if err != nil {
		return nil, err
	}
	o.Site, o.Policy = in.site, in.pol // max ages and --missing applied
	top := TopPriceThreshold(o.Series, TopFraction)
	var feed *ForecastFeed
	if o.Forecast != nil {
		if feed, err = NewForecastFeed(o.Forecast, o.Series, o.Files, o.Site.Location); err != nil {
			return nil, err
		}
	}
	run := func(p controller.Planner, on func(*IntervalRecord)) (*Result, error) {
		ro := RunOptions{
			Site: o.Site, Policy: o.Policy, Planner: p, Source: o.Series.Source(),
			End: o.Series.End(), TopPriceUSDPerMWh: top, OnInterval: on, Gaps: in.gaps,
			Events: eventsFor(p, o.Events),
		}
		if p == nil { // the policy run only
			ro.Forecasts = feed
		}
		return Run(ctx, ro)
	}
	// Each run's draw in the coincident peaks is metered as it goes.
	cps := newCPStudy(o.Site.CoincidentPeak, o.Site.Location, o.Series)
	polCP := cps.meter(o.OnInterval)
	pol, err := run(nil, polCP.onInterval())
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	aoCP := cps.meter(o.baselineHook("always_on"))
	ao, err := run(newAlwaysOn(o.Site), aoCP.onInterval())
	if err != nil {
		return nil, fmt.Errorf("always_on: %w", err)
	}
	thCP := cps.meter(o.baselineHook("threshold_debounce"))
	th, err := run(newThreshold(o.Site), thCP.onInterval())
	if err != nil {
		return nil, fmt.Errorf("threshold_debounce: %w", err)
	}
	oo := o.Oracle
	// The bound must hold for every strategy compared: the policy's forced
	// moves and the threshold baseline's (it forces miners off, ignoring
	// dwell) both leave only stays in off held to the dwell time.
	oo.Dwell = oracle.DwellScopeFor(o.Policy)
	if oo.Dwell == oracle.DwellAllModes {
		oo.Dwell = oracle.DwellOffOnly
	}
	oo.Initial = make([]switchd.Mode, len(o.Site.Fleets))
	for i := range o.Site.Fleets {
		if cfg, err := simConfig(o.Site, i); err == nil {
			oo.Initial[i] = cfg.Initial
		}
	}
	or := oracle.Bound(o.Site.Specs(), o.Site.PowerCapKW, in.oracleIntervals(o.Series), oo)

	rep := &Report{Simulated: true, Site: o.Site.Name, Policy: o.Policy.Source, RunReport: runReport(pol, ao)}
	rep.Baselines.AlwaysOn = runReport(ao, ao)
	rep.Inputs = in.report(pol)
	if feed != nil {
		rep.Forecast = feed.Report()
		plain, err := Run(ctx, RunOptions{
			Site: o.Site, Policy: o.Policy, Source: o.Series.Source(),
			End: o.Series.End(), TopPriceUSDPerMWh: top, Gaps: in.gaps,
		})
		if err != nil {
			return nil, fmt.Errorf("policy without forecast: %w", err)
		}
		rep.Forecast.compareWithout(pol.ProfitUSD, plain.ProfitUSD, or.ProfitUSD)
	}
	rep.Baselines.ThresholdDebounce = runReport(th, ao)
	rep.Baselines.Oracle = OracleReport{ProfitUSD: or.ProfitUSD, Exact: or.Exact, Method: or.Method}
	if or.ProfitUSD > 0 {
		c := pol.ProfitUSD / or.ProfitUSD
		rep.OracleCapture = &c
	}
	tr := &rep.Trace
	tr.Files = o.Files
	tr.Repeated = o.Repeated
	tr.Start, tr.End = o.Series.Time(0), o.Series.End()
	tr.Intervals, tr.Hours = pol.Intervals, pol.Hours
	for _, s := range o.Series.Signals() {
		tr.Signals = append(tr.Signals, s.String())
	}
	if pol.PriceHours > 0 {
		a := pol.PriceTimeUSDPerMWh / pol.PriceHours
		tr.AvgPrice = &a
	}
	if !math.IsInf(top, 0) {
		tr.TopPriceThreshold = &top
	}
	tr.TopPriceIntervals = pol.TopPriceIntervals
	cps.fill(rep, o.Site, polCP, aoCP, thCP)
	rep.DR = drReport(o.Events, pol.DR)
	return rep, nil
}

// baselineHook returns OnBaselineInterval bound to one baseline, or nil.
func (o *CompareOptions) baselineHook(name string) func(*IntervalRecord) {
	if o.OnBaselineInterval == nil {
		return nil
	}
	return func(r *IntervalRecord) { o.OnBaselineInterval(name, r) }
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table a person reads.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	tr := &r.Trace
	fmt.Fprintf(&b, "SIMULATED replay (simulated devices, real controller) — site %s, policy %s\n", r.Site, r.Policy)
	fmt.Fprintf(&b, "trace: %s\n", strings.Join(tr.Files, ", "))
	writeRepeated(&b, tr.Repeated)
	fmt.Fprintf(&b, "       %s to %s, %d intervals, %.1f h, signals: %s\n",
		tr.Start.Format(time.RFC3339), tr.End.Format(time.RFC3339), tr.Intervals, tr.Hours, strings.Join(tr.Signals, ", "))
	if tr.AvgPrice != nil {
		fmt.Fprintf(&b, "       average price %.2f USD/MWh", *tr.AvgPrice)
		if tr.TopPriceThreshold != nil {
			fmt.Fprintf(&b, "; top 1%% = %d intervals at ≥ %.2f USD/MWh", tr.TopPriceIntervals, *tr.TopPriceThreshold)
		}
		b.WriteString("\n")
	}
	if f := r.Forecast; f != nil {
		f.writeText(&b, r.OracleCapture)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tpolicy\talways_on\tthreshold_debounce\toracle\t")
	rows := []*RunReport{&r.RunReport, &r.Baselines.AlwaysOn, &r.Baselines.ThresholdDebounce}
	line := func(name string, f func(*RunReport) string, oracle string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, rr := range rows {
			fmt.Fprintf(tw, "%s\t", f(rr))
		}
		fmt.Fprintf(tw, "%s\t\n", oracle)
	}
	usd := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	line("profit (USD)", func(rr *RunReport) string { return usd(rr.ProfitUSD) }, usd(r.Baselines.Oracle.ProfitUSD))
	moneyRows(line)
	mwh := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	line("energy mining (MWh)", func(rr *RunReport) string { return mwh(rr.EnergyMWh.Mining) }, "")
	line("energy inference (MWh)", func(rr *RunReport) string { return mwh(rr.EnergyMWh.Inference) }, "")
	r.powerTargetRows(line)
	line("energy off/idle (MWh)", func(rr *RunReport) string { return mwh(rr.EnergyMWh.Off) }, "")
	line("energy in transition (MWh)", func(rr *RunReport) string { return mwh(rr.EnergyMWh.Transition) }, "")
	tailRows(line)
	r.cpRows(line)
	aiRows(line, rows...)
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	writeAIText(&b, &r.RunReport)
	if r.OracleCapture != nil {
		fmt.Fprintf(&b, "oracle capture: %.1f%% of the perfect-foresight bound\n", 100**r.OracleCapture)
	} else {
		b.WriteString("oracle capture: n/a (the oracle earns nothing on this trace)\n")
	}
	fmt.Fprintf(&b, "oracle: %s (exact: %v)\n", r.Baselines.Oracle.Method, r.Baselines.Oracle.Exact)
	if err := r.writeCPText(&b); err != nil {
		return err
	}
	r.Inputs.writeText(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// rowFunc writes one row of a text table: a name, a figure of each run and
// the oracle's column.
type rowFunc func(name string, f func(*RunReport) string, oracle string)

// moneyRows writes the revenue and cost rows every text table shows.
func moneyRows(line rowFunc) {
	usd := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	line("revenue mining (USD)", func(rr *RunReport) string { return usd(rr.RevenueUSD.Mining) }, "")
	line("revenue inference (USD)", func(rr *RunReport) string { return usd(rr.RevenueUSD.Inference) }, "")
	line("energy cost (USD)", func(rr *RunReport) string { return usd(rr.EnergyCostUSD) }, "")
	line("switching cost (USD)", func(rr *RunReport) string { return usd(rr.SwitchCostUSD) }, "")
}

// tailRows writes the energy total and the operating rows every text
// table shows.
func tailRows(line rowFunc) {
	mwh := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	line("energy total (MWh)", func(rr *RunReport) string { return mwh(rr.EnergyMWh.Total) }, "")
	line("avg price paid (USD/MWh)", func(rr *RunReport) string {
		if rr.AvgPricePaid == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f", *rr.AvgPricePaid)
	}, "")
	line("device switches", func(rr *RunReport) string { return fmt.Sprint(rr.Switches) }, "")
	line("hours curtailed", func(rr *RunReport) string { return fmt.Sprintf("%.1f", rr.CurtailedHours) }, "")
	line("top-1% MWh avoided", func(rr *RunReport) string { return mwh(rr.TopPriceMWhAvoid) }, "")
	line("max power (kW)", func(rr *RunReport) string { return fmt.Sprintf("%.0f", rr.MaxPowerKW) }, "")
}
