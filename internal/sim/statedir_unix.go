//go:build unix

package sim

import (
	"fmt"
	"os"
	"syscall"
)

// checkStateDir refuses a state dir another user could have prepared or
// could change: clients trust the ca.pem and sim.json found there, so a
// dir someone else can write to would let them point rotor at their own
// "Azure". It must be a real directory (not a symlink), owned by the
// current user, and neither group- nor world-writable. Start calls it after
// MkdirAll, so a dir it has just created (0700) always passes.
func checkStateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("state dir %s is a symbolic link; use the directory it points to", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
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
