package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Rotation. With Options.MaxSegmentBytes set, an Append that would take the
// journal file past that size first renames it to "<path>.000001" (then
// .000002, ...) and starts a new, empty file at path. The chain does not
// restart: the first entry of each segment has the next seq and, as prev,
// the hash of the last entry of the segment before. Concatenated oldest
// first (OpenChain), the segments and the journal file are byte for byte
// the journal as if it had never rotated, so Verify and Export read them
// unchanged; VerifyChain reads them one by one and names the segment of a
// damaged line. Old segments may be archived, but never removed from the
// middle: the next segment would no longer follow.

// segmentDigits is the width of a segment number.
const segmentDigits = 6

// Options tune OpenWith.
type Options struct {
	// MaxSegmentBytes rotates the journal file before it would grow past
	// this size (a single batch larger than it still goes into one
	// segment). 0 never rotates.
	MaxSegmentBytes int64
}

// segmentName is the name of rotated segment n of the journal at path.
func segmentName(path string, n int) string {
	return fmt.Sprintf("%s.%0*d", path, segmentDigits, n)
}

// Segments returns the rotated segments of the journal at path, oldest
// first; the journal file itself, the newest part, is not among them.
func Segments(path string) ([]string, error) {
	_, segs, err := segmentNumbers(path)
	return segs, err
}

// segmentNumbers lists the rotated segments with their numbers, ascending.
func segmentNumbers(path string) ([]int, []string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("journal %q: list segments: %w", path, err)
	}
	prefix := filepath.Base(path) + "."
	var nums []int
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || len(suffix) < segmentDigits || strings.Trim(suffix, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n <= 0 {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	segs := make([]string, len(nums))
	for i, n := range nums {
		segs[i] = segmentName(path, n)
	}
	return nums, segs, nil
}

// scanSegments reads the rotated segments in order, checking the chain
// across them, and returns a scanner state to continue with: the seq and
// hash of the last entry and the last segment's name. Each entry is passed
// to each (nil: none). Damage anywhere, a torn last line included (a
// rotated segment was complete when it was closed), is an error wrapping
// ErrCorrupt that names the segment.
func scanSegments(segs []string, each func(Entry)) (seq uint64, hash, last string, n int, err error) {
	for _, seg := range segs {
		f, err := os.Open(seg)
		if err != nil {
			return 0, "", "", n, fmt.Errorf("journal segment: %w", err)
		}
		sc := newScanner(f)
		sc.seq, sc.hash, sc.anchor = seq, hash, last
		for {
			e, err := sc.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				_ = f.Close()
				var le *LineError
				if errors.As(err, &le) && le.Torn {
					c := *le
					c.Torn = false
					err = &c
				}
				return 0, "", "", n, fmt.Errorf("%s: %w", seg, err)
			}
			n++
			if each != nil {
				each(e)
			}
		}
		_ = f.Close()
		seq, hash, last = sc.seq, sc.hash, seg
	}
	return seq, hash, last, n, nil
}

// VerifyChain verifies the journal at path with its rotated segments, as
// Verify does one file: it returns the number of good entries and, at the
// first problem, an error naming the file (segment or journal) and line,
// such as "j.jsonl.000002: line 17 (seq 1017): hash mismatch". A torn last
// line of the journal file matches ErrTorn, as with Verify.
func VerifyChain(path string) (int, error) {
	segs, err := Segments(path)
	if err != nil {
		return 0, err
	}
	seq, hash, last, n, err := scanSegments(segs, nil)
	if err != nil {
		return n, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && len(segs) > 0 {
		return n, nil // rotated, and nothing appended since
	}
	if err != nil {
		return n, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	sc := newScanner(f)
	sc.seq, sc.hash, sc.anchor = seq, hash, last
	for {
		_, err := sc.next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
}

// OpenChain returns the rotated segments and the journal file at path
// concatenated, oldest first: the whole journal as one stream, for Verify
// and Export. Close closes every file.
func OpenChain(path string) (io.ReadCloser, error) {
	segs, err := Segments(path)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	for _, name := range append(segs, path) {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) && name == path && len(segs) > 0 {
			continue
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("journal: %w", err)
		}
		files = append(files, f)
	}
	readers := make([]io.Reader, len(files))
	for i, f := range files {
		readers[i] = f
	}
	return &chainReader{Reader: io.MultiReader(readers...), close: closeAll}, nil
}

// chainReader is OpenChain's reader.
type chainReader struct {
	io.Reader
	close func()
}

// Close closes every file of the chain.
func (c *chainReader) Close() error { c.close(); return nil }

// rotate moves the journal file aside as the next segment and starts a new
// one. It fails only before anything changed, or leaves j appending to the
// renamed segment (still a valid chain; the next Append tries again).
// Called with j.mu held.
func (j *Journal) rotate() {
	name := segmentName(j.path, j.nextSeg)
	if err := os.Rename(j.path, name); err != nil {
		return
	}
	j.nextSeg++
	nf, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	if err := syscall.Flock(int(nf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = nf.Close()
		return
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		_ = nf.Close()
		return
	}
	_ = j.f.Close()
	j.f, j.size = nf, 0
}
