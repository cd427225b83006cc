// Package deploy holds what installs and watches switchd on a machine, as
// files rather than code: the systemd unit (switchd.service), an example
// production site file and policy for /etc/switchd, Prometheus alert rules
// with their promtool unit tests and a scrape config (prometheus/), and a
// Grafana dashboard with the provisioning files that load it and a local
// Prometheus (grafana/).
//
// Its tests check those files against the daemon: every PromQL expression
// parses (promtool) and names only series that daemon/web.NewMetrics
// registers. It has no code of its own and must not be imported.
package deploy
