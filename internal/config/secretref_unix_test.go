//go:build unix

package config

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecretFileIsAPipe: a {file: …} reference to a named pipe is refused
// at once; opening it would wait for a writer that never comes.
func TestSecretFileIsAPipe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fifo := filepath.Join(b.dir, "pipe")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	m := base()
	conn(m)["client_secret"] = map[string]any{"file": fifo}
	_, err := b.parse(t, m)
	require.ErrorContains(t, err, `connections[0] "contoso": client_secret: secret file `+fifo+` is not a regular file`)
}
