package cgminer

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"github.com/switchd/switchd/drivers/internal/cgrpc"
	"github.com/switchd/switchd/drivers/internal/pool/pooltest"
)

// fixtureWant is what one recorded reply shows. mode is the observation
// the reply alone gives when read as summary and stats ("" when it holds
// no hashrate).
type fixtureWant struct {
	ths      float64
	mode     string // "mining", "off", "fault" or ""
	model    string
	firmware string
}

// fixtureTable covers every file of cgminer/ and bmminer/.
var fixtureTable = map[string]fixtureWant{
	"cgminer/ascset-softoff-avalon-q.json":        {firmware: "cgminer 4.11.1"},
	"cgminer/ascset-softon-avalon-q.json":         {firmware: "cgminer 4.11.1"},
	"cgminer/ascset-workmode-avalon-q.json":       {firmware: "cgminer 4.11.1"},
	"cgminer/devs-avalon-q.json":                  {firmware: "cgminer 4.11.1"},
	"cgminer/pools-avalon-q.json":                 {firmware: "cgminer 4.11.1"},
	"cgminer/pools+summary+stats-avalon10xx.json": {ths: 32.24741681, mode: "mining"},
	"cgminer/stats-avalon-q.json":                 {mode: "off", firmware: "cgminer 4.11.1"}, // SoftOFF[4], no hashrate field at top level
	"cgminer/summary-avalon-q.json":               {ths: 0, mode: "fault", firmware: "cgminer 4.11.1"},
	"cgminer/version-avalon-q.json":               {model: "Avalon Q", firmware: "cgminer 4.11.1 (25052801_14a19a2)"},

	"bmminer/devs-s19pro.json":        {firmware: "cgminer 1.0.0"},
	"bmminer/pools-d3.json":           {firmware: "cgminer 4.10.0"},
	"bmminer/pools-l3plus.json":       {firmware: "cgminer 4.9.0"},
	"bmminer/pools-s19-sleeping.json": {firmware: "cgminer 1.0.0"},
	"bmminer/pools-s19pro.json":       {firmware: "cgminer 1.0.0"},
	"bmminer/stats-l3plus.bin":        {ths: 0.50456, mode: "mining", model: "Antminer L3+", firmware: "cgminer 4.9.0 (1.0.1.3)"},
	"bmminer/stats-s19-sleeping.json": {ths: 0, mode: "fault", model: "Antminer S19", firmware: "cgminer 1.0.0 (49.0.1.3)"},
	"bmminer/stats-s19pro.json":       {ths: 110.56689, mode: "mining", model: "Antminer S19 Pro", firmware: "cgminer 1.0.0 (49.0.1.3)"},
	"bmminer/stats-s9-hiveon.bin":     {ths: 11.7814, mode: "mining", model: "Antminer S9 Hiveon", firmware: "bmminer 1.0.0 (30.0.1.3)"},
	"bmminer/summary-s19pro.json":     {ths: 110.56689, mode: "mining", firmware: "cgminer 1.0.0"},
	"bmminer/version-s19pro.json":     {model: "Antminer S19 Pro", firmware: "cgminer 1.0.0 (49.0.1.3)"},
	"bmminer/version-s9-hiveon.json":  {model: "Antminer S9 Hiveon", firmware: "bmminer 1.0.0 (30.0.1.3)"},
}

func obsName(ths float64, r cgrpc.Reply) string {
	o := Classify(ths, r)
	switch {
	case o.Fault:
		return "fault"
	case o.Mode == switchd.ModeOff:
		return "off"
	}
	return "mining"
}

// TestFixtures reads every recorded reply of cgminer/ and bmminer/ and
// checks the state it shows.
func TestFixtures(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	var files []string
	for _, sub := range []string{"cgminer", "bmminer"} {
		fs, err := filepath.Glob(filepath.Join(dir, sub, "*"))
		require.NoError(t, err)
		for _, f := range fs {
			files = append(files, sub+"/"+filepath.Base(f))
		}
	}
	sort.Strings(files)
	require.Len(t, files, len(fixtureTable), "every fixture file must be in the table")
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			want, ok := fixtureTable[name]
			require.True(t, ok, "fixture %s is not in the table", name)
			raw, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err)
			// On the wire the reply ends in a NUL the sources stripped.
			r, err := cgrpc.Decode(append(raw, 0))
			require.NoError(t, err)
			if _, err := r.Status(); err != nil {
				// A multi-report reply has its STATUS per command.
				s := sub(r, "summary")
				require.NotNil(t, s, "no STATUS and no nested reply")
				_, err = s.Status()
				require.NoError(t, err)
			}
			ths, has := Hashrate(r)
			wantHas := want.mode == "mining" || want.mode == "fault"
			require.Equal(t, wantHas, has, "hashrate present")
			require.InDelta(t, want.ths, ths, 1e-6)
			if want.mode != "" {
				require.Equal(t, want.mode, obsName(ths, r))
			}
			model, fw := Version(r)
			require.Equal(t, want.model, model)
			require.Equal(t, want.firmware, fw)
		})
	}
}

// TestFixturePairs reads the summary and stats of one unit together, as
// Observe does.
func TestFixturePairs(t *testing.T) {
	dir := pooltest.FixtureDir(t)
	read := func(name string) cgrpc.Reply {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		r, err := cgrpc.Decode(raw)
		require.NoError(t, err)
		return r
	}
	cases := []struct {
		name, summary, stats string
		mode                 switchd.Mode
		fault                bool
	}{
		// An Avalon Q in soft-off: zero hashrate, idle on purpose.
		{"avalon soft-off", "cgminer/summary-avalon-q.json", "cgminer/stats-avalon-q.json", switchd.ModeOff, false},
		// A sleeping S19: the 4028 API cannot tell sleep from a fault
		// (the antminer driver reads the work mode over the web UI).
		{"s19 sleeping", "bmminer/stats-s19-sleeping.json", "bmminer/stats-s19-sleeping.json", switchd.ModeMining, true},
		{"s19 pro mining", "bmminer/summary-s19pro.json", "bmminer/stats-s19pro.json", switchd.ModeMining, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ths, ok := Hashrate(read(c.summary))
			require.True(t, ok)
			o := Classify(ths, read(c.stats))
			require.True(t, o.Known)
			require.Equal(t, c.mode, o.Mode)
			require.Equal(t, c.fault, o.Fault, o.Detail)
		})
	}
}

// FuzzRead feeds arbitrary replies to every reader: they must never panic.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		`{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"MHS 5s":1}]}`,
		`{"STATS":[{"a":"SoftOFF[4] Work: In Idle"}{"GHS 5s":"5"}]}`,
		`{"summary":[{"SUMMARY":[{"GHS 5s":"nan"}]}],"stats":[1]}`,
		`{"STATS":[{"x":"SoftOFF[","y":"SoftOFF[]"}]}`,
	} {
		f.Add([]byte(s))
	}
	if dir := os.Getenv("SWITCHD_FIXTURES"); dir != "" {
		fs, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		for _, p := range fs {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := cgrpc.Decode(b)
		if err != nil {
			return
		}
		ths, ok := Hashrate(r)
		if ok && ths < 0 {
			t.Fatalf("negative hashrate %v", ths)
		}
		_, _ = Idle(r)
		_, _ = Version(r)
		o := Classify(ths, r)
		if !o.Known {
			t.Fatal("classify must always know")
		}
	})
}
