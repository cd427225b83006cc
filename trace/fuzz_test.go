package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadTrace feeds arbitrary bytes to the reader: it must never panic,
// every error must be a *Error naming the file and a line, and every
// row it accepts must be sane.
func FuzzReadTrace(f *testing.F) {
	seeds := []string{
		"time,price_usd_mwh\n2024-01-01T00:00:00-06:00,12.58\n2024-01-01T00:15:00-06:00,13.45\n",
		"time,price_usd_mwh,grid_load_mw,hashprice_usd_th_day,lz_north_usd_mwh\n" +
			"2023-08-01T00:00:00-05:00,22.8,63356.77,0.072248,21.46\n2023-08-01T00:15:00-05:00,,63356.77,,21.74\n",
		"time,hashprice_usd_ph_day,inference_usd_gpu_hour,ai_demand_gpus\n2024-01-01T00:00:00Z,48,2.1,2500\n",
		"time,price_usd_mwh\n2024-11-03T01:45:00-05:00,1\n2024-11-03T01:00:00-06:00,2\n",
		"time,price_usd_mwh\n2024-01-01T00:15:00Z,1\n2024-01-01T00:00:00Z,2\n",
		"time,price_usd_mwh\n2024-01-01T00:00:00Z,NaN\n",
		"time,price_usd_mwh\n2024-01-01T00:00:00Z,1,2\n",
		"time,\"price_usd_mwh\n2024-01-01T00:00:00Z,1\n",
		"time,hashprice_usd_th_day,hashprice_usd_ph_day\n",
		"price_usd_mwh\n1\n",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "trace", "*.csv"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			fuzzCheckError(t, err)
			return
		}
		var prev Row
		for n := 0; ; n++ {
			row, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				fuzzCheckError(t, err)
				return
			}
			if row.Line < 2 {
				t.Fatalf("row %d on line %d, before the data", n, row.Line)
			}
			if n > 0 && (!row.Time.After(prev.Time) || row.Line <= prev.Line) {
				t.Fatalf("row %d: %v (line %d) after %v (line %d)", n, row.Time, row.Line, prev.Time, prev.Line)
			}
			for s, v := range row.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) || (!row.Has[s] && v != 0) {
					t.Fatalf("row %d: signal %d: value %v, has %v", n, s, v, row.Has[s])
				}
				if (row.Has[s] && !row.At[s].Equal(row.Time)) || (!row.Has[s] && !row.At[s].IsZero()) {
					t.Fatalf("row %d: signal %d: has %v, sampled at %v", n, s, row.Has[s], row.At[s])
				}
			}
			prev = row
		}
	})
}

// fuzzCheckError requires a *Error whose text starts with the file and
// its line.
func fuzzCheckError(t *testing.T, err error) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is a %T, not a *Error", err, err)
	}
	if te.Line < 1 || !strings.HasPrefix(err.Error(), fmt.Sprintf("fuzz.csv:%d: ", te.Line)) {
		t.Fatalf("error %q does not name its line (%d)", err, te.Line)
	}
}
