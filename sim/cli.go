package sim

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// CLIOptions are `switchd sim`'s flags.
type CLIOptions struct {
	Config, Policy string
	Traces         []string
	Format         string // text or json
	Timeseries     string // optional CSV output
}

// Validate checks the flags.
func (o *CLIOptions) Validate() error {
	var errs []error
	if o.Config == "" {
		errs = append(errs, errors.New("--config is required"))
	}
	if o.Policy == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if len(o.Traces) == 0 {
		errs = append(errs, errors.New("--trace is required (give it several times to merge traces)"))
	}
	if o.Format != "text" && o.Format != "json" {
		errs = append(errs, fmt.Errorf("--format must be text or json (got %q)", o.Format))
	}
	return errors.Join(errs...)
}

// RunCLI loads the site, policy and traces, runs the comparison and writes
// the report to stdout; notices (ignored trace columns) go to stderr.
func RunCLI(ctx context.Context, o CLIOptions, stdout, stderr io.Writer) error {
	site, err := policies.LoadSite(o.Config)
	if err != nil {
		return err
	}
	pol, err := policies.LoadPolicy(o.Policy, site)
	if err != nil {
		return err
	}
	src, notices, closer, err := trace.Open(o.Traces)
	if err != nil {
		return err
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
	co := CompareOptions{Site: site, Policy: pol, Series: series, Files: o.Traces}
	if ts != nil {
		co.OnInterval = ts.write
	}
	rep, err := Compare(ctx, co)
	if err != nil {
		return err
	}
	if ts != nil {
		if err := ts.close(); err != nil {
			return fmt.Errorf("timeseries: %w", err)
		}
	}
	if o.Format == "json" {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}

// timeseriesWriter writes one CSV row per trace interval of the policy run.
type timeseriesWriter struct {
	site *policies.Site
	f    *os.File
	buf  *bufio.Writer
	w    *csv.Writer
	rec  []string
	err  error
}

func newTimeseriesWriter(f *os.File, site *policies.Site) *timeseriesWriter {
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
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
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
