package all

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"gopkg.in/yaml.v3"
)

type clock struct{}

func (clock) Now() time.Time { return time.Unix(0, 0) }

func TestLookup(t *testing.T) {
	require.Equal(t, []string{"sim"}, Names())
	_, err := Lookup("cgminer-typo")
	require.ErrorContains(t, err, `unknown driver "cgminer-typo"`)

	f, err := Lookup("sim")
	require.NoError(t, err)
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("failure_rate: 0.5\n"), &n))
	spec := switchd.FleetSpec{Name: "x", Count: 3}
	d, err := f(n.Content[0], Deps{Spec: spec, Clock: clock{}})
	require.NoError(t, err)
	st, err := d.State(t.Context())
	require.NoError(t, err)
	require.Len(t, st.Cohorts, 1)
	require.Equal(t, 3, st.Cohorts[0].Count)

	require.NoError(t, yaml.Unmarshal([]byte("prot: 1\n"), &n))
	_, err = f(n.Content[0], Deps{Spec: spec, Clock: clock{}})
	require.ErrorContains(t, err, "prot", "a typo in settings is an error, not a silent default")
}
