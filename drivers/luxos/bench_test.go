package luxos

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/pool"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
	"go.uber.org/zap"
)

// wallClock is the live clock, for benchmarks that measure real time.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loopback is the i-th benchmark address: 127.0.X.Y:4028, as miners on a
// LAN each have their own address.
func loopback(i int) string {
	return fmt.Sprintf("127.0.%d.%d:4028", 1+i/250, 1+i%250)
}

// startFleet starts n fake miners, each on its own loopback address, or on
// 127.0.0.1:0 when that address cannot be bound.
func startFleet(b *testing.B, n int) []switchd.Device {
	b.Helper()
	devs := make([]switchd.Device, n)
	fallback := 0
	for i := range n {
		f := luxosfake.New(luxosfake.Options{})
		if err := f.Start(loopback(i)); err != nil {
			fallback++
			if err := f.Start("127.0.0.1:0"); err != nil {
				b.Fatalf("start fake %d: %v", i, err)
			}
		}
		b.Cleanup(func() { _ = f.Close() })
		devs[i] = switchd.Device{Addr: f.Addr()}
	}
	if fallback > 0 {
		b.Logf("%d of %d fakes on 127.0.0.1 ports (their loopback address could not be bound)", fallback, n)
	}
	return devs
}

func benchSpec(n int) switchd.FleetSpec {
	s := switchd.FleetSpec{Name: "asics", Count: n}
	s.Supports[switchd.ModeOff], s.Supports[switchd.ModeMining] = true, true
	s.Modes[switchd.ModeOff] = switchd.ModeSpec{PowerKW: 0.022}
	s.Modes[switchd.ModeMining] = switchd.ModeSpec{PowerKW: 2.76, HashrateTHs: 120, Revenue: switchd.RevenueHashprice}
	s.Transition[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	s.Transition[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	return s
}

// cpuTime is the process's user plus system CPU time and its peak RSS.
func cpuTime() (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Maxrss * 1024 // Maxrss is in KiB on Linux
}

// pollUntil polls until want devices are observed steady in m; it returns
// the number of polls.
func pollUntil(b *testing.B, drv switchd.Driver, m switchd.Mode, want int) int {
	b.Helper()
	for polls := 1; polls <= 20; polls++ {
		st, err := drv.State(context.Background())
		if err != nil {
			b.Fatalf("state: %v", err)
		}
		if steady, _ := st.Count(m); steady == want {
			return polls
		}
	}
	b.Fatalf("fleet not observed %s after 20 polls", m)
	return 0
}

// BenchmarkFleet5000 runs a fleet of fake LuxOS miners on loopback
// (SWITCHD_BENCH_FLEET_N, default 5,000), each on its own 127.0.X.Y:4028,
// through the real driver and pool with default settings (concurrency
// 256), and reports per cycle:
//
//   - poll_s: one full State poll of the fleet (one multi-command request
//     per miner);
//   - curtail_ack_s: Apply(curtail all) to its return, every curtail
//     acknowledged (logon, curtail sleep, logoff per miner);
//   - curtail_observed_s: from the same start until a State poll shows
//     every miner asleep;
//   - restore_ack_s / restore_observed_s: the same for waking all in
//     stagger batches of 500 (issued back to back: the controller's stagger
//     interval is left out) until a poll shows every miner mining;
//   - cpu_s, maxrss_MB: CPU time and peak RSS of the whole test process,
//     which includes the fake miners (an upper bound for switchd's own).
func BenchmarkFleet5000(b *testing.B) {
	n := envInt("SWITCHD_BENCH_FLEET_N", 5000)
	const batch = 500
	// Each fake holds a listener, and each of the pool's calls in flight
	// two descriptors (both ends): fit the fleet in the process's limit.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		if fit := int(rl.Cur) - 2*256 - 200; n > fit {
			if fit < 10 {
				b.Skipf("open-file limit %d is too low for a fleet", rl.Cur)
			}
			b.Logf("open-file limit %d: fleet cut from %d to %d", rl.Cur, n, fit)
			n = fit
		}
	}
	devs := startFleet(b, n)
	drv, err := New(pool.Deps{Spec: benchSpec(n), Devices: devs, Settings: pooltest.Settings{}, Clock: wallClock{}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer drv.(switchd.Stopper).Stop()
	ctx := context.Background()
	pollUntil(b, drv, switchd.ModeMining, n) // warm: every device seen once

	var poll, curtailAck, curtailSeen, restoreAck, restoreSeen time.Duration
	cpu0, _ := cpuTime()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := drv.State(ctx); err != nil {
			b.Fatal(err)
		}
		poll += time.Since(start)

		start = time.Now()
		if err := drv.Apply(ctx, []switchd.Command{{From: switchd.ModeMining, To: switchd.ModeOff, Count: n}}); err != nil {
			b.Fatalf("curtail: %v", err)
		}
		curtailAck += time.Since(start)
		pollUntil(b, drv, switchd.ModeOff, n)
		curtailSeen += time.Since(start)

		start = time.Now()
		for done := 0; done < n; done += batch {
			if err := drv.Apply(ctx, []switchd.Command{{From: switchd.ModeOff, To: switchd.ModeMining, Count: min(batch, n-done)}}); err != nil {
				b.Fatalf("restore: %v", err)
			}
		}
		restoreAck += time.Since(start)
		pollUntil(b, drv, switchd.ModeMining, n)
		restoreSeen += time.Since(start)
	}
	b.StopTimer()
	cpu1, maxRSS := cpuTime()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(float64(n), "devices")
	b.ReportMetric(per(poll), "poll_s")
	b.ReportMetric(per(curtailAck), "curtail_ack_s")
	b.ReportMetric(per(curtailSeen), "curtail_observed_s")
	b.ReportMetric(per(restoreAck), "restore_ack_s")
	b.ReportMetric(per(restoreSeen), "restore_observed_s")
	b.ReportMetric(per(cpu1-cpu0), "cpu_s")
	b.ReportMetric(float64(maxRSS)/(1<<20), "maxrss_MB")
}

// rssNow reads the process's current resident set from /proc (Linux).
func rssNow() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkListed100k measures what 100,000 listed devices cost
// (SWITCHD_BENCH_LISTED_N): the driver built through the pool with
// default settings, then one full State poll in which every device is
// refused (each listed at its own 127.1.X.Y:4028, where nothing listens,
// so every poll is a real, refused connection attempt). It reports the
// construction and poll times, the Go heap in use after the poll, the
// resident set now and its peak. Run it in its own process for a clean
// peak RSS (bench/luxos-fleet.sh does).
func BenchmarkListed100k(b *testing.B) {
	n := envInt("SWITCHD_BENCH_LISTED_N", 100_000)
	// A port nobody listens on, checked on the first address.
	if c, err := net.DialTimeout("tcp", "127.1.0.1:4028", time.Second); err == nil {
		_ = c.Close()
		b.Skip("something listens on 127.1.0.1:4028")
	}
	devs := make([]switchd.Device, n)
	for i := range devs {
		devs[i] = switchd.Device{Addr: fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250)}
	}
	var build, poll time.Duration
	var heap uint64
	var drivers []switchd.Driver
	for range b.N {
		start := time.Now()
		drv, err := New(pool.Deps{Spec: benchSpec(n), Devices: devs, Settings: pooltest.Settings{}, Clock: wallClock{}, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		build += time.Since(start)
		start = time.Now()
		st, err := drv.State(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		poll += time.Since(start)
		if st.Unusable.ByReason[switchd.ProblemUnreachable] != n {
			b.Fatalf("want %d unreachable, got %+v", n, st.Unusable)
		}
		drivers = append(drivers[:0], drv) // keep it alive while measuring
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
	}
	b.StopTimer()
	_, maxRSS := cpuTime()
	b.ReportMetric(float64(n), "devices")
	b.ReportMetric(build.Seconds()/float64(b.N), "construct_s")
	b.ReportMetric(poll.Seconds()/float64(b.N), "poll_s")
	b.ReportMetric(float64(heap)/(1<<20), "heap_MB")
	b.ReportMetric(float64(rssNow())/(1<<20), "rss_MB")
	b.ReportMetric(float64(maxRSS)/(1<<20), "maxrss_MB")
	runtime.KeepAlive(drivers)
}
