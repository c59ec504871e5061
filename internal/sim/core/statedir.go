package core

import (
	"fmt"
	"os"
)

// checkStateDir refuses a state dir another user could have prepared or
// could change: clients trust the ca.pem and sim.json found there, so a
// dir someone else can write to would let them point rotor at their own
// "Azure". It must be a real directory, not a symbolic link (os.Lstat),
// and pass the platform's ownership check (checkStateDirOwner). Start calls
// it after MkdirAll, so a dir Start has just created (0700) always passes.
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
	return checkStateDirOwner(dir, fi)
}
