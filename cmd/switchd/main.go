// Command switchd is the site daemon's command line: flags, OS signals and
// wiring, nothing else. Subcommands: run, sim, replay, journal, validate,
// probe, gen-trace, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	siteconfig "github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/sim"
	"github.com/switchd/switchd/trace"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: switchd <command> [flags]

commands:
  run        run the site daemon (MQTT signals, HTTP API, journal)
  sim        replay grid traces through the controller on simulated devices
  replay     publish a trace to an MQTT broker as signals (demos, tests)
  journal    verify a journal, or export it as CSV (journal verify|export)
  validate   check a site config (and a policy) and print every error
  probe      read devices (one, or every device of a site) without changing them
  fakes      serve fake devices at a site's loopback device addresses (demos, benchmarks)
  gen-trace  write a SYNTHETIC sample trace (project-made, not market data)
  version    print the version

Run 'switchd <command> -h' for a command's flags.
`

// run selects the subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args, stderr)
	case "replay":
		err = cmdReplay(ctx, args, stdout, stderr)
	case "journal":
		err = cmdJournal(args, stdout, stderr)
	case "sim":
		err = cmdSim(ctx, args, stdout, stderr)
	case "validate":
		err = cmdValidate(args, stdout, stderr)
	case "probe":
		err = cmdProbe(ctx, args, stdout, stderr)
	case "fakes":
		err = cmdFakes(ctx, args, stdout, stderr)
	case "gen-trace":
		err = cmdGenTrace(args, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "switchd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ue usageError
	var ce configErrors
	var pf probeFailed
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pf):
		fmt.Fprintf(stderr, "switchd %s: %v\n", cmd, pf.error)
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		// Exactly the problems, one per line (file:line: key: message).
		fmt.Fprintln(stderr, ce.error)
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "switchd %s: %v\n", cmd, err)
		return 2
	default:
		fmt.Fprintf(stderr, "switchd %s: %v\n", cmd, err)
		return 1
	}
}

// configErrors are configuration problems, printed one per line as they are.
type configErrors struct{ error }

// usageError is a bad command line (exit code 2).
type usageError struct{ error }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sim", stderr)
	config := fs.String("config", "", "site config `FILE` (required)")
	var pols, sets stringList
	fs.Var(&pols, "policy", "policy `FILE` (required; repeat it to compare policies side by side)")
	fs.Var(&sets, "set", "`PATH=V1,V2,...`: one run per value of a key of the policy file, e.g. hysteresis_usd_mwh=0,5,10 or rules[1].when.price_above_usd_mwh=500,1000 (rules[NAME] picks a rule by name); repeat for the cross product, at most 64 runs")
	var traces stringList
	fs.Var(&traces, "trace", "trace CSV `FILE` (repeatable; the first sets the timeline, the others are merged in)")
	format := fs.String("format", "text", "report format: text or json (several runs: a JSON list of reports)")
	timeseries := fs.String("timeseries", "", "write the policy run's per-interval time series to this CSV `FILE`")
	htmlOut := fs.String("html", "", "write a self-contained HTML report (charts and summary; opens without network) to this `FILE`")
	resample := fs.Duration("resample", 0, "average the trace into intervals of this `STEP` first (e.g. 1h: interval-weighted means; never makes a sample up)")
	var maxAge, missing stringList
	fs.Var(&maxAge, "max-age", "`SIGNAL=DURATION`, SIGNAL=auto or auto: override the site's max_age (auto: from the trace's cadence, 2 cadences or the default if longer; that is already done where the site file sets none); repeatable")
	fs.Var(&missing, "missing", "`SIGNAL=fail-safe|ignore|VALUE`: run a policy that needs a signal the trace lacks (fail-safe: absent throughout, its fail-safe applies; ignore: as if the policy did not read it; VALUE: a constant); repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := sim.CLIOptions{Config: *config, Policies: pols, Sets: sets, Traces: traces, Format: *format, Timeseries: *timeseries,
		HTML: *htmlOut, Resample: *resample, MaxAge: maxAge, Missing: missing}
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	return sim.RunCLI(ctx, o, stdout, stderr)
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	config := fs.String("config", "", "site config `FILE` (required)")
	policy := fs.String("policy", "", "policy `FILE` (optional)")
	var traces stringList
	fs.Var(&traces, "trace", "trace CSV `FILE` (optional, repeatable, merged as by sim): warn where a max_age is shorter than the trace's cadence, or the policy needs a signal the trace lacks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" {
		return usageError{errors.New("--config is required")}
	}
	site, err := siteconfig.LoadSite(*config)
	if err != nil {
		return configErrors{err}
	}
	// The drivers' own settings, exactly as `run` builds them.
	if err := buildDrivers(site); err != nil {
		return configErrors{err}
	}
	line := site.Summary()
	var pol *policies.Policy
	if *policy != "" {
		if pol, err = policies.LoadPolicy(*policy, site); err != nil {
			return configErrors{err}
		}
		line += "; " + pol.Summary()
	}
	fmt.Fprintln(stdout, line)
	if len(traces) == 0 {
		return nil
	}
	src, _, closer, err := trace.Open(traces)
	if err != nil {
		return err
	}
	series, err := trace.Collect(src)
	closer.Close()
	if err != nil {
		return err
	}
	// Warnings, not errors: the files are valid, the trace may just be
	// coarser than the live feed.
	for _, w := range sim.TraceWarnings(site, pol, series, traces) {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return nil
}

func cmdGenTrace(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gen-trace", stderr)
	start := fs.String("start", "2024-01-01T00:00:00-06:00", "first interval start (RFC3339)")
	step := fs.Duration("step", 15*time.Minute, "interval length")
	n := fs.Int("n", 96*31, "number of intervals")
	seed := fs.Int64("seed", 1, "random seed")
	out := fs.String("out", "", "output `FILE` (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usageError{fmt.Errorf("--start: %w", err)}
	}
	if *step <= 0 || *n <= 0 {
		return usageError{errors.New("--step and --n must be positive")}
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := trace.WriteCSV(w, trace.SyntheticSource(t0, *step, *n, *seed)); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		return f.Close()
	}
	return nil
}

// versionLine is the version set at build time (or the module's), with the
// commit and build time Go recorded, when known.
func versionLine() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "switchd " + v
	}
	if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	var rev, at, dirty string
	for _, kv := range info.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	line := "switchd " + v
	if rev != "" {
		line += " commit " + rev[:min(12, len(rev))] + dirty
	}
	if at != "" {
		line += " " + at
	}
	return line + " " + info.GoVersion
}
