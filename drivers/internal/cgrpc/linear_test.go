package cgrpc

import (
	"bytes"
	"testing"
)

// BenchmarkRepairPathological repairs pathological replies (a megabyte of
// commas, of open brackets, of keys without values, of spaces): its ns/op
// grows linearly with the input, where a quadratic path would take minutes.
func BenchmarkRepairPathological(b *testing.B) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"commas", append(append([]byte(`{"a":1`), bytes.Repeat([]byte(","), 1<<20)...), '}')},
		{"brackets", bytes.Repeat([]byte("["), 1<<20)},
		{"keys", bytes.Repeat([]byte(`{"k":`), 1<<18)},
		{"spaces", append([]byte(`{"a":1,`), bytes.Repeat([]byte(" "), 1<<20)...)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				Repair(c.in)
			}
		})
	}
}
