package trace

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadColumn(t *testing.T) {
	const good = "time,price_usd_mwh,da\n2024-01-01T00:00:00Z,1,10\n2024-01-01T01:00:00Z,2,\n2024-01-01T02:00:00Z,3,30\n"
	c, err := readColumn(strings.NewReader(good), "f.csv", "da")
	require.NoError(t, err)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Duration
		want float64
		ok   bool
	}{
		{0, 10, true}, {59 * time.Minute, 10, true}, {time.Hour, 0, false}, {2 * time.Hour, 30, true},
		{3*time.Hour - 1, 30, true}, {3 * time.Hour, 0, false}, {-time.Second, 0, false},
	} {
		v, ok := c.At(t0.Add(tc.at))
		require.Equal(t, tc.ok, ok, tc.at)
		require.Equal(t, tc.want, v, tc.at)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"no column", "time,price_usd_mwh\n2024-01-01T00:00:00Z,1\n", "f.csv:1: column da: no such column"},
		{"no time", "t,da\n2024-01-01T00:00:00Z,1\n", "f.csv:1: no time column"},
		{"bad time", "time,da\n2024-01-01T00:00:00Z,1\nyesterday,2\n", "f.csv:3: column time:"},
		{"not increasing", "time,da\n2024-01-01T01:00:00Z,1\n2024-01-01T00:00:00Z,2\n", "f.csv:3: column time: times must strictly increase"},
		{"not a number", "time,da\n2024-01-01T00:00:00Z,Inf\n", "f.csv:2: column da: \"Inf\" is not a finite number"},
		{"ragged", "time,da\n2024-01-01T00:00:00Z,1,2\n", "f.csv:2:"},
		{"no rows", "time,da\n", "f.csv:1: column da: no rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readColumn(strings.NewReader(tc.data), "f.csv", "da")
			require.ErrorContains(t, err, tc.want)
		})
	}
}
