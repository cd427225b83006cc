// Package mqttio connects switchd to MQTT: it receives grid signals from
// broker topics (Source), publishes the daemon's state on the same
// connection, runs an embedded broker for sites without one (Broker), and
// replays trace files as signal messages for `switchd replay` and the demo
// (Publisher, Replay).
//
// It is the only package of the project that imports the paho client. It is
// an I/O package of the daemon shell and must not be imported by the
// controller core (controller, policies), which stays free of network and
// wall-clock code.
package mqttio
