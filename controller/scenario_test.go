package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller"
	"github.com/switchd/switchd/drivers/simdev"
	"github.com/switchd/switchd/policies"
)

// Scenario files (testdata/*.txt) drive the controller against simulated
// fleets on a virtual clock. A file has three sections:
//
//	-- site --      a site YAML
//	-- policy --    a policy YAML
//	-- script --    one step per line:
//	  set SIGNAL VALUE           a sample of SIGNAL at the current time
//	  forecast IN EVERY P1 P2 .. a price forecast issued now, its first
//	                             interval starting IN from now, one price
//	                             per interval of EVERY
//	  advance DURATION           move the clock (no tick)
//	  tick                       one controller cycle at the current time
//	  run DURATION               advance to now+DURATION, ticking at every wake
//	  expect FLEET k=v ...       k a mode (steady: off, mining, ...) or moving
//	  expect-cmds FLEET a->b=N   commands of the last tick (all of them)
//	  expect-power KW            site draw now (±0.5 kW)
//	  expect-fired NAME,...|-    rules fired at the last tick
//	  dr ID shed|target KW notice=D start=D end=D [deadline=D] [interval=D]
//	                             a demand-response event, times relative to now;
//	                             refused=TEXT (_ for spaces): AddDREvent fails so
//	  expect-dr ID k=v ...       its record: phase, met, alarm (or -),
//	                             cap, baseline (kW ±0.5), shortfall (kWh ±0.05),
//	                             met-after (met at now−D), intervals (count)
//
// Lines starting with # are comments.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

type scenario struct {
	t       *testing.T
	file    string
	clock   *clock
	site    *config.Site
	drivers []*simdev.Driver
	ctl     *controller.Controller
}

func runScenario(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	sections := map[string]string{}
	name := ""
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "-- ") && strings.HasSuffix(s, " --") {
			name = strings.TrimSuffix(strings.TrimPrefix(s, "-- "), " --")
			continue
		}
		sections[name] += line
	}
	site, err := config.ParseSite(file+"#site", []byte(sections["site"]))
	require.NoError(t, err)
	pol, err := policies.ParsePolicy(file+"#policy", []byte(sections["policy"]), site)
	require.NoError(t, err)

	s := &scenario{t: t, file: file, clock: &clock{t: time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)}, site: site}
	ifaces := make([]switchd.Driver, len(site.Fleets))
	for i := range site.Fleets {
		cfg, err := simdev.ParseConfig(site.DriverSettings(i))
		require.NoError(t, err)
		s.drivers = append(s.drivers, simdev.New(site.Fleets[i].Spec, cfg, s.clock))
		ifaces[i] = s.drivers[i]
	}
	s.ctl, err = controller.New(controller.Options{Site: site, Policy: pol, Drivers: ifaces, Clock: s.clock})
	require.NoError(t, err)

	for n, line := range strings.Split(sections["script"], "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.step(fmt.Sprintf("%s script line %d: %s", file, n+1, line), strings.Fields(line))
	}
}

func (s *scenario) step(where string, f []string) {
	t := s.t
	ctx := context.Background()
	switch f[0] {
	case "set":
		require.Len(t, f, 3, where)
		sig, err := switchd.ParseSignal(f[1])
		require.NoError(t, err, where)
		v, err := strconv.ParseFloat(f[2], 64)
		require.NoError(t, err, where)
		s.ctl.Observe(switchd.Sample{Time: s.clock.t, Signal: sig, Value: v})
	case "forecast":
		require.GreaterOrEqual(t, len(f), 4, where)
		in, err := time.ParseDuration(f[1])
		require.NoError(t, err, where)
		every, err := time.ParseDuration(f[2])
		require.NoError(t, err, where)
		fc := &controller.Forecast{Issued: s.clock.t, Start: s.clock.t.Add(in), Interval: every, Source: "scenario"}
		for _, v := range f[3:] {
			p, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, where)
			fc.PricesUSDPerMWh = append(fc.PricesUSDPerMWh, p)
		}
		require.NoError(t, fc.Validate(-1000, 20000), where)
		s.ctl.ObserveForecast(fc)
	case "advance":
		d, err := time.ParseDuration(f[1])
		require.NoError(t, err, where)
		s.clock.t = s.clock.t.Add(d)
	case "tick":
		require.NoError(t, s.ctl.Tick(ctx), where)
		for _, r := range s.ctl.Reports() {
			require.NoError(t, r.Err, where)
		}
	case "run":
		d, err := time.ParseDuration(f[1])
		require.NoError(t, err, where)
		end := s.clock.t.Add(d)
		require.NoError(t, s.ctl.Tick(ctx), where)
		for {
			w := s.ctl.NextWake()
			if w.IsZero() || w.After(end) {
				break
			}
			s.clock.t = w
			require.NoError(t, s.ctl.Tick(ctx), where)
		}
		s.clock.t = end
	case "expect":
		i := s.site.FleetIndex(f[1])
		require.GreaterOrEqual(t, i, 0, where)
		s.drivers[i].Settle(s.clock.t)
		steady, arriving := s.drivers[i].Counts()
		moving := 0
		for _, n := range arriving {
			moving += n
		}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, where)
			want, err := strconv.Atoi(v)
			require.NoError(t, err, where)
			got := moving
			if k != "moving" {
				m, err := switchd.ParseMode(k)
				require.NoError(t, err, where)
				got = steady[m]
			}
			require.Equal(t, want, got, "%s: %s", where, k)
		}
	case "expect-cmds":
		i := s.site.FleetIndex(f[1])
		require.GreaterOrEqual(t, i, 0, where)
		got := map[string]int{}
		for _, c := range s.ctl.Reports()[i].Commands {
			got[c.From.String()+"->"+c.To.String()] += c.Count
		}
		want := map[string]int{}
		for _, kv := range f[2:] {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, where)
			n, err := strconv.Atoi(v)
			require.NoError(t, err, where)
			want[k] = n
		}
		require.Equal(t, want, got, where)
	case "expect-power":
		want, err := strconv.ParseFloat(f[1], 64)
		require.NoError(t, err, where)
		got := 0.0
		for _, d := range s.drivers {
			d.Settle(s.clock.t)
			got += d.PowerKW()
		}
		require.InDelta(t, want, got, 0.5, where)
	case "expect-fired":
		want := []string{}
		if f[1] != "-" {
			want = strings.Split(f[1], ",")
		}
		got := append([]string{}, s.ctl.Decision().Eval.Fired...)
		require.Equal(t, want, got, where)
	case "dr":
		s.drStep(where, f)
	case "expect-dr":
		s.expectDR(where, f)
	default:
		t.Fatalf("%s: unknown step %q", where, f[0])
	}
}
