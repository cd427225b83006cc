package journal

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// mountTinyTmpfs mounts a 64 KiB tmpfs for the test, or skips when this
// process may not mount (not root, no CAP_SYS_ADMIN).
func mountTinyTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// fill writes to a filler file until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), 1024)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return p
		}
	}
}

// TestAppendRecoversAfterFullDisk fills the journal's file system: appends
// fail with ENOSPC and nothing partial stays in the file; once space is
// freed the next append succeeds by itself, continuing the chain from the
// last durable entry (before, the failure was sticky until a restart).
func TestAppendRecoversAfterFullDisk(t *testing.T) {
	dir := mountTinyTmpfs(t)
	path := filepath.Join(dir, "j.jsonl")
	j, _ := openT(t, path)
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStart}))
	filler := fill(t, dir)

	big := state(t0, "asics", 60, 40, 210.5)
	big.Reason = string(bytes.Repeat([]byte("r"), 8192)) // more than a page: no room
	for range 3 {
		require.Error(t, j.Append(big))
	}
	seq, _ := j.Last()
	require.Equal(t, uint64(1), seq)

	require.NoError(t, os.Remove(filler))
	require.NoError(t, j.Append(big), "appends work again once space is back")
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStop}))
	seq, _ = j.Last()
	require.Equal(t, uint64(3), seq)
	require.NoError(t, j.Close())

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n, err := Verify(f)
	require.NoError(t, err, "the chain has no trace of the failed appends")
	require.Equal(t, 3, n)
}
