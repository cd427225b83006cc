package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/policies"
	"gopkg.in/yaml.v3"
)

// compileSchema compiles the schema `switchd schema kind` prints.
func compileSchema(t *testing.T, kind string) *jsonschema.Schema {
	t.Helper()
	code, out, errOut := runCmd("schema", kind)
	require.Equal(t, 0, code, errOut)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource(kind+".json", doc))
	s, err := c.Compile(kind + ".json")
	require.NoError(t, err)
	return s
}

// yamlInstance reads a YAML file as the JSON value a YAML language server
// checks against the schema.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return inst
}

// schemaKinds says which schema each YAML file under examples/ follows.
var schemaKinds = map[string]string{
	"deploy/switchd.yaml":               "site",
	"deploy/policy.yaml":                "policy",
	"examples/site.yaml":                "site",
	"examples/demo.yaml":                "site",
	"examples/fake-site.yaml":           "site",
	"examples/policies/price-only.yaml": "policy",
	"examples/policies/demo.yaml":       "policy",
	"examples/policies/ercot-4cp.yaml":  "policy",
	"examples/fake-site/policy.yaml":    "policy",
	"examples/ai-site.yaml":             "site",
	"examples/policies/ai-demand.yaml":  "policy",
	"examples/ai-demo.yaml":             "site",
	"examples/policies/ai-demo.yaml":    "policy",

	"examples/power-targets.yaml":          "site",
	"examples/policies/power-targets.yaml": "policy",
}

// Every YAML file the examples hold, and every valid golden config case,
// is accepted by its generated schema, as the loader accepts it.
func TestSchemaAcceptsExamples(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{"site": compileSchema(t, "site"), "policy": compileSchema(t, "policy")}
	var files []string
	require.NoError(t, filepath.WalkDir("../../examples", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, strings.TrimPrefix(p, "../../"))
		}
		return err
	}))
	require.NotEmpty(t, files)
	// The production example the README installs in /etc/switchd.
	files = append(files, "deploy/switchd.yaml", "deploy/policy.yaml")
	// Golden cases the loaders accept (an empty expected.err).
	for _, c := range []struct{ dir, kind string }{{"config/testdata", "site"}, {"policies/testdata", "policy"}} {
		dirs, err := filepath.Glob(filepath.Join("../..", c.dir, "*", "expected.err"))
		require.NoError(t, err)
		for _, e := range dirs {
			if b, err := os.ReadFile(e); err == nil && len(b) == 0 {
				p := strings.TrimPrefix(filepath.Join(filepath.Dir(e), c.kind+".yaml"), "../../")
				files = append(files, p)
				schemaKinds[p] = c.kind
			}
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			kind, ok := schemaKinds[f]
			require.True(t, ok, "%s: say in schemaKinds which schema it follows", f)
			data, err := os.ReadFile(filepath.Join("../..", f))
			require.NoError(t, err)
			// The loader accepts it (policies are loaded against their
			// site by the validate and sim tests, golden cases by theirs)...
			if kind == "site" && strings.HasPrefix(f, "examples/") {
				_, err = config.LoadSite(filepath.Join("../..", f))
				require.NoError(t, err)
			}
			// ...and so does its schema.
			require.NoError(t, schemas[kind].Validate(yamlInstance(t, data)))
		})
	}
}

// What the loader accepts in forms an editor would not guess, the schema
// accepts too: it may be looser than the loader, never stricter.
func TestSchemaNotStricterThanLoader(t *testing.T) {
	site := compileSchema(t, "site")
	base, err := os.ReadFile("../../examples/demo.yaml")
	require.NoError(t, err)
	for _, tc := range []struct{ name, old, new string }{
		{"a zero duration", "min_dwell: 20s", "min_dwell: 0"},
		{"an empty value", "tick: 5s", "tick:"},
		{"a demo speed with x", "speed: 900 ", "speed: 900x"},
		{"a quoted demo speed", "speed: 900 ", "speed: \"900x\""},
		{"a number as a name", "name: demo\n", "name: 1234\n"},
		{"a boolean as a topic prefix", "signal_prefix: switchd/demo/signals", "signal_prefix: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(base), tc.old)
			data := []byte(strings.Replace(string(base), tc.old, tc.new, 1))
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS("../../examples")))
			p := filepath.Join(dir, "demo.yaml")
			require.NoError(t, os.WriteFile(p, data, 0o600))
			_, err := config.LoadSite(p)
			require.NoError(t, err, "the loader accepts it")
			require.NoError(t, site.Validate(yamlInstance(t, data)))
		})
	}
}

// An unknown or misspelt key fails schema validation, as it fails the
// loader, at any depth.
func TestSchemaRejectsUnknownKeys(t *testing.T) {
	schemas := map[string]*jsonschema.Schema{"site": compileSchema(t, "site"), "policy": compileSchema(t, "policy")}
	site, err := os.ReadFile("../../examples/site.yaml")
	require.NoError(t, err)
	pol, err := os.ReadFile("../../examples/policies/ercot-4cp.yaml")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, kind string
		src        []byte
		old, new   string
		want       string
	}{
		{"top-level site key", "site", site, "\nfleets:", "\nfleet_list: []\nfleets:", "fleet_list"},
		{"key in a fleet", "site", site, "    modes:", "    mods: {}\n    modes:", "mods"},
		{"key in a mode", "site", site, "{power_kw:", "{power_kww: 1, power_kw:", "power_kww"},
		{"top-level policy key", "policy", pol, "\nrules:", "\nrulez: []\nrules:", "rulez"},
		{"key in a rule's when", "policy", pol, "      price_above_usd_mwh: 1000", "      price_abov_usd_mwh: 5\n      price_above_usd_mwh: 1000", "price_abov_usd_mwh"},
		{"wrong type", "policy", pol, "hysteresis_usd_mwh: 5", "hysteresis_usd_mwh: [1]", "hysteresis_usd_mwh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(tc.src), tc.old)
			data := []byte(strings.Replace(string(tc.src), tc.old, tc.new, 1))
			require.NoError(t, yaml.Unmarshal(data, new(any)), "still YAML")
			err := schemas[tc.kind].Validate(yamlInstance(t, data))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			// The loader refuses it too.
			if tc.kind == "site" {
				p := filepath.Join(t.TempDir(), "site.yaml")
				require.NoError(t, os.WriteFile(p, data, 0o600))
				_, lerr := config.ParseSite(p, data)
				require.Error(t, lerr)
			} else {
				s, err := config.LoadSite("../../examples/site.yaml")
				require.NoError(t, err)
				_, lerr := policies.ParsePolicy("policy.yaml", data, s)
				require.Error(t, lerr)
			}
		})
	}
}

func TestSchemaUsage(t *testing.T) {
	code, _, errOut := runCmd("schema", "device-list")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown file kind "device-list" (want site or policy)`)
	code, _, errOut = runCmd("schema")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "want one file kind: site or policy")
}
