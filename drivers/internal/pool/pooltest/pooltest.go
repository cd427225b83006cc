// Package pooltest holds helpers for driver tests: settings from YAML text
// and a settable clock. Production code must not import it.
package pooltest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchd/switchd"
	"gopkg.in/yaml.v3"
)

// Settings is a switchd.Settings over YAML text, decoded strictly with
// yaml.v3 (unknown keys are errors). Unlike the site loader it does not
// name lines; the site loader's own tests cover that.
type Settings struct {
	YAML string
	Dir  string // for Resolve; default "."
}

// Decode implements switchd.Settings.
func (s Settings) Decode(v any) error {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(s.YAML)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}

// Errorf implements switchd.Settings.
func (s Settings) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("settings.%s: %s", key, fmt.Sprintf(format, args...))
}

// Resolve implements switchd.Settings.
func (s Settings) Resolve(p string) string {
	if filepath.IsAbs(p) || p == "" {
		return p
	}
	d := s.Dir
	if d == "" {
		d = "."
	}
	return filepath.Join(d, p)
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now implements switchd.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var _ switchd.Settings = Settings{}

// FixtureDir returns the folder of recorded miner replies,
// ../shared/fixtures/miners from the module root, or SWITCHD_FIXTURES. The
// replies are read from there, never copied into the repository. Without
// them the test is skipped, unless SWITCHD_REQUIRE_TRACES is set (CI).
func FixtureDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SWITCHD_FIXTURES"); d != "" {
		return d
	}
	for dir, _ := os.Getwd(); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "fixtures", "miners")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			break
		}
	}
	if os.Getenv("SWITCHD_REQUIRE_TRACES") != "" {
		t.Fatal("recorded miner replies not found: set SWITCHD_FIXTURES")
	}
	t.Skip("recorded miner replies not found (set SWITCHD_FIXTURES)")
	return ""
}
