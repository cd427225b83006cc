// Package testenv finds the data that tests read from outside the
// repository: the real grid traces in $SWITCHD_TRACES. A test that needs
// them is skipped, with a message saying what is missing, unless
// SWITCHD_REQUIRE_TRACES is set (as CI does): then it fails, so a moved or
// empty trace folder cannot turn real-data tests into silent skips.
//
// It also finds and runs headless chromium for the page tests (required
// under SWITCHD_REQUIRE_CHROMIUM), and holds the fuzz helpers the
// configuration parsers share (seeds from files, the one-line-per-problem
// report check). It imports only the standard library and is for tests
// only.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Traces returns the directory of real traces ($SWITCHD_TRACES). It skips
// the test when the variable is unset or names no directory, or fails it
// when SWITCHD_REQUIRE_TRACES is set.
func Traces(t testing.TB) string {
	t.Helper()
	dir, problem := tracesDir(os.Getenv("SWITCHD_TRACES"))
	unavailable(t, problem)
	return dir
}

// TraceFile returns the path of the real trace name in $SWITCHD_TRACES. It
// skips the test when the directory or the file is missing, or fails it
// when SWITCHD_REQUIRE_TRACES is set.
func TraceFile(t testing.TB, name string) string {
	t.Helper()
	dir, problem := tracesDir(os.Getenv("SWITCHD_TRACES"))
	unavailable(t, problem)
	path, problem := traceFile(dir, name)
	unavailable(t, problem)
	return path
}

// unavailable skips or fails t when problem is not empty.
func unavailable(t testing.TB, problem string) {
	t.Helper()
	if problem == "" {
		return
	}
	if os.Getenv("SWITCHD_REQUIRE_TRACES") != "" {
		t.Fatalf("%s, and SWITCHD_REQUIRE_TRACES is set", problem)
	}
	t.Skipf("%s: skipped (set SWITCHD_REQUIRE_TRACES to make this a failure)", problem)
}

// tracesDir checks the value of $SWITCHD_TRACES and says what is wrong
// with it, if anything.
func tracesDir(dir string) (string, string) {
	if dir == "" {
		return "", "real traces: SWITCHD_TRACES is not set"
	}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return "", fmt.Sprintf("real traces: SWITCHD_TRACES=%s: %v", dir, err)
	case !st.IsDir():
		return "", fmt.Sprintf("real traces: SWITCHD_TRACES=%s is not a directory", dir)
	}
	return dir, ""
}

// traceFile checks that the trace name is a file in dir.
func traceFile(dir, name string) (string, string) {
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", fmt.Sprintf("real trace %s: %v", name, err)
	case st.IsDir():
		return "", fmt.Sprintf("real trace %s is a directory", path)
	}
	return path, ""
}
