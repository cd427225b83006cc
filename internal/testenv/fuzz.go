package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AddSeeds adds every file matching the patterns to f's corpus, and fails
// if none matches (a moved examples folder must not empty the corpus).
func AddSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	n := 0
	for _, pat := range patterns {
		files, err := filepath.Glob(pat)
		if err != nil {
			f.Fatalf("seed pattern %q: %v", pat, err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no seed files match %q", patterns)
	}
}

// RequireReportLines checks that a failed configuration parse explains
// itself in the documented format: every line of err names the file.
func RequireReportLines(t testing.TB, name string, err error) {
	t.Helper()
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if !strings.HasPrefix(line, name+":") {
			t.Fatalf("line %q does not start with the file name %q", line, name)
		}
	}
}
