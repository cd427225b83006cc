package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTracesDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.csv")
	require.NoError(t, os.WriteFile(file, []byte("time\n"), 0o600))
	for _, tc := range []struct {
		name, value, want, problem string
	}{
		{name: "unset", value: "", problem: "real traces: SWITCHD_TRACES is not set"},
		{name: "missing", value: filepath.Join(dir, "nope"), problem: "real traces: SWITCHD_TRACES=" + filepath.Join(dir, "nope") + ": stat " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{name: "a file", value: file, problem: "real traces: SWITCHD_TRACES=" + file + " is not a directory"},
		{name: "a directory", value: dir, want: dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problem := tracesDir(tc.value)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.problem, problem)
		})
	}
}

func TestTraceFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.csv"), []byte("time\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))

	got, problem := traceFile(dir, "a.csv")
	require.Empty(t, problem)
	require.Equal(t, filepath.Join(dir, "a.csv"), got)

	got, problem = traceFile(dir, "b.csv")
	require.Empty(t, got)
	require.Contains(t, problem, "real trace b.csv: stat ")
	require.Contains(t, problem, "no such file or directory")

	_, problem = traceFile(dir, "sub")
	require.Equal(t, "real trace "+filepath.Join(dir, "sub")+" is a directory", problem)
}

// The exported helpers skip or fail the calling test; run them in a child
// process, where the outcome is visible, with and without the requirement.
func TestRequireTraces(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		TraceFile(t, "absent.csv")
		t.Log("reached past TraceFile")
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		require string
		want    string
		fails   bool
	}{
		{name: "skipped", want: "--- SKIP: TestRequireTraces"},
		{name: "required", require: "1", want: "--- FAIL: TestRequireTraces", fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestRequireTraces$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "SWITCHD_TRACES="+t.TempDir(), "SWITCHD_REQUIRE_TRACES="+tc.require)
			out, err := cmd.CombinedOutput()
			if tc.fails {
				require.Error(t, err, string(out))
			} else {
				require.NoError(t, err, string(out))
			}
			require.Contains(t, string(out), tc.want)
			require.Contains(t, string(out), "real trace absent.csv: stat ")
			require.NotContains(t, string(out), "reached past TraceFile")
		})
	}
}
