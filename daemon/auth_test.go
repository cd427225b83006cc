package daemon_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchd/switchd/controller/mqttio"
	"github.com/switchd/switchd/internal/mqtttest"
)

// TestEmbeddedBrokerSecured runs the daemon with its embedded broker on
// every interface, a password file made by mosquitto_passwd, per-user
// rights and a signed price, and publishes with mosquitto_pub as a site's
// feeds would: anonymous and wrong-password clients are refused, a reader
// cannot publish a price, the price publisher's unsigned or forged prices
// are refused and counted, and its signed price drives the site.
func TestEmbeddedBrokerSecured(t *testing.T) {
	mqtttest.CheckNoLeaks(t)
	passwd := mqtttest.RequireTool(t, "mosquitto_passwd")
	pubTool := mqtttest.RequireTool(t, "mosquitto_pub")
	dir := t.TempDir()
	users := filepath.Join(dir, "mqtt-users")
	for _, u := range [][2]string{{"meter", "meter-pw"}, {"scada", "scada-pw"}} {
		args := []string{"-b", users, u[0], u[1]}
		if u[0] == "meter" {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command(passwd, args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	port := mqtttest.FreePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf(`  embedded: 0.0.0.0:%d
  users_file: mqtt-users
  acl:
    meter: {publish: price}
    scada: {read_state: true}`, port))
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	signed := strings.Replace(string(data), "price: {max_age: 1h}", "price: {max_age: 1h, publisher_key: "+base64.StdEncoding.EncodeToString(pub)+"}", 1)
	require.NotEqual(t, string(data), signed)
	require.NoError(t, os.WriteFile(cfg, []byte(signed), 0o600))
	base := startDaemon(t, cfg)

	publish := func(msg string, auth ...string) error {
		args := append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(port), "-q", "1", "-t", "e2e/signals/price", "-m", msg}, auth...)
		out, err := exec.Command(pubTool, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	require.Error(t, publish("10"), "anonymous")
	require.Error(t, publish("10", "-u", "meter", "-P", "wrong"), "wrong password")
	// scada may log in but not publish: at QoS 1 under MQTT 3.1.1 the
	// broker drops the connection, so mosquitto_pub fails or the price
	// never arrives; either way nothing is counted below.
	_ = publish(string(mqttio.Sign(priv, "e2e/signals/price", time.Now(), 9999)), "-u", "scada", "-P", "scada-pw")

	meter := []string{"-u", "meter", "-P", "meter-pw"}
	require.NoError(t, publish("2500", meter...))
	_, forger, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	require.NoError(t, publish(string(mqttio.Sign(forger, "e2e/signals/price", time.Now(), 2500)), meter...))
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, `switchd_signal_rejected_total{reason="unsigned",signal="price"} 1`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="bad_signature",signal="price"} 1`)
	}, 15*time.Second, 50*time.Millisecond)

	require.NoError(t, publish(string(mqttio.Sign(priv, "e2e/signals/price", time.Now(), 2500)), meter...))
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, `switchd_signal_value{signal="price"} 2500`)
	}, 15*time.Second, 50*time.Millisecond)
	_, m := getText(t, base+"/metrics")
	require.False(t, strings.Contains(m, `switchd_signal_value{signal="price"} 9999`), "scada published a price")
	require.False(t, strings.Contains(m, `reason="replayed"`), "nothing was replayed")
}
