package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// corruptAt writes a journal of every batch and replaces line n (1-based)
// with garbage; it returns the path and the lines as written.
func corruptAt(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	appendAll(t, j)
	require.NoError(t, j.Close())
	lines := strings.SplitAfter(string(readFile(t, path)), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	bad := append([]string(nil), lines...)
	bad[n-1] = "{\"seq\":3,\"garbage\n"
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(bad, "")), 0o640))
	return path, lines
}

// TestRepair quarantines a corrupt tail: the journal keeps the entries
// before the first bad line plus a repair entry chained to them, the
// quarantine file holds the bad line and everything after it byte for
// byte, and the journal opens again.
func TestRepair(t *testing.T) {
	path, lines := corruptAt(t, 3)
	_, _, err := Open(path, nil)
	require.ErrorIs(t, err, ErrCorrupt)

	now := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	res, err := Repair(path, now, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.Equal(t, 3, res.Line)
	require.Equal(t, 2, res.Kept)
	require.Equal(t, path+".quarantine-20261202T140000Z", res.Quarantine)
	require.Contains(t, res.Reason, "parse")

	q := readFile(t, res.Quarantine)
	require.Equal(t, "{\"seq\":3,\"garbage\n"+strings.Join(lines[3:], ""), string(q), "the tail is kept aside, unchanged")

	n, err := verifyFile(t, path)
	require.NoError(t, err)
	require.Equal(t, 3, n, "two good entries and the repair entry")
	j, rec, err := Open(path, nil)
	require.NoError(t, err)
	defer j.Close()
	require.Equal(t, uint64(3), rec.LastSeq)
	data := string(readFile(t, path))
	require.True(t, strings.HasPrefix(data, lines[0]+lines[1]), "the good entries are untouched")
	require.Contains(t, data, `"kind":"repair"`)
	require.Contains(t, data, filepath.Base(res.Quarantine))
}

// TestRepairNothingToDo leaves an intact journal alone.
func TestRepairNothingToDo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	appendAll(t, j)
	require.NoError(t, j.Close())
	before := readFile(t, path)
	res, err := Repair(path, time.Now(), nil)
	require.NoError(t, err)
	require.Zero(t, res.Line)
	require.Equal(t, before, readFile(t, path))
}

// TestRepairLocked refuses to repair a journal a running daemon holds.
func TestRepairLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	openT(t, path)
	_, err := Repair(path, time.Now(), nil)
	require.True(t, errors.Is(err, ErrLocked), "%v", err)
}
