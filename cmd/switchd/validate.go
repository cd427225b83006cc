package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/switchd/switchd/daemon"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/sim"
	"github.com/switchd/switchd/trace"
)

// cmdValidate checks a site file and a policy exactly as `switchd run`
// loads them (daemon.LoadSite: every range check, every driver built) and
// prints every problem as file:line: key: message, or a one-line summary.
// The policy is --policy, or else the one the site file names; warnings
// (valid but unwise settings) go to stderr.
func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	cfgPath := fs.String("config", "", "site config `FILE` (required)")
	policy := fs.String("policy", "", "policy `FILE` (default: the one the site file names, if any)")
	var traces stringList
	fs.Var(&traces, "trace", "trace CSV `FILE` (optional, repeatable, merged as by sim): warn where a max_age is shorter than the trace's cadence, or the policy needs a signal the trace lacks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageError{errors.New("--config is required")}
	}
	site, err := daemon.LoadSite(*cfgPath)
	if err != nil {
		return configErrors{err}
	}
	for _, w := range site.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	line := site.Summary()
	var pol *policies.Policy
	switch {
	case *policy != "":
		pol, err = policies.LoadPolicy(*policy, site)
	case site.Daemon.PolicyPath != "":
		pol, err = daemon.LoadPolicy(site) // exactly as run loads it
	}
	if err != nil {
		return configErrors{err}
	}
	if pol != nil {
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
