package trace

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/internal/testenv"
)

// A name of its own, so it cannot clash with the -update of other tests in
// the package.
var trUpdate = flag.Bool("update-trace", false, "rewrite trace/testdata/trace golden files")

var (
	trCDT = time.FixedZone("", -5*3600)
	trCST = time.FixedZone("", -6*3600)
)

// trRow builds a row from a time and signal values, all sampled at that time.
func trRow(tm time.Time, line int, vals map[switchd.Signal]float64) Row {
	r := Row{Time: tm, Line: line}
	for s, v := range vals {
		r.Values[s], r.Has[s], r.At[s] = v, true, tm
	}
	return r
}

// trAt returns r with the value of s sampled at at.
func trAt(r Row, s switchd.Signal, at time.Time) Row {
	r.At[s] = at
	return r
}

// trReadAll reads every row of a source up to io.EOF or the first error.
func trReadAll(src Source) ([]Row, error) {
	var rows []Row
	for {
		row, err := src.Next()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

// trReadString reads a whole trace held in a string.
func trReadString(content string) (*Reader, []Row, error) {
	r, err := NewReader(strings.NewReader(content), "t.csv")
	if err != nil {
		return nil, nil, err
	}
	rows, err := trReadAll(r)
	return r, rows, err
}

// trRequireRows compares rows, times by instant and offset, sample times by
// instant.
func trRequireRows(t *testing.T, want, got []Row) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, want[i].Time.Equal(got[i].Time), "row %d: time %v, want %v", i, got[i].Time, want[i].Time)
		_, wantOff := want[i].Time.Zone()
		_, gotOff := got[i].Time.Zone()
		require.Equal(t, wantOff, gotOff, "row %d: offset", i)
		require.Equal(t, want[i].Line, got[i].Line, "row %d: line", i)
		require.Equal(t, want[i].Has, got[i].Has, "row %d: has", i)
		require.Equal(t, want[i].Values, got[i].Values, "row %d: values", i)
		for s := range want[i].At {
			require.True(t, want[i].At[s].Equal(got[i].At[s]), "row %d: %s sampled at %v, want %v",
				i, switchd.Signal(s), got[i].At[s], want[i].At[s])
		}
	}
}

// trWriteFile writes a file into dir and returns its path.
func trWriteFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// trSlice is a Source over rows held in memory, without a Signals method.
type trSlice struct {
	rows []Row
	i    int
}

func (s *trSlice) Next() (Row, error) {
	if s.i >= len(s.rows) {
		return Row{}, io.EOF
	}
	s.i++
	return s.rows[s.i-1], nil
}

func TestReader(t *testing.T) {
	price, load, hash := switchd.SignalPrice, switchd.SignalGridLoad, switchd.SignalHashprice
	infer, demand := switchd.SignalInferencePrice, switchd.SignalAIDemand
	tests := []struct {
		name    string
		csv     string
		signals []switchd.Signal
		want    []Row
	}{{
		name:    "price only",
		csv:     "time,price_usd_mwh\n2023-08-01T00:00:00-05:00,22.8\n2023-08-01T00:15:00-05:00,-3.5\n",
		signals: []switchd.Signal{price},
		want: []Row{
			trRow(time.Date(2023, 8, 1, 0, 0, 0, 0, trCDT), 2, map[switchd.Signal]float64{price: 22.8}),
			trRow(time.Date(2023, 8, 1, 0, 15, 0, 0, trCDT), 3, map[switchd.Signal]float64{price: -3.5}),
		},
	}, {
		name: "every signal, columns in any order",
		csv: "ai_demand_gpus,inference_usd_gpu_hour,hashprice_usd_ph_day,grid_load_mw,price_usd_mwh,time\n" +
			"2500,2.1,48,63356.77,22.8,2023-08-01T00:00:00-05:00\n",
		signals: []switchd.Signal{price, load, hash, infer, demand},
		want: []Row{trRow(time.Date(2023, 8, 1, 0, 0, 0, 0, trCDT), 2,
			map[switchd.Signal]float64{price: 22.8, load: 63356.77, hash: 48, infer: 2.1, demand: 2500})},
	}, {
		name:    "hashprice per TH scaled to per PH exactly",
		csv:     "time,hashprice_usd_th_day\n2023-04-30T00:00:00Z,0.051602\n2023-05-01T00:00:00Z,0.079658\n2023-05-02T00:00:00Z,7.2248e-2\n",
		signals: []switchd.Signal{hash},
		want: []Row{
			trRow(time.Date(2023, 4, 30, 0, 0, 0, 0, time.UTC), 2, map[switchd.Signal]float64{hash: 51.602}),
			trRow(time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC), 3, map[switchd.Signal]float64{hash: 79.658}),
			trRow(time.Date(2023, 5, 2, 0, 0, 0, 0, time.UTC), 4, map[switchd.Signal]float64{hash: 0.072248 * 1000}),
		},
	}, {
		name:    "empty cells are no sample",
		csv:     "time,price_usd_mwh,grid_load_mw\n2024-01-01T00:00:00-06:00,12.58,41367.3\n2024-01-01T00:15:00-06:00,13.45,\n2024-01-01T00:30:00-06:00,, \n",
		signals: []switchd.Signal{price, load},
		want: []Row{
			trRow(time.Date(2024, 1, 1, 0, 0, 0, 0, trCST), 2, map[switchd.Signal]float64{price: 12.58, load: 41367.3}),
			trRow(time.Date(2024, 1, 1, 0, 15, 0, 0, trCST), 3, map[switchd.Signal]float64{price: 13.45}),
			trRow(time.Date(2024, 1, 1, 0, 30, 0, 0, trCST), 4, nil),
		},
	}, {
		name: "DST fall back: the repeated hour at -05:00 then -06:00",
		csv: "time,price_usd_mwh\n2024-11-03T01:45:00-05:00,20\n2024-11-03T01:00:00-06:00,21\n" +
			"2024-11-03T01:15:00-06:00,22\n",
		signals: []switchd.Signal{price},
		want: []Row{
			trRow(time.Date(2024, 11, 3, 6, 45, 0, 0, time.UTC).In(trCDT), 2, map[switchd.Signal]float64{price: 20}),
			trRow(time.Date(2024, 11, 3, 7, 0, 0, 0, time.UTC).In(trCST), 3, map[switchd.Signal]float64{price: 21}),
			trRow(time.Date(2024, 11, 3, 7, 15, 0, 0, time.UTC).In(trCST), 4, map[switchd.Signal]float64{price: 22}),
		},
	}, {
		name:    "DST spring forward: 01:45 CST is followed by 03:00 CDT",
		csv:     "time,price_usd_mwh\n2024-03-10T01:45:00-06:00,20\n2024-03-10T03:00:00-05:00,21\n",
		signals: []switchd.Signal{price},
		want: []Row{
			trRow(time.Date(2024, 3, 10, 7, 45, 0, 0, time.UTC).In(trCST), 2, map[switchd.Signal]float64{price: 20}),
			trRow(time.Date(2024, 3, 10, 8, 0, 0, 0, time.UTC).In(trCDT), 3, map[switchd.Signal]float64{price: 21}),
		},
	}, {
		name:    "BOM, CRLF, spaces, quotes, blank line and fractional seconds",
		csv:     "\ufefftime, price_usd_mwh \r\n\"2024-01-01T00:00:00.5+00:00\", 1.5 \r\n\r\n2024-01-01T00:15:00Z,\"2\"\r\n",
		signals: []switchd.Signal{price},
		want: []Row{
			trRow(time.Date(2024, 1, 1, 0, 0, 0, 5e8, time.UTC), 2, map[switchd.Signal]float64{price: 1.5}),
			trRow(time.Date(2024, 1, 1, 0, 15, 0, 0, time.UTC), 4, map[switchd.Signal]float64{price: 2}),
		},
	}, {
		name:    "header only",
		csv:     "time,price_usd_mwh\n",
		signals: []switchd.Signal{price},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rows, err := trReadString(tt.csv)
			require.NoError(t, err)
			require.Equal(t, tt.signals, r.Signals())
			require.Empty(t, r.Notices())
			trRequireRows(t, tt.want, rows)
			_, err = r.Next()
			require.ErrorIs(t, err, io.EOF, "EOF again after the end")
		})
	}
}

func TestReaderHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want string
	}{
		{"empty file", "", "t.csv:1: empty file, want a header line with a time column and signal columns"},
		{"no time column", "when,price_usd_mwh\n", "t.csv:1: no time column (the header has when, price_usd_mwh)"},
		{"no signal column", "time,lz_north_usd_mwh\n", "t.csv:1: no signal column (want at least one of " +
			"price_usd_mwh, grid_load_mw, hashprice_usd_th_day, hashprice_usd_ph_day, inference_usd_gpu_hour, ai_demand_gpus, cp_alert_probability)"},
		{"duplicated signal column", "time,price_usd_mwh,grid_load_mw,price_usd_mwh\n",
			"t.csv:1: column price_usd_mwh: appears twice (columns 2 and 4)"},
		{"duplicated time column", "time,price_usd_mwh,time\n", "t.csv:1: column time: appears twice (columns 1 and 3)"},
		{"both hashprice columns", "time,hashprice_usd_th_day,hashprice_usd_ph_day\n",
			"t.csv:1: column hashprice_usd_ph_day: hashprice is also in column hashprice_usd_th_day: one file may carry a signal once"},
		{"unnamed column", "time,price_usd_mwh,\n", "t.csv:1: column 3 has no name"},
		{"bad quote", "time,\"price\"x\n", "t.csv:1: extraneous or missing \" in quoted-field (at byte 12)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.csv), "t.csv")
			require.EqualError(t, err, tt.want)
			var te *Error
			require.ErrorAs(t, err, &te)
			require.Equal(t, 1, te.Line)
		})
	}
}

func TestReaderRowErrors(t *testing.T) {
	const head = "time,price_usd_mwh,grid_load_mw\n2024-01-01T00:00:00-06:00,10,40000\n"
	tests := []struct {
		name string
		rows string // after the header and one good row (line 2)
		line int
		want string
	}{
		{"not a number", "2024-01-01T00:15:00-06:00,abc,40000\n", 3,
			`t.csv:3: column price_usd_mwh: "abc" is not a number`},
		{"NaN", "2024-01-01T00:15:00-06:00,10,NaN\n", 3, `t.csv:3: column grid_load_mw: "NaN" is not a finite number`},
		{"Inf", "2024-01-01T00:15:00-06:00,+Inf,1\n", 3, `t.csv:3: column price_usd_mwh: "+Inf" is not a finite number`},
		{"out of range", "2024-01-01T00:15:00-06:00,1e999,1\n", 3, `t.csv:3: column price_usd_mwh: "1e999" is out of range`},
		{"long garbage is cut", "2024-01-01T00:15:00-06:00," + strings.Repeat("x", 60) + ",1\n", 3,
			`t.csv:3: column price_usd_mwh: "` + strings.Repeat("x", 40) + `"... is not a number`},
		{"too few fields", "2024-01-01T00:15:00-06:00,10\n", 3, "t.csv:3: wrong number of fields: want 3 like the header"},
		{"too many fields", "2024-01-01T00:15:00-06:00,10,1,2\n", 3, "t.csv:3: wrong number of fields: want 3 like the header"},
		{"bad time", "2024-13-01T00:15:00-06:00,10,1\n", 3,
			`t.csv:3: column time: "2024-13-01T00:15:00-06:00" is not an RFC 3339 time with offset (like 2024-01-01T00:00:00-06:00)`},
		{"time without offset", "2024-01-01T00:15:00,10,1\n", 3,
			`t.csv:3: column time: "2024-01-01T00:15:00" is not an RFC 3339 time with offset (like 2024-01-01T00:00:00-06:00)`},
		{"empty time", ",10,1\n", 3,
			`t.csv:3: column time: "" is not an RFC 3339 time with offset (like 2024-01-01T00:00:00-06:00)`},
		{"unsorted", "2024-01-01T00:30:00-06:00,10,1\n2024-01-01T00:15:00-06:00,10,1\n", 4,
			"t.csv:4: column time: time 2024-01-01T00:15:00-06:00 is before 2024-01-01T00:30:00-06:00 on line 3: times must strictly increase"},
		{"duplicate", "2024-01-01T00:15:00-06:00,10,1\n2024-01-01T00:15:00-06:00,11,1\n", 4,
			"t.csv:4: column time: time 2024-01-01T00:15:00-06:00 repeats 2024-01-01T00:15:00-06:00 on line 3: times must strictly increase"},
		{"same instant at another offset", "2024-01-01T01:00:00-05:00,10,1\n", 3,
			"t.csv:3: column time: time 2024-01-01T01:00:00-05:00 repeats 2024-01-01T00:00:00-06:00 on line 2: times must strictly increase"},
		{"line counts blank lines", "\n\n2024-01-01T00:15:00-06:00,x,1\n", 5, `t.csv:5: column price_usd_mwh: "x" is not a number`},
		{"line of a cell after a quoted newline", "\"2024-01-01T00:15:00-06:00\",\"1\n\",x\n", 4,
			`t.csv:4: column grid_load_mw: "x" is not a number`},
		{"bare quote", "2024-01-01T00:15:00-06:00,1\"0,1\n", 3, "t.csv:3: bare \" in non-quoted-field (at byte 28)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rows, err := trReadString(head + tt.rows)
			require.EqualError(t, err, tt.want)
			var te *Error
			require.ErrorAs(t, err, &te)
			require.Equal(t, tt.line, te.Line)
			require.NotEmpty(t, rows, "the rows before the bad one are returned")
			_, again := r.Next()
			require.Equal(t, err, again, "the error is sticky")
		})
	}
}

func TestReaderNotices(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string
	}{
		{"several unknown columns, one notice", "time,price_usd_mwh,lz_north_usd_mwh,lz_south_usd_mwh",
			[]string{"trace x.csv: ignoring columns lz_north_usd_mwh, lz_south_usd_mwh (not signals switchd knows)"}},
		{"one unknown column", "time,hashprice_usd_th_day,btc_price_usd",
			[]string{"trace x.csv: ignoring column btc_price_usd (not signals switchd knows)"}},
		{"no unknown column", "time,price_usd_mwh", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols := strings.Count(tt.header, ",")
			body := tt.header + "\n" +
				"2024-01-01T00:00:00Z,1" + strings.Repeat(",7", cols-1) + "\n" +
				"2024-01-01T00:15:00Z,2" + strings.Repeat(",8", cols-1) + "\n"
			r, err := NewReader(strings.NewReader(body), "x.csv")
			require.NoError(t, err)
			rows, err := trReadAll(r)
			require.NoError(t, err)
			require.Len(t, rows, 2)
			require.Equal(t, tt.want, r.Notices(), "one notice, not one per row")
		})
	}
}

func TestMerge(t *testing.T) {
	price, load, hash := switchd.SignalPrice, switchd.SignalGridLoad, switchd.SignalHashprice
	dir := t.TempDir()
	// 15-minute prices, 2023-08-01 23:30 to 2023-08-02 00:30 CDT, i.e.
	// 04:30Z to 05:30Z on Aug 2, with a gap in grid load.
	pricePath := trWriteFile(t, dir, "price.csv", "time,price_usd_mwh,grid_load_mw,lz_west_usd_mwh\n"+
		"2023-08-01T23:30:00-05:00,20,60000,1\n"+
		"2023-08-01T23:45:00-05:00,21,,1\n"+
		"2023-08-02T00:00:00-05:00,22,,1\n"+
		"2023-08-02T00:15:00-05:00,23,61000,1\n"+
		"2023-08-02T00:30:00-05:00,24,61000,1\n")
	// Daily hashprice at 00:00Z: Aug 1 is before the span and must hold at
	// its start; Aug 2 00:00Z is before the span too; a mid-span sample at
	// 05:05Z is not on the price grid and adds a row; Aug 3 is after the
	// span and is never emitted.
	hashPath := trWriteFile(t, dir, "hash.csv", "time,hashprice_usd_th_day\n"+
		"2023-08-01T00:00:00Z,0.06\n"+
		"2023-08-02T00:00:00Z,0.07\n"+
		"2023-08-02T05:05:00Z,0.08\n"+
		"2023-08-03T00:00:00Z,0.09\n")
	at := func(h, m int) time.Time { return time.Date(2023, 8, 2, h, m, 0, 0, time.UTC).In(trCDT) }
	v := func(p, l, h float64) map[switchd.Signal]float64 {
		return map[switchd.Signal]float64{price: p, load: l, hash: h}
	}

	t.Run("price file then daily hashprice", func(t *testing.T) {
		src, notices, closer, err := Open([]string{pricePath, hashPath})
		require.NoError(t, err)
		defer func() { require.NoError(t, closer.Close()) }()
		require.Equal(t, []string{"trace " + pricePath + ": ignoring column lz_west_usd_mwh (not signals switchd knows)"}, notices)
		rows, err := trReadAll(src)
		require.NoError(t, err)
		midnight := time.Date(2023, 8, 2, 0, 0, 0, 0, time.UTC) // before the span, still holds
		trRequireRows(t, []Row{
			trAt(trRow(at(4, 30), 2, v(20, 60000, 70)), hash, midnight),
			// Load carried forward over empty cells keeps its sample time.
			trAt(trAt(trRow(at(4, 45), 3, v(21, 60000, 70)), hash, midnight), load, at(4, 30)),
			trAt(trAt(trRow(at(5, 0), 4, v(22, 60000, 70)), hash, midnight), load, at(4, 30)),
			// The hashprice's own time, on line 4 of hash.csv.
			trAt(trAt(trRow(at(5, 5), 4, v(22, 60000, 80)), price, at(5, 0)), load, at(4, 30)),
			trAt(trRow(at(5, 15), 5, v(23, 61000, 80)), hash, at(5, 5)),
			trAt(trRow(at(5, 30), 6, v(24, 61000, 80)), hash, at(5, 5)),
		}, rows)

		// A Series keeps the sample times, and WriteCSV writes only fresh
		// samples, so the rows survive both unchanged.
		src, _, closer2, err := Open([]string{pricePath, hashPath})
		require.NoError(t, err)
		defer func() { require.NoError(t, closer2.Close()) }()
		series, err := Collect(src)
		require.NoError(t, err)
		again, err := trReadAll(series.Source())
		require.NoError(t, err)
		for i := range again {
			again[i].Line = rows[i].Line
		}
		trRequireRows(t, rows, again)

		var b bytes.Buffer
		require.NoError(t, WriteCSV(&b, series.Source()))
		require.Equal(t, "time,price_usd_mwh,grid_load_mw,hashprice_usd_ph_day\n"+
			"2023-08-01T23:30:00-05:00,20,60000,70\n"+
			"2023-08-01T23:45:00-05:00,21,,\n"+
			"2023-08-02T00:00:00-05:00,22,,\n"+
			"2023-08-02T00:05:00-05:00,,,80\n"+
			"2023-08-02T00:15:00-05:00,23,61000,\n"+
			"2023-08-02T00:30:00-05:00,24,61000,\n", b.String())
		back, err := NewReader(&b, "back.csv")
		require.NoError(t, err)
		again, err = trReadAll(Merge(back))
		require.NoError(t, err)
		for i := range again {
			again[i].Line = rows[i].Line
			if rows[i].At[hash].Equal(midnight) {
				// The carried first value was written on the first row.
				rows[i].At[hash] = rows[0].Time
			}
		}
		trRequireRows(t, rows, again)
	})

	t.Run("hashprice file first sets the timeline", func(t *testing.T) {
		src, _, closer, err := Open([]string{hashPath, pricePath})
		require.NoError(t, err)
		defer func() { require.NoError(t, closer.Close()) }()
		rows, err := trReadAll(src)
		require.NoError(t, err)
		require.Len(t, rows, 4+5, "the four hashprice rows, the five price rows")
		require.Equal(t, map[bool]int{false: 2, true: 7}, map[bool]int{
			false: trCount(rows, func(r Row) bool { return !r.Has[price] }),
			true:  trCount(rows, func(r Row) bool { return r.Has[price] }),
		}, "no price before the price file's first sample")
		last := rows[len(rows)-1]
		require.True(t, last.Time.Equal(time.Date(2023, 8, 3, 0, 0, 0, 0, time.UTC)))
		require.Equal(t, 24.0, last.Values[price], "the last price holds past its file's end")
		require.Equal(t, 90.0, last.Values[hash])
		_, off := rows[3].Time.Zone()
		require.Zero(t, off, "rows are in the first source's location")
	})

	t.Run("the first source wins a shared signal", func(t *testing.T) {
		other := trWriteFile(t, dir, "other.csv", "time,price_usd_mwh,hashprice_usd_ph_day\n"+
			"2023-08-02T04:00:00Z,900,1\n"+
			"2023-08-02T04:50:00Z,901,2\n")
		src, notices, closer, err := Open([]string{pricePath, other})
		require.NoError(t, err)
		defer func() { require.NoError(t, closer.Close()) }()
		require.Contains(t, notices, "trace "+other+": price is also in "+pricePath+", which wins where both have a value")
		rows, err := trReadAll(src)
		require.NoError(t, err)
		require.Len(t, rows, 6)
		for _, r := range rows {
			require.Less(t, r.Values[price], 900.0, "at %v", r.Time)
		}
		require.Equal(t, []float64{1, 1, 2, 2, 2, 2}, trColumn(rows, hash))
	})

	t.Run("a single source is filled forward", func(t *testing.T) {
		rd, err := NewReader(strings.NewReader("time,price_usd_mwh,grid_load_mw\n"+
			"2024-01-01T00:00:00Z,,1\n2024-01-01T00:15:00Z,5,\n2024-01-01T00:30:00Z,,\n"), "a.csv")
		require.NoError(t, err)
		rows, err := trReadAll(Merge(rd))
		require.NoError(t, err)
		require.Equal(t, [][switchd.NumSignals]bool{{false, true}, {true, true}, {true, true}},
			[][switchd.NumSignals]bool{rows[0].Has, rows[1].Has, rows[2].Has})
		require.Equal(t, []float64{0, 5, 5}, trColumn(rows, price))
	})

	t.Run("no source and an empty first source", func(t *testing.T) {
		_, err := Merge().Next()
		require.ErrorIs(t, err, io.EOF)
		empty, err := NewReader(strings.NewReader("time,price_usd_mwh\n"), "e.csv")
		require.NoError(t, err)
		_, err = Merge(empty, &trSlice{rows: []Row{{Time: at(1, 0)}}}).Next()
		require.ErrorIs(t, err, io.EOF)
	})

	t.Run("errors", func(t *testing.T) {
		unsorted := &trSlice{rows: []Row{{Time: at(5, 0)}, {Time: at(4, 0)}}}
		_, err := trReadAll(Merge(&trSlice{rows: []Row{{Time: at(4, 30)}, {Time: at(6, 0)}}}, unsorted))
		require.EqualError(t, err, "merge traces: source 2: time 2023-08-01T23:00:00-05:00 is not after 2023-08-02T00:00:00-05:00")

		bad, err := NewReader(strings.NewReader("time,price_usd_mwh\n2024-01-01T00:00:00Z,1\n2024-01-01T00:15:00Z,x\n"), "bad.csv")
		require.NoError(t, err)
		m := Merge(bad)
		_, err = trReadAll(m)
		require.EqualError(t, err, `bad.csv:3: column price_usd_mwh: "x" is not a number`)
		_, again := m.Next()
		require.Equal(t, err, again, "the error is sticky")
	})
}

func trCount(rows []Row, f func(Row) bool) int {
	n := 0
	for _, r := range rows {
		if f(r) {
			n++
		}
	}
	return n
}

func trColumn(rows []Row, s switchd.Signal) []float64 {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = r.Values[s]
	}
	return out
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := trWriteFile(t, dir, "good.csv", "time,price_usd_mwh\n2024-01-01T00:00:00Z,1\n")
	bad := trWriteFile(t, dir, "bad.csv", "time,lz_north_usd_mwh\n")
	missing := filepath.Join(dir, "missing.csv")
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"no file", nil, "open traces: no trace file given"},
		{"missing file", []string{good, missing}, "open trace: open " + missing + ": no such file or directory"},
		{"bad header", []string{good, bad}, bad + ":1: no signal column (want at least one of price_usd_mwh, " +
			"grid_load_mw, hashprice_usd_th_day, hashprice_usd_ph_day, inference_usd_gpu_hour, ai_demand_gpus, cp_alert_probability)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _, closer, err := Open(tt.paths)
			require.EqualError(t, err, tt.want)
			require.Nil(t, src)
			require.Nil(t, closer)
		})
	}
}

func TestSeries(t *testing.T) {
	price, load, hash := switchd.SignalPrice, switchd.SignalGridLoad, switchd.SignalHashprice
	const csv = "time,price_usd_mwh,grid_load_mw,hashprice_usd_ph_day\n" +
		"2024-11-03T01:30:00-05:00,10,,\n" +
		"2024-11-03T01:45:00-05:00,11,,48\n" +
		"2024-11-03T01:00:00-06:00,-2,,\n" +
		"2024-11-03T01:15:00-06:00,13,,49\n"
	rd, err := NewReader(strings.NewReader(csv), "s.csv")
	require.NoError(t, err)
	s, err := Collect(rd)
	require.NoError(t, err)

	require.Equal(t, 4, s.Len())
	require.Equal(t, []switchd.Signal{price, hash}, s.Signals(), "grid load has a column but no value")
	require.Equal(t, "2024-11-03T01:45:00-05:00", s.Time(1).Format(time.RFC3339))
	require.Equal(t, "2024-11-03T01:00:00-06:00", s.Time(2).Format(time.RFC3339))
	require.Equal(t, 15*time.Minute, s.Time(2).Sub(s.Time(1)), "the fall-back hour is 15 minutes long, not 75")
	require.Equal(t, "2024-11-03T01:30:00-06:00", s.End().Format(time.RFC3339))

	tests := []struct {
		name string
		i    int
		sig  switchd.Signal
		want float64
		ok   bool
	}{
		{"price", 2, price, -2, true},
		{"hashprice before its first sample", 0, hash, 0, false},
		{"hashprice gap in a raw reader", 2, hash, 0, false},
		{"hashprice", 3, hash, 49, true},
		{"signal without values", 1, load, 0, false},
		{"signal out of range", 1, switchd.Signal(200), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := s.Value(tt.i, tt.sig)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, v)
		})
	}

	t.Run("source replays the rows, twice", func(t *testing.T) {
		for range 2 {
			rows, err := trReadAll(s.Source())
			require.NoError(t, err)
			require.Len(t, rows, 4)
			for i, r := range rows {
				require.True(t, r.Time.Equal(s.Time(i)))
				require.Equal(t, s.Time(i).Location(), r.Time.Location())
				for _, sig := range switchd.AllSignals {
					v, ok := s.Value(i, sig)
					require.Equal(t, ok, r.Has[sig])
					require.Equal(t, v, r.Values[sig])
					if ok {
						require.True(t, r.At[sig].Equal(r.Time), "a raw reader's values are all fresh")
					}
				}
			}
		}
	})

	t.Run("end of one row", func(t *testing.T) {
		one, err := Collect(&trSlice{rows: []Row{trRow(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 0,
			map[switchd.Signal]float64{price: 1})}})
		require.NoError(t, err)
		require.Equal(t, time.Date(2024, 1, 1, 0, 15, 0, 0, time.UTC), one.End())
		require.Equal(t, time.Time{}, (&Series{}).End())
	})

	t.Run("collect errors", func(t *testing.T) {
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		nan := trRow(t0.Add(time.Hour), 0, map[switchd.Signal]float64{price: math.NaN()})
		tests := []struct {
			name string
			rows []Row
			want string
		}{
			{"no rows", nil, "collect trace: no rows"},
			{"unsorted", []Row{{Time: t0}, {Time: t0}}, "collect trace: row 2: time 2024-01-01T00:00:00Z is not after 2024-01-01T00:00:00Z"},
			{"NaN", []Row{{Time: t0}, nan}, "collect trace: row 2: price is NaN"},
			{"year 1", []Row{{Time: time.Time{}}}, "collect trace: row 1: time 0001-01-01T00:00:00Z is outside years 1678 to 2262"},
			{"sampled after the row", []Row{trAt(trRow(t0, 0, map[switchd.Signal]float64{price: 1}), price, t0.Add(time.Minute))},
				"collect trace: row 1: price sampled at 2024-01-01T00:01:00Z, neither at the row's time 2024-01-01T00:00:00Z nor with the previous row's value"},
			{"carried from a sample it never had", []Row{
				trRow(t0, 0, map[switchd.Signal]float64{price: 1}),
				trAt(trRow(t0.Add(time.Hour), 0, map[switchd.Signal]float64{price: 1}), price, t0.Add(time.Minute)),
			}, "collect trace: row 2: price sampled at 2024-01-01T00:01:00Z, neither at the row's time 2024-01-01T01:00:00Z nor with the previous row's value"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := Collect(&trSlice{rows: tt.rows})
				require.EqualError(t, err, tt.want)
			})
		}
	})
}

func TestWriteCSV(t *testing.T) {
	const in = "time,ai_demand_gpus,hashprice_usd_th_day,price_usd_mwh,junk\n" +
		"2024-11-03T01:45:00-05:00,2500,0.051602,-1.25,x\n" +
		"2024-11-03T01:00:00-06:00,,,1000000,y\n" +
		"2024-11-03T01:15:00.25-06:00,,,0.000001,z\n"
	const want = "time,price_usd_mwh,hashprice_usd_ph_day,ai_demand_gpus\n" +
		"2024-11-03T01:45:00-05:00,-1.25,51.602,2500\n" +
		"2024-11-03T01:00:00-06:00,1000000,,\n" +
		"2024-11-03T01:15:00.25-06:00,0.000001,,\n"
	read := func() Source {
		r, err := NewReader(strings.NewReader(in), "w.csv")
		require.NoError(t, err)
		return r
	}
	collect := func() Source {
		s, err := Collect(read())
		require.NoError(t, err)
		return s.Source()
	}
	slice := func() Source {
		rows, err := trReadAll(read())
		require.NoError(t, err)
		return &trSlice{rows: rows}
	}
	tests := []struct {
		name string
		src  func() Source
	}{
		{"reader", read},
		{"series", collect},
		{"source without signals", slice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, WriteCSV(&b, tt.src()))
			require.Equal(t, want, b.String())

			back, err := NewReader(&b, "back.csv")
			require.NoError(t, err)
			got, err := trReadAll(back)
			require.NoError(t, err)
			orig, err := trReadAll(read())
			require.NoError(t, err)
			for i := range orig {
				orig[i].Line = got[i].Line
			}
			trRequireRows(t, orig, got)
		})
	}

	t.Run("carried values are not written again", func(t *testing.T) {
		var b bytes.Buffer
		require.NoError(t, WriteCSV(&b, Merge(read())))
		require.Equal(t, want, b.String())
	})

	t.Run("a carried first value is written", func(t *testing.T) {
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		first := trAt(trRow(t0, 0, map[switchd.Signal]float64{switchd.SignalHashprice: 48}), switchd.SignalHashprice, t0.Add(-time.Hour))
		second := trAt(trRow(t0.Add(time.Hour), 0, map[switchd.Signal]float64{switchd.SignalHashprice: 48}), switchd.SignalHashprice, t0.Add(-time.Hour))
		var b bytes.Buffer
		require.NoError(t, WriteCSV(&b, &trSlice{rows: []Row{first, second}}))
		require.Equal(t, "time,hashprice_usd_ph_day\n2024-01-01T00:00:00Z,48\n2024-01-01T01:00:00Z,\n", b.String())
	})

	t.Run("errors", func(t *testing.T) {
		bad, err := NewReader(strings.NewReader("time,price_usd_mwh\n2024-01-01T00:00:00Z,x\n"), "bad.csv")
		require.NoError(t, err)
		require.EqualError(t, WriteCSV(io.Discard, bad), `write trace: bad.csv:2: column price_usd_mwh: "x" is not a number`)
		require.EqualError(t, WriteCSV(io.Discard, &trSlice{}), "write trace: collect trace: no rows")
		require.EqualError(t, WriteCSV(trFailWriter{}, SyntheticSource(time.Time{}, time.Minute, 10000, 1)),
			"write trace: disk full")
	})
}

type trFailWriter struct{}

func (trFailWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSyntheticSource(t *testing.T) {
	start := time.Date(2024, 7, 1, 0, 0, 0, 0, trCDT)
	const n = 28 * 96 // four weeks of quarter-hours
	rows, err := trReadAll(SyntheticSource(start, 15*time.Minute, n, 7))
	require.NoError(t, err)
	require.Len(t, rows, n)

	t.Run("same seed, same rows; another seed, other prices", func(t *testing.T) {
		again, err := trReadAll(SyntheticSource(start, 15*time.Minute, n, 7))
		require.NoError(t, err)
		require.Equal(t, rows, again)
		other, err := trReadAll(SyntheticSource(start, 15*time.Minute, n, 8))
		require.NoError(t, err)
		require.NotEqual(t, trColumn(rows, switchd.SignalPrice), trColumn(other, switchd.SignalPrice))
	})

	t.Run("shape", func(t *testing.T) {
		var spikes, negatives int
		var peak, trough float64 // sums of 17:00 and 05:00 prices
		for i, r := range rows {
			require.True(t, r.Time.Equal(start.Add(time.Duration(i)*15*time.Minute)))
			require.Equal(t, [switchd.NumSignals]bool{true, false, true, true, true}, r.Has)
			require.Equal(t, 48.0, r.Values[switchd.SignalHashprice])
			require.Equal(t, 2.10, r.Values[switchd.SignalInferencePrice])
			require.Equal(t, 2500.0, r.Values[switchd.SignalAIDemand])
			p := r.Values[switchd.SignalPrice]
			require.Equal(t, math.Round(p*100)/100, p, "two decimals")
			if p > 200 {
				spikes++
			}
			if p < 0 {
				negatives++
			}
			switch r.Time.Hour() {
			case 17:
				peak += p
			case 5:
				trough += p
			}
		}
		require.Greater(t, spikes, 0)
		require.Less(t, spikes, n/50, "spikes are rare")
		require.Greater(t, negatives, 0)
		require.Less(t, negatives, n/10, "negative prices are rare")
		require.Greater(t, peak, trough, "afternoons cost more than early mornings")
	})

	t.Run("no allocation per row", func(t *testing.T) {
		src := SyntheticSource(start, 5*time.Minute, 1<<30, 1)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := src.Next(); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs)
	})

	t.Run("bad step and no rows", func(t *testing.T) {
		_, err := SyntheticSource(start, 0, 10, 1).Next()
		require.EqualError(t, err, "synthetic trace: step must be positive")
		_, err = SyntheticSource(start, time.Minute, 0, 1).Next()
		require.ErrorIs(t, err, io.EOF)
	})

	t.Run("golden file", func(t *testing.T) {
		// Two days from a fixed start and seed (one picked for having a spike
		// and a negative stretch): a committed SYNTHETIC trace for examples
		// and simulation goldens; it changes only with the generator.
		var b bytes.Buffer
		require.NoError(t, WriteCSV(&b, SyntheticSource(time.Date(2024, 7, 1, 0, 0, 0, 0, trCDT), 15*time.Minute, 192, 34)))
		path := filepath.Join("testdata", "trace", "synthetic_2d.csv")
		if *trUpdate {
			require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, string(want), b.String(), "run go test ./sim/ -run TestSyntheticSource -update-trace to rewrite")
	})
}

func TestAllocations(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteCSV(&b, SyntheticSource(time.Date(2024, 1, 1, 0, 0, 0, 0, trCST), 5*time.Minute, 5000, 1)))
	data := b.Bytes()

	t.Run("reader: only the line encoding/csv allocates", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(data), "a.csv")
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		require.LessOrEqual(t, allocs, 1.0)
	})

	t.Run("merge and series: none", func(t *testing.T) {
		r, err := NewReader(bytes.NewReader(data), "a.csv")
		require.NoError(t, err)
		s, err := Collect(r)
		require.NoError(t, err)
		m := Merge(s.Source(), s.Source())
		_, err = m.Next() // the first call sets up the merge
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := m.Next(); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs)
	})
}

// TestRealTraces reads the real traces in $SWITCHD_TRACES.
func TestRealTraces(t *testing.T) {
	dir := testenv.Traces(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	// Row counts from SOURCES.md.
	wantRows := map[string]int{
		"ercot_lz_houston_rt15_2023-08.csv":       2976,
		"ercot_hb_hubavg_rt15_2024.csv":           35136,
		"btc_hashprice_daily_2023-04_2024-04.csv": 364,
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := os.Open(p)
			require.NoError(t, err)
			defer f.Close()
			r, err := NewReader(f, p)
			require.NoError(t, err)
			s, err := Collect(r) // Collect also checks that times increase
			require.NoError(t, err)
			if want, ok := wantRows[filepath.Base(p)]; ok {
				require.Equal(t, want, s.Len())
			}
			for i := 1; i < s.Len(); i++ {
				require.True(t, s.Time(i).After(s.Time(i-1)), "row %d", i)
			}
		})
	}

	t.Run("2024: DST days and extremes", func(t *testing.T) {
		src, _, closer, err := Open([]string{testenv.TraceFile(t, "ercot_hb_hubavg_rt15_2024.csv")})
		require.NoError(t, err)
		defer closer.Close()
		s, err := Collect(src)
		require.NoError(t, err)
		perDay := map[string]int{}
		var lo, hi float64
		for i := range s.Len() {
			perDay[s.Time(i).Format(time.DateOnly)]++
			p, ok := s.Value(i, switchd.SignalPrice)
			require.True(t, ok)
			lo, hi = min(lo, p), max(hi, p)
			if i > 0 {
				require.Equal(t, 15*time.Minute, s.Time(i).Sub(s.Time(i-1)), "row %d", i)
			}
		}
		require.Equal(t, 92, perDay["2024-03-10"])
		require.Equal(t, 100, perDay["2024-11-03"])
		require.Equal(t, -32.0, lo)
		require.Equal(t, 4964.84, hi)
		require.Equal(t, time.Date(2025, 1, 1, 6, 0, 0, 0, time.UTC), s.End().UTC())
	})

	t.Run("August 2023 merged with daily hashprice", func(t *testing.T) {
		houston := testenv.TraceFile(t, "ercot_lz_houston_rt15_2023-08.csv")
		src, notices, closer, err := Open([]string{houston, testenv.TraceFile(t, "btc_hashprice_daily_2023-04_2024-04.csv")})
		require.NoError(t, err)
		defer closer.Close()
		require.Contains(t, notices, "trace "+houston+": ignoring columns lz_north_usd_mwh, lz_south_usd_mwh, lz_west_usd_mwh (not signals switchd knows)")
		s, err := Collect(src)
		require.NoError(t, err)
		// The hashprice file's midnights UTC are 19:00 CDT, on the 15-minute grid.
		require.Equal(t, 2976, s.Len())
		var sum float64
		for i := range s.Len() {
			v, ok := s.Value(i, switchd.SignalHashprice)
			require.True(t, ok, "row %d", i)
			sum += v
		}
		require.InDelta(t, 67.7, sum/float64(s.Len()), 0.5, "August mean hashprice, USD/PH/day")
	})
}

// BenchmarkReader reads a year of 5-minute rows (105,120) from memory. One
// op is one row, so ns/op is ns/row and allocs/op is allocs/row.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, trCST)
	const rows = 105120
	if err := WriteCSV(&buf, SyntheticSource(start, 5*time.Minute, rows, 1)); err != nil {
		b.Fatal(err)
	}
	data := bytes.NewReader(buf.Bytes())
	b.SetBytes(int64(buf.Len() / rows))
	b.ReportAllocs()
	var r *Reader
	for b.Loop() {
		if r == nil {
			data.Reset(buf.Bytes())
			var err error
			if r, err = NewReader(data, "bench.csv"); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := r.Next(); err == io.EOF {
			r = nil
		} else if err != nil {
			b.Fatal(fmt.Errorf("row: %w", err))
		}
	}
}
