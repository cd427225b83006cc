package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/drivers/antminer/antminerfake"
	"github.com/switchd/switchd/drivers/bosminer/bosminerfake"
	"github.com/switchd/switchd/drivers/luxos/luxosfake"
	"github.com/switchd/switchd/drivers/whatsminer/whatsminerfake"
)

// closedAddr is a loopback address nothing listens on (refused).
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// squash collapses runs of blanks, so that tabwriter columns compare as
// single spaces.
func squash(s string) string {
	return regexp.MustCompile(`[ \t]+`).ReplaceAllString(s, " ")
}

// probeKeys are the fields issue 7 asks of `switchd probe --format json`.
var probeKeys = []string{"reachable", "mode", "hashrate_ths", "power_w", "model", "firmware", "supports", "error"}

func decodeProbe(t *testing.T, out string) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	for _, k := range probeKeys {
		require.Contains(t, v, k, "probe JSON must carry %q", k)
	}
	return v
}

// TestProbeOneDevice runs `switchd probe --driver --addr` against fake
// miners speaking the real wire protocols on 127.0.0.1:0.
func TestProbeOneDevice(t *testing.T) {
	lux := luxosfake.New(luxosfake.Options{})
	require.NoError(t, lux.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = lux.Close() })

	t.Run("json, mining LuxOS unit", func(t *testing.T) {
		code, out, errOut := runCmd("probe", "--driver", "luxos", "--addr", lux.Addr(), "--format", "json")
		require.Equal(t, 0, code, errOut)
		require.Empty(t, errOut)
		v := decodeProbe(t, out)
		require.Equal(t, true, v["reachable"])
		require.Equal(t, "mining", v["mode"])
		require.Greater(t, v["hashrate_ths"].(float64), 0.0)
		require.Greater(t, v["power_w"].(float64), 0.0, "LuxOS reports its power")
		require.Equal(t, "Antminer S19k Pro", v["model"])
		require.Contains(t, v["firmware"], "LUXminer")
		require.Equal(t, []any{"curtail sleep", "curtail wakeup", "profileset"}, v["supports"])
		require.Equal(t, "", v["error"])
	})
	t.Run("text", func(t *testing.T) {
		code, out, errOut := runCmd("probe", "--driver", "luxos", "--addr", lux.Addr())
		require.Equal(t, 0, code, errOut)
		for _, want := range []string{"reachable  true", "mode       mining", "model      Antminer S19k Pro", "supports   curtail sleep, curtail wakeup, profileset"} {
			require.Contains(t, out, want)
		}
		require.NotContains(t, out, "error")
	})
	// Probing never changes a device: no session taken, no command sent.
	require.Zero(t, lux.Count("logon"))
	require.Zero(t, lux.Count("curtail"))
	require.Zero(t, lux.Count("profileset"))
	require.False(t, lux.Asleep())

	t.Run("power_w is null when the device does not say", func(t *testing.T) {
		bos := bosminerfake.New(bosminerfake.Options{})
		bos.SetPaused(true)
		require.NoError(t, bos.Start("127.0.0.1:0"))
		t.Cleanup(bos.Close)
		code, out, errOut := runCmd("probe", "--driver", "bosminer", "--addr", bos.Addr(), "--format", "json")
		require.Equal(t, 0, code, errOut)
		v := decodeProbe(t, out)
		require.Nil(t, v["power_w"])
		require.Equal(t, "off", v["mode"])
		require.True(t, bos.Paused())
		pauses, resumes := bos.Commands()
		require.Zero(t, pauses+resumes, "probe sent a command")
	})
	t.Run("unreachable: the state and one clear error, exit 1", func(t *testing.T) {
		addr := closedAddr(t)
		code, out, errOut := runCmd("probe", "--driver", "luxos", "--addr", addr, "--format", "json")
		require.Equal(t, 1, code)
		v := decodeProbe(t, out)
		require.Equal(t, false, v["reachable"])
		require.Equal(t, "unknown", v["mode"])
		require.Nil(t, v["power_w"])
		require.Contains(t, v["error"], "refused")
		require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
		require.Contains(t, errOut, addr)
	})
	t.Run("unknown driver", func(t *testing.T) {
		code, out, errOut := runCmd("probe", "--driver", "luxoss", "--addr", "127.0.0.1:4028")
		require.Equal(t, 1, code)
		require.Empty(t, out)
		require.Contains(t, errOut, `unknown driver "luxoss"`)
	})
	t.Run("usage", func(t *testing.T) {
		code, _, errOut := runCmd("probe", "--driver", "luxos")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, "--addr")
	})
}

// TestProbeSite runs `switchd probe --config` over a site whose devices are
// fakes: a summary by fleet, and a non-zero exit when any is unusable.
func TestProbeSite(t *testing.T) {
	var lux []*luxosfake.Miner
	for i := 0; i < 3; i++ {
		m := luxosfake.New(luxosfake.Options{Asleep: i == 0})
		require.NoError(t, m.Start("127.0.0.1:0"))
		t.Cleanup(func() { _ = m.Close() })
		lux = append(lux, m)
	}
	bos := bosminerfake.New(bosminerfake.Options{})
	require.NoError(t, bos.Start("127.0.0.1:0"))
	t.Cleanup(bos.Close)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("fallbacks: {hashprice_usd_ph_day: 48}\n"), 0o600))
	write := func(luxAddrs []string) string {
		site := fmt.Sprintf(`site: {name: probe, timezone: UTC, power_cap_kw: 100}
policy: policy.yaml
mqtt: {broker: "tcp://127.0.0.1:1"}
fleets:
  - name: lux
    kind: asic
    devices: [%s]
    driver: luxos
    settings: {timeout: 2s}
    modes: {off: {power_kw: 0.02}, mining: {power_kw: 2.76, hashrate_ths: 120}}
  - name: bos
    kind: asic
    devices: [%s]
    driver: bosminer
    modes: {off: {power_kw: 0.01}, mining: {power_kw: 1.4, hashrate_ths: 13.5}}
`, strings.Join(luxAddrs, ", "), bos.Addr())
		cfg := filepath.Join(dir, "site.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
		return cfg
	}
	addrs := []string{lux[0].Addr(), lux[1].Addr(), lux[2].Addr()}

	t.Run("all usable", func(t *testing.T) {
		cfg := write(addrs)
		code, out, errOut := runCmd("probe", "--config", cfg)
		require.Equal(t, 0, code, errOut+out)
		require.Contains(t, squash(out), "\nlux luxos 3 3 0 0 0 mining=2 off=1\n")
		require.Contains(t, squash(out), "\nbos bosminer 1 1 0 0 0 mining=1\n")

		code, out, errOut = runCmd("probe", "--config", cfg, "--format", "json")
		require.Equal(t, 0, code, errOut)
		var v struct {
			Usable bool `json:"usable"`
			Fleets map[string]struct {
				Devices, Reachable, Unreachable int
				Results                         []map[string]any
			} `json:"fleets"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &v))
		require.True(t, v.Usable)
		require.Equal(t, 3, v.Fleets["lux"].Reachable)
		require.Len(t, v.Fleets["lux"].Results, 3)
		for _, r := range v.Fleets["lux"].Results {
			for _, k := range probeKeys {
				require.Contains(t, r, k)
			}
		}
	})
	for _, m := range lux {
		require.Zero(t, m.Count("logon")+m.Count("curtail"), "probe changed a device")
	}
	t.Run("one unreachable device fails the probe", func(t *testing.T) {
		dead := closedAddr(t)
		cfg := write(append(addrs, dead))
		code, out, errOut := runCmd("probe", "--config", cfg)
		require.Equal(t, 1, code, out)
		require.Contains(t, squash(out), "lux "+dead+" dial")
		require.Contains(t, squash(out), "\nlux luxos 4 3 1 0 0 mining=2 off=1\n")
		require.Contains(t, errOut, "1 of 2 fleets have unusable devices")
	})
	t.Run("a faulted device fails the probe", func(t *testing.T) {
		bos.SetBroken(true)
		t.Cleanup(func() { bos.SetBroken(false) })
		cfg := write(addrs)
		code, out, _ := runCmd("probe", "--config", cfg, "--fleet", "bos")
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "fault: ")
		require.NotContains(t, out, "lux")
	})
}

// TestProbeSimulatedSite: fleets of simulated devices have nothing to
// probe; that is said under the table, is not a failure, and leaves the
// table's columns whole.
func TestProbeSimulatedSite(t *testing.T) {
	code, out, errOut := runCmd("probe", "--config", "../../examples/demo.yaml")
	require.Equal(t, 0, code, errOut+out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 5, out)
	col := strings.Index(lines[0], "devices")
	require.Positive(t, col)
	for _, row := range lines[1:3] {
		require.Equal(t, "sim", strings.Fields(row)[1])
		require.NotEqual(t, ' ', rune(row[col]), "row %q: the devices column must line up with the header", row)
		require.Equal(t, ' ', rune(row[col-1]), "row %q: the devices column must line up with the header", row)
	}
	require.Equal(t, "asics: driver sim has no devices to probe (simulated)", lines[3])

	code, out, _ = runCmd("probe", "--config", "../../examples/demo.yaml", "--format", "json")
	require.Equal(t, 0, code)
	var v struct {
		Usable bool `json:"usable"`
		Fleets map[string]struct {
			Skipped string `json:"skipped"`
			Error   string `json:"error"`
		} `json:"fleets"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.True(t, v.Usable)
	require.Contains(t, v.Fleets["gpus"].Skipped, "simulated")
	require.Empty(t, v.Fleets["gpus"].Error)
}

// TestProbeMisconfigured: a device that answers but refuses the configured
// credentials is counted misconfigured (not unreachable), and fails the
// probe.
func TestProbeMisconfigured(t *testing.T) {
	m := antminerfake.New(antminerfake.Options{Password: "s3cret"})
	require.NoError(t, m.Start("127.0.0.1:0", "127.0.0.1:0"))
	t.Cleanup(m.Close)
	_, apiPort, err := net.SplitHostPort(m.APIAddr())
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("fallbacks: {hashprice_usd_ph_day: 48}\n"), 0o600))
	write := func(pw string) string {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ant.pass"), []byte(pw+"\n"), 0o600))
		site := fmt.Sprintf(`site: {name: probe, timezone: UTC, power_cap_kw: 100}
policy: policy.yaml
mqtt: {broker: "tcp://127.0.0.1:1"}
fleets:
  - name: ant
    kind: asic
    devices: [%s]
    driver: antminer
    settings: {password_file: ant.pass, api_port: %s, timeout: 2s}
    modes: {off: {power_kw: 0.02}, mining: {power_kw: 3.25, hashrate_ths: 110}}
`, m.WebAddr(), apiPort)
		cfg := filepath.Join(dir, "site.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(site), 0o600))
		return cfg
	}
	code, out, errOut := runCmd("probe", "--config", write("s3cret"))
	require.Equal(t, 0, code, errOut+out)
	require.Contains(t, squash(out), "\nant antminer 1 1 0 0 0 mining=1\n")

	code, out, errOut = runCmd("probe", "--config", write("wrong"))
	require.Equal(t, 1, code, out)
	require.Contains(t, squash(out), "\nant antminer 1 0 0 1 0 \n")
	require.Contains(t, out, "401")
	require.Contains(t, errOut, "1 of 1 fleets have unusable devices")
}

// TestProbeSettingsFile: errors in a --settings file name its own lines
// (the flags are added after its text), and a key given both in the file
// and by a flag is refused.
func TestProbeSettingsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	typo := write("typo.yaml", "# probe settings\n\ntimeout: 2s\n\n\nconcurency: 3\n")
	code, _, errOut := runCmd("probe", "--driver", "luxos", "--addr", "127.0.0.1:1", "--settings", typo, "--password-env", "X")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, typo+":6: settings.concurency: unknown key")

	dup := write("dup.yaml", "timeout: 2s\npassword_env: A\n")
	code, _, errOut = runCmd("probe", "--driver", "whatsminer", "--addr", "127.0.0.1:1", "--settings", dup, "--password-env", "B")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, dup+":2: password_env: also given by --password-env")

	// A flow mapping with a flag, and a file without a final newline, both
	// read.
	wm := whatsminerfake.New(whatsminerfake.Options{})
	require.NoError(t, wm.Start("127.0.0.1:0"))
	t.Cleanup(wm.Close)
	for _, body := range []string{"{timeout: 2s}", "timeout: 2s"} {
		f := write("ok.yaml", body)
		code, out, errOut := runCmd("probe", "--driver", "whatsminer", "--addr", wm.Addr(), "--settings", f, "--password-env", "SWITCHD_PROBE_TEST_UNUSED", "--format", "json")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "mining", decodeProbe(t, out)["mode"])
	}
}

// TestProbeSettingsRelativePaths: a relative password_file inside a
// --settings file is the settings file's folder's, as in a site file; one
// given by --password-file is the working directory's.
func TestProbeSettingsRelativePaths(t *testing.T) {
	wm := whatsminerfake.New(whatsminerfake.Options{Password: "s3cret-probe"})
	require.NoError(t, wm.Start("127.0.0.1:0"))
	t.Cleanup(wm.Close)

	dir := filepath.Join(t.TempDir(), "site")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("s3cret-probe\n"), 0o600))
	set := filepath.Join(dir, "probe.yaml")
	require.NoError(t, os.WriteFile(set, []byte("timeout: 2s\npassword_file: pw.txt\n"), 0o600))
	code, out, errOut := runCmd("probe", "--driver", "whatsminer", "--addr", wm.Addr(), "--settings", set, "--format", "json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "mining", decodeProbe(t, out)["mode"])

	// The flag's path is taken as given (relative to the working
	// directory), not moved next to the settings file.
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, filepath.Join(dir, "pw.txt"))
	require.NoError(t, err)
	other := filepath.Join(t.TempDir(), "timeout.yaml")
	require.NoError(t, os.WriteFile(other, []byte("timeout: 2s\n"), 0o600))
	code, out, errOut = runCmd("probe", "--driver", "whatsminer", "--addr", wm.Addr(), "--settings", other, "--password-file", rel, "--format", "json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "mining", decodeProbe(t, out)["mode"])
}
