package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ValueColumn is one numeric column of a trace file that is not a signal, such
// as a day-ahead price forecast beside the real-time price: a value per
// row's interval. Empty cells are intervals without a value.
type ValueColumn struct {
	Name     string
	unixNano []int64
	values   []float64 // NaN where the cell was empty
}

// ReadColumn reads the time column and the column name of a trace CSV.
// Errors are *Error naming the file, line and column: a missing column, a
// time that does not parse or does not increase, a cell that is not a
// finite number.
func ReadColumn(path, name string) (*ValueColumn, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readColumn(f, path, name)
}

func readColumn(r io.Reader, file, name string) (*ValueColumn, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, &Error{File: file, Line: 1, Err: fmt.Errorf("read header: %w", err)}
	}
	cr.FieldsPerRecord = len(header)
	timeCol, col := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case traceTimeColumn:
			timeCol = i
		case name:
			col = i
		}
	}
	if timeCol < 0 {
		return nil, &Error{File: file, Line: 1, Err: errors.New("no time column")}
	}
	if col < 0 {
		return nil, &Error{File: file, Line: 1, Column: name, Err: fmt.Errorf("no such column (the header has %s)", strings.Join(header, ", "))}
	}
	c := &ValueColumn{Name: name}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &Error{File: file, Line: pe.StartLine, Err: pe.Err}
			}
			return nil, &Error{File: file, Err: err}
		}
		line, _ := cr.FieldPos(0)
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[timeCol]))
		if err != nil {
			return nil, &Error{File: file, Line: line, Column: traceTimeColumn, Err: err}
		}
		ns := t.UnixNano()
		if n := len(c.unixNano); n > 0 && ns <= c.unixNano[n-1] {
			return nil, &Error{File: file, Line: line, Column: traceTimeColumn, Err: errors.New("times must strictly increase")}
		}
		v := math.NaN()
		if cell := strings.TrimSpace(rec[col]); cell != "" {
			v, err = strconv.ParseFloat(cell, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, &Error{File: file, Line: line, Column: name, Err: fmt.Errorf("%q is not a finite number", cell)}
			}
		}
		c.unixNano = append(c.unixNano, ns)
		c.values = append(c.values, v)
	}
	if len(c.unixNano) == 0 {
		return nil, &Error{File: file, Line: 1, Column: name, Err: errors.New("no rows")}
	}
	return c, nil
}

// At returns the value of the row whose interval holds t (the last row's
// interval is as long as the step before it), and false outside the
// column's rows or on an empty cell.
func (c *ValueColumn) At(t time.Time) (float64, bool) {
	i := intervalIndex(c.unixNano, t.UnixNano())
	if i < 0 || math.IsNaN(c.values[i]) {
		return 0, false
	}
	return c.values[i], true
}

// Index returns the row whose interval holds t (the last row's interval is
// as long as the step before it), or -1 outside the series.
func (s *Series) Index(t time.Time) int {
	return intervalIndex(s.unixNano, t.UnixNano())
}

// intervalIndex is the last i with ts[i] <= t, when t is before the end of
// row i's interval; else -1.
func intervalIndex(ts []int64, t int64) int {
	n := len(ts)
	i := sort.Search(n, func(k int) bool { return ts[k] > t }) - 1
	if i < 0 {
		return -1
	}
	if i == n-1 {
		step := int64(15 * time.Minute)
		if n > 1 {
			step = ts[n-1] - ts[n-2]
		}
		if t >= ts[n-1]+step {
			return -1
		}
	}
	return i
}

// HasColumn reports whether the trace CSV at path has a column name in its
// header; it reads the header only.
func HasColumn(path, name string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	header, err := csv.NewReader(f).Read()
	if err != nil {
		return false, &Error{File: path, Line: 1, Err: fmt.Errorf("read header: %w", err)}
	}
	for _, h := range header {
		if strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == name {
			return true, nil
		}
	}
	return false, nil
}
