package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchd/switchd"
	siteconfig "github.com/switchd/switchd/config"
	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/daemon"
	"github.com/switchd/switchd/drivers/fakes"
	"github.com/switchd/switchd/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"
)

// newLogger logs human-readable console lines (format "console") or one
// JSON object per line (format "json", for log shippers).
func newLogger(level, format string, stderr io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	var enc zapcore.Encoder
	switch format {
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		cfg.EncodeCaller = nil
		enc = zapcore.NewConsoleEncoder(cfg)
	case "json":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	default:
		return nil, usageError{fmt.Errorf("--log-format: want console or json (got %q)", format)}
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), lvl)), nil
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	cfgPath := fs.String("config", "", "site config `FILE` (required)")
	level := fs.String("log-level", "info", "log level: debug (every evaluation), info (every decision, command, rule and input change), warn, error")
	format := fs.String("log-format", "console", "log format: console (one readable line per event) or json (one object per line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageError{errors.New("--config is required")}
	}
	log, err := newLogger(*level, *format, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	// SIGHUP reloads the policy; a one-slot channel makes a burst one reload.
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	// A demo site with fake devices: start a fake, speaking the driver's
	// real protocol, at every (loopback) device address first.
	if site, lerr := siteconfig.LoadSite(*cfgPath); lerr == nil && site.Daemon.Demo != nil && site.Daemon.Demo.FakeDevices {
		set, err := startFakes(site)
		if err != nil {
			return err
		}
		defer set.Close()
		log.Info("fake devices listening on loopback", zap.Int("devices", set.Len()))
	}
	err = daemon.Run(ctx, daemon.Options{ConfigPath: *cfgPath, Logger: log, Version: version, Reload: reload,
		CrashAt: os.Getenv("SWITCHD_TEST_CRASH_AT")})
	if err != nil {
		var ce interface{ Unwrap() []error }
		if errors.As(err, &ce) {
			return configErrors{err}
		}
	}
	return err
}

func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	var traces stringList
	fs.Var(&traces, "trace", "trace CSV `FILE` (repeatable, merged as in sim)")
	broker := fs.String("broker", "", "broker `URL`, e.g. tcp://127.0.0.1:1883 (required)")
	speed := fs.String("speed", "3600x", "trace time per wall time, e.g. 3600x; 0 = as fast as possible")
	prefix := fs.String("topic-prefix", "switchd/site/signals", "topic prefix: signals go to PREFIX/<signal>")
	restamp := fs.Bool("restamp", false, "stamp payloads with the wall-clock time instead of the trace time (for a live daemon)")
	username := fs.String("username", "", "MQTT username")
	passwordEnv := fs.String("password-env", "", "environment variable holding the MQTT password")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(traces) == 0 || *broker == "" {
		return usageError{errors.New("--trace and --broker are required")}
	}
	sp, err := strconv.ParseFloat(strings.TrimSuffix(*speed, "x"), 64)
	if err != nil || sp < 0 {
		return usageError{fmt.Errorf("--speed: want a factor such as 3600x (got %q)", *speed)}
	}
	cfg := siteconfig.MQTTConfig{Broker: *broker, ClientID: fmt.Sprintf("switchd-replay-%d", os.Getpid()), Username: *username}
	if *passwordEnv != "" {
		cfg.Password = os.Getenv(*passwordEnv)
	}
	src, notices, closer, err := trace.Open(traces)
	if err != nil {
		return err
	}
	defer closer.Close()
	for _, n := range notices {
		fmt.Fprintln(stderr, "notice:", n)
	}
	pub, err := mqttio.NewPublisher(cfg)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = pub.Start(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer pub.Close()
	n, err := mqttio.Replay(ctx, pub, src, *prefix, sp, *restamp)
	fmt.Fprintf(stdout, "published %d rows to %s/<signal>\n", n, *prefix)
	return err
}

// startFakes starts the fake devices of a demo site (demo.fake_devices):
// each fleet's fakes accept the password its settings name and wake within
// its transition time.
func startFakes(site *siteconfig.Site) (*fakes.Set, error) { return startFakesRunning(site, false) }

// startFakesRunning is startFakes with the devices' initial state.
func startFakesRunning(site *siteconfig.Site, running bool) (*fakes.Set, error) {
	var fleets []fakes.Fleet
	for i := range site.Fleets {
		f := &site.Fleets[i]
		if len(f.Devices) == 0 {
			continue // simulated or agent-driven: nothing to fake
		}
		if !fakes.Supported(f.Driver) {
			return nil, fmt.Errorf("fleet %q: demo.fake_devices: no fake for driver %s", f.Spec.Name, f.Driver)
		}
		pw, err := settingsPassword(site, i)
		if err != nil {
			return nil, fmt.Errorf("fleet %q: %w", f.Spec.Name, err)
		}
		on := switchd.ModeMining
		if !f.Spec.Supports[on] {
			on = switchd.ModeInference
		}
		fleets = append(fleets, fakes.Fleet{Driver: f.Driver, Devices: f.Devices, Password: pw, Running: running,
			Ramp: f.Spec.Transition[switchd.ModeOff][on] * 2 / 3})
	}
	return fakes.Start(fleets)
}

// settingsPassword reads the password a fleet's settings name
// (password_file or password_env), or "" when they name none.
func settingsPassword(site *siteconfig.Site, i int) (string, error) {
	var c struct {
		File string `yaml:"password_file"`
		Env  string `yaml:"password_env"`
	}
	n := &site.Fleets[i].Settings
	for j := 0; n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
		switch n.Content[j].Value {
		case "password_file":
			c.File = n.Content[j+1].Value
		case "password_env":
			c.Env = n.Content[j+1].Value
		}
	}
	switch {
	case c.File != "":
		b, err := os.ReadFile(site.DriverSettings(i).Resolve(c.File))
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case c.Env != "":
		return os.Getenv(c.Env), nil
	}
	return "", nil
}

// cmdFakes starts fake devices at every device address of a site (all on
// loopback) and serves them until interrupted: a site's worth of hardware
// for trying `switchd run` or `switchd probe` in another terminal, and for
// benchmarks that keep the fakes out of switchd's own CPU and memory.
func cmdFakes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fakes", stderr)
	config := fs.String("config", "", "site config `FILE` whose devices to fake (required)")
	running := fs.Bool("running", false, "start the devices working (mining, serving) instead of asleep")
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
	set, err := startFakesRunning(site, *running)
	if err != nil {
		return err
	}
	defer set.Close()
	fmt.Fprintf(stdout, "%d fake devices listening; Ctrl-C stops them\n", set.Len())
	<-ctx.Done()
	return nil
}
