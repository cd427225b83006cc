package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

var t0 = time.Date(2024, 8, 20, 19, 0, 0, 0, time.FixedZone("CDT", -5*3600))

func openT(t *testing.T, path string) (*Journal, Recovery) {
	t.Helper()
	j, rec, err := Open(path, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j, rec
}

func state(at time.Time, fleet string, mining, off int, kw float64) Entry {
	return Entry{
		Time: at, Kind: KindState, Fleet: fleet,
		Counts: map[string]int{"mining": mining, "off": off},
		KW:     map[string]float64{"mining": kw, "off": 0},
	}
}

// batches is a day in the life of a small site, as the daemon journals it.
func batches() [][]Entry {
	return [][]Entry{
		{{Time: t0, Kind: KindStart, Reason: "switchd 0.3.0"}},
		{
			{Time: t0.Add(time.Minute), Kind: KindDecision, Rules: []string{"cheap", "4cp"}},
			{Time: t0.Add(time.Minute), Kind: KindCommand, Fleet: "asics", From: "off", To: "mining", Count: 100},
			state(t0.Add(time.Minute), "asics", 100, 0, 350),
		},
		{{Time: t0.Add(time.Minute), Kind: KindAck, Fleet: "asics"}},
		{
			{Time: t0.Add(time.Hour), Kind: KindOverride, Fleet: "gpus", Reason: "maintenance",
				Override: json.RawMessage(`{"fleet": "gpus", "mode": "off", "until": "2024-08-20T21:00:00-05:00"}`)},
			state(t0.Add(time.Hour), "gpus", 0, 8, 0.25),
		},
		{
			{Time: t0.Add(2 * time.Hour), Kind: KindCommand, Fleet: "asics", From: "mining", To: "off", Count: 40},
			state(t0.Add(2*time.Hour), "asics", 60, 40, 210.5),
		},
		{{Time: t0.Add(2 * time.Hour), Kind: KindAck, Fleet: "asics", Err: "dial 10.0.0.5:4028: connection refused"}},
	}
}

func appendAll(t *testing.T, j *Journal) int {
	t.Helper()
	n := 0
	for _, b := range batches() {
		require.NoError(t, j.Append(b...))
		n += len(b)
	}
	return n
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func verifyFile(t *testing.T, path string) (int, error) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return Verify(f)
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "journal.jsonl")
	j, rec := openT(t, path)
	require.Equal(t, Recovery{LastState: map[string]Entry{}}, rec)
	n := appendAll(t, j)
	seq, hash := j.Last()
	require.Equal(t, uint64(n), seq)
	require.NoError(t, j.Close())
	require.ErrorIs(t, j.Append(Entry{Kind: KindStop}), ErrClosed)
	require.NoError(t, j.Close(), "second close")

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o750), di.Mode().Perm())

	j, rec = openT(t, path)
	require.Equal(t, n, rec.Entries)
	require.Zero(t, rec.TornBytes)
	require.Equal(t, seq, rec.LastSeq)
	require.Equal(t, hash, rec.LastHash)
	require.True(t, rec.LastTime.Equal(t0.Add(2*time.Hour)))
	require.Len(t, rec.LastState, 2)
	require.Equal(t, map[string]int{"mining": 60, "off": 40}, rec.LastState["asics"].Counts)
	require.Equal(t, map[string]float64{"mining": 210.5, "off": 0}, rec.LastState["asics"].KW)
	require.Equal(t, uint64(9), rec.LastState["asics"].Seq)
	require.Equal(t, map[string]float64{"mining": 0.25, "off": 0}, rec.LastState["gpus"].KW)

	// The chain goes on across a reopen.
	require.NoError(t, j.Append(Entry{Time: t0.Add(3 * time.Hour), Kind: KindStop}))
	require.NoError(t, j.Close())
	got, err := verifyFile(t, path)
	require.NoError(t, err)
	require.Equal(t, n+1, got)

	lines := strings.Split(strings.TrimSuffix(string(readFile(t, path)), "\n"), "\n")
	require.Len(t, lines, n+1)
	var first Entry
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &first))
	require.Equal(t, KindCommand, first.Kind)
	require.Equal(t, "off", first.From)
	require.True(t, first.Time.Equal(t0.Add(time.Minute)))

	tests := []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"all", time.Time{}, time.Time{}, `time,fleet,mode,kw
2024-08-20T19:01:00-05:00,asics,mining,350
2024-08-20T19:01:00-05:00,asics,off,0
2024-08-20T20:00:00-05:00,gpus,mining,0.25
2024-08-20T20:00:00-05:00,gpus,off,0
2024-08-20T21:00:00-05:00,asics,mining,210.5
2024-08-20T21:00:00-05:00,asics,off,0
`},
		{"from is inclusive", t0.Add(time.Hour), time.Time{}, `time,fleet,mode,kw
2024-08-20T20:00:00-05:00,gpus,mining,0.25
2024-08-20T20:00:00-05:00,gpus,off,0
2024-08-20T21:00:00-05:00,asics,mining,210.5
2024-08-20T21:00:00-05:00,asics,off,0
`},
		{"to is exclusive, other zone", time.Time{}, t0.Add(2 * time.Hour).UTC(), `time,fleet,mode,kw
2024-08-20T19:01:00-05:00,asics,mining,350
2024-08-20T19:01:00-05:00,asics,off,0
2024-08-20T20:00:00-05:00,gpus,mining,0.25
2024-08-20T20:00:00-05:00,gpus,off,0
`},
		{"empty range", t0.Add(5 * time.Hour), t0.Add(6 * time.Hour), "time,fleet,mode,kw\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, Export(bytes.NewReader(readFile(t, path)), tt.from, tt.to, &out))
			require.Equal(t, tt.want, out.String())
		})
	}
}

// TestHashRule checks the rule the package comment gives third parties.
func TestHashRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	appendAll(t, j)
	prev := ""
	for i, line := range strings.Split(strings.TrimSuffix(string(readFile(t, path)), "\n"), "\n") {
		var e Entry
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		require.Equal(t, uint64(i+1), e.Seq)
		require.Equal(t, prev, e.Prev)
		payload := strings.TrimSuffix(line, `"hash":"`+e.Hash+`"}`) + `"hash":""}`
		sum := sha256.Sum256([]byte(payload))
		require.Equal(t, hex.EncodeToString(sum[:]), e.Hash, "line %d", i+1)
		// The same bytes as encoding/json of the entry with Hash == "".
		e.Hash = ""
		canon, err := json.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, payload, string(canon), "line %d", i+1)
		prev = hex.EncodeToString(sum[:])
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name string
		tail func(last string) string // given the last good line, the bytes a crash left after it
	}{
		{"half a line", func(last string) string { return last[:len(last)/2] }},
		{"whole line without newline", func(last string) string { return strings.TrimSuffix(last, "\n") }},
		{"garbage line", func(string) string { return "{\"seq\":7,\"ti\n" }},
		{"zeros", func(string) string { return string(make([]byte, 4096)) }},
		{"empty line", func(string) string { return "\n" }},
		{"overlong", func(string) string { return strings.Repeat("x", MaxLineBytes+10) + "\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.jsonl")
			j, _ := openT(t, path)
			n := appendAll(t, j)
			require.NoError(t, j.Close())
			good := readFile(t, path)
			lines := strings.SplitAfter(string(good), "\n")
			tail := tt.tail(lines[len(lines)-2])
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.WriteString(tail)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			got, err := verifyFile(t, path)
			require.ErrorIs(t, err, ErrTorn)
			require.NotErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, fmt.Sprintf("line %d: torn last line", n+1))
			require.Equal(t, n, got)

			core, logs := observer.New(zapcore.InfoLevel)
			j, rec, err := Open(path, zap.New(core))
			require.NoError(t, err)
			t.Cleanup(func() { _ = j.Close() })
			require.Equal(t, int64(len(tail)), rec.TornBytes)
			require.Equal(t, n, rec.Entries)
			require.Equal(t, good, readFile(t, path), "truncated back to the last good newline")
			warns := logs.FilterMessage("journal torn tail truncated").All()
			require.Len(t, warns, 1)
			require.Equal(t, zapcore.WarnLevel, warns[0].Level)
			require.Equal(t, int64(len(tail)), warns[0].ContextMap()["torn_bytes"])

			require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStop}))
			require.NoError(t, j.Close())
			got, err = verifyFile(t, path)
			require.NoError(t, err)
			require.Equal(t, n+1, got)
		})
	}
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(lines []string) []string // lines with their newlines
		want   string
		wantOK int
	}{
		{
			name: "count changed",
			edit: func(l []string) []string {
				l[2] = strings.Replace(l[2], `"count":100`, `"count":10`, 1)
				return l
			},
			want: "line 3 (seq 3): hash mismatch", wantOK: 2,
		},
		{
			name: "kw changed",
			edit: func(l []string) []string {
				l[3] = strings.Replace(l[3], `"mining":350`, `"mining":35`, 1)
				return l
			},
			want: "line 4 (seq 4): hash mismatch", wantOK: 3,
		},
		{
			name: "line deleted",
			edit: func(l []string) []string { return append(l[:5:5], l[6:]...) },
			want: "line 6 (seq 7): prev does not match line 5", wantOK: 5,
		},
		{
			name: "lines swapped",
			edit: func(l []string) []string { l[2], l[3] = l[3], l[2]; return l },
			want: "line 3 (seq 4): prev does not match line 2", wantOK: 2,
		},
		{
			name: "line edited and its own hash recomputed",
			edit: func(l []string) []string {
				var e Entry
				require.NoError(t, json.Unmarshal([]byte(l[2]), &e))
				e.Count = 10
				line, _, err := encode(&e)
				require.NoError(t, err)
				l[2] = string(line)
				return l
			},
			want: "line 4 (seq 4): prev does not match line 3", wantOK: 3,
		},
		{
			name: "garbage in the middle",
			edit: func(l []string) []string { l[2] = "{oops\n"; return l },
			want: "line 3: parse: invalid character", wantOK: 2,
		},
		{
			name: "empty line in the middle",
			edit: func(l []string) []string { l[2] = "\n" + l[2]; return l },
			want: "line 3: parse: unexpected end of JSON input", wantOK: 2,
		},
		{
			name: "first line dropped",
			edit: func(l []string) []string { return l[1:] },
			want: "line 1 (seq 2): prev is not empty on the first line", wantOK: 0,
		},
		{
			name: "last line with a valid newline but a bad hash",
			edit: func(l []string) []string {
				i := len(l) - 2
				l[i] = strings.Replace(l[i], "connection refused", "connection reset", 1)
				return l
			},
			want: "line 10 (seq 10): hash mismatch", wantOK: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.jsonl")
			j, _ := openT(t, path)
			appendAll(t, j)
			require.NoError(t, j.Close())
			lines := strings.SplitAfter(string(readFile(t, path)), "\n")
			bad := []byte(strings.Join(tt.edit(lines), ""))
			require.NoError(t, os.WriteFile(path, bad, 0o640))

			got, err := verifyFile(t, path)
			require.ErrorIs(t, err, ErrCorrupt)
			require.NotErrorIs(t, err, ErrTorn)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, tt.wantOK, got)

			_, _, err = Open(path, zaptest.NewLogger(t))
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, bad, readFile(t, path), "history is left untouched")

			var out bytes.Buffer
			require.ErrorIs(t, Export(bytes.NewReader(bad), time.Time{}, time.Time{}, &out), ErrCorrupt)
		})
	}
}

func TestVerifyEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		input string
		n     int
		want  string // "" for no error
	}{
		{"empty", "", 0, ""},
		{"one newline", "\n", 0, "line 1: torn last line: parse: unexpected end of JSON input"},
		{"no newline at all", `{"seq":1}`, 0, "line 1: torn last line: no final newline"},
		{"json without hash", "{\"seq\":1,\"prev\":\"\"}\n", 0, "line 1 (seq 1): hash field missing or not last"},
		{"null", "null\n", 0, "line 1: hash field missing or not last"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Verify(strings.NewReader(tt.input))
			require.Equal(t, tt.n, n)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestFirstSeqMustBeOne(t *testing.T) {
	e := Entry{Seq: 2, Kind: KindStart, Time: t0}
	line, _, err := encode(&e)
	require.NoError(t, err)
	n, err := Verify(bytes.NewReader(line))
	require.Zero(t, n)
	require.EqualError(t, err, "line 1 (seq 2): first seq is not 1")
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStart}))

	_, _, err := Open(path, zaptest.NewLogger(t))
	require.ErrorIs(t, err, ErrLocked)
	require.EqualError(t, err, fmt.Sprintf("journal %q: locked by another process", path))

	require.NoError(t, j.Close())
	j2, rec := openT(t, path)
	require.Equal(t, 1, rec.Entries)
	require.NoError(t, j2.Append(Entry{Time: t0, Kind: KindStop}))
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o640))
	tests := []struct {
		name, path, want string
	}{
		{"parent is a file", filepath.Join(file, "j.jsonl"), "not a directory"},
		{"path is a directory", dir, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Open(tt.path, nil)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"unknown kind", Entry{Kind: "decisoin"}, `journal append: entry 1 (decisoin): unknown kind "decisoin"`},
		{"state without fleet", Entry{Kind: KindState}, "journal append: entry 1 (state): state entry without fleet"},
		{"nan kw", Entry{Kind: KindState, Fleet: "a", KW: map[string]float64{"mining": math.NaN()}}, "unsupported value: NaN"},
		{"bad override json", Entry{Kind: KindOverride, Override: json.RawMessage(`{"fleet":`)}, "MarshalJSON"},
		{"too long", Entry{Kind: KindDecision, Reason: strings.Repeat("x", MaxLineBytes)}, "exceeds"},
	}
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := j.Append(Entry{Time: t0, Kind: KindStart}, tt.e)
			require.ErrorContains(t, err, tt.want)
		})
	}
	// Nothing was written, and the journal is still usable.
	require.Empty(t, readFile(t, path))
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStart}))
	require.NoError(t, j.Append())
	seq, _ := j.Last()
	require.Equal(t, uint64(1), seq)
}

// TestAppendFailureRepeats closes the file under the journal: the failed
// append's error comes back while the journal cannot recover (see
// TestAppendRecoversAfterFullDisk for the recovery).
func TestAppendFailureRepeats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	require.NoError(t, j.Append(Entry{Time: t0, Kind: KindStart}))
	require.NoError(t, j.f.Close()) // the disk goes away under the journal
	err := j.Append(Entry{Time: t0, Kind: KindStop})
	require.ErrorContains(t, err, "journal append: write")
	require.Equal(t, err, j.Append(Entry{Time: t0, Kind: KindStop}))
	seq, _ := j.Last()
	require.Equal(t, uint64(1), seq)
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, _ := openT(t, path)
	const writers, each = 4, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := j.Append(
					Entry{Time: t0, Kind: KindCommand, Fleet: fmt.Sprintf("f%d", w), Count: i + 1},
					Entry{Time: t0, Kind: KindAck, Fleet: fmt.Sprintf("f%d", w)},
				)
				if !assertNoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, j.Close())
	n, err := verifyFile(t, path)
	require.NoError(t, err)
	require.Equal(t, writers*each*2, n)
	// A batch is never interleaved with another.
	lines := strings.Split(strings.TrimSuffix(string(readFile(t, path)), "\n"), "\n")
	for i := 0; i < len(lines); i += 2 {
		var c, a Entry
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &c))
		require.NoError(t, json.Unmarshal([]byte(lines[i+1]), &a))
		require.Equal(t, KindCommand, c.Kind)
		require.Equal(t, c.Fleet, a.Fleet)
	}
}

// assertNoError reports err from a goroutine other than the test's, where
// require must not be used.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("append: %v", err)
		return false
	}
	return true
}

func FuzzVerify(f *testing.F) {
	var buf bytes.Buffer
	prev := ""
	for i, e := range []Entry{
		{Time: t0, Kind: KindStart},
		state(t0, "asics", 3, 1, 10.5),
		{Time: t0, Kind: KindOverride, Override: json.RawMessage(`{"a":"<b>"}`)},
	} {
		e.Seq, e.Prev = uint64(i+1), prev
		line, hash, err := encode(&e)
		require.NoError(f, err)
		buf.Write(line)
		prev = hash
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-7])
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data))
		if err == nil {
			require.Equal(t, bytes.Count(data, []byte("\n")), n)
		}
		var out bytes.Buffer
		_ = Export(bytes.NewReader(data), time.Time{}, time.Time{}, &out)
	})
}
