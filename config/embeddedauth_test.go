package config

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// hash is a well-formed mosquitto_passwd line's hash (the password does not
// matter here: the config only reads user names).
const hash = "$7$101$AAAAAAAAAAAAAAAA$AAAA"

func TestEmbeddedAuth(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"users":       "# made by mosquitto_passwd\nmeter:" + hash + "\nscada:" + hash + "\n\n",
		"plain-users": "meter:s3cret\n",
		"empty-users": "\n",
	})
	load := func(t *testing.T, mqtt string) (*Site, error) {
		t.Helper()
		writeFiles(t, dir, map[string]string{"site.yaml": siteHead + mqtt + fleetYAML})
		return LoadSite(filepath.Join(dir, "site.yaml"))
	}

	t.Run("users and acl beyond loopback", func(t *testing.T) {
		s, err := load(t, `mqtt:
  embedded: 0.0.0.0:1883
  users_file: users
  acl:
    meter: {publish: [price, grid_load, price_forecast]}
    scada: {read_state: true}
`)
		require.NoError(t, err)
		m := s.Daemon.MQTT
		require.Equal(t, "tcp://127.0.0.1:1883", m.Broker, "switchd dials its broker on loopback")
		require.Equal(t, filepath.Join(dir, "users"), m.UsersFile)
		require.Equal(t, map[string]UserACL{
			"meter": {Publish: []string{"price", "grid_load", "price_forecast"}},
			"scada": {ReadState: true},
		}, m.ACL)
		require.False(t, m.AllowAnonymous)
		require.Empty(t, s.Warnings)
	})
	t.Run("publish all", func(t *testing.T) {
		s, err := load(t, "mqtt: {embedded: '127.0.0.1:1883', users_file: users, acl: {meter: {publish: all}}}\n")
		require.NoError(t, err)
		require.Len(t, s.Daemon.MQTT.ACL["meter"].Publish, 7)
		require.Contains(t, s.Daemon.MQTT.ACL["meter"].Publish, "cp_alert")
	})
	t.Run("anonymous beyond loopback warns", func(t *testing.T) {
		s, err := load(t, "mqtt:\n  embedded: '[::]:1883'\n  allow_anonymous: true\n")
		require.NoError(t, err)
		require.True(t, s.Daemon.MQTT.AllowAnonymous)
		require.Equal(t, "tcp://[::1]:1883", s.Daemon.MQTT.Broker)
		require.Len(t, s.Warnings, 1)
		require.Contains(t, s.Warnings[0], "site.yaml:4: mqtt.allow_anonymous: the embedded broker on \"[::]:1883\" lets anyone who reaches it in without a password")
	})
	t.Run("anonymous on loopback is quiet", func(t *testing.T) {
		s, err := load(t, "mqtt: {embedded: '127.0.0.1:1883', allow_anonymous: true}\n")
		require.NoError(t, err)
		require.Empty(t, s.Warnings)
	})
	for _, tc := range []struct{ name, mqtt, want string }{
		{"beyond loopback, anonymous false", "mqtt:\n  embedded: 10.0.0.5:1883\n  allow_anonymous: false\n",
			`site.yaml:3: mqtt.embedded: "10.0.0.5:1883" is not a loopback address: beyond loopback the embedded broker needs users_file`},
		{"user not in the file", "mqtt:\n  embedded: 127.0.0.1:1883\n  users_file: users\n  acl:\n    mallory: {publish: price}\n",
			`site.yaml:6: mqtt.acl.mallory: user "mallory" is not in ` + filepath.Join(dir, "users")},
		{"acl without users", "mqtt:\n  embedded: 127.0.0.1:1883\n  acl: {meter: {read_state: true}}\n",
			"site.yaml:4: mqtt.acl: needs users_file"},
		{"unknown signal", "mqtt:\n  embedded: 127.0.0.1:1883\n  users_file: users\n  acl:\n    meter:\n      publish: [price, prise]\n",
			`site.yaml:7: mqtt.acl.meter.publish[1]: unknown signal "prise"`},
		{"plain-text password", "mqtt: {embedded: '127.0.0.1:1883', users_file: plain-users}\n",
			"plain-users:1: want user:hash as mosquitto_passwd writes it (a plain-text password is refused)"},
		{"no users", "mqtt: {embedded: '127.0.0.1:1883', users_file: empty-users}\n", "has no users"},
		{"missing users file", "mqtt: {embedded: '127.0.0.1:1883', users_file: nope}\n", "mqtt.users_file: " + filepath.Join(dir, "nope") + " does not exist"},
		{"with an external broker", "mqtt:\n  broker: tcp://10.0.0.5:1883\n  allow_anonymous: false\n",
			"site.yaml:4: mqtt.allow_anonymous: configures the embedded broker: give embedded, or set these rights in your broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.mqtt)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
