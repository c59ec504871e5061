// Package servebench measures `rotor serve` as operators run it: the real
// binary, in a process of its own, on a database that already holds a
// large inventory, driven over HTTP. What a test process holds (the
// simulator, the seeding, the test binary) is not rotor's memory, so the
// numbers here are read from the child process alone (/proc/PID/status).
// It holds benchmarks only.
package servebench
