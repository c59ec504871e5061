//go:build !unix

package sqlite

// lockFile is a no-op where flock does not exist: rotor's own migrations
// still re-check inside IMMEDIATE transactions, but River's are not
// serialised across processes there.
func lockFile(string) (func(), error) { return func() {}, nil }
