package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"github.com/switchd/switchd/trace"
)

// simFiles writes the golden site, trace and the given policies into a
// temporary folder and returns their paths.
func simFiles(t *testing.T, pols map[string]string) (site, tr string, paths map[string]string) {
	t.Helper()
	dir := t.TempDir()
	site = filepath.Join(dir, "site.yaml")
	tr = filepath.Join(dir, "golden.csv")
	require.NoError(t, os.WriteFile(site, []byte(goldenSite), 0o644))
	require.NoError(t, os.WriteFile(tr, []byte(goldenTrace()), 0o644))
	paths = map[string]string{}
	for name, text := range pols {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		paths[name] = p
	}
	return site, tr, paths
}

// tightPolicy is the golden policy with a lower spike threshold and cap.
var tightPolicy = strings.Replace(strings.Replace(goldenPolicy, "price_above_usd_mwh: 1000", "price_above_usd_mwh: 60", 1),
	"site_cap_kw: 600", "site_cap_kw: 300", 1)

func TestSideBySideTwoPolicies(t *testing.T) {
	site, tr, p := simFiles(t, map[string]string{"a.yaml": goldenPolicy, "b.yaml": tightPolicy})
	o := CLIOptions{Config: site, Policies: []string{p["a.yaml"], p["b.yaml"]}, Traces: []string{tr}, Format: "text"}
	require.NoError(t, o.Validate())
	var out, errs bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &out, &errs))
	text := out.String()
	require.Contains(t, text, "SIMULATED")
	require.Contains(t, text, "[1] "+p["a.yaml"])
	require.Contains(t, text, "[2] "+p["b.yaml"])
	// One column per policy, then the baselines and the oracle once.
	var head string
	for l := range strings.Lines(text) {
		if strings.Contains(l, "always_on") && strings.Contains(l, "[1]") {
			head = l
		}
	}
	require.Equal(t, []string{"[1]", "[2]", "always_on", "threshold_debounce", "oracle"}, strings.Fields(head))
	require.Contains(t, text, "oracle capture")

	o.Format = "json"
	out.Reset()
	require.NoError(t, RunCLI(context.Background(), o, &out, &errs))
	var reps []struct {
		Label     string  `json:"label"`
		File      string  `json:"policy_file"`
		Policy    string  `json:"policy"`
		Simulated bool    `json:"simulated"`
		ProfitUSD float64 `json:"profit_usd"`
		Baselines struct {
			AlwaysOn struct {
				ProfitUSD float64 `json:"profit_usd"`
			} `json:"always_on"`
		} `json:"baselines"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &reps))
	require.Len(t, reps, 2)
	require.Equal(t, p["a.yaml"], reps[0].Policy)
	require.Equal(t, p["b.yaml"], reps[1].Policy)
	require.True(t, reps[0].Simulated && reps[1].Simulated)
	// The tighter policy sheds more: the two runs differ, the baselines do not.
	require.NotEqual(t, reps[0].ProfitUSD, reps[1].ProfitUSD)
	require.Equal(t, reps[0].Baselines.AlwaysOn.ProfitUSD, reps[1].Baselines.AlwaysOn.ProfitUSD)
}

// TestCompareAllMatchesCompare runs variants concurrently and checks each
// equals a run of its policy alone: runs share no mutable state.
func TestCompareAllMatchesCompare(t *testing.T) {
	site, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	series := goldenSeries(t)
	var vs []Variant
	for _, text := range []string{goldenPolicy, tightPolicy, goldenPolicy, tightPolicy} {
		pol, err := policies.ParsePolicy("p.yaml", []byte(text), site)
		require.NoError(t, err)
		vs = append(vs, Variant{Label: "p", Policy: pol})
	}
	outs, err := CompareAll(context.Background(), CompareOptions{Site: site, Series: series}, vs, nil)
	require.NoError(t, err)
	require.Len(t, outs, 4)
	for i, v := range vs {
		alone, err := Compare(context.Background(), CompareOptions{Site: site, Series: series, Policy: v.Policy})
		require.NoError(t, err)
		require.Equal(t, alone.ProfitUSD, outs[i].ProfitUSD, "run %d", i)
		require.Equal(t, alone.Switches, outs[i].Switches, "run %d", i)
	}
	require.Equal(t, outs[0].ProfitUSD, outs[2].ProfitUSD)
	require.NotEqual(t, outs[0].ProfitUSD, outs[1].ProfitUSD)
}

func goldenSeries(t *testing.T) *trace.Series {
	t.Helper()
	r, err := trace.NewReader(strings.NewReader(goldenTrace()), "golden.csv")
	require.NoError(t, err)
	s, err := trace.Collect(r)
	require.NoError(t, err)
	return s
}

func TestSweepThreeValues(t *testing.T) {
	site, tr, p := simFiles(t, map[string]string{"a.yaml": goldenPolicy})
	o := CLIOptions{Config: site, Policies: []string{p["a.yaml"]}, Traces: []string{tr}, Format: "json",
		Sets: []string{"rules[price-spike].then.site_cap_kw=300,1500,4000"}}
	require.NoError(t, o.Validate())
	var out, errs bytes.Buffer
	require.NoError(t, RunCLI(context.Background(), o, &out, &errs))
	var reps []struct {
		Label string    `json:"label"`
		Set   []Setting `json:"set"`
		RunReport
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &reps))
	require.Len(t, reps, 3)
	for i, v := range []string{"300", "1500", "4000"} {
		require.Equal(t, []Setting{{Path: "rules[price-spike].then.site_cap_kw", Value: v}}, reps[i].Set)
		require.Equal(t, "rules[price-spike].then.site_cap_kw="+v, reps[i].Label)
	}
	// A looser cap in the spike draws more in it.
	require.Less(t, reps[0].MaxPowerKW, reps[2].MaxPowerKW+1e-9)
	require.Greater(t, reps[0].TopPriceMWhAvoid, reps[2].TopPriceMWhAvoid)

	// The parameter really differs between the parsed policies.
	s, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	sw, err := ParseSweep("hysteresis_usd_mwh=0,5,12.5")
	require.NoError(t, err)
	vs, err := Variants([]string{p["a.yaml"]}, []Sweep{sw}, s)
	require.NoError(t, err)
	require.Len(t, vs, 3)
	for i, want := range []float64{0, 5, 12.5} {
		require.Equal(t, want, vs[i].Policy.HysteresisUSDPerMWh)
	}
}

func TestSweepCrossProductAndBound(t *testing.T) {
	_, _, p := simFiles(t, map[string]string{"a.yaml": goldenPolicy})
	site, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	a, err := ParseSweep("hysteresis_usd_mwh=0,5")
	require.NoError(t, err)
	b, err := ParseSweep("ramp_up_kw_per_min=1000,2000,3000")
	require.NoError(t, err)
	vs, err := Variants([]string{p["a.yaml"]}, []Sweep{a, b}, site)
	require.NoError(t, err)
	require.Len(t, vs, 6)
	require.Equal(t, "hysteresis_usd_mwh=5 ramp_up_kw_per_min=1000", vs[3].Label)
	require.Equal(t, 5.0, vs[3].Policy.HysteresisUSDPerMWh)

	big, err := ParseSweep("hysteresis_usd_mwh=0,1,2,3,4,5,6,7,8")
	require.NoError(t, err)
	_, err = Variants([]string{p["a.yaml"]}, []Sweep{big, big}, site)
	require.ErrorContains(t, err, "more than 64 runs")
}

func TestSweepErrors(t *testing.T) {
	_, _, p := simFiles(t, map[string]string{"a.yaml": goldenPolicy})
	file := p["a.yaml"]
	site, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	// The line of site_cap_kw in the golden policy.
	capLine := 0
	for i, l := range strings.Split(goldenPolicy, "\n") {
		if strings.Contains(l, "site_cap_kw") {
			capLine = i + 1
		}
	}
	require.NotZero(t, capLine)
	for _, c := range []struct{ set, want string }{
		{"rules[3].then.site_cap_kw=5", ": rules has 1 items, no [3]"},
		{"rules[nope].then.site_cap_kw=5", `no item named "nope" (names: price-spike)`},
		{"nosuch.key=1", "no key nosuch (only the last key of a path may be missing)"},
		{"rules[0].when=1", "rules[0].when is not a single value"},
		// The strict loader checks the result, naming the file, the line
		// (unchanged by the edit) and the key.
		{"rules[0].then.site_cap_kw=-5", file + ":" + itoa(capLine) + ": rules[0].then.site_cap_kw"},
		{"hysteresis_usd_mhw=5", "hysteresis_usd_mhw"},
		{"rules[0].then.site_cap_kw=lots", file + ":" + itoa(capLine) + ":"},
	} {
		t.Run(c.set, func(t *testing.T) {
			sw, err := ParseSweep(c.set)
			require.NoError(t, err)
			_, err = Variants([]string{file}, []Sweep{sw}, site)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), "--set")
			require.Contains(t, err.Error(), file+":")
		})
	}
	for _, bad := range []string{"=5", "hysteresis_usd_mwh", "x=", "a[0]b=1", "rules[0]=1", "[0].x=1", "a..b=1"} {
		_, err := ParseSweep(bad)
		require.Error(t, err, bad)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestSetEditsInPlace checks the text edits: a quoted value, a key added
// to a flow mapping, to a nested block mapping and at the end of the file,
// with every other line where it was.
func TestSetEditsInPlace(t *testing.T) {
	const pol = `# comment
hysteresis_usd_mwh: 5
stagger:
  batch: 200
  interval: 30s

rules:
  - name: "spike"
    when: {price_above_usd_mwh: 1000}
    then:
      site_cap_kw: 600
  - name: night
    when:
      schedule: "0 1 * * *"
      for: 2h
    then: {site_cap_kw: 100}
`
	site, err := config.ParseSite("site.yaml", []byte(goldenSite))
	require.NoError(t, err)
	var doc = parseDoc(t, pol)
	for _, c := range []struct {
		set  []Setting
		want string
	}{
		{[]Setting{{"rules[night].when.schedule", "30 2 * * *"}}, "      schedule: 30 2 * * *\n"},
		{[]Setting{{"rules[night].when.schedule", "* 2 * * *"}}, `      schedule: "* 2 * * *"`},
		{[]Setting{{"rules[0].when.price_below_usd_mwh", "2000"}}, `    when: {price_above_usd_mwh: 1000, price_below_usd_mwh: 2000}`},
		{[]Setting{{"rules[night].when.price_above_usd_mwh", "50"}}, "      for: 2h\n      price_above_usd_mwh: 50\n    then: {site_cap_kw: 100}"},
		{[]Setting{{"stagger.interval", "1m"}}, "  batch: 200\n  interval: 1m\n\nrules:"},
		{[]Setting{{"ramp_up_kw_per_min", "500"}}, "then: {site_cap_kw: 100}\nramp_up_kw_per_min: 500\n"},
		{[]Setting{{"hysteresis_usd_mwh", "7.5"}, {"rules[spike].then.site_cap_kw", "700"}}, "hysteresis_usd_mwh: 7.5\n"},
	} {
		t.Run(c.set[0].Path, func(t *testing.T) {
			v, err := applySettings("p.yaml", []byte(pol), doc, c.set, site)
			require.NoError(t, err)
			require.NotNil(t, v.Policy)
			text := editedText(t, pol, doc, c.set)
			require.Contains(t, text, c.want)
		})
	}
}

func parseDoc(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
	return &doc
}

// editedText returns the edited policy and checks, when no line was
// added, that only the edited lines changed.
func editedText(t *testing.T, orig string, doc *yaml.Node, set []Setting) string {
	t.Helper()
	out, err := editPolicy("p.yaml", []byte(orig), doc, set)
	require.NoError(t, err)
	a, b := strings.Split(orig, "\n"), strings.Split(string(out), "\n")
	if len(a) == len(b) {
		changed := 0
		for i := range a {
			if a[i] != b[i] {
				changed++
			}
		}
		require.LessOrEqual(t, changed, len(set), "lines moved:\n%s", out)
	}
	return string(out)
}
