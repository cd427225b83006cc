// Package sim replays traces through the controller on a virtual clock: trace
// reader, virtual clock, runner, baselines, oracle and report. It must not
// import the daemon's I/O packages (MQTT, HTTP).
package sim
