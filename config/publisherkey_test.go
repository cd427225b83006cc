package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd"
)

// TestPublisherKey loads signals.price.publisher_key in every accepted form,
// and checks that each bad one is an error at its key.
func TestPublisherKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	require.NoError(t, err)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}))

	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "keys"), 0o700))
	writeFiles(t, dir, map[string]string{
		"keys/pub.pem": pubPEM, "pub.b64": base64.StdEncoding.EncodeToString(pub) + "\n",
		"priv.pem": privPEM, "ec.pem": ecPEM, "junk.txt": "hello\n",
	})
	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") }
	load := func(t *testing.T, key string) (*Site, error) {
		t.Helper()
		yaml := siteHead + "mqtt: {broker: 'tcp://10.0.0.5:1883'}\nsignals:\n  price:\n    publisher_key: " + key + "\n" + fleetYAML
		writeFiles(t, dir, map[string]string{"site.yaml": yaml})
		return LoadSite(filepath.Join(dir, "site.yaml"))
	}
	for name, key := range map[string]string{
		"raw base64":             base64.StdEncoding.EncodeToString(pub),
		"spki base64":            base64.StdEncoding.EncodeToString(spki),
		"inline pem":             "|\n      " + indent(pubPEM),
		"pem file, relative":     "keys/pub.pem",
		"base64 file, absolute":  filepath.Join(dir, "pub.b64"),
		"pem file, quoted":       `"keys/pub.pem"`,
		"raw base64 with spaces": "'  " + base64.StdEncoding.EncodeToString(pub) + "  '",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := load(t, key)
			require.NoError(t, err)
			require.Equal(t, pub, s.Daemon.Signals[switchd.SignalPrice].PublisherKey)
			require.Nil(t, s.Daemon.Signals[switchd.SignalGridLoad].PublisherKey, "other signals stay unsigned")
		})
	}
	for _, tc := range []struct{ name, key, msg string }{
		{"private key", "priv.pem", "a private key: give the publisher's public key"},
		{"ecdsa key", "ec.pem", "*ecdsa.PublicKey public key, want Ed25519"},
		{"not a key", "junk.txt", "holds no Ed25519 public key"},
		{"missing file", "nope.pem", "nor a file: " + filepath.Join(dir, "nope.pem") + " does not exist"},
		{"short base64", "AAAA", "base64 of 3 bytes, not an Ed25519 public key"},
		{"wrong pem type", "|\n      -----BEGIN CERTIFICATE-----\n      AAAA\n      -----END CERTIFICATE-----", `a PEM "CERTIFICATE" block, want "PUBLIC KEY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.key)
			require.Error(t, err)
			require.Contains(t, err.Error(), "site.yaml:5: signals.price.publisher_key: ")
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	t.Run("price forecast", func(t *testing.T) {
		yaml := siteHead + "mqtt: {broker: 'tcp://10.0.0.5:1883'}\nsignals:\n  price_forecast: {publisher_key: keys/pub.pem}\n" + fleetYAML
		s, err := ParseSite(filepath.Join(dir, "site.yaml"), []byte(yaml))
		require.NoError(t, err)
		require.Equal(t, pub, s.Daemon.Forecast.PublisherKey)
		require.Equal(t, "switchd/s/signals/price_forecast", s.Daemon.Forecast.Topic)
		require.Nil(t, s.Daemon.Signals[switchd.SignalPrice].PublisherKey)
	})
	t.Run("demand response", func(t *testing.T) {
		yaml := siteHead + "mqtt: {broker: 'tcp://10.0.0.5:1883'}\ndemand_response: {publisher_key: keys/pub.pem}\n" + fleetYAML
		s, err := ParseSite(filepath.Join(dir, "site.yaml"), []byte(yaml))
		require.NoError(t, err)
		require.Equal(t, pub, s.DR.PublisherKey)
		yaml = siteHead + "mqtt: {broker: 'tcp://10.0.0.5:1883'}\ndemand_response: {publisher_key: priv.pem}\n" + fleetYAML
		_, err = ParseSite(filepath.Join(dir, "site.yaml"), []byte(yaml))
		require.ErrorContains(t, err, "site.yaml:3: demand_response.publisher_key: ")
	})
	t.Run("no mqtt", func(t *testing.T) {
		yaml := siteHead + "signals:\n  price: {publisher_key: keys/pub.pem}\n" + fleetYAML
		_, err := ParseSite(filepath.Join(dir, "site.yaml"), []byte(yaml))
		require.ErrorContains(t, err, "signals.price.publisher_key: needs an mqtt section")
	})
}
