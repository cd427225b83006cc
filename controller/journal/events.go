package journal

import (
	"errors"
	"fmt"
	"io"
)

// DREntries returns the journal's dr entries, verifying the chain on the
// way as Export does: a damaged line is an error, a torn last line (a
// journal being appended to) ends the list without one.
func DREntries(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := newScanner(r)
	for {
		e, err := sc.next()
		if err == io.EOF || errors.Is(err, ErrTorn) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dr entries: %w", err)
		}
		if e.Kind == KindDR {
			out = append(out, e)
		}
	}
}
