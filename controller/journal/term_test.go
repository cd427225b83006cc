package journal

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestStaleTermRefused: once an entry of term 7 is journalled, an entry of
// term 5 (a deposed leader's) is refused and nothing is written, entries
// without a term and of term 7 or later are taken, and the newest term
// survives a reopen.
func TestStaleTermRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.log")
	j, _, err := Open(path, zap.NewNop())
	require.NoError(t, err)
	now := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	require.NoError(t, j.Append(Entry{Time: now, Kind: KindHA, Term: 7, Reason: "follower"}))
	err = j.Append(Entry{Time: now, Kind: KindCommand, Fleet: "f", From: "mining", To: "off", Count: 1, Term: 5})
	require.ErrorIs(t, err, ErrStaleTerm)
	require.NoError(t, j.Append(Entry{Time: now, Kind: KindStart}, Entry{Time: now, Kind: KindCommand, Fleet: "f", From: "mining", To: "off", Count: 1, Term: 7}))
	seq, _ := j.Last()
	require.Equal(t, uint64(3), seq, "the refused entry was not written")
	require.NoError(t, j.Close())

	j, rec, err := Open(path, zap.NewNop())
	require.NoError(t, err)
	defer j.Close()
	require.Equal(t, int64(7), rec.Term)
	require.ErrorIs(t, j.Append(Entry{Time: now, Kind: KindAck, Fleet: "f", Term: 6}), ErrStaleTerm)
	n, err := VerifyChain(path)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}
