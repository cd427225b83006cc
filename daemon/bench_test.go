package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchd/switchd/daemon"
	"go.uber.org/zap"
)

// benchConfig is a 10,000-device simulated site (8,000 ASICs, 2,000 GPUs)
// on an external broker, journalled, with instant transitions and no
// stagger or ramp: one tick commands the whole shed.
func benchConfig(tb testing.TB, dir string, brokerPort int) string {
	tb.Helper()
	site := fmt.Sprintf(`
site: {name: bench, timezone: America/Chicago, power_cap_kw: 40000}
policy: policy.yaml
tick: 10s
mqtt:
  broker: tcp://127.0.0.1:%d
  signal_prefix: bench/signals
  state_topic: bench/state
signals:
  price: {max_age: 1h}
journal: {path: journal.log}
fleets:
  - name: asics
    kind: asic
    count: 8000
    driver: sim
    modes:
      off: {power_kw: 0.015}
      mining: {power_kw: 3.5, hashrate_ths: 200}
  - name: gpus
    kind: gpu
    count: 2000
    driver: sim
    modes:
      off: {power_kw: 0.2}
      inference: {power_kw: 1.275}
`, brokerPort)
	pol := `
fallbacks: {hashprice_usd_ph_day: 50, inference_usd_gpu_hour: 2.10, ai_demand_gpus: 2000}
fail_safe: {price: curtail}
rules:
  - name: spike
    when: {price_above_usd_mwh: 1000}
    then: {force: {asics: off}}
`
	must(tb, os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o644))
	must(tb, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o644))
	return filepath.Join(dir, "site.yaml")
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// runBenchDaemon starts the daemon in-process; ticked receives the devices
// commanded by each tick.
func runBenchDaemon(b *testing.B, cfg string, ticked func(int)) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{ConfigPath: cfg, Logger: zap.NewNop(), Registry: reg, Version: "bench",
			Ready: func(a string) { ready <- a }, Ticked: ticked})
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the subscription land
	return reg
}

// BenchmarkSignalToCommand measures, through a real Mosquitto on loopback,
// the time from publishing a price spike (mosquitto_pub's wall clock start
// is not precise enough, so an in-process paho publish is used) to the last
// device command of the resulting shed being accepted by the drivers, on a
// 10,000-device simulated site with a journal (fsync before commands).
// Reports p50 and p99 over the iterations.
func BenchmarkSignalToCommand(b *testing.B) {
	port := startMosquitto(b)
	dir := b.TempDir()
	cfg := benchConfig(b, dir, port)
	var commanded atomic.Int64
	var at atomic.Int64
	runBenchDaemon(b, cfg, func(n int) {
		if n > 0 {
			commanded.Add(int64(n))
			at.Store(time.Now().UnixNano())
		}
	})
	pub := newBenchPublisher(b, port)
	send := func(v float64) {
		if err := pub(fmt.Sprintf(`{"ts":%q,"value":%g}`, time.Now().UTC().Format(time.RFC3339Nano), v)); err != nil {
			b.Fatal(err)
		}
	}
	waitCommanded := func(before int64) {
		deadline := time.Now().Add(10 * time.Second)
		for commanded.Load() == before {
			if time.Now().After(deadline) {
				b.Fatal("no command within 10s")
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	// Warm up: everything running.
	c := commanded.Load()
	send(30)
	waitCommanded(c)
	var lat []time.Duration
	for b.Loop() {
		c := commanded.Load()
		t0 := time.Now()
		send(2500)
		waitCommanded(c)
		lat = append(lat, time.Duration(at.Load()-t0.UnixNano()))
		c = commanded.Load()
		send(30)
		waitCommanded(c)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIngest measures sustained signal ingestion with the controller
// running: mosquitto_pub -l publishes N price messages (QoS 1) through
// Mosquitto; the figure is accepted messages per second at the daemon.
func BenchmarkIngest(b *testing.B) {
	port := startMosquitto(b)
	dir := b.TempDir()
	cfg := benchConfig(b, dir, port)
	reg := runBenchDaemon(b, cfg, nil)
	const n = 50_000
	var lines strings.Builder
	base := time.Now().UTC()
	for i := range n {
		// Increasing timestamps, prices around breakeven so the controller
		// has work to do now and then.
		fmt.Fprintf(&lines, `{"ts":%q,"value":%d}`+"\n", base.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano), 20+i%200)
	}
	var totalSecs, totalAcc, totalRej float64
	defer func() {
		// Over all rounds: mosquitto_pub start-up to the last message handled.
		b.ReportMetric(totalAcc/totalSecs, "accepted/s")
		b.ReportMetric(totalRej/(totalAcc+totalRej), "rejected-share")
	}()
	for b.Loop() {
		before := acceptedTotal(b, reg)
		beforeRej := counterTotal(b, reg, "switchd_signal_rejected_total")
		start := time.Now()
		cmd := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", "bench/signals/price", "-l")
		cmd.Stdin = strings.NewReader(lines.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
		// Every message is either accepted or rejected (with paho's
		// unordered delivery some arrive after a newer one and are
		// rejected as out of order, as the rules say).
		deadline := time.Now().Add(30 * time.Second)
		handled := func() (acc, rej float64) {
			return acceptedTotal(b, reg) - before, counterTotal(b, reg, "switchd_signal_rejected_total") - beforeRej
		}
		for {
			acc, rej := handled()
			if acc+rej >= n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("handled %v of %d within 30s (accepted %v)", acc+rej, n, acc)
			}
			time.Sleep(time.Millisecond)
		}
		acc, rej := handled()
		totalSecs += time.Since(start).Seconds()
		totalAcc += acc
		totalRej += rej
		base = base.Add(time.Second) // the next round must be newer
		lines.Reset()
		for i := range n {
			fmt.Fprintf(&lines, `{"ts":%q,"value":%d}`+"\n", base.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano), 20+i%200)
		}
	}
}

// newBenchPublisher returns a function publishing a price payload with QoS 1.
func newBenchPublisher(b *testing.B, port int) func(string) error {
	p := startPublisher(b, port)
	return func(payload string) error {
		return p.Publish(context.Background(), "bench/signals/price", []byte(payload))
	}
}

func acceptedTotal(b *testing.B, reg *prometheus.Registry) float64 {
	return counterTotal(b, reg, "switchd_signal_accepted_total")
}

func counterTotal(b *testing.B, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			t := 0.0
			for _, m := range mf.GetMetric() {
				t += m.GetCounter().GetValue()
			}
			return t
		}
	}
	return 0
}
