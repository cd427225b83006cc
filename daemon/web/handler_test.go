package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

const testToken = "s3cret-token"

// clientTimeout bounds every test request.
const clientTimeout = 10 * time.Second

type testServer struct {
	url     string
	backend *fakeBackend
	reg     *prometheus.Registry
	metrics *Metrics
}

// newTestServer serves a fake backend with token testToken unless o says
// otherwise (o.Backend, o.Gatherer and o.Metrics are filled in).
func newTestServer(t *testing.T, o Options) *testServer {
	t.Helper()
	b := newFakeBackend()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "v0.0.0-test")
	o.Backend = b
	o.Gatherer = reg
	o.Metrics = m
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	srv := httptest.NewServer(NewHandler(o))
	t.Cleanup(srv.Close)
	return &testServer{url: srv.URL, backend: b, reg: reg, metrics: m}
}

func staticToken(tok string) func() (string, error) {
	return func() (string, error) { return tok, nil }
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, auth, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: clientTimeout}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func jsonError(t *testing.T, r response) string {
	t.Helper()
	require.Equal(t, "application/json", r.header.Get("Content-Type"), r.body)
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
	require.Len(t, e, 1, r.body)
	msg, ok := e["error"].(string)
	require.True(t, ok, r.body)
	require.NotEmpty(t, msg)
	return msg
}

func TestRoutes(t *testing.T) {
	ts := newTestServer(t, Options{Token: staticToken(testToken), Version: "v1.2.3"})
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		contains           string
	}{
		{"healthz", "GET", "/healthz", 200, "text/plain; charset=utf-8", "ok"},
		{"readyz", "GET", "/readyz", 200, "text/plain; charset=utf-8", "ready"},
		{"state", "GET", "/api/v1/state", 200, "application/json", `"site": "texas-1"`},
		{"plan", "GET", "/api/v1/plan", 200, "application/json", `"fired": [`},
		{"metrics", "GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", "switchd_build_info"},
		{"status page", "GET", "/", 200, "text/html; charset=utf-8", "texas-1"},
		{"unknown page", "GET", "/nope", 404, "text/plain; charset=utf-8", "404"},
		{"unknown api", "GET", "/api/v1/nope", 404, "application/json", "no such endpoint"},
		{"state wrong method", "POST", "/api/v1/state", 405, "application/json", "not allowed"},
		{"plan wrong method", "DELETE", "/api/v1/plan", 405, "application/json", "not allowed"},
		{"override wrong method", "GET", "/api/v1/override", 405, "application/json", "POST, DELETE"},
		{"devices", "GET", "/api/v1/devices?fleet=asics", 200, "application/json", `"matched": 0`},
		{"devices wrong method", "POST", "/api/v1/devices?fleet=asics", 405, "application/json", "not allowed"},
		{"devices without fleet", "GET", "/api/v1/devices", 400, "application/json", "fleet: required"},
		{"devices unknown fleet", "GET", "/api/v1/devices?fleet=nope", 404, "application/json", `unknown fleet \"nope\"`},
		{"devices bad limit", "GET", "/api/v1/devices?fleet=asics&limit=0", 400, "application/json", "limit: want a whole number from 1 to 5000"},
		{"devices huge limit", "GET", "/api/v1/devices?fleet=asics&limit=100000", 400, "application/json", "limit:"},
		{"devices bad offset", "GET", "/api/v1/devices?fleet=asics&offset=-1", 400, "application/json", "offset:"},
		{"devices bad problem", "GET", "/api/v1/devices?fleet=asics&problem=yes", 400, "application/json", "problem: want 1 or 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, ts.url+tt.path, "", "")
			require.Equal(t, tt.status, r.status, r.body)
			require.Equal(t, tt.contentType, r.header.Get("Content-Type"))
			require.Contains(t, r.body, tt.contains)
			require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
			if tt.contentType == "application/json" && tt.status >= 400 {
				jsonError(t, r)
			}
		})
	}
}

func TestDevicesPaging(t *testing.T) {
	ts := newTestServer(t, Options{})
	var devs []switchd.DeviceStatus
	for i := range 1200 {
		ds := switchd.DeviceStatus{Addr: fmt.Sprintf("10.1.%d.%d:4028", i/250, i%250), Mode: "mining", Commanded: "mining", HashrateTHs: 200}
		if i%100 == 7 {
			ds.Mode, ds.Problem, ds.LastError = "unknown", "unreachable", "dial: i/o timeout"
		}
		devs = append(devs, ds)
	}
	ts.backend.devices = map[string][]switchd.DeviceStatus{"asics": devs}

	get := func(query string) DevicesView {
		t.Helper()
		r := do(t, "GET", ts.url+"/api/v1/devices?"+query, "", "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		var v DevicesView
		require.NoError(t, json.Unmarshal([]byte(r.body), &v), r.body)
		return v
	}
	v := get("fleet=asics")
	require.Equal(t, 1200, v.Total)
	require.Equal(t, 1200, v.Matched)
	require.Len(t, v.Devices, DefaultDevicesLimit, "capped by default")
	require.Equal(t, "10.1.0.0:4028", v.Devices[0].Addr)
	require.Nil(t, v.Devices[0].PowerW)

	v = get("fleet=asics&offset=1190&limit=50")
	require.Len(t, v.Devices, 10)
	require.Equal(t, 1190, v.Offset)

	v = get("fleet=asics&problem=1&limit=5")
	require.Equal(t, 12, v.Matched)
	require.Len(t, v.Devices, 5)
	for _, d := range v.Devices {
		require.Equal(t, "unreachable", d.Problem)
	}
	v = get("fleet=asics&problem=1&offset=10")
	require.Len(t, v.Devices, 2)
	require.Equal(t, "10.1.4.107:4028", v.Devices[1].Addr)

	// The raw JSON has the documented field names, power_w null when the
	// device does not say.
	r := do(t, "GET", ts.url+"/api/v1/devices?fleet=asics&problem=1&limit=1", "", "")
	for _, k := range []string{`"addr"`, `"mode": "unknown"`, `"commanded": "mining"`, `"hashrate_ths"`, `"power_w": null`, `"problem": "unreachable"`, `"last_error"`, `"reported": true`} {
		require.Contains(t, r.body, k)
	}
}

func TestReadyzReadyWithNote(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.backend.reason = "fleet asics has 3 unusable devices (unreachable 3)"
	r := do(t, "GET", ts.url+"/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "ready: fleet asics has 3 unusable devices (unreachable 3)\n", r.body)
}

func TestReadyzNotReady(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.backend.ready, ts.backend.reason = false, "signal price never received"
	r := do(t, "GET", ts.url+"/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "signal price never received\n", r.body)
	// Liveness is independent of readiness.
	require.Equal(t, http.StatusOK, do(t, "GET", ts.url+"/healthz", "", "").status)
}

func TestNoGathererNoMetricsRoute(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Options{Backend: newFakeBackend()}))
	t.Cleanup(srv.Close)
	r := do(t, "GET", srv.URL+"/metrics", "", "")
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestStateAndPlanJSON(t *testing.T) {
	ts := newTestServer(t, Options{})

	r := do(t, "GET", ts.url+"/api/v1/state", "", "")
	require.Equal(t, http.StatusOK, r.status)
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	var s StateView
	require.NoError(t, dec.Decode(&s))
	require.Equal(t, cannedState(), s)
	// Key names are the API: check a few by name, not through the type.
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	for _, k := range []string{"site", "time", "power_kw", "site_cap_kw", "ready", "fail_safe", "stale_signals", "signals", "fleets", "overrides", "decisions", "policy"} {
		require.Contains(t, raw, k)
	}
	hp := raw["signals"].([]any)[2].(map[string]any)
	require.Nil(t, hp["value"], "a signal never received has a null value")
	require.InDelta(t, 48.0, hp["fallback"], 0)

	r = do(t, "GET", ts.url+"/api/v1/plan", "", "")
	require.Equal(t, http.StatusOK, r.status)
	dec = json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	var p PlanView
	require.NoError(t, dec.Decode(&p))
	require.Equal(t, cannedPlan(), p)
	require.Contains(t, r.body, `"plan": {`)
	require.Contains(t, r.body, `"constraints": {`)
}

func TestOverrideAuth(t *testing.T) {
	const body = `{"fleet":"asics","mode":"off","duration":"30m","reason":"maintenance"}`
	tests := []struct {
		name      string
		token     func() (string, error)
		auth      string
		status    int
		msg       string // in the JSON error
		challenge string // WWW-Authenticate
		applied   bool
	}{
		{name: "valid", token: staticToken(testToken), auth: "Bearer " + testToken, status: 201, applied: true},
		{name: "scheme case-insensitive", token: staticToken(testToken), auth: "bearer " + testToken, status: 201, applied: true},
		{name: "no header", token: staticToken(testToken), status: 401, msg: "missing bearer token", challenge: `Bearer realm="switchd"`},
		{name: "wrong token", token: staticToken(testToken), auth: "Bearer nope", status: 401, msg: "invalid bearer token", challenge: `Bearer realm="switchd", error="invalid_token"`},
		{name: "token prefix", token: staticToken(testToken), auth: "Bearer " + testToken[:4], status: 401, msg: "invalid bearer token", challenge: `Bearer realm="switchd", error="invalid_token"`},
		{name: "basic scheme", token: staticToken(testToken), auth: "Basic dXNlcjpwYXNz", status: 401, msg: "missing bearer token", challenge: `Bearer realm="switchd"`},
		{name: "empty bearer", token: staticToken(testToken), auth: "Bearer ", status: 401, msg: "missing bearer token", challenge: `Bearer realm="switchd"`},
		{name: "disabled empty token", token: staticToken(""), auth: "Bearer " + testToken, status: 403, msg: "http.token_file"},
		{name: "disabled no token func", auth: "Bearer " + testToken, status: 403, msg: "http.token_env"},
		{name: "token unreadable", token: func() (string, error) { return "", errors.New("open /etc/switchd/token: permission denied") }, auth: "Bearer " + testToken, status: 500, msg: "override token unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Options{Token: tt.token})
			r := do(t, "POST", ts.url+"/api/v1/override", tt.auth, body)
			require.Equal(t, tt.status, r.status, r.body)
			require.Equal(t, tt.challenge, r.header.Get("WWW-Authenticate"))
			sets, _ := ts.backend.calls()
			if !tt.applied {
				require.Contains(t, jsonError(t, r), tt.msg)
				require.Empty(t, sets, "a refused request never reaches the backend")
				return
			}
			require.Equal(t, []OverrideRequest{{Fleet: "asics", Mode: "off", Duration: "30m", Reason: "maintenance"}}, sets)
			var ov OverrideView
			require.NoError(t, json.Unmarshal([]byte(r.body), &ov))
			require.Equal(t, "ov-1", ov.ID)
			require.Equal(t, "asics", ov.Fleet)
			require.Equal(t, testNow.Add(30*time.Minute), ov.Until)
		})
	}
}

func TestOverrideSiteCap(t *testing.T) {
	ts := newTestServer(t, Options{Token: staticToken(testToken)})
	r := do(t, "POST", ts.url+"/api/v1/override", "Bearer "+testToken, `{"site_cap_kw": 5000, "duration": "2h"}`)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var ov OverrideView
	require.NoError(t, json.Unmarshal([]byte(r.body), &ov))
	require.NotNil(t, ov.SiteCapKW)
	require.InDelta(t, 5000, *ov.SiteCapKW, 0)
	require.Empty(t, ov.Fleet)
}

func TestOverrideTokenRotation(t *testing.T) {
	var tok atomic.Value
	tok.Store("first")
	ts := newTestServer(t, Options{Token: func() (string, error) { return tok.Load().(string), nil }})
	const body = `{"fleet":"gpus","mode":"off","duration":"1h"}`
	require.Equal(t, http.StatusCreated, do(t, "POST", ts.url+"/api/v1/override", "Bearer first", body).status)
	tok.Store("second")
	require.Equal(t, http.StatusUnauthorized, do(t, "POST", ts.url+"/api/v1/override", "Bearer first", body).status)
	require.Equal(t, http.StatusCreated, do(t, "POST", ts.url+"/api/v1/override", "Bearer second", body).status)
}

func TestOverrideBadRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		backendErr error
		status     int
		msg        string
		reached    bool // the backend saw the request
	}{
		{name: "not json", body: `fleet=asics`, status: 400, msg: "invalid JSON body"},
		{name: "truncated", body: `{"fleet":"asics"`, status: 400, msg: "invalid JSON body"},
		{name: "unknown field", body: `{"fleet":"asics","mode":"off","duration":"1h","force":true}`, status: 400, msg: `unknown field "force"`},
		{name: "wrong type", body: `{"site_cap_kw":"lots","duration":"1h"}`, status: 400, msg: "invalid JSON body"},
		{name: "trailing data", body: `{"fleet":"asics","mode":"off","duration":"1h"} {"fleet":"gpus"}`, status: 400, msg: "unexpected data after the JSON object"},
		{name: "array", body: `[1,2]`, status: 400, msg: "invalid JSON body"},
		{name: "empty", body: "", status: 400, msg: "empty request body"},
		{name: "too large", body: `{"reason":"` + strings.Repeat("x", MaxOverrideBodyBytes) + `"}`, status: 413, msg: "larger than 65536 bytes"},
		{
			name: "backend rejects", body: `{"fleet":"nope","mode":"off","duration":"1h"}`,
			backendErr: fmt.Errorf("set override: %w", &RequestError{Msg: `unknown fleet "nope"`}),
			status:     400, msg: `unknown fleet "nope"`, reached: true,
		},
		{
			name: "backend fails", body: `{"fleet":"asics","mode":"off","duration":"1h"}`,
			backendErr: errors.New("journal: write /var/lib/switchd/journal: no space left on device"),
			status:     500, msg: "internal error", reached: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Options{Token: staticToken(testToken)})
			ts.backend.setErr = tt.backendErr
			r := do(t, "POST", ts.url+"/api/v1/override", "Bearer "+testToken, tt.body)
			require.Equal(t, tt.status, r.status, r.body)
			msg := jsonError(t, r)
			require.Contains(t, msg, tt.msg)
			require.NotContains(t, msg, "no space left", "internals stay in the log")
			sets, _ := ts.backend.calls()
			require.Equal(t, tt.reached, len(sets) == 1)
		})
	}
}

func TestClearOverrides(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		auth    string
		err     error
		status  int
		want    string // body or error message
		cleared []string
	}{
		{name: "one fleet", query: "?fleet=asics", auth: "Bearer " + testToken, status: 200, want: `"removed": 2`, cleared: []string{"asics"}},
		{name: "site cap", query: "?fleet=site-cap", auth: "Bearer " + testToken, status: 200, want: `"removed": 2`, cleared: []string{"site-cap"}},
		{name: "all", auth: "Bearer " + testToken, status: 200, want: `"removed": 2`, cleared: []string{""}},
		{name: "unauthorized", query: "?fleet=asics", status: 401, want: "missing bearer token"},
		{name: "wrong token", query: "?fleet=asics", auth: "Bearer x", status: 401, want: "invalid bearer token"},
		{
			name: "unknown fleet", query: "?fleet=nope", auth: "Bearer " + testToken,
			err: &RequestError{Msg: `unknown fleet "nope"`}, status: 400, want: `unknown fleet "nope"`, cleared: []string{"nope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Options{Token: staticToken(testToken)})
			ts.backend.clearErr = tt.err
			r := do(t, "DELETE", ts.url+"/api/v1/override"+tt.query, tt.auth, "")
			require.Equal(t, tt.status, r.status, r.body)
			if tt.status == 200 {
				var got map[string]int
				require.NoError(t, json.Unmarshal([]byte(r.body), &got))
				require.Equal(t, map[string]int{"removed": 2}, got)
			} else {
				require.Contains(t, jsonError(t, r), tt.want)
			}
			_, cleared := ts.backend.calls()
			require.Equal(t, tt.cleared, cleared)
		})
	}
}

func TestOverrideLogsAndCounts(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	ts := newTestServer(t, Options{Token: staticToken(testToken), Logger: zap.New(core)})

	do(t, "POST", ts.url+"/api/v1/override", "", `{"fleet":"asics","mode":"off","duration":"1h"}`)
	do(t, "POST", ts.url+"/api/v1/override", "Bearer "+testToken, `{"fleet":"asics","mode":"off","duration":"1h"}`)
	do(t, "DELETE", ts.url+"/api/v1/override?fleet=asics", "Bearer "+testToken, "")

	refused := logs.FilterMessage("override refused").All()
	require.Len(t, refused, 1)
	require.Equal(t, zapcore.WarnLevel, refused[0].Level)
	require.Equal(t, "missing_token", refused[0].ContextMap()["reason"])

	set := logs.FilterMessage("override set").All()
	require.Len(t, set, 1)
	require.Equal(t, zapcore.InfoLevel, set[0].Level)
	require.Equal(t, "asics", set[0].ContextMap()["fleet"])
	require.Equal(t, "ov-1", set[0].ContextMap()["id"])
	// The token never reaches the log.
	for _, e := range logs.All() {
		require.NotContains(t, fmt.Sprint(e.ContextMap()), testToken)
	}

	cleared := logs.FilterMessage("overrides cleared").All()
	require.Len(t, cleared, 1)
	require.Equal(t, int64(2), cleared[0].ContextMap()["removed"])

	require.InDelta(t, 1, testutil.ToFloat64(ts.metrics.overrideReqs.WithLabelValues(resultUnauthorized)), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ts.metrics.overrideReqs.WithLabelValues(resultCreated)), 0)
	require.InDelta(t, 1, testutil.ToFloat64(ts.metrics.overrideReqs.WithLabelValues(resultCleared)), 0)
}

func TestNewHandlerNilBackend(t *testing.T) {
	require.PanicsWithValue(t, "web: NewHandler: Options.Backend is nil", func() { NewHandler(Options{}) })
}

// TestConcurrentRequests runs the race detector over readers, override
// writers and metric updates at once.
func TestConcurrentRequests(t *testing.T) {
	ts := newTestServer(t, Options{Token: staticToken(testToken)})
	// require must not fail from another goroutine: collect statuses.
	statuses := make(chan int, 60)
	get := func(method, path, auth, body string) {
		req, err := http.NewRequestWithContext(t.Context(), method, ts.url+path, strings.NewReader(body))
		if err != nil {
			statuses <- -1
			return
		}
		req.Header.Set("Authorization", auth)
		resp, err := (&http.Client{Timeout: clientTimeout}).Do(req)
		if err != nil {
			statuses <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		statuses <- resp.StatusCode
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for range 10 {
				switch i % 3 {
				case 0:
					get("GET", "/", "", "")
				case 1:
					get("POST", "/api/v1/override", "Bearer "+testToken, `{"fleet":"asics","mode":"off","duration":"1h"}`)
				default:
					s, p := cannedState(), cannedPlan()
					ts.metrics.Update(&s, &p)
					get("GET", "/metrics", "", "")
				}
			}
		})
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, st)
	}
	sets, _ := ts.backend.calls()
	require.Len(t, sets, 20)
}
