// Command drevents prints SYNTHETIC demand-response events, one JSON object
// a line, placed on the highest-priced intervals of a price trace
// (sim.PeakEvents), for bench/dr-compliance.sh and studies with
// `switchd sim --events`.
//
//	go run ./bench/drevents --trace prices.csv --n 10 --target-kw 9000 > events.jsonl
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchd/switchd/sim"
	"github.com/switchd/switchd/trace"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "drevents:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("drevents", flag.ContinueOnError)
	path := fs.String("trace", "", "price trace `CSV`")
	o := sim.PeakEventOptions{}
	fs.IntVar(&o.N, "n", 10, "number of events")
	fs.DurationVar(&o.Gap, "gap", 24*time.Hour, "least time between two events' starts")
	fs.DurationVar(&o.Notice, "notice", 10*time.Minute, "notice before each start")
	fs.DurationVar(&o.Duration, "duration", time.Hour, "length of each event")
	fs.StringVar(&o.Program, "program", "synthetic-peak", "program name")
	fs.Float64Var(&o.TargetKW, "target-kw", 0, "site target kW (or give --shed-kw)")
	fs.Float64Var(&o.ShedKW, "shed-kw", 0, "kW to shed below the baseline (or give --target-kw)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *path == "" || (o.TargetKW > 0) == (o.ShedKW > 0) {
		return errors.New("want --trace and exactly one of --target-kw and --shed-kw")
	}
	src, _, closer, err := trace.Open([]string{*path})
	if err != nil {
		return err
	}
	defer closer.Close()
	s, err := trace.Collect(src)
	if err != nil {
		return err
	}
	fmt.Printf("# SYNTHETIC demand-response events: the %d highest-priced intervals of %s, %s apart at least\n", o.N, *path, o.Gap)
	enc := json.NewEncoder(os.Stdout)
	for _, ev := range sim.PeakEvents(s, o) {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return nil
}
