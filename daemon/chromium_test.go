package daemon_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd/daemon/web"
	"github.com/switchd/switchd/internal/testenv"
)

// TestStatusPageChartsInChromium runs a real daemon (embedded broker),
// publishes cheap power, a spike and cheap power again, and loads the status
// page in headless chromium: the charts must be drawn from the daemon's
// history, with the decisions marked, and the page must raise no error (its
// own error catcher and the browser console both stay silent). Skipped
// without chromium unless SWITCHD_REQUIRE_CHROMIUM is set, as CI does.
func TestStatusPageChartsInChromium(t *testing.T) {
	bin := testenv.Chromium(t)
	_, base, _, p := startEmbedded(t)
	pub := pubWith(p)
	// The history keeps at most a point a second: each phase lasts longer.
	sendPrice(t, base, pub, 30)
	waitMining(t, base, 100)
	time.Sleep(1100 * time.Millisecond)
	sendPrice(t, base, pub, 2500)
	waitMining(t, base, 0)
	time.Sleep(1100 * time.Millisecond)
	sendPrice(t, base, pub, 25)
	waitMining(t, base, 100)
	time.Sleep(1100 * time.Millisecond)

	// The history the page draws from has the spike and the decisions.
	var h web.HistoryView
	getJSON(t, base+"/api/v1/history", &h)
	require.GreaterOrEqual(t, len(h.T), 3)
	maxPrice := 0.0
	// Points a tick apart may be merged (a mean), so the spike is in the
	// point's maximum.
	for _, v := range h.PriceMaxUSDPerMWh {
		if v != nil {
			maxPrice = max(maxPrice, *v)
		}
	}
	require.InDelta(t, 2500, maxPrice, 1e-9)
	require.GreaterOrEqual(t, len(h.Decisions), 2, "start, curtail (and restart)")
	require.Len(t, h.Fleets, 2)
	require.Equal(t, "asics", h.Fleets[0].Name)
	require.Len(t, h.Fleets[0].RunningKW, len(h.T))

	dir := t.TempDir()
	dom, logs := testenv.RunChromium(t, bin, dir, "--dump-dom", base+"/")
	charts := regexp.MustCompile(`<div id="charts"[^>]*>`).FindString(dom)
	require.NotEmpty(t, charts, "no chart container in the DOM; browser log:\n%s", logs)
	require.Contains(t, charts, `data-rendered="ok"`, "charts not drawn; browser log:\n%s\nDOM errors: %s", logs, chartErrors(dom))
	require.Empty(t, chartErrors(dom), "the page caught an error")
	testenv.CheckConsole(t, logs)

	attr := func(name string) int {
		m := regexp.MustCompile(name + `="(\d+)"`).FindStringSubmatch(charts)
		require.NotNil(t, m, "no %s on the chart container", name)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		return n
	}
	require.GreaterOrEqual(t, attr("data-points"), 3)
	require.GreaterOrEqual(t, attr("data-decisions"), 2)
	require.GreaterOrEqual(t, attr("data-series"), 1+4, "the price line and running/waking of two fleets")

	// The price line has a point per history point, drawn in the SVG.
	price := regexp.MustCompile(`(?s)<svg id="chart-price".*?</svg>`).FindString(dom)
	require.NotEmpty(t, price)
	line := regexp.MustCompile(`<polyline class="series" points="([^"]+)"`).FindStringSubmatch(price)
	require.NotNil(t, line, "no price line")
	require.GreaterOrEqual(t, len(strings.Fields(line[1])), 3)
	require.GreaterOrEqual(t, strings.Count(price, `<g class="decision"`), 2, "decisions marked on the price chart")
	power := regexp.MustCompile(`(?s)<svg id="chart-power".*?</svg>`).FindString(dom)
	require.Equal(t, 4, strings.Count(power, `<polygon class="series"`), "running and waking of each fleet")
	require.Contains(t, power, `data-layer="asics running"`)
	require.Contains(t, power, `data-layer="gpus waking"`)
}

// chartErrors is what the page's error catcher wrote, if anything.
func chartErrors(dom string) string {
	m := regexp.MustCompile(`(?s)<pre id="chart-errors"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom)
	if m == nil {
		return "(no #chart-errors element)"
	}
	return strings.TrimSpace(m[1])
}
