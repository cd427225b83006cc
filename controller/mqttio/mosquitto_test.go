package mqttio

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/switchd/switchd"
	"github.com/switchd/switchd/config"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestSourceMosquitto receives signals published by mosquitto_pub through
// a real Mosquitto.
func TestSourceMosquitto(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	now := time.Date(2024, 8, 20, 19, 30, 0, 0, time.UTC)
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr(), ClientID: "switchd-mosq"}, "dc1/signals", &fakeClock{t: now}, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	m.Pub("dc1/signals/hashprice", `{"ts":"2024-08-20T14:00:00-05:00","value":48.2}`)
	got := r.waitSamples(t, 1)
	require.Equal(t, switchd.SignalHashprice, got[0].Signal)
	require.Equal(t, 48.2, got[0].Value)
	require.True(t, now.Add(-30*time.Minute).Equal(got[0].Time), "time %s", got[0].Time)

	m.Pub("dc1/signals/hashprice", `{"ts":"2024-08-20T13:00:00-05:00","value":47}`)
	m.Pub("dc1/signals/inference_price", "not a number")
	m.Pub("dc1/signals/inference_price", "")
	require.Equal(t, []rejection{
		{switchd.SignalHashprice, ReasonOutOfOrder},
		{switchd.SignalInferencePrice, ReasonNotANumber},
		{switchd.SignalInferencePrice, ReasonMalformed},
	}, r.waitRejects(t, 3))

	m.Pub("dc1/signals/inference_price", "2.35")
	got = r.waitSamples(t, 2)
	require.Equal(t, switchd.Sample{Time: now, Signal: switchd.SignalInferencePrice, Value: 2.35}, got[1])
}

// TestSourceBrokerRestart kills Mosquitto under a connected source and
// starts it again on the same port: the source reconnects, subscribes
// again (the clean session lost the subscriptions) and receives.
func TestSourceBrokerRestart(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr()}, "dc1/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
	m.Pub("dc1/signals/price", "40")
	r.waitSamples(t, 1)

	m.Stop()
	require.Eventually(t, func() bool { return !s.Connected() }, waitMax, 5*time.Millisecond)
	require.Equal(t, []bool{true, false}, r.Conns())
	require.Error(t, s.Publish("dc1/state", []byte("x"), true), "publishing while down fails at once")

	m.Restart()
	require.Eventually(t, s.Connected, waitMax, 10*time.Millisecond)
	require.Equal(t, []bool{true, false, true}, r.Conns())
	m.Pub("dc1/signals/price", "41.5")
	got := r.waitSamples(t, 2)
	require.Equal(t, 41.5, got[1].Value)
	require.NoError(t, s.Publish("dc1/state", []byte("up"), true))
}

// TestSourceStartsBeforeBroker starts the source while no broker listens:
// Start returns at once and the connection is made when the broker comes.
func TestSourceStartsBeforeBroker(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	m := mqtttest.Start(t)
	m.Stop()
	r := &recorder{}
	start := time.Now()
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr()}, "dc1/signals", nil, r)
	require.Less(t, time.Since(start), time.Second, "Start does not wait for the broker")
	require.False(t, s.Connected())
	m.Restart()
	require.Eventually(t, s.Connected, waitMax, 10*time.Millisecond)
	m.Pub("dc1/signals/grid_load", "65000")
	require.Equal(t, 65000.0, r.waitSamples(t, 1)[0].Value)
}

// TestSourceAuth runs Mosquitto with a password file: a wrong password never
// connects, the right one does.
func TestSourceAuth(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	passwd := mqtttest.RequireTool(t, "mosquitto_passwd")
	pwFile := filepath.Join(t.TempDir(), "passwords")
	out, err := exec.Command(passwd, "-b", "-c", pwFile, "switchd", "s3cret").CombinedOutput()
	require.NoError(t, err, "mosquitto_passwd: %s", out)
	m := mqtttest.Start(t, "allow_anonymous false", "password_file "+pwFile)

	t.Run("wrong password", func(t *testing.T) {
		r := &recorder{}
		s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr(), Username: "switchd", Password: "wrong"}, "dc1/signals", nil, r)
		// Past the first retry: the refusal is final, not a slow start.
		require.Never(t, s.Connected, connectRetryInterval+500*time.Millisecond, 50*time.Millisecond)
		require.Empty(t, r.Conns())
	})
	t.Run("right password", func(t *testing.T) {
		r := &recorder{}
		s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr(), Username: "switchd", Password: "s3cret"}, "dc1/signals", nil, r)
		require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)
		m.Pub("dc1/signals/price", "33", "-u", "switchd", "-P", "s3cret")
		require.Equal(t, 33.0, r.waitSamples(t, 1)[0].Value)
	})
}

// TestSourceTLS runs Mosquitto with TLS and client certificates: a source
// with the CA and a client certificate connects and receives what another
// source publishes; one without the client certificate never connects.
func TestSourceTLS(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	dir := t.TempDir()
	pki := writeTestPKI(t, dir)
	m := mqtttest.Start(t,
		"cafile "+pki.ca, "certfile "+pki.serverCert, "keyfile "+pki.serverKey,
		"require_certificate true", "tls_version tlsv1.2")
	base := config.MQTTConfig{Broker: "ssl://" + m.Addr(), CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}

	r := &recorder{}
	s := newTestSource(t, base, "dc1/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	pubCfg := base
	pubCfg.ClientID = "tls-publisher"
	p, err := NewSource(SourceOptions{MQTT: pubCfg, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	require.NoError(t, p.Start(context.Background()))
	require.Eventually(t, p.Connected, waitMax, 5*time.Millisecond)
	require.NoError(t, p.Publish("dc1/signals/price", []byte("27.5"), false))
	require.Equal(t, 27.5, r.waitSamples(t, 1)[0].Value)

	noCert := base
	noCert.CertFile, noCert.KeyFile = "", ""
	r2 := &recorder{}
	s2 := newTestSource(t, noCert, "dc1/signals", nil, r2)
	require.Never(t, s2.Connected, connectRetryInterval+500*time.Millisecond, 50*time.Millisecond)
}

// testPKI is the files of a throwaway CA, server and client certificate.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// writeTestPKI makes a CA and, signed by it, a server certificate for
// 127.0.0.1 and a client certificate, as PEM files in dir.
func writeTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return writePEM(name, "EC PRIVATE KEY", der)
	}
	notBefore := time.Now().Add(-time.Hour)
	notAfter := time.Now().Add(24 * time.Hour)

	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchd test ca"},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: notBefore, NotAfter: notAfter, IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		require.NoError(t, err)
		return der, k
	}
	serverDER, serverKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	clientDER, clientKey := leaf(3, "switchd", x509.ExtKeyUsageClientAuth, nil)
	return testPKI{
		ca:         writePEM("ca.pem", "CERTIFICATE", caDER),
		serverCert: writePEM("server.pem", "CERTIFICATE", serverDER),
		serverKey:  writeKey("server-key.pem", serverKey),
		clientCert: writePEM("client.pem", "CERTIFICATE", clientDER),
		clientKey:  writeKey("client-key.pem", clientKey),
	}
}

// TestSourceTLSVerifiesBroker runs Mosquitto with TLS: a source trusting
// another CA never connects (the broker's certificate is checked, not just
// used to encrypt), and one whose CA signed it does.
func TestSourceTLSVerifiesBroker(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	pki := writeTestPKI(t, t.TempDir())
	other := writeTestPKI(t, t.TempDir())
	m := mqtttest.Start(t, "cafile "+pki.ca, "certfile "+pki.serverCert, "keyfile "+pki.serverKey, "tls_version tlsv1.2")

	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "ssl://" + m.Addr(), CAFile: other.ca, ClientID: "wrong-ca"}, "dc1/signals", nil, r)
	require.Never(t, s.Connected, connectRetryInterval+500*time.Millisecond, 50*time.Millisecond)
	require.Empty(t, r.Conns())

	r2 := &recorder{}
	s2 := newTestSource(t, config.MQTTConfig{Broker: "ssl://" + m.Addr(), CAFile: pki.ca, ClientID: "right-ca"}, "dc1/signals", nil, r2)
	require.Eventually(t, s2.Connected, waitMax, 5*time.Millisecond)
}

// TestSourcePasswordRotation rotates switchd's password while it runs:
// the broker's password file and switchd's password file are changed and
// the broker restarted; the source reconnects with the new password, read
// from its file at the reconnection, with no restart of its own.
func TestSourcePasswordRotation(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	passwd := mqtttest.RequireTool(t, "mosquitto_passwd")
	dir := t.TempDir()
	brokerUsers := filepath.Join(dir, "passwords")
	out, err := exec.Command(passwd, "-b", "-c", brokerUsers, "switchd", "old-pw").CombinedOutput()
	require.NoError(t, err, "mosquitto_passwd: %s", out)
	m := mqtttest.Start(t, "allow_anonymous false", "password_file "+brokerUsers)
	pwFile := filepath.Join(dir, "switchd.pass")
	require.NoError(t, os.WriteFile(pwFile, []byte("old-pw\n"), 0o600))

	r := &recorder{}
	s := newTestSource(t, config.MQTTConfig{Broker: "tcp://" + m.Addr(), Username: "switchd", Password: "old-pw", PasswordFile: pwFile}, "dc1/signals", nil, r)
	require.Eventually(t, s.Connected, waitMax, 5*time.Millisecond)

	m.Stop()
	out, err = exec.Command(passwd, "-b", brokerUsers, "switchd", "new-pw").CombinedOutput()
	require.NoError(t, err, "mosquitto_passwd: %s", out)
	require.NoError(t, os.WriteFile(pwFile, []byte("new-pw\n"), 0o600))
	m.Restart()
	require.Eventually(t, s.Connected, waitMax, 10*time.Millisecond)
	m.Pub("dc1/signals/price", "31", "-u", "switchd", "-P", "new-pw")
	require.Equal(t, 31.0, r.waitSamples(t, 1)[0].Value)
}
