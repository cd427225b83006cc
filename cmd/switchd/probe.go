package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/switchd/switchd"
	siteconfig "github.com/switchd/switchd/config"
	"github.com/switchd/switchd/drivers/all"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// wallClock is the real clock, for building drivers outside the daemon.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

const probeUsage = `usage:
  switchd probe --driver NAME --addr HOST[:PORT] [credential flags] [--format json]
  switchd probe --config FILE [--fleet NAME] [--format json]

Reads devices and prints what they report; it never changes a device.
`

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("probe", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, probeUsage); fs.PrintDefaults() }
	driver := fs.String("driver", "", "driver `NAME`: "+strings.Join(all.ProbeNames(), ", "))
	addr := fs.String("addr", "", "device address `HOST[:PORT]` (the driver's default port when absent)")
	config := fs.String("config", "", "probe every device of this site `FILE`")
	fleet := fs.String("fleet", "", "with --config, only this fleet")
	settingsFile := fs.String("settings", "", "a YAML `FILE` holding the driver's settings block")
	username := fs.String("username", "", "login user name")
	passwordFile := fs.String("password-file", "", "read the password (or token) from `FILE`")
	passwordEnv := fs.String("password-env", "", "read the password (or token) from environment variable `NAME`")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed per device")
	concurrency := fs.Int("concurrency", 128, "devices probed at once (with --config)")
	format := fs.String("format", "text", "output: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("--format: want text or json (got %q)", *format)}
	}
	if *timeout <= 0 || *concurrency <= 0 {
		return usageError{errors.New("--timeout and --concurrency must be positive")}
	}
	switch {
	case *config != "" && (*driver != "" || *addr != ""):
		return usageError{errors.New("give --config, or --driver and --addr, not both")}
	case *config != "":
		return probeSite(ctx, *config, *fleet, *timeout, *concurrency, *format, stdout)
	case *driver == "" || *addr == "":
		return usageError{errors.New("--driver and --addr are required (or --config)")}
	}
	set, err := probeSettings(*settingsFile, *username, *passwordFile, *passwordEnv)
	if err != nil {
		return configErrors{err}
	}
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	r, err := all.Probe(pctx, *driver, set, switchd.Device{Addr: *addr})
	if err != nil {
		return configErrors{err}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printProbe(stdout, r)
	}
	if r.Error != "" {
		return probeFailed{fmt.Errorf("%s: %s", r.Addr, r.Error)}
	}
	return nil
}

// probeFailed is a device that could not be read (exit 1, the message only).
type probeFailed struct{ error }

// probeSettings builds a settings block from a file and credential flags.
// The file's own text is kept, so that its errors name its lines; the
// flags are appended as keys of their own.
func probeSettings(file, user, pwFile, pwEnv string) (switchd.Settings, error) {
	flags := []struct{ key, flag, value string }{
		{"username", "--username", user},
		{"password_file", "--password-file", pwFile},
		{"password_env", "--password-env", pwEnv},
	}
	extra := map[string]string{}
	for i, f := range flags {
		if f.value == "" {
			continue
		}
		if f.key == "password_file" {
			// A path given on the command line is the working
			// directory's, whatever folder the settings file is in.
			abs, err := filepath.Abs(f.value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.flag, err)
			}
			flags[i].value = abs
		}
		extra[f.key] = flags[i].value
	}
	name, dir := "probe flags", "."
	var src []byte
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		name, dir, src = file, filepath.Dir(file), b
		if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
			top := doc.Content[0]
			for i := 0; i+1 < len(top.Content); i += 2 {
				k := top.Content[i]
				for _, f := range flags {
					if f.value != "" && k.Value == f.key {
						return nil, fmt.Errorf("%s:%d: %s: also given by %s: give one of them", file, k.Line, f.key, f.flag)
					}
				}
			}
			if len(extra) > 0 && top.Style&yaml.FlowStyle != 0 {
				// {a: 1} cannot take block keys after it: merge (the
				// file is one line anyway).
				m := map[string]any{}
				if err := top.Decode(&m); err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
				for k, v := range extra {
					m[k] = v
				}
				if src, err = yaml.Marshal(m); err != nil {
					return nil, err
				}
				extra = nil
			}
		}
	}
	if len(extra) > 0 {
		b, err := yaml.Marshal(extra)
		if err != nil {
			return nil, err
		}
		if len(src) > 0 && src[len(src)-1] != '\n' {
			src = append(src, '\n')
		}
		src = append(src, b...)
	}
	if len(bytes.TrimSpace(src)) == 0 {
		src = nil
	}
	return siteconfig.ParseSettings(name, dir, src)
}

func printProbe(w io.Writer, r switchd.ProbeResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	power := "not reported"
	if r.PowerW != nil {
		power = fmt.Sprintf("%.0f W", *r.PowerW)
	}
	fmt.Fprintf(tw, "device\t%s (%s)\n", r.Addr, r.Driver)
	fmt.Fprintf(tw, "reachable\t%v\n", r.Reachable)
	mode := r.Mode
	if r.Fault {
		mode += " (fault: " + r.Detail + ")"
	}
	fmt.Fprintf(tw, "mode\t%s\n", mode)
	fmt.Fprintf(tw, "hashrate\t%.2f TH/s\n", r.HashrateTHs)
	fmt.Fprintf(tw, "power\t%s\n", power)
	fmt.Fprintf(tw, "model\t%s\n", r.Model)
	fmt.Fprintf(tw, "firmware\t%s\n", r.Firmware)
	fmt.Fprintf(tw, "supports\t%s\n", strings.Join(r.Supports, ", "))
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", r.Error)
	}
	tw.Flush()
}

// fleetProbe is one fleet's probe summary.
type fleetProbe struct {
	Driver        string         `json:"driver"`
	Devices       int            `json:"devices"`
	Reachable     int            `json:"reachable"`
	Unreachable   int            `json:"unreachable"`
	Misconfigured int            `json:"misconfigured"`
	Faulted       int            `json:"faulted"`
	Unknown       int            `json:"unknown_mode"`
	Modes         map[string]int `json:"modes"`
	Error         string         `json:"error,omitempty"`
	// Skipped says why a fleet has nothing to probe (simulated devices):
	// not an error, and not unusable.
	Skipped string                `json:"skipped,omitempty"`
	Results []switchd.ProbeResult `json:"results"`
}

// usable reports whether every device of the fleet can be driven.
func (f *fleetProbe) usable() bool {
	return f.Error == "" && f.Unreachable+f.Misconfigured+f.Faulted+f.Unknown == 0
}

// note is what to print under the table for a fleet, if anything.
func (f *fleetProbe) note() string {
	if f.Error != "" {
		return f.Error
	}
	return f.Skipped
}

// probeSite reads every device of every fleet concurrently and prints a
// summary; it fails when any device is unusable.
func probeSite(ctx context.Context, config, only string, timeout time.Duration, concurrency int, format string, stdout io.Writer) error {
	site, err := siteconfig.LoadSite(config)
	if err != nil {
		return configErrors{err}
	}
	out := map[string]*fleetProbe{}
	var names []string
	type job struct {
		fleet string
		set   switchd.Settings
		drv   string
		dev   switchd.Device
	}
	var jobs []job
	for i := range site.Fleets {
		f := &site.Fleets[i]
		if only != "" && f.Spec.Name != only {
			continue
		}
		fp := &fleetProbe{Driver: f.Driver, Devices: f.Spec.Count, Modes: map[string]int{}, Results: []switchd.ProbeResult{}}
		out[f.Spec.Name] = fp
		names = append(names, f.Spec.Name)
		e, err := all.Lookup(f.Driver)
		switch {
		case err != nil:
			fp.Error, fp.Misconfigured = err.Error(), f.Spec.Count
			continue
		case e.Device == nil:
			fp.Skipped = "driver " + f.Driver + " has no devices to probe (simulated)"
			continue
		}
		// Settings problems make every device of the fleet misconfigured.
		if _, err := all.Build(f.Driver, all.Deps{Spec: f.Spec, Devices: f.Devices, Settings: site.DriverSettings(i), Clock: wallClock{}, Logger: zap.NewNop()}); err != nil {
			fp.Error, fp.Misconfigured = err.Error(), f.Spec.Count
			continue
		}
		for _, dv := range f.Devices {
			jobs = append(jobs, job{f.Spec.Name, site.DriverSettings(i), f.Driver, dv})
		}
	}
	if only != "" && len(names) == 0 {
		return usageError{fmt.Errorf("--fleet: no fleet %q in %s", only, config)}
	}
	results := make([]switchd.ProbeResult, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(concurrency, max(len(jobs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				r, err := all.Probe(pctx, jobs[j].drv, jobs[j].set, jobs[j].dev)
				cancel()
				if err != nil {
					r = switchd.ProbeResult{Addr: jobs[j].dev.Addr, Driver: jobs[j].drv, Mode: "unknown", Error: err.Error(), Reachable: true}
				}
				r.Fleet = jobs[j].fleet
				results[j] = r
			}
		}()
	}
	for j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	for _, r := range results {
		fp := out[r.Fleet]
		switch {
		case !r.Reachable:
			fp.Unreachable++
		case r.Error != "":
			fp.Misconfigured++
		default:
			fp.Reachable++
			fp.Modes[r.Mode]++
			if r.Fault {
				fp.Faulted++
			}
			if r.Mode == "unknown" {
				fp.Unknown++
			}
		}
		fp.Results = append(fp.Results, r)
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		if !out[n].usable() {
			bad++
		}
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"site": site.Name, "fleets": out, "usable": bad == 0}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, n := range names {
			for _, r := range out[n].Results {
				if r.Error != "" || r.Fault || r.Mode == "unknown" {
					why := r.Error
					if why == "" {
						why = "fault: " + r.Detail
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n, r.Addr, why)
				}
			}
		}
		// The device lines are a table of their own: sharing columns with
		// the summary would widen its driver column to an address.
		tw.Flush()
		fmt.Fprintln(tw, "fleet\tdriver\tdevices\treachable\tunreachable\tmisconfigured\tfaulted\tmodes")
		for _, n := range names {
			fp := out[n]
			var modes []string
			for m, c := range fp.Modes {
				modes = append(modes, fmt.Sprintf("%s=%d", m, c))
			}
			sort.Strings(modes)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", n, fp.Driver, fp.Devices, fp.Reachable, fp.Unreachable, fp.Misconfigured, fp.Faulted, strings.Join(modes, " "))
		}
		tw.Flush()
		// Fleet-wide notes go under the table: a row with fewer cells
		// would end the table's columns halfway.
		for _, n := range names {
			if note := out[n].note(); note != "" {
				fmt.Fprintf(stdout, "%s: %s\n", n, note)
			}
		}
	}
	if bad > 0 {
		return probeFailed{fmt.Errorf("%d of %d fleets have unusable devices", bad, len(names))}
	}
	return nil
}
