package trace

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchd/switchd"
)

// Row is one instant of a trace: the values sampled at Time. Has[s] says
// which signals have a sample here; Values[s] is in the signal's unit
// (hashprice in USD per PH/s per day) and is 0 where Has[s] is false.
//
// At[s] is when Values[s] was sampled: Time for a fresh sample, earlier for
// a value carried forward by Merge (so a daily hashprice ages as it should),
// zero where Has[s] is false. Consumers treat a zero At[s] with Has[s] as
// Time, so a Source may leave At unset when every value is fresh.
type Row struct {
	Time time.Time
	// Line is where the row starts in its file (1-based, the header is line
	// 1), for messages; 0 for rows that come from no file.
	Line   int
	Values [switchd.NumSignals]float64
	Has    [switchd.NumSignals]bool
	At     [switchd.NumSignals]time.Time
}

// sampledAt returns when the row's value of s was sampled, reading a zero
// At[s] as Time.
func (r *Row) sampledAt(s int) time.Time {
	if r.At[s].IsZero() {
		return r.Time
	}
	return r.At[s]
}

// Source yields rows in strictly increasing time order and io.EOF after the
// last one. It is the common interface of Reader, Merge and Series.Source.
// After an error other than io.EOF a source returns that error again.
type Source interface {
	Next() (Row, error)
}

// Error is a problem in a trace file, located by file, line and, where
// it is about one cell, column name.
type Error struct {
	File   string
	Line   int    // 1-based; the header is line 1
	Column string // empty when the problem is not about one column
	Err    error
}

// Error formats the error as file:line: column name: problem.
func (e *Error) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("%s:%d: column %s: %v", e.File, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// traceColumns are the signal columns a trace file may carry. A trace in USD
// per TH/s per day is scaled by 1000 to the USD per PH/s per day used
// everywhere else.
var traceColumns = []struct {
	name     string
	sig      switchd.Signal
	thousand bool
}{
	{"price_usd_mwh", switchd.SignalPrice, false},
	{"grid_load_mw", switchd.SignalGridLoad, false},
	{"hashprice_usd_th_day", switchd.SignalHashprice, true},
	{"hashprice_usd_ph_day", switchd.SignalHashprice, false},
	{"inference_usd_gpu_hour", switchd.SignalInferencePrice, false},
	{"ai_demand_gpus", switchd.SignalAIDemand, false},
	{"cp_alert_probability", switchd.SignalCPAlert, false},
}

// traceCanonicalColumn is the column WriteCSV writes for each signal.
var traceCanonicalColumn = [switchd.NumSignals]string{
	switchd.SignalPrice:          "price_usd_mwh",
	switchd.SignalGridLoad:       "grid_load_mw",
	switchd.SignalHashprice:      "hashprice_usd_ph_day",
	switchd.SignalInferencePrice: "inference_usd_gpu_hour",
	switchd.SignalAIDemand:       "ai_demand_gpus",
	switchd.SignalCPAlert:        "cp_alert_probability",
}

// traceTimeColumn is the name of the column holding each interval's start.
const traceTimeColumn = "time"

// traceSignalColumn is one signal column of an open trace.
type traceSignalColumn struct {
	field    int // index in the CSV record
	name     string
	sig      switchd.Signal
	thousand bool
}

// traceZone is one UTC offset seen in a trace and its location.
type traceZone struct {
	offset int // seconds east of UTC
	loc    *time.Location
}

// Reader reads one trace file row by row. It keeps only the current record,
// so a year of 5-minute rows streams through in constant memory. A Reader is
// not safe for concurrent use.
type Reader struct {
	name     string
	csv      *csv.Reader
	timeCol  int
	cols     []traceSignalColumn
	signals  []switchd.Signal
	notices  []string
	prev     time.Time // time of the previous row
	prevLine int       // 0 before the first row
	zones    []traceZone
	scratch  []byte // for the exact USD/TH to USD/PH conversion
	err      error  // sticky: io.EOF or the first error
}

// NewReader reads and checks the header of a trace CSV. name is used in
// notices and errors (usually the file's path). Columns that are not signals
// switchd knows give one notice (see Notices) and are ignored. Spaces around
// names and cells are ignored, and a cell of spaces is an empty cell.
func NewReader(r io.Reader, name string) (*Reader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	tr := &Reader{name: name, csv: cr, timeCol: -1}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{File: name, Line: 1, Err: errors.New("empty file, want a header line with a time column and signal columns")}
	}
	if err != nil {
		return nil, tr.csvError(err)
	}
	// Every data row must have as many fields as the header; csv checks it.
	cr.FieldsPerRecord = len(header)
	line, _ := cr.FieldPos(0)
	if err := tr.readHeader(header, line); err != nil {
		return nil, err
	}
	return tr, nil
}

func (r *Reader) readHeader(header []string, line int) error {
	headerErr := func(col string, format string, args ...any) error {
		return &Error{File: r.name, Line: line, Column: col, Err: fmt.Errorf(format, args...)}
	}
	seen := make(map[string]int, len(header))
	var sigCol [switchd.NumSignals]string
	var ignored []string
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // spreadsheets write a BOM
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return headerErr("", "column %d has no name", i+1)
		}
		if j, dup := seen[name]; dup {
			return headerErr(name, "appears twice (columns %d and %d)", j+1, i+1)
		}
		seen[name] = i
		if name == traceTimeColumn {
			r.timeCol = i
			continue
		}
		known := false
		for _, c := range traceColumns {
			if c.name != name {
				continue
			}
			known = true
			if prev := sigCol[c.sig]; prev != "" {
				return headerErr(name, "%s is also in column %s: one file may carry a signal once", c.sig, prev)
			}
			sigCol[c.sig] = name
			r.cols = append(r.cols, traceSignalColumn{field: i, name: name, sig: c.sig, thousand: c.thousand})
		}
		if !known {
			ignored = append(ignored, name)
		}
	}
	if r.timeCol < 0 {
		return headerErr("", "no time column (the header has %s)", strings.Join(header, ", "))
	}
	if len(r.cols) == 0 {
		names := make([]string, len(traceColumns))
		for i, c := range traceColumns {
			names[i] = c.name
		}
		return headerErr("", "no signal column (want at least one of %s)", strings.Join(names, ", "))
	}
	for _, s := range switchd.AllSignals {
		if sigCol[s] != "" {
			r.signals = append(r.signals, s)
		}
	}
	if len(ignored) > 0 {
		noun := "column"
		if len(ignored) > 1 {
			noun = "columns"
		}
		r.notices = append(r.notices, fmt.Sprintf("trace %s: ignoring %s %s (not signals switchd knows)",
			r.name, noun, strings.Join(ignored, ", ")))
	}
	return nil
}

// Notices returns the lines worth telling the user about the file, such as
// ignored columns. It is complete once NewReader returns.
func (r *Reader) Notices() []string { return r.notices }

// Signals returns the signals the file has a column for, in signal order.
func (r *Reader) Signals() []switchd.Signal { return r.signals }

// Next returns the next row, io.EOF after the last one, or a *Error.
// An empty cell is no sample for that signal on that row.
func (r *Reader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	row, err := r.next()
	if err != nil {
		r.err = err
	}
	return row, err
}

func (r *Reader) next() (Row, error) {
	rec, err := r.csv.Read()
	if err != nil {
		if err == io.EOF {
			return Row{}, io.EOF
		}
		return Row{}, r.csvError(err)
	}
	line, _ := r.csv.FieldPos(0)
	row := Row{Line: line}

	cell := strings.TrimSpace(rec[r.timeCol])
	t, err := r.parseTime(cell)
	if err != nil {
		return Row{}, r.cellError(r.timeCol, traceTimeColumn, err)
	}
	if r.prevLine > 0 && !t.After(r.prev) {
		what := "is before"
		if t.Equal(r.prev) {
			what = "repeats"
		}
		return Row{}, r.cellError(r.timeCol, traceTimeColumn, fmt.Errorf(
			"time %s %s %s on line %d: times must strictly increase",
			t.Format(time.RFC3339Nano), what, r.prev.Format(time.RFC3339Nano), r.prevLine))
	}
	row.Time = t

	for _, c := range r.cols {
		cell := strings.TrimSpace(rec[c.field])
		if cell == "" {
			continue
		}
		v, err := r.parseNumber(cell, c.thousand)
		if err != nil {
			return Row{}, r.cellError(c.field, c.name, err)
		}
		row.Values[c.sig] = v
		row.Has[c.sig] = true
		row.At[c.sig] = t
	}
	r.prev, r.prevLine = t, line
	return row, nil
}

// cellError locates an error in one cell of the current record.
func (r *Reader) cellError(field int, column string, err error) error {
	line, _ := r.csv.FieldPos(field)
	return &Error{File: r.name, Line: line, Column: column, Err: err}
}

// csvError turns an error of the csv reader into a *Error.
func (r *Reader) csvError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		// An I/O error: it happened after the last row read.
		return &Error{File: r.name, Line: r.prevLine + 1, Err: fmt.Errorf("read: %w", err)}
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &Error{File: r.name, Line: pe.StartLine, Err: fmt.Errorf(
			"%w: want %d like the header", pe.Err, r.csv.FieldsPerRecord)}
	}
	return &Error{File: r.name, Line: pe.Line, Err: fmt.Errorf("%w (at byte %d)", pe.Err, pe.Column)}
}

// parseTime parses an RFC 3339 time with offset and gives it a location
// that depends on the offset only, not on the machine's time zone (which
// time.Parse would use when its offset matches), so output is the same
// everywhere.
func (r *Reader) parseTime(cell string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, cell)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not an RFC 3339 time with offset (like 2024-01-01T00:00:00-06:00)",
			traceQuote(cell))
	}
	_, offset := t.Zone()
	return t.In(r.zone(offset)), nil
}

// zone returns the location for an offset, one per offset, so a row's
// location is a pointer shared by all rows with that offset and no location
// is allocated per row.
func (r *Reader) zone(offset int) *time.Location {
	if offset == 0 {
		return time.UTC
	}
	for _, z := range r.zones {
		if z.offset == offset {
			return z.loc
		}
	}
	loc := time.FixedZone("", offset)
	r.zones = append(r.zones, traceZone{offset: offset, loc: loc})
	return loc
}

// parseNumber parses a finite number. thousand scales it by 1000 exactly as
// a decimal (0.072248 becomes 72.248, not 72.24799999999999).
func (r *Reader) parseNumber(cell string, thousand bool) (float64, error) {
	v, err := strconv.ParseFloat(cell, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is out of range", traceQuote(cell))
	case err != nil:
		return 0, fmt.Errorf("%s is not a number", traceQuote(cell))
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%s is not a finite number", traceQuote(cell))
	}
	if !thousand {
		return v, nil
	}
	if traceIsPlainDecimal(cell) {
		// Shifting the decimal exponent rounds once, from the exact decimal.
		r.scratch = append(append(r.scratch[:0], cell...), 'e', '3')
		if w, err := strconv.ParseFloat(string(r.scratch), 64); err == nil {
			return w, nil
		}
	}
	v *= 1000
	if math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is out of range once scaled from USD/TH to USD/PH", traceQuote(cell))
	}
	return v, nil
}

// traceIsPlainDecimal reports whether s is digits with an optional sign and
// point, so that appending an exponent keeps it a valid number.
func traceIsPlainDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' {
			return false
		}
	}
	return true
}

// traceQuote quotes a cell for a message, cut short so that a garbage line
// does not flood the output.
func traceQuote(cell string) string {
	const maxLen = 40
	if len(cell) > maxLen {
		return strconv.Quote(cell[:maxLen]) + "..."
	}
	return strconv.Quote(cell)
}

// Merge merges several traces by time. The first source sets the timeline:
// rows are emitted at every time of the first source and at every time of
// the other sources that falls within the first's span [first start, first
// last]. Each emitted row carries the latest value of every signal from
// every source as of its time: a daily hashprice holds until its next
// sample, and a sample taken before the first's start still holds at the
// start. Has[s] is true when a value is known (sampled at or before Time),
// for a carried-forward value too, so even a single merged source yields
// rows without gaps once a signal has been seen; At[s] keeps when that
// value was sampled. Carrying is not sampling: a value carried past its
// source's end or through a gap is not a measurement there. Consumers judge
// by At: the replay publishes only fresh samples, and the simulator feeds
// only fresh samples to the controller and treats spans without one as
// missing (see Series.Coverage).
//
// If several sources carry the same signal, the first listed that has a
// value wins, even when a later source's sample is more recent: order is
// precedence. An emitted row's Line is that of the first source with a row
// at that time, and its Time is in the first source's location.
//
// Merge relies on each source's times strictly increasing and returns an
// error if one does not; errors of the sources are returned unchanged.
func Merge(srcs ...Source) Source {
	n := len(srcs)
	return &traceMerge{
		srcs: srcs,
		peek: make([]Row, n),
		ok:   make([]bool, n),
		last: make([]time.Time, n),
		read: make([]bool, n),
		cur:  make([][switchd.NumSignals]float64, n),
		has:  make([][switchd.NumSignals]bool, n),
		at:   make([][switchd.NumSignals]time.Time, n),
	}
}

// traceMerge is the Source Merge returns.
type traceMerge struct {
	srcs    []Source
	peek    []Row                         // the next row of each source, valid where ok
	ok      []bool                        // the source has a next row
	last    []time.Time                   // time of the last row read from each source
	read    []bool                        // a row was read from the source
	cur     [][switchd.NumSignals]float64 // latest value of each signal of each source
	has     [][switchd.NumSignals]bool
	at      [][switchd.NumSignals]time.Time // when cur was sampled
	started bool
	start   time.Time
	loc     *time.Location // location of the first source's latest row
	err     error
}

// Next returns the next merged row, io.EOF after the first source's last.
func (m *traceMerge) Next() (Row, error) {
	if m.err != nil {
		return Row{}, m.err
	}
	row, err := m.next()
	if err != nil {
		m.err = err
	}
	return row, err
}

func (m *traceMerge) next() (Row, error) {
	if !m.started {
		m.started = true
		if len(m.srcs) == 0 {
			return Row{}, io.EOF
		}
		for i := range m.srcs {
			if err := m.advance(i); err != nil {
				return Row{}, err
			}
		}
		if !m.ok[0] {
			return Row{}, io.EOF
		}
		m.start = m.peek[0].Time
		m.loc = m.start.Location()
		// Samples before the timeline starts are not emitted but still hold.
		for i := 1; i < len(m.srcs); i++ {
			for m.ok[i] && m.peek[i].Time.Before(m.start) {
				m.take(i)
				if err := m.advance(i); err != nil {
					return Row{}, err
				}
			}
		}
	}
	// Once the first source is exhausted, every pending row of the others
	// lies after its last time, outside the span.
	if !m.ok[0] {
		return Row{}, io.EOF
	}
	t := m.peek[0].Time
	for i := 1; i < len(m.srcs); i++ {
		if m.ok[i] && m.peek[i].Time.Before(t) {
			t = m.peek[i].Time
		}
	}
	row := Row{}
	for i := range m.srcs {
		if !m.ok[i] || !m.peek[i].Time.Equal(t) {
			continue
		}
		if row.Line == 0 {
			row.Line = m.peek[i].Line
		}
		if i == 0 {
			m.loc = m.peek[0].Time.Location()
		}
		m.take(i)
		if err := m.advance(i); err != nil {
			return Row{}, err
		}
	}
	row.Time = t.In(m.loc)
	for s := range switchd.NumSignals {
		for i := range m.srcs {
			if m.has[i][s] {
				row.Values[s], row.Has[s], row.At[s] = m.cur[i][s], true, m.at[i][s]
				break
			}
		}
	}
	return row, nil
}

// take stores source i's pending row as its latest values.
func (m *traceMerge) take(i int) {
	p := &m.peek[i]
	for s := range switchd.NumSignals {
		if p.Has[s] {
			m.cur[i][s], m.has[i][s], m.at[i][s] = p.Values[s], true, p.sampledAt(s)
		}
	}
}

// advance reads source i's next row into peek[i].
func (m *traceMerge) advance(i int) error {
	row, err := m.srcs[i].Next()
	if err == io.EOF {
		m.ok[i] = false
		return nil
	}
	if err != nil {
		return err
	}
	if m.read[i] && !row.Time.After(m.last[i]) {
		return fmt.Errorf("merge traces: source %d: time %s is not after %s",
			i+1, row.Time.Format(time.RFC3339Nano), m.last[i].Format(time.RFC3339Nano))
	}
	m.last[i], m.read[i] = row.Time, true
	m.peek[i], m.ok[i] = row, true
	return nil
}

// traceSignals returns the signals src has columns for, when it can tell
// without reading it.
func traceSignals(src Source) ([]switchd.Signal, bool) {
	switch s := src.(type) {
	case *traceMerge:
		var union [switchd.NumSignals]bool
		for _, in := range s.srcs {
			sigs, ok := traceSignals(in)
			if !ok {
				return nil, false
			}
			for _, sig := range sigs {
				union[sig] = true
			}
		}
		var out []switchd.Signal
		for _, sig := range switchd.AllSignals {
			if union[sig] {
				out = append(out, sig)
			}
		}
		return out, true
	case *resampler:
		return traceSignals(s.src)
	case interface{ Signals() []switchd.Signal }:
		return s.Signals(), true
	}
	return nil, false
}

// traceClosers closes several files.
type traceClosers []io.Closer

// Close closes every file and joins the errors.
func (cs traceClosers) Close() error {
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Open opens trace files (each with NewReader) and merges them in the order
// given (see Merge: the first sets the timeline and wins on shared signals).
// It returns the notices of every file, plus one line for each signal that
// two files carry. The caller closes the returned Closer.
func Open(paths []string) (Source, []string, io.Closer, error) {
	if len(paths) == 0 {
		return nil, nil, nil, errors.New("open traces: no trace file given")
	}
	files := make(traceClosers, 0, len(paths))
	srcs := make([]Source, 0, len(paths))
	var notices []string
	var from [switchd.NumSignals]string // the file that wins for each signal
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			_ = files.Close() // read-only files: nothing to lose on close
			return nil, nil, nil, fmt.Errorf("open trace: %w", err)
		}
		files = append(files, f)
		rd, err := NewReader(bufio.NewReaderSize(f, 64<<10), p)
		if err != nil {
			_ = files.Close()
			return nil, nil, nil, err
		}
		notices = append(notices, rd.Notices()...)
		for _, s := range rd.Signals() {
			if from[s] != "" {
				notices = append(notices, fmt.Sprintf("trace %s: %s is also in %s, which wins where both have a value",
					p, s, from[s]))
				continue
			}
			from[s] = p
		}
		srcs = append(srcs, rd)
	}
	return Merge(srcs...), notices, files, nil
}

// WriteCSV writes src as a canonical trace CSV: a time column (RFC 3339 with
// the row's offset) and one column per signal src carries, in signal order,
// hashprice as hashprice_usd_ph_day. A cell holds a value only where it was
// sampled at the row's time (At[s] is Time), plus the first value of each
// signal; it is empty where the row has no value or carries an older one.
// Read back and merged, the output therefore gives the same values with the
// same sample times (except that first value's, which becomes its row's
// time). If src cannot tell its signals up front (a Reader, Merge or
// Series.Source can), it is collected in memory first.
func WriteCSV(w io.Writer, src Source) error {
	sigs, ok := traceSignals(src)
	if !ok {
		s, err := Collect(src)
		if err != nil {
			return fmt.Errorf("write trace: %w", err)
		}
		src, sigs = s.Source(), s.Signals()
	}
	if len(sigs) == 0 {
		return errors.New("write trace: no signal to write")
	}
	bw := bufio.NewWriter(w)
	buf := make([]byte, 0, 256)
	buf = append(buf, traceTimeColumn...)
	for _, s := range sigs {
		buf = append(buf, ',')
		buf = append(buf, traceCanonicalColumn[s]...)
	}
	buf = append(buf, '\n')
	if _, err := bw.Write(buf); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	var written [switchd.NumSignals]bool // a value of the signal was written
	for {
		row, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("write trace: %w", err)
		}
		buf = row.Time.AppendFormat(buf[:0], time.RFC3339Nano)
		for _, s := range sigs {
			buf = append(buf, ',')
			if row.Has[s] && (!written[s] || row.sampledAt(int(s)).Equal(row.Time)) {
				written[s] = true
				// Shortest text that reads back as the same float64.
				buf = strconv.AppendFloat(buf, row.Values[s], 'f', -1, 64)
			}
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("write trace: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}
