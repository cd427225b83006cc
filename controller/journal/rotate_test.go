package journal

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRotation appends to a journal with a small segment size: it rotates
// into numbered segments, each under the size (one batch may overflow it),
// whose concatenation is one unbroken chain; reopening resumes from the
// last entry and the last state of every fleet, wherever it was written;
// VerifyChain checks across segments and names the segment and line of
// damage.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	const max = 1024
	j, _, err := OpenWith(path, nil, Options{MaxSegmentBytes: max})
	require.NoError(t, err)
	n := 0
	for range 10 {
		n += appendAll(t, j)
	}
	lastSeq, lastHash := j.Last()
	require.NoError(t, j.Close())

	segs, err := Segments(path)
	require.NoError(t, err)
	require.Greater(t, len(segs), 3, "rotated")
	require.Equal(t, path+".000001", segs[0])
	for _, s := range segs {
		fi, err := os.Stat(s)
		require.NoError(t, err)
		require.Less(t, fi.Size(), int64(2*max), "%s", s)
	}

	got, err := VerifyChain(path)
	require.NoError(t, err)
	require.Equal(t, n, got)

	// The concatenation is the journal as if never rotated.
	r, err := OpenChain(path)
	require.NoError(t, err)
	all, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	c, err := Verify(bytes.NewReader(all))
	require.NoError(t, err)
	require.Equal(t, n, c)

	j, rec, err := OpenWith(path, nil, Options{MaxSegmentBytes: max})
	require.NoError(t, err)
	require.Equal(t, lastSeq, rec.LastSeq)
	require.Equal(t, lastHash, rec.LastHash)
	require.Equal(t, n, rec.Entries)
	require.Contains(t, rec.LastState, "asics")
	require.Contains(t, rec.LastState, "gpus")
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStop}))
	require.NoError(t, j.Close())

	// Damage in a middle segment is named by segment and line.
	lines := strings.SplitAfter(string(readFile(t, segs[1])), "\n")
	lines[1] = strings.Replace(lines[1], `"seq":`, `"seq": `, 1)
	require.NoError(t, os.WriteFile(segs[1], []byte(strings.Join(lines, "")), 0o640))
	_, err = VerifyChain(path)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, segs[1]+": line 2")
	_, _, err = OpenWith(path, nil, Options{})
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = Repair(path, t0, nil)
	require.ErrorContains(t, err, segs[1])
}

// TestRotationDeletedSegment removes a whole middle segment: the next one
// no longer follows.
func TestRotationDeletedSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _, err := OpenWith(path, nil, Options{MaxSegmentBytes: 1024})
	require.NoError(t, err)
	for range 10 {
		appendAll(t, j)
	}
	require.NoError(t, j.Close())
	segs, err := Segments(path)
	require.NoError(t, err)
	require.NoError(t, os.Remove(segs[1]))
	_, err = VerifyChain(path)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, segs[2]+": line 1")
	require.ErrorContains(t, err, "does not follow")
}

// TestRotationCrashAfterRename leaves a rotation half done, as a crash
// between the rename and the new file would: the journal file is missing
// and the segment holds everything. Open continues the chain from it.
func TestRotationCrashAfterRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	n := appendAll(t, j)
	seq, hash := j.Last()
	require.NoError(t, j.Close())
	require.NoError(t, os.Rename(path, segmentName(path, 1)))

	j, rec, err := OpenWith(path, nil, Options{MaxSegmentBytes: 1 << 20})
	require.NoError(t, err)
	require.Equal(t, seq, rec.LastSeq)
	require.Equal(t, hash, rec.LastHash)
	require.Equal(t, n, rec.Entries)
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStop}))
	require.NoError(t, j.Close())
	got, err := VerifyChain(path)
	require.NoError(t, err)
	require.Equal(t, n+1, got)
	// The next rotation does not reuse the segment's number.
	j, _, err = OpenWith(path, nil, Options{MaxSegmentBytes: 1})
	require.NoError(t, err)
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStart}))
	require.NoError(t, j.Close())
	segs, err := Segments(path)
	require.NoError(t, err)
	require.Equal(t, []string{segmentName(path, 1), segmentName(path, 2)}, segs)
	got, err = VerifyChain(path)
	require.NoError(t, err)
	require.Equal(t, n+2, got)
}
