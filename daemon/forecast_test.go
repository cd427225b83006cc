package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestForecastEndToEnd publishes price forecasts with mosquitto_pub through
// a real Mosquitto to the daemon: a good one reaches the controller (and is
// logged and counted), malformed ones are rejected and counted under the
// price_forecast label, and the daemon keeps serving.
func TestForecastEndToEnd(t *testing.T) {
	port := startMosquitto(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("  broker: tcp://127.0.0.1:%d", port))
	t.Setenv("SWITCHD_TEST_TOKEN", testToken)
	core, logs := observer.New(zap.InfoLevel)
	base, _ := runDaemon(t, cfg, zap.New(core))
	pub := mosquittoPub(port)
	sendPrice(t, base, pub, 30)

	now := time.Now().UTC()
	good := fmt.Sprintf(`{"ts":%q,"start":%q,"interval":"15m","prices":[30,30,2500,30]}`,
		now.Format(time.RFC3339Nano), now.Truncate(15*time.Minute).Format(time.RFC3339))
	pub(t, "e2e/signals/price_forecast", good)
	for _, bad := range []string{`[30, 31]`, `{"ts":"x"}`, strings.Replace(good, "2500", "99999", 1)} {
		pub(t, "e2e/signals/price_forecast", bad)
	}
	require.Eventually(t, func() bool {
		_, m := getText(t, base+"/metrics")
		return strings.Contains(m, `switchd_signal_accepted_total{signal="price_forecast"} 1`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="malformed",signal="price_forecast"} 2`) &&
			strings.Contains(m, `switchd_signal_rejected_total{reason="out_of_range",signal="price_forecast"} 1`)
	}, 15*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return logs.FilterMessage("price forecast received").Len() == 1
	}, 15*time.Second, 50*time.Millisecond)
	f := logs.FilterMessage("price forecast received").All()[0].ContextMap()
	require.Equal(t, "e2e/signals/price_forecast", f["source"])
	require.EqualValues(t, 4, f["prices"])
	code, _ := getText(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
}
