//go:build !unix

package config

// writable cannot be asked without writing on this platform; opening the
// store reports it instead.
func writable(string, bool) error { return nil }
