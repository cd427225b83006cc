package all

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"go.uber.org/zap"
)

type clock struct{}

func (clock) Now() time.Time { return time.Unix(0, 0) }

// site writes a site file with one fleet of the given driver and settings
// and loads it through the real loader.
func site(t *testing.T, driver, settings string) *config.Site {
	t.Helper()
	var b strings.Builder
	b.WriteString("site: {name: t, timezone: UTC, power_cap_kw: 1000}\nfleets:\n  - name: f\n    kind: asic\n")
	b.WriteString("    devices: [127.0.0.1, 127.0.0.2]\n")
	fmt.Fprintf(&b, "    driver: %s\n    modes: {off: {power_kw: 0.02}, mining: {power_kw: 3.5, hashrate_ths: 200}, inference: {power_kw: 1.2}}\n", driver)
	b.WriteString("    settings:\n")
	for _, line := range strings.Split(strings.TrimRight(settings, "\n"), "\n") {
		b.WriteString("      " + line + "\n")
	}
	path := filepath.Join(t.TempDir(), "site.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	s, err := config.LoadSite(path)
	require.NoError(t, err)
	return s
}

func deps(s *config.Site) Deps {
	f := &s.Fleets[0]
	return Deps{Spec: f.Spec, Devices: f.Devices, Settings: s.DriverSettings(0), Clock: clock{}, Logger: zap.NewNop()}
}

// TestSamplesValidate builds every driver from its sample settings block
// through the strict site loader: the samples in the READMEs stay true.
func TestSamplesValidate(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			e, err := Lookup(name)
			require.NoError(t, err)
			require.NotEmpty(t, e.Sample, "every driver ships a sample settings block")
			dir := t.TempDir()
			// Samples may name a password file: give them one.
			t.Setenv("SWITCHD_SAMPLE_DIR", dir)
			s := site(t, name, e.Sample)
			// Password files named by samples are relative to the site file.
			for _, f := range []string{"miner.pass", "token"} {
				require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(s.Source), f), []byte("secret\n"), 0o600))
			}
			d, err := Build(name, deps(s))
			require.NoError(t, err)
			require.NotNil(t, d)
			if st, ok := d.(switchd.Stopper); ok {
				st.Stop()
			}
		})
	}
}

// TestSettingsTypoNamesLine: a misspelt key is an error naming the site
// file, line and key path, for every driver.
func TestSettingsTypoNamesLine(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s := site(t, name, "prot: 1")
			_, err := Build(name, deps(s))
			require.Error(t, err)
			require.Regexp(t, `site\.yaml:9: fleets\[0\]\.settings\.prot: unknown key`, err.Error())
		})
	}
}

func TestLookup(t *testing.T) {
	require.Contains(t, Names(), "sim")
	_, err := Lookup("luxoss")
	require.ErrorContains(t, err, `unknown driver "luxoss"`)
}

// TestNoInlineSecrets: no driver takes a password or token written in the
// site file (which gets logged and committed): credentials come from files
// or environment variables only, and the error says so with file and line.
func TestNoInlineSecrets(t *testing.T) {
	for _, name := range Names() {
		for _, key := range []string{"password", "token", "api_key", "secret"} {
			t.Run(name+"/"+key, func(t *testing.T) {
				s := site(t, name, key+": hunter2")
				_, err := Build(name, deps(s))
				require.Error(t, err)
				require.Regexp(t, `site\.yaml:9: fleets\[0\]\.settings\.`+key+`: unknown key`, err.Error())
				require.NotContains(t, err.Error(), "hunter2", "the error must not echo the secret")
			})
		}
	}
}
