package journal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// LineError is a damaged journal line. It matches ErrTorn (errors.Is) when
// it is an incomplete or unparsable last line, ErrCorrupt otherwise.
type LineError struct {
	Line int    // 1-based line number
	Seq  uint64 // the line's seq; 0 when it did not parse
	Msg  string // what is wrong, e.g. "hash mismatch"
	Torn bool
	Err  error // the parse error, if any
}

func (e *LineError) Error() string {
	if e.Seq > 0 {
		return fmt.Sprintf("line %d (seq %d): %s", e.Line, e.Seq, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Is makes errors.Is(err, ErrTorn) and errors.Is(err, ErrCorrupt) work.
func (e *LineError) Is(target error) bool {
	return (e.Torn && target == ErrTorn) || (!e.Torn && target == ErrCorrupt)
}

func (e *LineError) Unwrap() error { return e.Err }

// Verify reads a whole journal and checks that every line parses, seq starts
// at 1 and increases by one, every prev is the previous entry's hash and
// every hash matches its line. It returns the number of good entries and, at
// the first problem, a *LineError naming the line and seq, such as
// "line 17 (seq 17): hash mismatch". A torn last line is reported too (it
// matches ErrTorn): Open would truncate it.
func Verify(r io.Reader) (int, error) {
	sc := newScanner(r)
	n := 0
	for {
		_, err := sc.next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// scanner reads journal lines one by one and checks the chain.
type scanner struct {
	r    *bufio.Reader
	buf  []byte
	line int    // lines read so far
	read int64  // bytes read so far
	good int64  // bytes up to and including the newline of the last good entry
	seq  uint64 // of the last good entry
	hash string // of the last good entry
	// anchor, when set, is the previous segment: the first line must
	// follow its last entry (seq and hash above) instead of starting the
	// chain.
	anchor string
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: bufio.NewReaderSize(r, 64<<10)}
}

// readLine returns the next line without its newline, how many bytes it
// took, whether it ended in a newline, and whether it was longer than
// MaxLineBytes (then its content is dropped, not kept in memory).
func (s *scanner) readLine() (line []byte, n int, complete, tooLong bool, err error) {
	s.buf = s.buf[:0]
	for {
		frag, err := s.r.ReadSlice('\n')
		n += len(frag)
		if !tooLong && len(s.buf)+len(frag) > MaxLineBytes {
			tooLong, s.buf = true, s.buf[:0]
		}
		if !tooLong {
			s.buf = append(s.buf, frag...)
		}
		switch {
		case err == nil:
			s.read += int64(n)
			if tooLong {
				return nil, n, true, true, nil
			}
			return s.buf[:len(s.buf)-1], n, true, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			s.read += int64(n)
			return s.buf, n, false, tooLong, nil
		default:
			return nil, n, false, false, fmt.Errorf("read: %w", err)
		}
	}
}

// atEOF reports whether nothing follows the line just read.
func (s *scanner) atEOF() (bool, error) {
	_, err := s.r.Peek(1)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, io.EOF):
		return true, nil
	default:
		return false, fmt.Errorf("read: %w", err)
	}
}

// hashPrefix starts the last field of every line.
const hashPrefix = `"hash":"`

// next returns the next good entry, io.EOF at the clean end of the journal,
// a *LineError for a damaged line, or a read error. It must not be called
// again after an error.
func (s *scanner) next() (Entry, error) {
	line, n, complete, tooLong, err := s.readLine()
	if err != nil {
		return Entry{}, err
	}
	if n == 0 {
		return Entry{}, io.EOF
	}
	s.line++
	if !complete {
		return Entry{}, &LineError{Line: s.line, Msg: "torn last line: no final newline", Torn: true}
	}
	// A line that never made it to disk whole is torn only when it is the
	// last one; anywhere else history is damaged.
	bad := func(msg string, cause error) error {
		last, err := s.atEOF()
		if err != nil {
			return err
		}
		if last {
			return &LineError{Line: s.line, Msg: "torn last line: " + msg, Torn: true, Err: cause}
		}
		return &LineError{Line: s.line, Msg: msg, Err: cause}
	}
	if tooLong {
		return Entry{}, bad(fmt.Sprintf("longer than %d bytes", MaxLineBytes), nil)
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Entry{}, bad("parse: "+err.Error(), err)
	}
	lineErr := func(msg string) error { return &LineError{Line: s.line, Seq: e.Seq, Msg: msg} }
	// The hash is checked first, then the links: a deleted line shows up
	// as a prev mismatch on the line after it.
	const tail = 64 + len(`"}`)
	k := len(line) - tail - len(hashPrefix)
	if k < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || !bytes.Equal(line[k:k+len(hashPrefix)], []byte(hashPrefix)) {
		return Entry{}, lineErr("hash field missing or not last")
	}
	got := string(line[len(line)-tail : len(line)-2])
	if got != e.Hash {
		return Entry{}, lineErr("hash field is not the entry's hash")
	}
	h := sha256.New()
	h.Write(line[:len(line)-tail])
	h.Write([]byte(`"}`))
	if hex.EncodeToString(h.Sum(nil)) != got {
		return Entry{}, lineErr("hash mismatch")
	}
	switch {
	case s.line == 1 && s.anchor == "" && e.Prev != "":
		return Entry{}, lineErr("prev is not empty on the first line")
	case s.line == 1 && s.anchor != "" && e.Prev != s.hash:
		return Entry{}, lineErr("prev does not follow the last entry of " + s.anchor)
	case s.line > 1 && e.Prev != s.hash:
		return Entry{}, lineErr(fmt.Sprintf("prev does not match line %d", s.line-1))
	case s.line == 1 && s.anchor == "" && e.Seq != 1:
		return Entry{}, lineErr("first seq is not 1")
	case s.line == 1 && s.anchor != "" && e.Seq != s.seq+1:
		return Entry{}, lineErr(fmt.Sprintf("seq does not follow the last entry of %s (seq %d)", s.anchor, s.seq))
	case e.Seq != s.seq+1:
		return Entry{}, lineErr(fmt.Sprintf("seq does not follow line %d (seq %d)", s.line-1, s.seq))
	}
	s.good, s.seq, s.hash = s.read, e.Seq, e.Hash
	return e, nil
}
