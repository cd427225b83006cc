package main

import (
	"errors"
	"strings"
)

// repeatFlag is `sim --repeat`: it applies to the --trace given just
// before it, so it records its value at that trace's index.
type repeatFlag struct {
	traces *stringList
	values []string
}

func (r *repeatFlag) String() string {
	if r == nil {
		return ""
	}
	return strings.Join(r.values, ",")
}

func (r *repeatFlag) Set(v string) error {
	n := len(*r.traces)
	if n == 0 {
		return errors.New("--repeat applies to the --trace just before it: give the --trace first")
	}
	for len(r.values) < n {
		r.values = append(r.values, "")
	}
	if r.values[n-1] != "" {
		return errors.New("--repeat given twice for the same --trace")
	}
	r.values[n-1] = v
	return nil
}
