package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogFormats: console lines by default, one JSON object per line with
// --log-format json, and a clear usage error for anything else.
func TestLogFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger("info", "json", &b)
	require.NoError(t, err)
	log.Info("decision")
	var v map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &v), b.String())
	require.Equal(t, "decision", v["msg"])

	b.Reset()
	log, err = newLogger("info", "console", &b)
	require.NoError(t, err)
	log.Info("decision")
	require.Contains(t, b.String(), "\tINFO\tdecision")

	code, _, stderr := runCmd("run", "--config", "x.yaml", "--log-format", "xml")
	require.Equal(t, 2, code)
	require.True(t, strings.Contains(stderr, "--log-format: want console or json"), stderr)
}
