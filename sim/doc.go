// Package sim replays traces through the controller on a virtual clock:
// the runner, the baselines and the report, measured against the
// perfect-foresight bound of sim/oracle. Traces are read with package
// trace. It must not import the daemon's I/O packages (MQTT, HTTP), and
// nothing below it imports it.
package sim
