package cgrpc

import (
	"os"
	"path/filepath"
	"testing"
)

// fixtureDir finds ../shared/fixtures/miners from the module root, or from
// SWITCHD_FIXTURES; tests skip without it unless SWITCHD_REQUIRE_TRACES is set.
func fixtureDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SWITCHD_FIXTURES"); d != "" {
		return d
	}
	for dir, _ := os.Getwd(); dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "fixtures", "miners")
			if _, err := os.Stat(d); err == nil {
				return d
			}
			break
		}
	}
	if os.Getenv("SWITCHD_REQUIRE_TRACES") != "" {
		t.Fatal("miner fixtures not found: set SWITCHD_FIXTURES")
	}
	t.Skip("miner fixtures not found (set SWITCHD_FIXTURES)")
	return ""
}
