package decimal

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v      float64
		places int
		want   string
	}{
		{name: "sum noise", v: 0.1 + 0.2, places: 6, want: "0.3"},
		{name: "product noise", v: 3 * 0.1, places: 6, want: "0.3"},
		{name: "kW of many devices", v: 1000 * 3.2536, places: 6, want: "3253.6"},
		{name: "whole", v: 12, places: 6, want: "12"},
		{name: "whole with zeros", v: 1200, places: 6, want: "1200"},
		{name: "kept digits", v: 0.022, places: 6, want: "0.022"},
		{name: "below resolution", v: 0.0000004, places: 6, want: "0"},
		{name: "rounded up", v: 0.0000006, places: 6, want: "0.000001"},
		{name: "negative", v: -1.5, places: 6, want: "-1.5"},
		{name: "negative zero", v: math.Copysign(0, -1), places: 6, want: "0"},
		{name: "tiny negative", v: -0.0000001, places: 6, want: "0"},
		{name: "no places", v: 2.7, places: 0, want: "3"},
		{name: "tie to even", v: 2.5, places: 0, want: "2"},
		{name: "negative places", v: 2.25, places: -3, want: "2"},
		{name: "too many places", v: 0.1 + 0.2, places: 40, want: "0.3"},
		{name: "large", v: 1e20, places: 6, want: "100000000000000000000"},
		{name: "NaN", v: math.NaN(), places: 6, want: "NaN"},
		{name: "+Inf", v: math.Inf(1), places: 6, want: "+Inf"},
		{name: "-Inf", v: math.Inf(-1), places: 6, want: "-Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Format(tc.v, tc.places))
		})
	}
}
