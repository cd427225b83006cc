package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAppend measures one typical entry per Append, fsync included: the
// cost a tick pays per journalled batch. SWITCHD_BENCH_DIR picks the file
// system (the default temporary directory may be a tmpfs, where fsync is free).
func BenchmarkAppend(b *testing.B) {
	dir := os.Getenv("SWITCHD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "journal-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	j, _, err := Open(filepath.Join(dir, "j.jsonl"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	e := state(t0, "asics", 60, 40, 210.5)
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendRotating is BenchmarkAppend with 64 KiB segments, so that
// a rotation (rename, new file, directory fsync) happens about every 200
// appends: its cost, amortised.
func BenchmarkAppendRotating(b *testing.B) {
	dir := os.Getenv("SWITCHD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "journal-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	j, _, err := OpenWith(filepath.Join(dir, "j.jsonl"), nil, Options{MaxSegmentBytes: 64 << 10})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	e := state(t0, "asics", 60, 40, 210.5)
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}
