package sim

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/dr"
	"github.com/switchd/switchd/internal/decimal"
	"github.com/switchd/switchd/trace"
)

// CLIOptions are `switchd sim`'s flags.
type CLIOptions struct {
	Config     string
	Policies   []string // one run each (side by side when several)
	Sets       []string // path=v1,v2,...: one run per value (cross product)
	Traces     []string
	Format     string // text or json
	Timeseries string // optional CSV output
	HTML       string // optional HTML report
	// Resample, when positive, averages the trace into intervals this long.
	Resample time.Duration
	// MaxAge overrides the site's max_age per signal (SIGNAL=DURATION,
	// SIGNAL=auto or auto); Missing says how to treat a signal the trace
	// lacks (SIGNAL=fail-safe|ignore|VALUE).
	MaxAge, Missing []string
	// Forecast gives the policy runs a price forecast: noisy:SIGMA,
	// column:NAME or none (forecast.go); empty means the trace's
	// ForecastColumn if it has one, else none.
	Forecast string
	// Repeats[i], when set, is how Traces[i] is tiled over the timeline
	// (trace.ParseRepeat: "weekly"); missing entries leave a file as is.
	Repeats []string
	// Events is a JSON-lines file of demand-response events replayed into
	// the policy runs (events.go); "" for none.
	Events string
}

// Validate checks the flags.
func (o *CLIOptions) Validate() error {
	var errs []error
	if o.Config == "" {
		errs = append(errs, errors.New("--config is required"))
	}
	if len(o.Policies) == 0 {
		errs = append(errs, errors.New("--policy is required (give it several times to compare policies side by side)"))
	}
	if len(o.Traces) == 0 {
		errs = append(errs, errors.New("--trace is required (give it several times to merge traces)"))
	}
	if o.Format != "text" && o.Format != "json" {
		errs = append(errs, fmt.Errorf("--format must be text or json (got %q)", o.Format))
	}
	if o.Resample < 0 {
		errs = append(errs, fmt.Errorf("--resample must be positive (got %s)", o.Resample))
	}
	if _, err := ParseInputOptions(o.MaxAge, o.Missing); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.repeats(); err != nil {
		errs = append(errs, err)
	}
	for _, s := range o.Sets {
		if _, err := ParseSweep(s); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Forecast != "" {
		if _, err := ParseForecastFlag(o.Forecast); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Timeseries != "" && (len(o.Policies) > 1 || len(o.Sets) > 0) {
		errs = append(errs, errors.New("--timeseries writes one run: give one --policy and no --set"))
	}
	return errors.Join(errs...)
}

// RunCLI loads the site, policies and traces, runs the comparisons and
// writes the report to stdout (one run as before; several side by side);
// notices (ignored trace columns) go to stderr.
func RunCLI(ctx context.Context, o CLIOptions, stdout, stderr io.Writer) error {
	site, err := config.LoadSite(o.Config)
	if err != nil {
		return err
	}
	var sweeps []Sweep
	for _, s := range o.Sets {
		sw, err := ParseSweep(s)
		if err != nil {
			return err
		}
		sweeps = append(sweeps, sw)
	}
	variants, err := Variants(o.Policies, sweeps, site)
	if err != nil {
		return err
	}
	inputs, err := ParseInputOptions(o.MaxAge, o.Missing)
	if err != nil {
		return err
	}
	inputs.Resample = o.Resample
	inputs.SignalFiles = SignalFiles(o.Traces)
	repeats, err := o.repeats()
	if err != nil {
		return err
	}
	src, notices, closer, err := trace.OpenRepeat(o.Traces, repeats, site.Location)
	if err != nil {
		return err
	}
	if o.Resample > 0 {
		src = trace.Resample(src, o.Resample)
	}
	series, err := trace.Collect(src)
	closer.Close()
	if err != nil {
		return err
	}
	for _, n := range notices {
		fmt.Fprintln(stderr, "notice:", n)
	}

	var ts *timeseriesWriter
	if o.Timeseries != "" {
		f, err := os.Create(o.Timeseries)
		if err != nil {
			return err
		}
		defer f.Close()
		ts = newTimeseriesWriter(f, site)
	}
	var cols []*HTMLCollector
	if o.HTML != "" {
		cols = make([]*HTMLCollector, len(variants))
		for i := range cols {
			cols[i] = NewHTMLCollector(site)
		}
	}
	co := CompareOptions{Site: site, Series: series, Files: o.Traces, Inputs: inputs, Repeated: repeatedNotes(o.Traces, repeats, site)}
	if o.Forecast != "" {
		if co.Forecast, err = ParseForecastFlag(o.Forecast); err != nil {
			return err
		}
	} else {
		var file string
		if co.Forecast, file, err = forecastFromTrace(o.Traces); err != nil {
			return err
		}
		if co.Forecast != nil {
			fmt.Fprintf(stderr, "notice: trace %s: column %s is the price forecast of the policy runs (--forecast none: without)\n", file, ForecastColumn)
		}
	}
	if o.Events != "" {
		if co.Events, err = dr.ReadEvents(o.Events); err != nil {
			return err
		}
	}
	outs, err := CompareAll(ctx, co, variants, func(i int, ro *CompareOptions) {
		if cols != nil {
			cols[i].Hook(ro)
		}
		if ts != nil {
			// One run only (Validate): the time series sees it too.
			if hc := ro.OnInterval; hc != nil {
				ro.OnInterval = func(r *IntervalRecord) { hc(r); ts.write(r) }
			} else {
				ro.OnInterval = ts.write
			}
		}
	})
	if err != nil {
		return err
	}
	if ts != nil {
		if err := ts.close(); err != nil {
			return fmt.Errorf("timeseries: %w", err)
		}
	}
	writeInputNotices(stderr, outs)
	var text strings.Builder
	if len(outs) == 1 {
		err = outs[0].WriteText(&text)
	} else {
		err = WriteSideBySide(&text, outs)
	}
	if err != nil {
		return err
	}
	for _, out := range outs {
		if out.DR == nil {
			continue
		}
		label := ""
		if len(outs) > 1 {
			label = out.Label
		}
		if err := out.DR.WriteText(&text, label); err != nil {
			return err
		}
	}
	if o.HTML != "" {
		if err := writeHTMLFile(o.HTML, HTMLOptions{Site: site, Outcomes: outs, Collectors: cols, Summary: text.String()}); err != nil {
			return fmt.Errorf("html: %w", err)
		}
	}
	if o.Format == "json" {
		if len(outs) == 1 && len(o.Sets) == 0 {
			return outs[0].WriteJSON(stdout)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(outs)
	}
	_, err = io.WriteString(stdout, text.String())
	return err
}

func writeHTMLFile(path string, o HTMLOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := WriteHTML(w, o); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// timeseriesWriter writes one CSV row per trace interval of the policy run.
type timeseriesWriter struct {
	site *config.Site
	f    *os.File
	buf  *bufio.Writer
	w    *csv.Writer
	rec  []string
	err  error
}

func newTimeseriesWriter(f *os.File, site *config.Site) *timeseriesWriter {
	t := &timeseriesWriter{site: site, f: f, buf: bufio.NewWriter(f)}
	t.w = csv.NewWriter(t.buf)
	head := []string{"time", "price_usd_mwh", "hashprice_usd_ph_day", "power_kw"}
	for _, fl := range site.Fleets {
		for _, m := range switchd.Modes {
			if m == switchd.ModeOff || fl.Spec.Supports[m] {
				head = append(head, fl.Spec.Name+"_"+m.String())
			}
		}
		head = append(head, fl.Spec.Name+"_moving")
	}
	head = append(head, "cost_usd", "revenue_usd", "profit_cum_usd", "rules")
	t.err = t.w.Write(head)
	return t
}

func (t *timeseriesWriter) write(r *IntervalRecord) {
	if t.err != nil {
		return
	}
	// Signal values may be means (--resample): 1e-6 of a USD/MWh or of a
	// USD/PH/day is finer than any market quotes, coarser than float64 noise.
	f := func(v float64) string { return decimal.Format(v, 6) }
	rec := t.rec[:0]
	rec = append(rec, r.Start.Format(time.RFC3339))
	for _, s := range []switchd.Signal{switchd.SignalPrice, switchd.SignalHashprice} {
		if v, ok := r.Values.Get(s); ok {
			rec = append(rec, f(v))
		} else {
			rec = append(rec, "")
		}
	}
	rec = append(rec, strconv.FormatFloat(r.PowerKW, 'f', 1, 64))
	for i := range r.Counts {
		for _, m := range switchd.Modes {
			// Columns exist for off and the supported modes only.
			if m == switchd.ModeOff || t.site.Fleets[i].Spec.Supports[m] {
				rec = append(rec, strconv.Itoa(r.Counts[i][m]))
			}
		}
		rec = append(rec, strconv.Itoa(r.Moving[i]))
	}
	rec = append(rec, strconv.FormatFloat(r.CostUSD, 'f', 2, 64), strconv.FormatFloat(r.RevenueUSD, 'f', 2, 64),
		strconv.FormatFloat(r.ProfitUSD, 'f', 2, 64), strings.Join(r.Fired, ";"))
	t.rec = rec
	t.err = t.w.Write(rec)
}

func (t *timeseriesWriter) close() error {
	t.w.Flush()
	if t.err == nil {
		t.err = t.w.Error()
	}
	if t.err == nil {
		t.err = t.buf.Flush()
	}
	if t.err == nil {
		t.err = t.f.Close()
	}
	return t.err
}
