package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/switchd/switchd/daemon/web"
)

const (
	alertsFile     = "prometheus/alerts.yaml"
	alertTestsFile = "prometheus/alerts_test.yaml"
	dashboardFile  = "grafana/switchd.json"
)

// recorder is a Registerer that keeps the collectors registered through it,
// so their descriptions can be read: a vector without a label set yet is
// described but never gathered.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
	r.Registerer.MustRegister(cs...)
}

// fqNameRE reads the name out of a *prometheus.Desc's String(), which is
// the only place a Desc shows it.
var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedSeries returns every series name switchd's /metrics can carry,
// read from the collectors web.NewMetrics registers: each metric's name,
// plus _bucket, _sum and _count for histograms.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recorder{Registerer: reg}
	web.NewMetrics(rec, "test")
	require.NotEmpty(t, rec.collectors)

	names := map[string]bool{}
	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		var wg sync.WaitGroup
		wg.Go(func() {
			c.Describe(ch)
			close(ch)
		})
		for d := range ch {
			m := fqNameRE.FindStringSubmatch(d.String())
			require.NotNil(t, m, "no fqName in %s", d)
			names[m[1]] = true
			switch c.(type) {
			case prometheus.Histogram, *prometheus.HistogramVec:
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+suffix] = true
				}
			}
		}
		wg.Wait()
	}

	// Whatever the registry gathers must have been found by Describe too:
	// the name parsing above cannot silently miss a series.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.NotEmpty(t, mfs)
	for _, mf := range mfs {
		require.True(t, names[mf.GetName()], "gathered %s, not described", mf.GetName())
	}
	return names
}

// metricNameRE finds switchd series names in PromQL. It matches upper case
// and colons too, so that a misspelt name is caught rather than cut short.
var metricNameRE = regexp.MustCompile(`\bswitchd_[A-Za-z0-9_:]+`)

// unknownSeries lists the switchd series names expr uses that are not in
// known, sorted and once each.
func unknownSeries(expr string, known map[string]bool) []string {
	var bad []string
	for _, n := range metricNameRE.FindAllString(expr, -1) {
		if !known[n] && !slices.Contains(bad, n) {
			bad = append(bad, n)
		}
	}
	sort.Strings(bad)
	return bad
}

// query is one PromQL expression and where it was found.
type query struct {
	where, expr string
}

// alertRules reads the alerting rules of alerts.yaml.
func alertRules(t *testing.T) []struct{ Alert, Expr string } {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile(alertsFile)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &f))
	var out []struct{ Alert, Expr string }
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s: a rule without alert:", g.Name)
			require.NotEmpty(t, r.Expr, "alert %s has no expr", r.Alert)
			out = append(out, struct{ Alert, Expr string }{r.Alert, r.Expr})
		}
	}
	require.NotEmpty(t, out, "no alerts in %s", alertsFile)
	return out
}

// panel is the part of a Grafana panel these tests read; rows nest panels.
type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Inputs        []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// dashboardQueries returns every panel target's expression, with Grafana's
// interval variables replaced by durations so that it is plain PromQL.
// Variables inside label matchers ("$instance") are strings to PromQL and
// stay.
func dashboardQueries(t *testing.T, d dashboard) []query {
	t.Helper()
	vars := strings.NewReplacer(
		"${__rate_interval}", "5m", "$__rate_interval", "5m",
		"${__interval}", "1m", "$__interval", "1m",
		"${__range}", "1h", "$__range", "1h",
	)
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %d %q has no query", p.ID, p.Title)
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %d %q, target %s: empty expression", p.ID, p.Title, tg.RefID)
				out = append(out, query{
					where: fmt.Sprintf("panel %d %q, target %s", p.ID, p.Title, tg.RefID),
					expr:  vars.Replace(tg.Expr),
				})
			}
		}
	}
	walk(d.Panels)
	return out
}

// promtool returns the path of promtool, skipping the test when it is
// missing unless SWITCHD_REQUIRE_PROMTOOL=1 (as CI sets it).
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SWITCHD_REQUIRE_PROMTOOL") == "1" {
			t.Fatalf("promtool required (SWITCHD_REQUIRE_PROMTOOL=1): %v", err)
		}
		t.Skipf("promtool not installed (Debian: apt-get install prometheus): %v", err)
	}
	return path
}

func runPromtool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// notInName is what a recording rule's name cannot hold.
var notInName = regexp.MustCompile(`[^A-Za-z0-9_:]+`)

// checkExprs has promtool parse each expression, as a recording rule in a
// rules file of its own making, named after where it was found so that
// promtool's message points at the panel or alert.
func checkExprs(t *testing.T, bin string, qs []query) (string, error) {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	rules := make([]rule, len(qs))
	for i, q := range qs {
		rules[i] = rule{Record: fmt.Sprintf("deploy:%d:%s", i, strings.Trim(notInName.ReplaceAllString(q.where, "_"), "_")), Expr: q.expr}
	}
	b, err := yaml.Marshal(map[string]any{
		"groups": []map[string]any{{"name": "deploy", "rules": rules}},
	})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "queries.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return runPromtool(t, bin, "check", "rules", path)
}

func TestExportedSeries(t *testing.T) {
	known := exportedSeries(t)
	for _, n := range []string{
		"switchd_build_info", "switchd_site_power_watts", "switchd_fleet_power_watts",
		"switchd_devices_unusable", "switchd_driver_errors_total",
		"switchd_driver_request_duration_seconds_bucket", "switchd_journal_append_duration_seconds_count",
	} {
		require.True(t, known[n], "%s not found among switchd's series", n)
	}
	require.False(t, known["switchd_site_power_watts_sum"], "a gauge has no _sum series")
}

// TestUnknownSeries checks the name check itself: a misspelt or invented
// name is reported, a histogram's _bucket is not.
func TestUnknownSeries(t *testing.T) {
	known := exportedSeries(t)
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"exported gauge", `switchd_site_power_watts{job="switchd"} > switchd_site_cap_watts`, nil},
		{"histogram bucket", `histogram_quantile(0.95, sum by (le) (rate(switchd_command_duration_seconds_bucket[5m])))`, nil},
		{"misspelt counter", `rate(switchd_decision_total[5m])`, []string{"switchd_decision_total"}},
		{"invented metric", `switchd_dr_compliance_ratio < 0.9`, []string{"switchd_dr_compliance_ratio"}},
		{"suffix on a gauge", `switchd_site_power_watts_sum`, []string{"switchd_site_power_watts_sum"}},
		{"case", `switchd_Site_power_watts`, []string{"switchd_Site_power_watts"}},
		{"twice, reported once", `switchd_nope + switchd_nope`, []string{"switchd_nope"}},
		{"label value is not a name", `up{job="switchd"} == 0`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, unknownSeries(tc.expr, known))
		})
	}
}

func TestAlertsUseExportedSeries(t *testing.T) {
	known := exportedSeries(t)
	for _, r := range alertRules(t) {
		require.Empty(t, unknownSeries(r.Expr, known), "alert %s uses series switchd does not export", r.Alert)
	}
}

func TestDashboardUsesExportedSeries(t *testing.T) {
	known := exportedSeries(t)
	d := readDashboard(t)
	qs := dashboardQueries(t, d)
	require.GreaterOrEqual(t, len(qs), 20, "the dashboard lost its queries")
	for _, q := range qs {
		require.Empty(t, unknownSeries(q.expr, known), "%s: %s", q.where, q.expr)
	}
	// Template variables query series too.
	for _, v := range d.Templating.List {
		require.Empty(t, unknownSeries(v.Definition+string(v.Query), known), "variable %s", v.Name)
	}
}

// TestDashboardDatasource checks that every panel reads the data source the
// importer chooses (input DS_PROMETHEUS), which a provisioned dashboard
// finds as the template variable of the same name.
func TestDashboardDatasource(t *testing.T) {
	d := readDashboard(t)
	require.Equal(t, "switchd-site", d.UID)
	require.GreaterOrEqual(t, d.SchemaVersion, 36)
	require.Len(t, d.Inputs, 1)
	require.Equal(t, "DS_PROMETHEUS", d.Inputs[0].Name)
	require.Equal(t, "prometheus", d.Inputs[0].PluginID)
	var hasVar bool
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" {
			hasVar = v.Type == "datasource"
		}
	}
	require.True(t, hasVar, "no datasource variable DS_PROMETHEUS")
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.JSONEq(t, `{"type":"prometheus","uid":"${DS_PROMETHEUS}"}`, string(p.Datasource), "panel %d %q", p.ID, p.Title)
		}
	}
	walk(d.Panels)
}

// TestQueriesParse has promtool parse every dashboard query and every alert
// expression; an expression promtool rejects must fail the check.
func TestQueriesParse(t *testing.T) {
	bin := promtool(t)
	qs := dashboardQueries(t, readDashboard(t))
	for _, r := range alertRules(t) {
		qs = append(qs, query{where: "alert " + r.Alert, expr: r.Expr})
	}
	out, err := checkExprs(t, bin, qs)
	require.NoError(t, err, "promtool check rules:\n%s", out)
	require.Contains(t, out, fmt.Sprintf("SUCCESS: %d rules found", len(qs)))

	t.Run("a broken expression fails", func(t *testing.T) {
		out, err := checkExprs(t, bin, []query{{where: "bad", expr: `sum by (fleet (switchd_fleet_devices)`}})
		require.Error(t, err, "promtool accepted a broken expression:\n%s", out)
	})
	t.Run("a Grafana variable left in a range fails", func(t *testing.T) {
		out, err := checkExprs(t, bin, []query{{where: "bad", expr: `rate(switchd_decisions_total[$__rate]`}})
		require.Error(t, err, "promtool accepted a Grafana variable:\n%s", out)
	})
}

// TestAlertRules runs promtool on alerts.yaml and its unit tests.
func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	out, err := runPromtool(t, bin, "check", "rules", alertsFile)
	require.NoError(t, err, "promtool check rules:\n%s", out)
	out, err = runPromtool(t, bin, "test", "rules", alertTestsFile)
	require.NoError(t, err, "promtool test rules:\n%s", out)
	require.Contains(t, out, "SUCCESS")
}

// TestEveryAlertIsTested checks that alerts_test.yaml makes every alert
// both fire and stay quiet.
func TestEveryAlertIsTested(t *testing.T) {
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string      `yaml:"alertname"`
				ExpAlerts []yaml.Node `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	b, err := os.ReadFile(alertTestsFile)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &f))
	require.Equal(t, []string{filepath.Base(alertsFile)}, f.RuleFiles)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		require.True(t, fires[r.Alert], "no test makes %s fire", r.Alert)
		require.True(t, quiet[r.Alert], "no test keeps %s quiet", r.Alert)
	}
}

// TestDashboardCoversTheSite checks that the dashboard shows what an
// operator watches (issue 9): the price, site power by fleet and mode,
// decisions, device failures, input ages, the broker, and demand-response
// compliance; each by the series that carries it.
func TestDashboardCoversTheSite(t *testing.T) {
	qs := dashboardQueries(t, readDashboard(t))
	for what, series := range map[string]string{
		"price":                       "switchd_signal_effective_value",
		"site power":                  "switchd_site_power_watts",
		"power by fleet and mode":     "switchd_fleet_power_watts",
		"decisions":                   "switchd_decisions_total",
		"device failures":             "switchd_fleet_devices_failed",
		"input ages":                  "switchd_signal_age_seconds",
		"broker connection":           "switchd_mqtt_connected",
		"demand-response events":      "switchd_dr_events",
		"demand-response targets met": "switchd_dr_alarms_total",
	} {
		found := false
		for _, q := range qs {
			found = found || slices.Contains(metricNameRE.FindAllString(q.expr, -1), series)
		}
		require.True(t, found, "no panel shows %s (%s)", what, series)
	}
}

// TestGrafanaProvisioning checks the provisioning files the README installs:
// the dashboard provider reads the directory the README copies the
// dashboard to, and the data source is a Prometheus at the port Debian's
// prometheus listens on.
func TestGrafanaProvisioning(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)

	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	data, err := os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &dash))
	require.Equal(t, 1, dash.APIVersion)
	require.Len(t, dash.Providers, 1)
	require.Equal(t, "file", dash.Providers[0].Type)
	require.Contains(t, string(readme), "install -D -m 0644 deploy/grafana/switchd.json "+dash.Providers[0].Options.Path+"/switchd.json",
		"the README copies the dashboard where the provider reads")
	require.Contains(t, string(readme), "deploy/grafana/provisioning/dashboards.yaml /etc/grafana/provisioning/dashboards/")

	var src struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	data, err = os.ReadFile(filepath.Join("grafana", "provisioning", "datasources.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &src))
	require.Equal(t, 1, src.APIVersion)
	require.Len(t, src.Datasources, 1)
	require.Equal(t, "prometheus", src.Datasources[0].Type)
	require.Equal(t, "http://127.0.0.1:9090", src.Datasources[0].URL)
	require.True(t, src.Datasources[0].IsDefault, "the dashboard's DS_PROMETHEUS variable picks the default Prometheus")
	require.Contains(t, string(readme), "deploy/grafana/provisioning/datasources.yaml /etc/grafana/provisioning/datasources/")
}

// TestLicense: the repository ships the Apache License 2.0 the README names.
func TestLicense(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("..", "LICENSE"))
	require.NoError(t, err)
	require.Contains(t, string(text), "Apache License")
	require.Contains(t, string(text), "Version 2.0, January 2004")
	require.Contains(t, string(text), "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION")
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), "Apache License 2.0: see `LICENSE`")
}
