//go:build !unix

package sim

import (
	"fmt"
	"os"
)

// checkStateDir refuses a state dir that is a symbolic link or not a
// directory. Outside Unix, permission bits and owners do not map onto
// os.FileMode, so the owner and writability checks of statedir_unix.go are
// left to the platform's ACLs.
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
	return nil
}
