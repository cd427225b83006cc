package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHASection(t *testing.T) {
	s, err := ParseSite("s.yaml", []byte(cpSiteHead+"http: {listen: \"127.0.0.1:8080\"}\n"))
	require.NoError(t, err)
	require.Nil(t, s.HA, "no ha: section, no HA")

	s, err = ParseSite("s.yaml", []byte(cpSiteHead+"http: {listen: \"127.0.0.1:8080\"}\nha: {endpoints: [\"http://10.0.0.5:2379\"], name: a}\n"))
	require.NoError(t, err)
	require.Equal(t, &HA{Endpoints: []string{"http://10.0.0.5:2379"}, Name: "a", Advertise: "127.0.0.1:8080", LeaseTTL: 5 * time.Second, Prefix: "/switchd/s/leader"}, s.HA)

	s, err = ParseSite("s.yaml", []byte(cpSiteHead+"ha: {endpoints: [\"https://e:2379\"], name: b, advertise: \"b.site:8080\", lease_ttl: 10s, prefix: /x/y}\n"))
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, s.HA.LeaseTTL)
	require.Equal(t, "/x/y", s.HA.Prefix)
	require.Equal(t, "b.site:8080", s.HA.Advertise)

	for _, tc := range []struct{ yaml, want string }{
		{"ha: {name: a}\n", "s.yaml:10: ha.endpoints: required"},
		{"ha: {endpoints: [\"10.0.0.5:2379\"], name: a}\n", `ha.endpoints[0]: "10.0.0.5:2379" is not an etcd client URL`},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, lease_ttl: 1s}\n", "ha.lease_ttl: must be between 2s and 1h (got 1s)"},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, lease_ttl: 2500ms}\n", "ha.lease_ttl: whole seconds only"},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, prefix: x/}\n", `ha.prefix: "x/": must start with / and not end with one`},
		{"ha: {endpoints: [\"http://e:2379\"], name: \"a b\"}\n", `ha.name: "a b": no spaces or slashes`},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, password_env: SWITCHD_HA_TEST_PW}\n", "ha.username: required with a password"},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, cert_file: /nonexistent.pem}\n", "ha.cert_file"},
		{"ha: {endpoints: [\"http://e:2379\"], name: a, endpoint: x}\n", "endpoint"},
		{"ha:\n", "ha: empty"},
	} {
		t.Setenv("SWITCHD_HA_TEST_PW", "pw")
		_, err := ParseSite("s.yaml", []byte(cpSiteHead+tc.yaml))
		require.ErrorContains(t, err, tc.want, tc.yaml)
	}
}
