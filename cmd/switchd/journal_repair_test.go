package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/controller/journal"
)

// TestCorruptJournalRunVerifyRepair corrupts line 2 of a journal: run
// refuses to start with exit code 3 and a message naming the line and the
// repair command (before, exit 1, which a restart-on-failure unit loops
// on); verify names file and line; repair quarantines the tail; then the
// journal verifies.
func TestCorruptJournalRunVerifyRepair(t *testing.T) {
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal.log")
	j, _, err := journal.Open(jpath, nil)
	require.NoError(t, err)
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for i := range 4 {
		require.NoError(t, j.Append(journal.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Kind: journal.KindStart, Reason: "test"}))
	}
	require.NoError(t, j.Close())
	data, err := os.ReadFile(jpath)
	require.NoError(t, err)
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], `"reason":"test"`, `"reason":"TEST"`, 1)
	require.NoError(t, os.WriteFile(jpath, []byte(strings.Join(lines, "")), 0o640))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("fallbacks: {hashprice_usd_ph_day: 50}\n"), 0o644))
	site := `site: {name: unit, timezone: UTC, power_cap_kw: 1000}
policy: policy.yaml
journal: {path: journal.log}
fleets:
  - name: asics
    kind: asic
    count: 10
    driver: sim
    modes: {off: {power_kw: 0.01}, mining: {power_kw: 3.5, hashrate_ths: 200}}
`
	cfg := filepath.Join(dir, "site.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(site), 0o644))

	code, _, errOut := runCmd("run", "--config", cfg)
	require.Equal(t, exitJournalCorrupt, code, errOut)
	require.Contains(t, errOut, "line 2 (seq 2): hash mismatch")
	require.Contains(t, errOut, "switchd journal repair")
	require.Contains(t, errOut, "from line 2")

	code, _, errOut = runCmd("journal", "verify", jpath)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, jpath+": line 2 (seq 2): hash mismatch")
	require.Contains(t, errOut, "switchd journal repair "+jpath)

	code, out, errOut := runCmd("journal", "repair", jpath)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, `"msg":"journal tail quarantined"`, "the repair is logged")
	require.Contains(t, out, "line 2: hash mismatch")
	require.Contains(t, out, "kept 1 entries")
	q, err := filepath.Glob(jpath + ".quarantine-*")
	require.NoError(t, err)
	require.Len(t, q, 1)
	qdata, err := os.ReadFile(q[0])
	require.NoError(t, err)
	require.Equal(t, strings.Join(lines[1:], ""), string(qdata))

	code, out, errOut = runCmd("journal", "verify", jpath)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "2 entries, chain intact")
	code, out, _ = runCmd("journal", "repair", jpath)
	require.Equal(t, 0, code)
	require.Contains(t, out, "nothing to repair")
}
