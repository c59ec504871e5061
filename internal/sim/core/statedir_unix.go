//go:build unix

package core

import (
	"fmt"
	"os"
	"syscall"
)

// checkStateDirOwner requires the state dir to be owned by the current
// (effective) user and to be neither group- nor world-writable.
func checkStateDirOwner(dir string, fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("state dir %s is group- or world-writable (mode %#o); run chmod go-w on it or use another dir", dir, perm)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state dir %s: cannot read its owner", dir)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("state dir %s is owned by uid %d, not the current user (uid %d)", dir, st.Uid, uid)
	}
	return nil
}
