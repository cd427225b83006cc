package cgrpc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

func TestRepair(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"valid", `{"a":1,"b":[1,2]}`, `{"a":1,"b":[1,2]}`},
		{"nul", "{\"a\":1}\x00", `{"a":1}`},
		{"concatenated in array", `{"S":[{"a":1}{"b":2}]}`, `{"S":[{"a":1},{"b":2}]}`},
		{"top-level concatenated", `{"a":1}{"b":2}`, `{"a":1,"b":2}`},
		{"leading comma", `,{"a":1}`, `{"a":1}`},
		{"leading comma in array", `{"S":[,{"a":1}]}`, `{"S":[{"a":1}]}`},
		{"trailing comma", `{"a":1, }`, `{"a":1}`},
		{"trailing comma array", `{"a":[1,2,]}`, `{"a":[1,2]}`},
		{"key without value", `{"a" : ,"b":2}`, `{"a":null,"b":2}`},
		{"raw newline in string", "{\"a\":\"x\ny\"}", `{"a":"x\ny"}`},
		{"invalid escape", `{"a":"\'x\'"}`, `{"a":"'x'"}`},
		{"nan inf", `{"a":nan,"b":inf,"c":-inf,"d":NaN}`, `{"a":null,"b":null,"c":null,"d":null}`},
		{"missing comma before key", `{"a":1 "temp0":2}`, `{"a":1,"temp0":2}`},
		{"jsonp", "minerinfoCallback({\"a\":\"1\", });", `{"a":"1"}`},
		{"jsonp without semicolon", `cb ( [1,2,] )`, `[1,2]`},
		{"not jsonp", `cb{"a":1}`, `null`},
		{"truncated", `{"STATUS":[{"STATUS":"S","Msg":"cut`, `{"STATUS":[{"STATUS":"S","Msg":"cut"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Repair([]byte(c.in))
			require.Equal(t, c.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

// TestRepairFixtures reads every recorded reply and checks that it comes out
// as valid JSON (the real replies are read from shared/, never copied in).
func TestRepairFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	n := 0
	for _, f := range files {
		if filepath.Ext(f) != ".json" && filepath.Ext(f) != ".bin" {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		got := Repair(b)
		require.True(t, json.Valid(got), "%s: %s", f, got)
		// Every recorded reply holds an object: coming out as null or a
		// bare value means it was not read at all.
		var v map[string]any
		require.NoError(t, json.Unmarshal(got, &v), "%s: %s", f, got)
		require.NotEmpty(t, v, "%s: %s", f, got)
		if filepath.Ext(f) == ".json" {
			var a, b2 any
			require.NoError(t, json.Unmarshal(b, &a))
			require.NoError(t, json.Unmarshal(got, &b2))
			require.Equal(t, a, b2, "%s: valid JSON must come out unchanged", f)
		}
		n++
	}
	require.Greater(t, n, 20)
}

func FuzzRepair(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"S":[{"a":1}{"b":2}]}`, "{\"a\":\"x\ny\"}\x00", `{"a" : ,}`, `[,{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := Repair(b)
		if len(out) > 0 && !json.Valid(out) {
			// The only acceptable invalid output is for input that holds
			// no value at all.
			var v any
			if json.Unmarshal(out, &v) == nil {
				return
			}
			t.Fatalf("Repair(%q) = %q: not valid JSON", b, out)
		}
	})
}

// TestRepairAvalonWeb: the one real trailing-comma sample is a JSONP reply of
// the Avalon web UI; it reads to what the unit reported.
func TestRepairAvalonWeb(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "avalon-web", "get_minerinfo-avalon1047.bin"))
	require.NoError(t, err)
	var v map[string]string
	require.NoError(t, json.Unmarshal(Repair(b), &v))
	require.Equal(t, map[string]string{
		"version":    "20090401_fb963dc_1236943",
		"mac":        "b4:a2:eb:31:2f:7c",
		"ipv4":       "10.16.250.99",
		"hwtype":     "AvalonMiner 1047",
		"sys_status": "1",
	}, v)
}
