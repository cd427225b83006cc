// Package trace reads and writes grid traces: CSV files of timestamped
// signal values (price, grid load, hashprice, inference price, AI demand),
// streamed row by row, merged by time, or collected into a Series; and the
// project's SYNTHETIC sample generator. A data format is a leaf: it imports
// the root package only, and the simulator, the replay publisher and the
// daemon's demo all read traces through it.
package trace
