package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStatusPage(t *testing.T) {
	ts := newTestServer(t, Options{Version: "v1.2.3"})
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'none'")

	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		"<title>switchd · texas-1</title>",
		"version v1.2.3",
		"READY",
		// signals, with units, ages, stale marking and fallbacks
		"42.50 USD/MWh",
		"12s",
		"78,000 MW",
		"20m 00s",
		`<tr class="stale">`,
		"STALE",
		"stale: grid_load",
		"never received",
		"48.00 USD/PH/day",
		`<span class="badge warn">fallback</span>`,
		"price <strong>42.50 USD/MWh</strong> · 12s old",
		// power against the cap
		"<strong>6,100.0 kW</strong> of 10.00 MW cap (61 %)",
		`class="fill ok" style="width: 61%"`,
		// fleets
		"<h3>asics ",
		"<h3>gpus ",
		"driver up",
		"driver down",
		"asic · 1,000 devices",
		// the mining row shows the miners mining; those still waking
		// are a row of their own
		"<td>mining</td><td class=\"n\">500</td><td class=\"n diff\">600</td><td class=\"n\">3,500.0 kW</td>",
		"<td>waking → mining</td><td class=\"n\">100</td><td></td><td class=\"n\">350.0 kW</td>",
		"last change: 2024-08-20 19:25:00 UTC (price-spike): off → mining × 500",
		"<td>inference</td><td class=\"n\">150</td><td class=\"n\">150</td><td class=\"n\">2,250.0 kW</td>",
		"<td>moving</td><td class=\"n\">0</td>",
		"<td>failed</td><td class=\"n\">2</td>",
		// an error text is escaped, never markup
		"dial 10.0.0.5:4028: &lt;connection refused&gt;",
		// overrides and decisions
		"1 override(s) in force",
		"<code>ov-7</code>",
		"gpus forced inference",
		"customer demo",
		"asics: off → mining × 500",
		"price-spike",
		"override:gpus",
		// unusable devices by reason, zeros shown calmly, problem devices
		// with their (escaped) errors, measured transition times
		`<span class="badge warn">3 unusable</span>`,
		"unreachable 2 · auth 0 · protocol 0 · fault 1 · stuck 0 · drifted (re-commanded) 1",
		"unusable: none",
		"<td><code>10.0.0.7:4028</code></td><td>unreachable</td><td>unknown</td><td>mining</td><td>—</td><td>dial 10.0.0.7:4028: i/o timeout</td>",
		"&lt;hashboard 2&gt; dead",
		`and 1 more: <a href="/api/v1/devices?fleet=asics&amp;problem=1">`,
		`<tr><td>off-&gt;mining</td><td class="n">12</td><td class="n">41.2 s</td><td class="n">55.0 s</td></tr>`,
		// policy
		"/etc/switchd/policy.yaml",
		"deadbeef0123",
		"3 rules, fail-safe price: curtail",
	} {
		require.Contains(t, r.body, want)
	}
	require.NotContains(t, r.body, "<connection refused>")
	// Two scripts: the history as data, and the chart script the CSP
	// allows by its hash.
	require.Equal(t, 2, strings.Count(r.body, "<script"))
	require.Contains(t, r.body, `<script type="application/json" id="history">{"site":"texas-1",`)
	require.Contains(t, r.body, "<script>"+chartJS+"</script>")
	require.Contains(t, r.header.Get("Content-Security-Policy"), "script-src "+scriptHash(chartJS)+";")
	require.NotContains(t, r.body, "http://", "no external assets")
	require.NotContains(t, r.body, "https://", "no external assets")
	require.NotContains(t, r.body, "FAIL-SAFE")
	require.NotContains(t, r.body, "<hashboard 2>")
	require.NotContains(t, r.body, "JOURNAL FAILING")
}

func TestStatusPageJournalFailing(t *testing.T) {
	ts := newTestServer(t, Options{})
	since := testNow.Add(-3 * time.Minute)
	ts.backend.state.Journal = &JournalView{Path: "/var/lib/switchd/journal.log", Seq: 42, Hash: "abc", Error: "journal append: fsync: input/output error", ErrorSince: &since}
	ts.backend.state.Decisions[0].Held = []CommandView{{Fleet: "asics", From: "off", To: "mining", Count: 40}}
	ts.backend.ready, ts.backend.reason = true, "fleet asics has 3 unusable devices (unreachable 2, fault 1)"
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, http.StatusOK, r.status)
	for _, want := range []string{
		`<span class="badge bad">JOURNAL FAILING</span>`,
		"journal append: fsync: input/output error (since 2024-08-20 19:27:00 UTC): starts are held back, sheds still go out",
		"held (journal failing): asics: off → mining × 40",
		`<span class="badge good">READY</span> fleet asics has 3 unusable devices (unreachable 2, fault 1)`,
	} {
		require.Contains(t, r.body, want)
	}
}

func TestStatusPageStates(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(b *fakeBackend)
		want    []string
		notWant []string
	}{
		{
			name: "not ready in fail-safe over the cap",
			mutate: func(b *fakeBackend) {
				b.ready, b.reason = false, "driver gpus has not answered"
				b.state.Ready = false
				b.state.FailSafe = "curtail"
				b.state.PowerKW = 12000
				b.state.Signals[0].Stale = true
				b.state.Signals = append(b.state.Signals, SignalView{Name: "ai_demand", MaxAge: "1h0m0s"})
			},
			want: []string{
				"NOT READY", "driver gpus has not answered", "FAIL-SAFE: curtail",
				`class="fill over" style="width: 100%"`, "12.00 MW",
				`price <strong>42.50 USD/MWh</strong> · 12s old <span class="badge bad">STALE</span>`,
				`<span class="badge muted">not received</span>`,
			},
			notWant: []string{">READY<"},
		},
		{
			name: "empty state",
			mutate: func(b *fakeBackend) {
				b.ready, b.reason = false, ""
				b.state = StateView{Site: "new-site"}
			},
			want:    []string{"new-site", "NOT READY", "not ready", "no signals configured", "no fleets", "none yet", `style="width: 0%"`},
			notWant: []string{"override(s) in force"},
		},
		{
			name: "markup in names is escaped",
			mutate: func(b *fakeBackend) {
				b.state.Site = `<b>site</b>`
				b.state.Overrides[0].Reason = `"><script>alert(1)</script>`
			},
			want:    []string{"&lt;b&gt;site&lt;/b&gt;", "&lt;script&gt;"},
			notWant: []string{"<script>alert", "<b>site</b>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Options{})
			tt.mutate(ts.backend)
			r := do(t, "GET", ts.url+"/", "", "")
			require.Equal(t, http.StatusOK, r.status)
			for _, w := range tt.want {
				require.Contains(t, r.body, w)
			}
			for _, w := range tt.notWant {
				require.NotContains(t, r.body, w)
			}
		})
	}
}

func TestStatusPageDecisionLimit(t *testing.T) {
	ts := newTestServer(t, Options{})
	d := ts.backend.state.Decisions[0]
	ts.backend.state.Decisions = nil
	for range maxPageDecisions + 3 {
		ts.backend.state.Decisions = append(ts.backend.state.Decisions, d)
	}
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, maxPageDecisions, strings.Count(r.body, "asics: off → mining × 500"))
	require.Contains(t, r.body, "and 3 earlier")
}

func TestFormatting(t *testing.T) {
	t.Run("numbers", func(t *testing.T) {
		for _, c := range []struct {
			v    float64
			dec  int
			want string
		}{
			{0, 0, "0"},
			{999, 0, "999"},
			{1000, 0, "1,000"},
			{1234567.891, 2, "1,234,567.89"},
			{-1234.5, 1, "-1,234.5"},
			{-0.001, 1, "0.0"},
			{123456, 0, "123,456"},
		} {
			require.Equal(t, c.want, fmtNum(c.v, c.dec))
		}
	})
	t.Run("power", func(t *testing.T) {
		require.Equal(t, "9,999.0 kW", fmtKW(9999))
		require.Equal(t, "12.50 MW", fmtKW(12500))
	})
	t.Run("ages", func(t *testing.T) {
		for _, c := range []struct {
			s    float64
			want string
		}{
			{0, "0s"},
			{59.4, "59s"},
			{61, "1m 01s"},
			{3600, "1h 00m"},
			{90061, "1d 01h"},
			{-3, "in the future"},
		} {
			require.Equal(t, c.want, fmtAge(c.s))
		}
	})
	t.Run("signal units", func(t *testing.T) {
		require.Equal(t, "2.10 USD/GPU-h", fmtSignal("inference_price", 2.1))
		require.Equal(t, "2,500 GPUs", fmtSignal("ai_demand", 2500))
		require.Equal(t, "1.5", fmtSignal("other", 1.5))
	})
	t.Run("bar", func(t *testing.T) {
		for _, c := range []struct {
			power, capKW float64
			pct          int
			class        string
		}{
			{0, 0, 0, "ok"},
			{50, 100, 50, "ok"},
			{95, 100, 95, "high"},
			{150, 100, 100, "over"},
			{-5, 100, 0, "ok"},
		} {
			pct, class := bar(c.power, c.capKW)
			require.Equal(t, c.pct, pct)
			require.Equal(t, c.class, class)
		}
	})
	t.Run("mode order", func(t *testing.T) {
		got := modeOrder(map[string]int{"zeta": 1, "inference": 1}, map[string]int{"off": 1}, map[string]float64{"mining": 1, "alpha": 0})
		require.Equal(t, []string{"off", "mining", "inference", "alpha", "zeta"}, got)
	})
}

// TestStatusPageBrokerAndWaiting: an unreachable broker and what the
// controller waits for show on the page, not only in the log.
func TestStatusPageBrokerAndWaiting(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.backend.state.MQTT = &MQTTView{Broker: "tcp://mqtt.site.local:1883", Connected: false, Since: testNow.Add(-5 * time.Minute),
		Attempts: 31, LastError: "dial tcp 10.0.0.9:1883: connect: connection refused"}
	ts.backend.state.Waiting = []string{"the first price signal since the start (at most its max_age)", "40 devices of asics to finish their transition"}
	r := do(t, "GET", ts.url+"/", "", "")
	require.Equal(t, http.StatusOK, r.status)
	for _, want := range []string{
		`<span class="badge bad">MQTT BROKER DISCONNECTED</span>`,
		"MQTT broker <code>tcp://mqtt.site.local:1883</code>: <span class=\"badge bad\">disconnected</span> since 2024-08-20 19:25:00 UTC, 31 attempt(s) · dial tcp 10.0.0.9:1883: connect: connection refused",
		"waiting for: the first price signal since the start (at most its max_age); 40 devices of asics to finish their transition",
	} {
		require.Contains(t, r.body, want)
	}

	ts.backend.state.MQTT = &MQTTView{Broker: "tcp://mqtt.site.local:1883", Connected: true, Since: testNow}
	ts.backend.state.Waiting = nil
	r = do(t, "GET", ts.url+"/", "", "")
	require.Contains(t, r.body, `<span class="badge good">connected</span> since`)
	require.NotContains(t, r.body, "DISCONNECTED")
	require.NotContains(t, r.body, `id="waiting"`)
}
