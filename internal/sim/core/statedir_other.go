//go:build !unix

package core

import "os"

// checkStateDirOwner accepts any owner outside Unix: there permission bits
// and owners do not map onto os.FileMode and syscall.Stat_t, and access is
// left to the platform's ACLs.
func checkStateDirOwner(string, os.FileInfo) error { return nil }
