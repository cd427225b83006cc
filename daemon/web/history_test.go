package web

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHistoryEndpoint(t *testing.T) {
	ts := newTestServer(t, Options{})
	r := do(t, "GET", ts.url+"/api/v1/history", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var got HistoryView
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	want := cannedHistory()
	require.Equal(t, want.T, got.T)
	require.Equal(t, want.Fleets, got.Fleets)
	require.Nil(t, got.PriceUSDPerMWh[2], "no price is null, not zero")
	require.Len(t, got.Decisions, 1)
	require.Equal(t, "asics mining→off ×1000", got.Decisions[0].Summary)
	// The documented column names.
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	for _, k := range []string{"site", "time", "from", "step_seconds", "tz_offset_seconds", "t", "price_usd_mwh",
		"price_min_usd_mwh", "price_max_usd_mwh", "site_cap_kw", "fleets", "decisions"} {
		require.Contains(t, raw, k)
	}

	r = do(t, "POST", ts.url+"/api/v1/history", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
}

func TestStatusPageEmbedsHistory(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.backend.history.Decisions[0].Summary = `</script><script>alert(1)</script>`
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `<div id="charts">`)
	require.Contains(t, r.body, `<pre id="chart-errors" hidden></pre>`)
	// Data that looks like markup cannot end the data block.
	require.NotContains(t, r.body, "<script>alert")
	require.Contains(t, r.body, `\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e`)
}
