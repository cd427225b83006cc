package journal

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/switchd/switchd/internal/decimal"
)

// KWPlaces is the resolution of exported kW: 1e-6 kW (a milliwatt), far
// below any meter's, far above float64 noise at a site's power.
const KWPlaces = 6

// Export writes the journal's state entries as CSV "time,fleet,mode,kw" for
// demand-response settlement: a header, then for every state entry with
// from <= time < to (a zero from or to is unbounded) one row per mode in its
// KW, modes sorted by name, time in RFC 3339. kW are rounded to KWPlaces
// decimal places and written in the shortest form: they are device counts
// times per-device power, and 3 × 0.1 kW must read 0.3, not
// 0.30000000000000004. The chain is verified on the way: a damaged line is
// an error (the rows already written must then be discarded), while a torn
// last line, as a journal being appended to may show, ends the export
// without error.
func Export(r io.Reader, from, to time.Time, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"time", "fleet", "mode", "kw"}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	sc := newScanner(r)
	for {
		e, err := sc.next()
		if err == io.EOF || errors.Is(err, ErrTorn) {
			break
		}
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if e.Kind != KindState || (!from.IsZero() && e.Time.Before(from)) || (!to.IsZero() && !e.Time.Before(to)) {
			continue
		}
		ts := e.Time.Format(time.RFC3339)
		modes := make([]string, 0, len(e.KW))
		for m := range e.KW {
			modes = append(modes, m)
		}
		slices.Sort(modes)
		for _, m := range modes {
			if err := cw.Write([]string{ts, e.Fleet, m, decimal.Format(e.KW[m], KWPlaces)}); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
