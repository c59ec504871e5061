//go:build !linux

package config

import (
	"os"
	"testing"
)

// rerunAsNobody skips the subtest as root where rotor's tests cannot
// change user (CI runs on Linux, where they do).
func rerunAsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		t.Skip("root passes every permission check")
	}
	return false
}
