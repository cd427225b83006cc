package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Chromium returns the path of a headless-capable chromium. Without one it
// skips the test, or fails it when SWITCHD_REQUIRE_CHROMIUM is set (as CI
// does), so a page check cannot turn into a silent skip.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SWITCHD_REQUIRE_CHROMIUM") != "" {
		t.Fatal("SWITCHD_REQUIRE_CHROMIUM is set but chromium is not installed")
	}
	t.Skip("chromium not installed (set SWITCHD_REQUIRE_CHROMIUM to make this a failure)")
	return ""
}

// RunChromium runs headless chromium (as root it needs --no-sandbox) with a
// profile under dir and returns its stdout and its log. The deadline only
// keeps a wedged browser from hanging the test run.
func RunChromium(t testing.TB, bin, dir string, args ...string) (stdout, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--enable-logging=stderr", "--v=0", "--user-data-dir=" + filepath.Join(dir, "profile"), "--no-first-run"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v: %s", err, errs.String())
	}
	return out.String(), errs.String()
}

// CheckConsole fails the test on any message a page wrote to the browser
// console (the project's pages write none), on uncaught errors and on
// content the page's Content-Security-Policy refused.
func CheckConsole(t testing.TB, log string) {
	t.Helper()
	for l := range strings.Lines(log) {
		if strings.Contains(l, "CONSOLE") || strings.Contains(l, "Uncaught") || strings.Contains(l, "Refused to") {
			t.Errorf("browser console: %s", strings.TrimSpace(l))
		}
	}
}
