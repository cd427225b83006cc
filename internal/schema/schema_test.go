package schema

import (
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

type inner struct {
	B int `yaml:"b"`
}

type sample struct {
	inner `yaml:",inline"`
	A     *float64                        `yaml:"a"`
	D     strictyaml.Duration             `yaml:"d"`
	M     strictyaml.OrderedMap[[]string] `yaml:"m"`
	N     strictyaml.NameList             `yaml:"n"`
	S     yaml.Node                       `yaml:"s"`
	Skip  string                          `yaml:"-"`
	Flag  bool                            `yaml:"flag"`
	Kids  []inner                         `yaml:"kids"`
}

type selfDecoding struct{}

func (*selfDecoding) DecodeNode(*strictyaml.Loader, *yaml.Node, string) {}

type badFile struct {
	X selfDecoding `yaml:"x"`
}

func TestGenerate(t *testing.T) {
	s, err := Generate(reflect.TypeFor[sample](), "sample", "")
	require.NoError(t, err)
	require.Equal(t, Draft, s["$schema"])
	require.Equal(t, false, s["additionalProperties"])
	props := s["properties"].(map[string]any)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{"a", "b", "d", "m", "n", "s", "flag", "kids"}, keys, "inline fields merged, - skipped")
	require.Equal(t, []any{"number", "null"}, props["a"].(map[string]any)["type"])
	require.Equal(t, []any{"integer", "null"}, props["b"].(map[string]any)["type"])
	require.Equal(t, durationSchema(), props["d"])
	require.Equal(t, map[string]any{}, props["s"], "a yaml.Node is free-form")
	m := props["m"].(map[string]any)
	require.Equal(t, []any{"array", "null"}, m["additionalProperties"].(map[string]any)["type"])
	kids := props["kids"].(map[string]any)["items"].(map[string]any)
	require.Equal(t, false, kids["additionalProperties"])

	_, err = Generate(reflect.TypeFor[badFile](), "", "")
	require.EqualError(t, err, "x: schema.selfDecoding decodes itself and does not describe itself (implement schema.Describer)")
}

func TestDurationPattern(t *testing.T) {
	re := regexpOf(t)
	for _, ok := range []string{"90s", "30m", "1h30m", "1.5h", ".5h", "-1h", "+2m", "0", "100ms", "3µs", "1us"} {
		require.True(t, re(ok), ok)
	}
	for _, bad := range []string{"", "30", "1d", "h", "1 h", "1h 30m"} {
		require.False(t, re(bad), bad)
	}
}

func regexpOf(t *testing.T) func(string) bool {
	t.Helper()
	re, err := regexp.Compile(DurationPattern)
	require.NoError(t, err)
	return func(s string) bool {
		_, perr := time.ParseDuration(s)
		// The pattern agrees with time.ParseDuration.
		require.Equal(t, perr == nil, re.MatchString(s), s)
		return re.MatchString(s)
	}
}
