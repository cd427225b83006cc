// Command chaos runs switchd against a real Mosquitto and fake LuxOS miners
// on loopback for a bounded time while injecting faults on a seeded random
// schedule: broker restarts, junk, oversized, future-dated and duplicated
// payloads, retained stale bare-number prices, SIGKILL of the daemon, a full
// disk under the journal, and devices that time out or lie about their
// mode. It checks invariants from the devices' own state (the fakes' side,
// never the daemon's claims) and from the journal, and prints what it
// injected and what held. It exits 1 when an invariant was violated.
//
//	go run ./bench/chaos -duration 10m [-seed N] [-devices 16] [-bin switchd]
//
// or bench/chaos.sh DURATION. It needs mosquitto and mosquitto_pub; the
// full-disk fault mounts a small tmpfs, which needs root (skipped with a
// notice otherwise).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	o := Options{}
	flag.DurationVar(&o.Duration, "duration", 2*time.Minute, "how long to inject faults")
	flag.Int64Var(&o.Seed, "seed", 0, "seed of the fault schedule (0: from the clock, printed)")
	flag.IntVar(&o.Devices, "devices", 16, "fake LuxOS miners")
	flag.StringVar(&o.Dir, "dir", "", "working directory (default: a new temporary one, removed unless -keep)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the working directory (logs, journal)")
	flag.StringVar(&o.Bin, "bin", "", "a built switchd to run (default: built from this tree)")
	flag.Parse()
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano() % 1_000_000_007
	}
	o.Log = os.Stderr
	rep, err := Run(o)
	if rep != nil {
		rep.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if v := rep.Violations(); v > 0 {
		fmt.Fprintf(os.Stderr, "chaos: %d invariant violations (seed %d)\n", v, o.Seed)
		os.Exit(1)
	}
}
