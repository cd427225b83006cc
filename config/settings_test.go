package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

type driverCfg struct {
	common  `yaml:",inline"`
	Port    int           `yaml:"port"`
	Timeout time.Duration `yaml:"timeout"`
	Initial switchd.Mode  `yaml:"initial"`
	Auth    struct {
		User string `yaml:"user"`
	} `yaml:"auth"`
}

type common struct {
	Concurrency int `yaml:"concurrency"`
}

func siteWith(t *testing.T, fleet string) (*Site, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.yaml")
	src := "site: {name: t, timezone: UTC, power_cap_kw: 100}\nfleets:\n  - name: f\n    kind: asic\n    driver: x\n    modes: {off: {power_kw: 0.01}, mining: {power_kw: 3.5, hashrate_ths: 200}}\n" + fleet
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	s, err := LoadSite(path)
	require.NoError(t, err)
	return s, path
}

func TestDriverSettingsDecodeStrictWithLines(t *testing.T) {
	s, path := siteWith(t, "    count: 2\n    settings:\n      port: 4029\n      timeout: 3s\n      concurrency: 7\n      initial: mining\n      auth: {user: root}\n")
	var c driverCfg
	require.NoError(t, s.DriverSettings(0).Decode(&c))
	require.Equal(t, 4029, c.Port)
	require.Equal(t, 3*time.Second, c.Timeout)
	require.Equal(t, 7, c.Concurrency, "inline fields decode")
	require.Equal(t, switchd.ModeMining, c.Initial)
	require.Equal(t, "root", c.Auth.User)
	require.Equal(t, path+":9: fleets[0].settings.port: must be below 65536", s.DriverSettings(0).Errorf("port", "must be below 65536").Error())
	require.Equal(t, path+":13: fleets[0].settings.auth.user: bad", s.DriverSettings(0).Errorf("auth.user", "bad").Error())

	s, path = siteWith(t, "    count: 2\n    settings:\n      prot: 4029\n      timeout: soon\n      initial: sleeping\n")
	err := s.DriverSettings(0).Decode(&c)
	require.Error(t, err)
	require.Contains(t, err.Error(), path+":9: fleets[0].settings.prot: unknown key (did you mean port?)")
	require.Contains(t, err.Error(), path+":10: fleets[0].settings.timeout: bad duration \"soon\"")
	require.Contains(t, err.Error(), path+`:11: fleets[0].settings.initial: unknown mode "sleeping"`)

	// No settings block: defaults stand.
	s, _ = siteWith(t, "    count: 2\n")
	c = driverCfg{Port: 4028}
	require.NoError(t, s.DriverSettings(0).Decode(&c))
	require.Equal(t, 4028, c.Port)
}

func TestDevicesFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "miners.txt"), []byte("# rack A\n10.0.0.1\n10.0.0.2:4029\n\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "miners.csv"), []byte("addr,secret\n10.0.0.1,file:a.pass\n10.0.0.2,env:MINER_B\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("10.0.0.1\n10.0.0.1\n10.0.0.3,hunter2\n"), 0o600))
	load := func(fleet string) (*Site, error) {
		path := filepath.Join(dir, "site.yaml")
		src := "site: {name: t, timezone: UTC, power_cap_kw: 100}\nfleets:\n  - name: f\n    kind: asic\n    driver: x\n    modes: {off: {power_kw: 0.01}}\n" + fleet
		require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
		return LoadSite(path)
	}
	s, err := load("    devices_file: miners.txt\n")
	require.NoError(t, err)
	require.Equal(t, []switchd.Device{{Addr: "10.0.0.1"}, {Addr: "10.0.0.2:4029"}}, s.Fleets[0].Devices)
	require.Equal(t, 2, s.Fleets[0].Spec.Count)

	s, err = load("    devices_file: miners.csv\n")
	require.NoError(t, err)
	require.Equal(t, []switchd.Device{{Addr: "10.0.0.1", Secret: "file:" + filepath.Join(dir, "a.pass")}, {Addr: "10.0.0.2", Secret: "env:MINER_B"}}, s.Fleets[0].Devices)

	_, err = load("    devices_file: bad.csv\n")
	require.ErrorContains(t, err, "bad.csv:2: duplicate device \"10.0.0.1\" (also line 1)")
	require.ErrorContains(t, err, "bad.csv:3: credential \"hunter2\": want file:PATH or env:NAME")

	_, err = load("    devices_file: none.txt\n")
	require.ErrorContains(t, err, "fleets[0].devices_file: ")
	require.ErrorContains(t, err, "does not exist")

	_, err = load("    count: 3\n    devices_file: miners.txt\n")
	require.ErrorContains(t, err, "give one of count, devices or devices_file")
}
