package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// testSite is testdata/site.yaml: asics (1000, off/mining) and gpus (800,
// off/inference), in America/Chicago, capped at 20 MW.
func loadTestSite(t testing.TB) *Site {
	t.Helper()
	s, err := LoadSite(filepath.Join("testdata", "site.yaml"))
	require.NoError(t, err)
	return s
}

func TestExampleSite(t *testing.T) {
	s, err := LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	require.Equal(t, "ercot-west-1", s.Name)
	require.Equal(t, "America/Chicago", s.Location.String())
	require.Equal(t, 36000.0, s.PowerCapKW)
	require.Equal(t, DefaultMaxAge(), s.MaxAge)
	require.Len(t, s.Fleets, 2)

	asics := s.Fleets[0].Spec
	var tr [switchd.NumModes][switchd.NumModes]time.Duration
	tr[switchd.ModeOff][switchd.ModeMining] = 5 * time.Minute
	tr[switchd.ModeMining][switchd.ModeOff] = 30 * time.Second
	require.Equal(t, switchd.FleetSpec{
		Name:     "asics",
		Kind:     switchd.KindASIC,
		Count:    10000,
		Supports: [switchd.NumModes]bool{true, true, false},
		Modes: [switchd.NumModes]switchd.ModeSpec{
			switchd.ModeOff:    {PowerKW: 0.02},
			switchd.ModeMining: {PowerKW: 3.5, HashrateTHs: 200, Revenue: switchd.RevenueHashprice},
		},
		Transition:    tr,
		MinDwell:      15 * time.Minute,
		SwitchCostUSD: 0.05,
	}, asics)
	require.Equal(t, "sim", s.Fleets[0].Driver)

	gpus := s.Fleets[1].Spec
	require.Equal(t, switchd.KindGPU, gpus.Kind)
	require.Equal(t, 3000, gpus.Count)
	require.Equal(t, [switchd.NumModes]bool{true, false, true}, gpus.Supports)
	require.Equal(t, switchd.ModeSpec{PowerKW: 1.275, Revenue: switchd.RevenueInference}, gpus.Modes[switchd.ModeInference])
	require.Equal(t, 3*time.Minute, gpus.Transition[switchd.ModeOff][switchd.ModeInference])

	// The figures the example's comments quote.
	v := switchd.Values{}
	v.V[switchd.SignalHashprice], v.Present[switchd.SignalHashprice] = 48, true
	v.V[switchd.SignalInferencePrice], v.Present[switchd.SignalInferencePrice] = 2.10, true
	require.InDelta(t, 114.3, asics.BreakevenUSDPerMWh(switchd.ModeMining, &v), 0.1)
	require.InDelta(t, 1647, gpus.BreakevenUSDPerMWh(switchd.ModeInference, &v), 1)
	require.Greater(t, 10000*3.5+3000*1.275, s.PowerCapKW, "the cap must bind flat out")
}

func TestParseSite(t *testing.T) {
	const head = "site: {name: s, timezone: UTC, power_cap_kw: 100}\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *Site)
	}{
		{"transition default fills unset pairs", head + `
fleets:
  - name: g
    kind: gpu
    count: 4
    driver: sim
    modes: {off: {power_kw: 0.2}, mining: {power_kw: 1, hashrate_ths: 0.5}, inference: {power_kw: 1.2}}
    transitions: {default: 1m, off->inference: 3m, inference->off: 30s}
`, func(t *testing.T, s *Site) {
			off, mine, inf := switchd.ModeOff, switchd.ModeMining, switchd.ModeInference
			tr := s.Fleets[0].Spec.Transition
			require.Equal(t, 3*time.Minute, tr[off][inf])
			require.Equal(t, 30*time.Second, tr[inf][off])
			require.Equal(t, time.Minute, tr[off][mine])
			require.Equal(t, time.Minute, tr[mine][inf])
			for _, m := range switchd.Modes {
				require.Zero(t, tr[m][m], "no transition to itself")
			}
			require.Equal(t, [switchd.NumModes]bool{true, true, true}, s.Fleets[0].Spec.Supports)
		}},
		{"no transitions means instant", head + `
fleets: [{name: a, kind: asic, count: 1, driver: sim, modes: {off: {power_kw: 0}, mining: {power_kw: 3, hashrate_ths: 100}}}]
`, func(t *testing.T, s *Site) {
			require.Equal(t, [switchd.NumModes][switchd.NumModes]time.Duration{}, s.Fleets[0].Spec.Transition)
			require.Zero(t, s.Fleets[0].Spec.MinDwell)
			require.Zero(t, s.Fleets[0].Spec.SwitchCostUSD)
		}},
		{"revenue overrides", head + `
fleets:
  - name: hosted
    kind: asic
    count: 2
    driver: sim
    modes:
      off: {power_kw: 0}
      mining: {power_kw: 3.5, revenue: fixed, usd_per_hour: 0.35}
      inference: {power_kw: 1, revenue: none}
`, func(t *testing.T, s *Site) {
			m := s.Fleets[0].Spec.Modes
			require.Equal(t, switchd.ModeSpec{PowerKW: 3.5, Revenue: switchd.RevenueFixed, FixedUSDPerHour: 0.35}, m[switchd.ModeMining])
			require.Equal(t, switchd.ModeSpec{PowerKW: 1, Revenue: switchd.RevenueNone}, m[switchd.ModeInference])
			require.Equal(t, switchd.RevenueNone, m[switchd.ModeOff].Revenue)
		}},
		{"devices give the count", head + `
fleets: [{name: a, kind: asic, devices: [10.0.0.1:4028, 10.0.0.2:4028, 10.0.0.3:4028], driver: cgminer, modes: {off: {power_kw: 0}}}]
`, func(t *testing.T, s *Site) {
			require.Equal(t, 3, s.Fleets[0].Spec.Count)
			require.Equal(t, []switchd.Device{{Addr: "10.0.0.1:4028"}, {Addr: "10.0.0.2:4028"}, {Addr: "10.0.0.3:4028"}}, s.Fleets[0].Devices)
			require.Equal(t, [switchd.NumModes]bool{true, false, false}, s.Fleets[0].Spec.Supports)
		}},
		{"signal max ages override defaults", head + `
signals: {price: {max_age: 20m}, hashprice: {max_age: 72h}}
fleets: [{name: a, kind: asic, count: 1, driver: sim, modes: {off: {power_kw: 0}}}]
`, func(t *testing.T, s *Site) {
			want := DefaultMaxAge()
			want[switchd.SignalPrice] = 20 * time.Minute
			want[switchd.SignalHashprice] = 72 * time.Hour
			require.Equal(t, want, s.MaxAge)
		}},
		{"zero durations may be bare", head + `
fleets: [{name: a, kind: asic, count: 1, driver: sim, min_dwell: 0, modes: {off: {power_kw: 0}}, transitions: {default: 0}}]
`, func(t *testing.T, s *Site) {
			require.Zero(t, s.Fleets[0].Spec.MinDwell)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSite("s.yaml", []byte(tc.yaml))
			require.NoError(t, err)
			require.Equal(t, "s.yaml", s.Source)
			tc.check(t, s)
		})
	}
}

func TestSiteSummary(t *testing.T) {
	s, err := LoadSite(filepath.Join("..", "examples", "site.yaml"))
	require.NoError(t, err)
	require.Equal(t, "site ercot-west-1 (America/Chicago): cap 36000 kW; asics: 10000 asic [off mining] via sim, "+
		"gpus: 3000 gpu [off inference] via sim; flat out 38825 kW; coincident peaks 4cp_15m: 4 peaks a year "+
		"(1 a month in Jun, Jul, Aug, Sep), 15m intervals, 55 USD/kW-year", s.Summary())
}

func TestSiteHelpers(t *testing.T) {
	s := loadTestSite(t)
	require.Equal(t, 1, s.FleetIndex("gpus"))
	require.Equal(t, -1, s.FleetIndex("fpgas"))
	specs := s.Specs()
	require.Len(t, specs, 2)
	require.Equal(t, "asics", specs[0].Name)
}

// fleetYAML is one valid fleet, for site files that test other sections.
const fleetYAML = `
fleets: [{name: a, kind: asic, count: 1, driver: sim, modes: {off: {power_kw: 0}}}]
`

// siteHead is a valid site section named s.
const siteHead = "site: {name: s, timezone: UTC, power_cap_kw: 100}\n"

// defaultTopics returns the topic of each signal under prefix.
func defaultTopics(c [switchd.NumSignals]SignalConfig, prefix string) [switchd.NumSignals]SignalConfig {
	for _, sig := range switchd.AllSignals {
		c[sig].Topic = prefix + "/" + sig.String()
	}
	return c
}

func TestSiteDaemonDefaults(t *testing.T) {
	for _, file := range []string{filepath.Join("testdata", "site.yaml"), filepath.Join("..", "examples", "site.yaml")} {
		t.Run(file, func(t *testing.T) {
			s, err := LoadSite(file)
			require.NoError(t, err)
			want := DefaultSignals()
			want[switchd.SignalAIDemand].Max = float64(s.InferenceGPUs())
			require.Positive(t, want[switchd.SignalAIDemand].Max)
			require.Equal(t, Daemon{Signals: want, Tick: DefaultTick}, s.Daemon,
				"a site file without daemon keys still gets the signal checks and tick, and AI demand is bounded by the GPUs")
			for _, sig := range switchd.AllSignals {
				require.Equal(t, s.MaxAge[sig], s.Daemon.Signals[sig].MaxAge)
				require.Less(t, s.Daemon.Signals[sig].Min, s.Daemon.Signals[sig].Max)
			}
		})
	}
}

func TestParseSiteDaemon(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, d *Daemon)
	}{
		{"every key", siteHead + `
policy: policies/price-only.yaml
tick: 2s
mqtt:
  broker: tcp://10.0.0.5:1883
  client_id: switchd-ercot-west-1
  username: switchd
  signal_prefix: grid/ercot
  state_topic: switchd/ercot-west-1/state
signals:
  price: {max_age: 20m, topic: ercot/rt/lz_houston/price, min: -250, max: 5000, max_future: 30s}
  ai_demand: {max: 5000}
http:
  listen: 127.0.0.1:8080
  token_file: secrets/token
  token_env: SWITCHD_TOKEN
journal:
  path: /var/lib/switchd/journal.log
` + fleetYAML, func(t *testing.T, d *Daemon) {
			sigs := defaultTopics(DefaultSignals(), "grid/ercot")
			sigs[switchd.SignalPrice] = SignalConfig{Topic: "ercot/rt/lz_houston/price", MaxAge: 20 * time.Minute, Min: -250, Max: 5000, MaxFuture: 30 * time.Second}
			sigs[switchd.SignalAIDemand].Max = 5000
			require.Equal(t, Daemon{
				PolicyPath: filepath.Join("conf", "policies", "price-only.yaml"),
				PolicyLine: 3,
				MQTT: MQTTConfig{
					Broker:       "tcp://10.0.0.5:1883",
					ClientID:     "switchd-ercot-west-1",
					Username:     "switchd",
					SignalPrefix: "grid/ercot",
					StateTopic:   "switchd/ercot-west-1/state",
				},
				Signals: sigs,
				HTTP:    HTTPConfig{Listen: "127.0.0.1:8080", TokenFile: filepath.Join("conf", "secrets", "token"), TokenEnv: "SWITCHD_TOKEN"},
				Journal: JournalConfig{Path: "/var/lib/switchd/journal.log"},
				Tick:    2 * time.Second,

				Forecast: SignalConfig{Topic: "grid/ercot/price_forecast", Min: -250, Max: 5000, MaxFuture: time.Minute},
			}, *d)
		}},
		{"embedded broker and default names", siteHead + "mqtt: {embedded: 127.0.0.1:1883}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, MQTTConfig{
				Embedded:     "127.0.0.1:1883",
				Broker:       "tcp://127.0.0.1:1883",
				ClientID:     "switchd-s",
				SignalPrefix: "switchd/s/signals",
				StateTopic:   "switchd/s/state",
			}, d.MQTT)
			require.Equal(t, defaultTopics(DefaultSignals(), "switchd/s/signals"), d.Signals)
			require.Equal(t, DefaultTick, d.Tick)
			require.Nil(t, d.Demo)
		}},
		{"embedded next to a shared broker", siteHead + "mqtt: {embedded: 'localhost:0', broker: 'ssl://mqtt.example.com:8883'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, "localhost:0", d.MQTT.Embedded)
			require.Equal(t, "ssl://mqtt.example.com:8883", d.MQTT.Broker)
		}},
		{"embedded on port 0 leaves the broker to the daemon", siteHead + "mqtt: {embedded: '127.0.0.1:0'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, "127.0.0.1:0", d.MQTT.Embedded)
			require.Empty(t, d.MQTT.Broker, "only the started broker knows its port")
		}},
		{"port 00 is port 0 too", siteHead + "mqtt: {embedded: 'localhost:00'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Empty(t, d.MQTT.Broker)
		}},
		{"ipv6 loopback", siteHead + "mqtt: {embedded: '[::1]:1883'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, "tcp://[::1]:1883", d.MQTT.Broker)
		}},
		{"websocket broker with a path", siteHead + "mqtt: {broker: 'wss://mqtt.example.com/mqtt'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, "wss://mqtt.example.com/mqtt", d.MQTT.Broker)
			require.Empty(t, d.MQTT.Embedded)
		}},
		{"a range bound alone keeps the other default", siteHead + "signals: {price: {min: 0}, grid_load: {max: 90000}}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			def := DefaultSignals()
			require.Equal(t, [2]float64{0, def[switchd.SignalPrice].Max}, [2]float64{d.Signals[switchd.SignalPrice].Min, d.Signals[switchd.SignalPrice].Max})
			require.Equal(t, [2]float64{0, 90000}, [2]float64{d.Signals[switchd.SignalGridLoad].Min, d.Signals[switchd.SignalGridLoad].Max})
			require.Empty(t, d.Signals[switchd.SignalPrice].Topic, "no topics without an mqtt section")
		}},
		{"absolute paths stay", siteHead + "policy: /etc/switchd/policy.yaml\njournal: {path: /var/lib/switchd/j.log}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, "/etc/switchd/policy.yaml", d.PolicyPath)
			require.Equal(t, "/var/lib/switchd/j.log", d.Journal.Path)
		}},
		{"http on every interface", siteHead + "http: {listen: ':9090'}\n" + fleetYAML, func(t *testing.T, d *Daemon) {
			require.Equal(t, HTTPConfig{Listen: ":9090"}, d.HTTP)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The token file must exist (conf/secrets/token).
			t.Chdir(t.TempDir())
			require.NoError(t, os.MkdirAll(filepath.Join("conf", "secrets"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join("conf", "secrets", "token"), []byte("0123456789abcdef0123\n"), 0o600))
			s, err := ParseSite(filepath.Join("conf", "site.yaml"), []byte(tc.yaml))
			require.NoError(t, err)
			tc.check(t, &s.Daemon)
		})
	}
}

// writeFiles writes name → contents under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600))
	}
}

// TestSiteDaemonFiles checks the keys that name files: relative paths
// resolve against the site file's directory, not the working directory,
// and the password is read at load.
func TestSiteDaemonFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"mqtt.pass": "  s3cret pass\n\n",
		"ca.pem":    "ca", "client.pem": "cert", "client.key": "key",
		"trace.csv": "time,price_usd_mwh\n",
	})
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, d *Daemon)
	}{
		{"password file and tls", `
mqtt:
  broker: mqtts://mqtt.example.com:8883
  username: switchd
  password_file: mqtt.pass
  tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client.key}
`, func(t *testing.T, d *Daemon) {
			require.Equal(t, MQTTConfig{
				Broker:   "mqtts://mqtt.example.com:8883",
				ClientID: "switchd-s",
				Username: "switchd",
				Password: "s3cret pass", PasswordFile: filepath.Join(dir, "mqtt.pass"),
				CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"),
				SignalPrefix: "switchd/s/signals",
				StateTopic:   "switchd/s/state",
			}, d.MQTT)
		}},
		{"password from the environment", `
mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_env: SWITCHD_TEST_MQTT_PASSWORD}
`, func(t *testing.T, d *Daemon) {
			require.Equal(t, "from-env", d.MQTT.Password)
		}},
		{"ca file alone", `
mqtt: {broker: 'ssl://10.0.0.5:8883', tls: {ca_file: ca.pem}}
`, func(t *testing.T, d *Daemon) {
			require.Equal(t, filepath.Join(dir, "ca.pem"), d.MQTT.CAFile)
			require.Empty(t, d.MQTT.CertFile)
		}},
		{"demo with speed as 3600x", `
mqtt: {embedded: 127.0.0.1:1883}
demo: {trace: trace.csv, speed: 3600x, loop: true}
policy: p.yaml
journal: {path: state/journal.log}
`, func(t *testing.T, d *Daemon) {
			require.Equal(t, &DemoConfig{Trace: filepath.Join(dir, "trace.csv"), Speed: 3600, Loop: true}, d.Demo)
			require.Equal(t, filepath.Join(dir, "p.yaml"), d.PolicyPath)
			require.Equal(t, filepath.Join(dir, "state", "journal.log"), d.Journal.Path)
		}},
		{"demo with a plain number and no loop", `
mqtt: {embedded: 127.0.0.1:1883}
demo: {trace: trace.csv, speed: 0.5}
`, func(t *testing.T, d *Daemon) {
			require.Equal(t, &DemoConfig{Trace: filepath.Join(dir, "trace.csv"), Speed: 0.5}, d.Demo)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHD_TEST_MQTT_PASSWORD", " from-env\n")
			file := filepath.Join(dir, "site.yaml")
			writeFiles(t, dir, map[string]string{"site.yaml": siteHead + tc.yaml + fleetYAML})
			s, err := LoadSite(file)
			require.NoError(t, err)
			tc.check(t, &s.Daemon)
		})
	}
}

// TestSiteDaemonErrors checks that each bad daemon key is reported, alone,
// at its line and key path. "DIR/" in a case stands for a directory holding
// a password file good.pass, an empty one empty.pass, a file big.pass over
// the size limit, and a directory sub.
func TestSiteDaemonErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"good.pass": "pw", "empty.pass": " \n", "big.pass": strings.Repeat("x", maxSecretBytes+1)})
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	t.Setenv("SWITCHD_TEST_EMPTY", "")

	for _, tc := range []struct {
		name string
		yaml string // after the site section, at line 2
		line int
		path string
		msg  string
	}{
		{"broker scheme", "mqtt:\n  broker: http://10.0.0.5:1883\n", 3, "mqtt.broker",
			`unsupported scheme "http" (want tcp, mqtt, ssl, tls, mqtts, ws or wss)`},
		{"broker without scheme", "mqtt: {broker: '10.0.0.5:1883'}\n", 2, "mqtt.broker",
			`"10.0.0.5:1883" has no scheme (want a URL such as tcp://10.0.0.5:1883 or ssl://broker.example.com:8883)`},
		{"broker without port", "mqtt: {broker: 'tcp://10.0.0.5'}\n", 2, "mqtt.broker",
			`"tcp://10.0.0.5" has no port (e.g. :1883, or :8883 for TLS)`},
		{"broker with a path", "mqtt: {broker: 'tcp://10.0.0.5:1883/x'}\n", 2, "mqtt.broker",
			`"tcp://10.0.0.5:1883/x": a tcp:// URL is host:port only, without a path or query`},
		{"broker with credentials", "mqtt: {broker: 'tcp://u:p@10.0.0.5:1883'}\n", 2, "mqtt.broker",
			"must not hold credentials: use username with password_file or password_env"},
		{"broker port out of range", "mqtt: {broker: 'tcp://10.0.0.5:70000'}\n", 2, "mqtt.broker",
			`bad port "70000" (want 1 to 65535)`},
		{"embedded on a public address", "mqtt:\n  embedded: 0.0.0.0:1883\n", 3, "mqtt.embedded",
			`"0.0.0.0:1883" is not a loopback address: beyond loopback the embedded broker needs users_file (a mosquitto_passwd file; clients log in, with rights from acl), or allow_anonymous: true to let anyone who reaches it publish signals`},
		{"embedded without a port", "mqtt:\n  embedded: 127.0.0.1\n", 3, "mqtt.embedded",
			`"127.0.0.1" is not host:port (e.g. 127.0.0.1:8080)`},
		{"embedded on all interfaces", "mqtt:\n  embedded: ':1883'\n", 3, "mqtt.embedded",
			`":1883" is not a loopback address: beyond loopback the embedded broker needs users_file (a mosquitto_passwd file; clients log in, with rights from acl), or allow_anonymous: true to let anyone who reaches it publish signals`},
		{"no broker at all", "mqtt:\n  username: u\n", 2, "mqtt",
			"give embedded (a broker run by switchd, e.g. 127.0.0.1:1883) or broker (e.g. tcp://10.0.0.5:1883)"},
		{"unknown key under mqtt", "mqtt:\n  embedded: 127.0.0.1:1883\n\n  pasword_env: X\n", 5, "mqtt.pasword_env",
			"unknown key (did you mean password_env?)"},
		{"password env unset", "mqtt:\n  broker: tcp://10.0.0.5:1883\n  username: u\n  password_env: SWITCHD_TEST_SURELY_UNSET\n", 5, "mqtt.password_env",
			"environment variable SWITCHD_TEST_SURELY_UNSET is not set"},
		{"password env empty", "mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_env: SWITCHD_TEST_EMPTY}\n", 2, "mqtt.password_env",
			"environment variable SWITCHD_TEST_EMPTY is empty"},
		{"password env not a name", "mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_env: '$PASS'}\n", 2, "mqtt.password_env",
			`"$PASS" is not an environment variable name (letters, digits and _)`},
		{"password file missing", "mqtt:\n  broker: tcp://10.0.0.5:1883\n  username: u\n  password_file: DIR/nope.pass\n", 5, "mqtt.password_file",
			"DIR/nope.pass does not exist"},
		{"password file empty", "mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_file: DIR/empty.pass}\n", 2, "mqtt.password_file",
			"DIR/empty.pass is empty"},
		{"password file too big", "mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_file: DIR/big.pass}\n", 2, "mqtt.password_file",
			"DIR/big.pass is larger than 64 KiB: not a password file"},
		{"password file a directory", "mqtt: {broker: 'tcp://10.0.0.5:1883', username: u, password_file: DIR/sub}\n", 2, "mqtt.password_file",
			"DIR/sub is not a regular file"},
		{"password without a user", "mqtt: {broker: 'tcp://10.0.0.5:1883', password_file: DIR/good.pass}\n", 2, "mqtt.username",
			"required with a password"},
		{"tls with a plain broker", "mqtt:\n  broker: tcp://10.0.0.5:1883\n  tls: {ca_file: DIR/empty.pass}\n", 4, "mqtt.tls",
			"needs a TLS broker URL (ssl://, tls://, mqtts:// or wss://), not tcp://10.0.0.5:1883"},
		{"tls with the embedded broker", "mqtt:\n  embedded: 127.0.0.1:0\n  tls: {ca_file: DIR/empty.pass}\n", 4, "mqtt.tls",
			"needs a TLS broker URL (ssl://, tls://, mqtts:// or wss://), not tcp://127.0.0.1:0"},
		{"tls key without cert", "mqtt:\n  broker: ssl://10.0.0.5:8883\n  tls: {key_file: DIR/empty.pass}\n", 4, "mqtt.tls.cert_file",
			"required with key_file"},
		{"tls empty", "mqtt:\n  broker: ssl://10.0.0.5:8883\n  tls: {}\n", 4, "mqtt.tls",
			"give ca_file, or cert_file and key_file, or all three (an ssl:// broker alone already verifies against the system's CAs)"},
		{"empty client id", "mqtt: {embedded: '127.0.0.1:1883', client_id: ''}\n", 2, "mqtt.client_id", "must not be empty"},
		{"client id with a space", "mqtt: {embedded: '127.0.0.1:1883', client_id: 'a b'}\n", 2, "mqtt.client_id",
			`must not contain spaces or control characters (got "a b")`},
		{"prefix ending in a slash", "mqtt: {embedded: '127.0.0.1:1883', signal_prefix: 'grid/'}\n", 2, "mqtt.signal_prefix", "must not end with /"},
		{"state topic holds the signals", "mqtt: {embedded: '127.0.0.1:1883', signal_prefix: 'x/state/in', state_topic: 'x/state'}\n", 2, "mqtt.state_topic",
			"holds the signal topics (x/state/in/<signal>): switchd would read its own state as signals"},
		{"a topic taking another signal's default", "mqtt: {embedded: '127.0.0.1:1883'}\nsignals:\n  ai_demand: {topic: switchd/s/signals/price}\n", 4, "signals.ai_demand.topic",
			`"switchd/s/signals/price" is also the topic of signal price: each signal needs its own`},
		{"min not below max", "signals:\n  price: {min: 500, max: 500}\n", 3, "signals.price.max",
			"must be greater than min 500 (got 500)"},
		{"min above the default max", "signals:\n  inference_price: {min: 2000}\n", 3, "signals.inference_price.min",
			"must be less than max 1000 (got 2000)"},
		{"negative max future", "signals:\n  price: {max_future: -5s}\n", 3, "signals.price.max_future",
			"must not be negative (got -5s)"},
		{"tick negative", "tick: -1s\n", 2, "tick", "must be at least 1s (got -1s): the controller polls every driver each tick"},
		{"tick without unit", "tick: 10\n", 2, "tick", "bad duration 10: missing unit (want e.g. 10s or 10m)"},
		{"http listen without port", "http: {listen: localhost}\n", 2, "http.listen", `"localhost" is not host:port (e.g. 127.0.0.1:8080)`},
		{"http listen with a named port", "http: {listen: 'localhost:http'}\n", 2, "http.listen", `bad port "http" in "localhost:http" (want 0 to 65535)`},
		{"http without listen", "http:\n  token_env: T\n", 2, "http.listen", "required (host:port such as 127.0.0.1:8080)"},
		{"unknown key under http", "http:\n  listen: 127.0.0.1:8080\n  token: x\n", 4, "http.token", "unknown key"},
		{"demo without speed", "mqtt: {embedded: '127.0.0.1:1883'}\ndemo:\n  trace: DIR/empty.pass\n", 3, "demo.speed",
			"required (trace seconds per wall second, e.g. 3600)"},
		{"demo speed zero", "mqtt: {embedded: '127.0.0.1:1883'}\ndemo:\n  trace: DIR/empty.pass\n  speed: 0x\n", 5, "demo.speed", "must be positive (got 0)"},
		{"demo speed infinite", "mqtt: {embedded: '127.0.0.1:1883'}\ndemo:\n  trace: DIR/empty.pass\n  speed: .inf\n", 5, "demo.speed", "must be a finite number (got .inf)"},
		{"demo into a shared broker", "mqtt: {broker: 'tcp://10.0.0.5:1883'}\ndemo: {trace: DIR/empty.pass, speed: 60}\n", 3, "demo",
			"needs mqtt.embedded: the demo replays its trace into switchd's own broker only"},
		{"demo and a custom topic", "mqtt: {embedded: '127.0.0.1:1883'}\nsignals:\n  price: {topic: ercot/price}\ndemo: {trace: DIR/empty.pass, speed: 60}\n", 4, "signals.price.topic",
			"the demo publishes price to switchd/s/signals/price only: drop this topic or the demo section"},
		{"demo trace missing", "mqtt: {embedded: '127.0.0.1:1883'}\ndemo: {trace: DIR/nope.csv, speed: 60}\n", 3, "demo.trace", "DIR/nope.csv does not exist"},
		{"unknown top-level key", "polcy: p.yaml\n", 2, "polcy", "unknown key (did you mean policy?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.ReplaceAll(siteHead+tc.yaml+fleetYAML, "DIR/", dir+"/")
			_, err := ParseSite("site.yaml", []byte(data))
			require.Error(t, err)
			want := ConfigError{File: "site.yaml", Line: tc.line, Path: tc.path, Msg: strings.ReplaceAll(tc.msg, "DIR/", dir+"/")}
			var got []ConfigError
			for _, e := range unjoinErrors(err) {
				var ce *ConfigError
				require.ErrorAs(t, e, &ce)
				got = append(got, *ce)
			}
			require.Equal(t, []ConfigError{want}, got)
		})
	}
}

// TestDemoExample checks examples/demo.yaml, the config the README's
// `switchd run` command uses (policies.TestDemoPolicy loads the policy it
// names).
func TestDemoExample(t *testing.T) {
	examples := filepath.Join("..", "examples")
	s, err := LoadSite(filepath.Join(examples, "demo.yaml"))
	require.NoError(t, err)
	d := s.Daemon
	require.Equal(t, filepath.Join(examples, "policies", "demo.yaml"), d.PolicyPath)

	require.Equal(t, MQTTConfig{
		Embedded:     "127.0.0.1:1883",
		Broker:       "tcp://127.0.0.1:1883",
		ClientID:     "switchd-demo",
		SignalPrefix: "switchd/demo/signals",
		StateTopic:   "switchd/demo/state",
	}, d.MQTT)
	require.Equal(t, "switchd/demo/signals/price", d.Signals[switchd.SignalPrice].Topic)
	require.Equal(t, HTTPConfig{Listen: "127.0.0.1:8080", TokenEnv: "SWITCHD_TOKEN"}, d.HTTP)
	require.Equal(t, filepath.Join(examples, "demo-state", "journal.log"), d.Journal.Path)
	require.Equal(t, &DemoConfig{Trace: filepath.Join(examples, "traces", "SYNTHETIC-sample-2024-01.csv"), Speed: 900, Loop: true}, d.Demo)
	require.Contains(t, filepath.Base(d.Demo.Trace), "SYNTHETIC", "the demo replays the synthetic trace, never real data")
	require.Equal(t, 5*time.Second, d.Tick)

	var flatOutKW float64
	for _, f := range s.Specs() {
		var top float64
		for _, m := range switchd.Modes {
			top = max(top, f.Modes[m].PowerKW)
		}
		flatOutKW += top * float64(f.Count)
	}
	require.Greater(t, flatOutKW, s.PowerCapKW, "the cap must bind flat out, so the demo shows a choice")
}
