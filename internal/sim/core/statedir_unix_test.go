//go:build unix

package core

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckStateDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := func(name string, perm os.FileMode) string {
		d := filepath.Join(base, name)
		require.NoError(t, os.Mkdir(d, 0o700))
		require.NoError(t, os.Chmod(d, perm)) // Mkdir's mode is subject to umask
		return d
	}
	require.NoError(t, checkStateDir(dir("private", 0o700)))
	require.NoError(t, checkStateDir(dir("readable", 0o755)))
	for name, perm := range map[string]os.FileMode{"group-writable": 0o770, "world-writable": 0o757, "open": 0o777} {
		err := checkStateDir(dir(name, perm))
		require.ErrorContains(t, err, "group- or world-writable", name)
	}

	link := filepath.Join(base, "link")
	require.NoError(t, os.Symlink(filepath.Join(base, "private"), link))
	require.ErrorContains(t, checkStateDir(link), "symbolic link")
	file := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.ErrorContains(t, checkStateDir(file), "not a directory")

	if os.Geteuid() != 0 {
		t.Log("not root: cannot make a dir owned by someone else; owner check not exercised")
		return
	}
	theirs := dir("theirs", 0o700)
	require.NoError(t, os.Chown(theirs, 4242, 4242))
	require.ErrorContains(t, checkStateDir(theirs), "owned by uid 4242")
}

func TestStartRefusesWritableStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	s, err := New(Options{StateDir: dir, Seed: "apps=1"})
	require.NoError(t, err)
	err = s.Start(t.Context())
	require.ErrorContains(t, err, "group- or world-writable")
	_, statErr := os.Stat(filepath.Join(dir, "ca.pem"))
	require.ErrorIs(t, statErr, os.ErrNotExist, "nothing is written to a refused dir")
	require.Nil(t, s.Info())
}
