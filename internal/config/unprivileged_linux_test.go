//go:build linux

package config

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unprivilegedEnv marks the child process rerunAsNobody starts.
const unprivilegedEnv = "ROTOR_TEST_UNPRIVILEGED"

// rerunAsNobody runs the current subtest again in a child process as user
// nobody when the test runs as root, as CI does: root passes every
// permission check, so a test of an unwritable directory would otherwise
// never run there. It reports whether it did (the caller then returns;
// the child's result is this subtest's).
func rerunAsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	require.Empty(t, os.Getenv(unprivilegedEnv), "the child is still root")
	// A directory nobody may use: the test binary (go test builds it in a
	// directory only root may read) and the child's temporary files.
	shared, err := os.MkdirTemp("", "rotor-unprivileged-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(shared) })
	require.NoError(t, os.Chmod(shared, 0o1777))
	// A hard link, not a copy: a copy's open write descriptor, inherited
	// by a process another parallel test forks meanwhile, makes the exec
	// fail with "text file busy" (golang.org/issue/22315).
	bin := filepath.Join(shared, "config.test")
	if err := os.Link(os.Args[0], bin); err != nil {
		copyFile(t, os.Args[0], bin)
	}

	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	run := func() ([]byte, error) {
		cmd := exec.Command(bin, "-test.run="+strings.Join(parts, "/"), "-test.v", "-test.count=1")
		cmd.Dir = shared
		cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+shared, "HOME="+shared)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.CombinedOutput()
	}
	out, err := run()
	for i := 0; i < 5 && errors.Is(err, syscall.ETXTBSY); i++ { // a copied binary may still be busy
		time.Sleep(100 * time.Millisecond)
		out, err = run()
	}
	require.NoError(t, err, "the subtest as user nobody:\n%s", out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "the subtest ran as user nobody:\n%s", out)
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
