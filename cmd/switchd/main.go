// Command switchd is the site daemon's command line: flags, OS signals and
// wiring, nothing else. Subcommands: run, sim, replay, journal, validate,
// probe, fakes, gen-trace, schema, completion, version (the table in
// commands).
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

	"github.com/switchd/switchd/controller/journal"
	"github.com/switchd/switchd/sim"
	"github.com/switchd/switchd/trace"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand of switchd.
type command struct {
	name     string
	synopsis string   // the usage line after "switchd "
	summary  string   // one line in the command list
	args     []string // the words it takes first (journal verify|export), for completion
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is switchd's command table: dispatch, usage and shell
// completion all read it.
func commands() []command {
	return []command{
		{name: "run", synopsis: "run --config FILE [flags]", summary: "run the site daemon (MQTT signals, HTTP API, journal)",
			run: func(ctx context.Context, args []string, _, stderr io.Writer) error { return cmdRun(ctx, args, stderr) }},
		{name: "sim", synopsis: "sim --config FILE --policy FILE --trace FILE [flags]", summary: "replay grid traces through the controller on simulated devices",
			run: cmdSim},
		{name: "replay", synopsis: "replay --trace FILE --broker URL [flags]", summary: "publish a trace to an MQTT broker as signals (demos, tests)",
			run: cmdReplay},
		{name: "journal", synopsis: "journal verify|export|events FILE [flags]", summary: "verify a journal, export it as CSV, or print demand-response compliance (journal verify|export|events)",
			args: []string{"verify", "export", "events"},
			run:  withoutContext(cmdJournal)},
		{name: "validate", synopsis: "validate --config FILE [--policy FILE] [--trace FILE]", summary: "check a site config (and a policy) and print every error",
			run: withoutContext(cmdValidate)},
		{name: "probe", synopsis: "probe --driver NAME --addr HOST[:PORT] | --config FILE [flags]", summary: "read devices (one, or every device of a site) without changing them",
			run: cmdProbe},
		{name: "fakes", synopsis: "fakes --config FILE [--running]", summary: "serve fake devices at a site's loopback device addresses (demos, benchmarks)",
			run: cmdFakes},
		{name: "gen-trace", synopsis: "gen-trace [flags]", summary: "write a SYNTHETIC sample trace (project-made, not market data)",
			run: withoutContext(cmdGenTrace)},
		{name: "schema", synopsis: "schema site|policy", summary: "print the JSON Schema of site or policy files (editor completion)",
			args: []string{"site", "policy"},
			run:  withoutContext(cmdSchema)},
		{name: "completion", synopsis: "completion bash|zsh|fish", summary: "print a shell completion script",
			args: []string{"bash", "zsh", "fish"},
			run:  withoutContext(cmdCompletion)},
		{name: "version", synopsis: "version", summary: "print the version",
			run: withoutContext(cmdVersion)},
	}
}

// withoutContext adapts a command that needs no context.
func withoutContext(f func(args []string, stdout, stderr io.Writer) error) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error { return f(args, stdout, stderr) }
}

// findCommand returns the command called name.
func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the command list.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: switchd <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'switchd <command> -h' for a command's flags.\n")
	return b.String()
}

// run selects the subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name, args := args[0], args[1:]
	switch name {
	case "--version", "-version":
		name = "version"
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	case "help":
		// switchd help CMD is switchd CMD -h.
		if len(args) == 0 {
			fmt.Fprint(stdout, usage())
			return 0
		}
		name, args = args[0], []string{"-h"}
	}
	c, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "switchd: unknown command %q\n\n%s", name, usage())
		return 2
	}
	// Asked for, help is the output: it goes to stdout (the flag package
	// writes usage to the FlagSet's output, the command's stderr).
	errOut := stderr
	if wantsHelp(args) {
		errOut = stdout
	}
	err := c.run(ctx, args, stdout, errOut)
	var ue usageError
	var ce configErrors
	var pf probeFailed
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pf):
		fmt.Fprintf(stderr, "switchd %s: %v\n", name, pf.error)
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		// Exactly the problems, one per line (file:line: key: message).
		fmt.Fprintln(stderr, ce.error)
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "switchd %s: %v\n", name, err)
		return 2
	case name == "run" && errors.Is(err, journal.ErrCorrupt):
		fmt.Fprintf(stderr, "switchd %s: %v\n%s\n", name, err, journalCorruptHelp(err))
		return exitJournalCorrupt
	default:
		fmt.Fprintf(stderr, "switchd %s: %v\n", name, err)
		return 1
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// wantsHelp reports whether a command line asks for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// configErrors are configuration problems, printed one per line as they are.
type configErrors struct{ error }

// usageError is a bad command line (exit code 2).
type usageError struct{ error }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newFlags returns the FlagSet of command name ("sim", "journal export"),
// whose -h prints the command's synopsis, summary and flags. Given a
// *flagSink as stderr (by completion, which runs a command with -h only to
// learn its flags), it hands the FlagSet over.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	synopsis, summary := name+" [flags]", ""
	if c, ok := findCommand(name); ok {
		synopsis, summary = c.synopsis, c.summary
	}
	for _, j := range journalCommands {
		if name == "journal "+j.name {
			synopsis, summary = j.synopsis, j.summary
		}
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: switchd %s\n", synopsis)
		if summary != "" {
			fmt.Fprintf(w, "\n%s\n", strings.ToUpper(summary[:1])+summary[1:]+".")
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	if sink, ok := stderr.(*flagSink); ok {
		sink.sets = append(sink.sets, fs)
	}
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
	repeats := &repeatFlag{traces: &traces}
	fs.Var(repeats, "repeat", "`weekly`: tile the --trace just before it over the timeline by whole weeks (same weekday and time of day in the site's zone), for a trace shorter than the first; days of the week it lacks stay missing")
	format := fs.String("format", "text", "report format: text or json (several runs: a JSON list of reports)")
	timeseries := fs.String("timeseries", "", "write the policy run's per-interval time series to this CSV `FILE`")
	events := fs.String("events", "", "replay the demand-response events of this JSON-lines `FILE` (one event a line) and report compliance per event")
	htmlOut := fs.String("html", "", "write a self-contained HTML report (charts and summary; opens without network) to this `FILE`")
	resample := fs.Duration("resample", 0, "average the trace into intervals of this `STEP` first (e.g. 1h: interval-weighted means; never makes a sample up)")
	var maxAge, missing stringList
	fs.Var(&maxAge, "max-age", "`SIGNAL=DURATION`, SIGNAL=auto or auto: override the site's max_age (auto: from the trace's cadence, 2 cadences or the default if longer; that is already done where the site file sets none); repeatable")
	fs.Var(&missing, "missing", "`SIGNAL=fail-safe|ignore|VALUE`: run a policy that needs a signal the trace lacks (fail-safe: absent throughout, its fail-safe applies; ignore: as if the policy did not read it; VALUE: a constant); repeatable")
	forecast := fs.String("forecast", "", "give the policy runs a price forecast issued each midnight for 48 h: `noisy:SIGMA` (SYNTHETIC: the trace's actual prices × lognormal noise, e.g. noisy:0.1) column:NAME (a day-ahead price column of the trace file; a price_forecast_usd_mwh column is used without the flag) or none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := sim.CLIOptions{Config: *config, Policies: pols, Sets: sets, Traces: traces, Format: *format, Timeseries: *timeseries,
		HTML: *htmlOut, Resample: *resample, MaxAge: maxAge, Missing: missing, Repeats: repeats.values}
	o.Forecast = *forecast
	o.Events = *events
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	return sim.RunCLI(ctx, o, stdout, stderr)
}

func cmdGenTrace(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gen-trace", stderr)
	start := fs.String("start", "2024-01-01T00:00:00-06:00", "first interval start "+timeFlagHelp)
	step := fs.Duration("step", 15*time.Minute, "interval length")
	n := fs.Int("n", 96*31, "number of intervals")
	seed := fs.Int64("seed", 1, "random seed")
	aiDemand := fs.Float64("ai-demand", 0, "constant AI demand in `GPUs` (default 2500; give the site's GPU count or less)")
	spikeAt := fs.Duration("spike-at", 0, "also start a 90-minute spike of 650 USD/MWh this long after --start (0: only the random spikes)")
	aiDaily := fs.Bool("ai-demand-daily", false, "AI demand follows a daily shape (--ai-demand at 15:00, a tenth of it at 03:00) instead of staying constant")
	out := fs.String("out", "", "output `FILE` (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t0, err := parseTimeFlag("start", *start)
	if err != nil {
		return err
	}
	if t0.IsZero() {
		return usageError{errors.New("--start is required")}
	}
	if *step <= 0 || *n <= 0 {
		return usageError{errors.New("--step and --n must be positive")}
	}
	if *aiDemand < 0 || *spikeAt < 0 {
		return usageError{errors.New("--ai-demand and --spike-at must not be negative")}
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
	src := trace.SyntheticSourceWith(t0, *step, *n, *seed, trace.SyntheticOptions{AIDemandGPUs: *aiDemand, SpikeAt: *spikeAt, AIDemandDaily: *aiDaily})
	if err := trace.WriteCSV(w, src); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		return f.Close()
	}
	return nil
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	fmt.Fprintln(stdout, versionLine())
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
