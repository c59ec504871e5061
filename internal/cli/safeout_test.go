package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSafeWriterDropsControlCharacters(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	w := safeWriter{&b}
	in := "web-\x1b[2J\x1b]0;pwned\x07app\u009b31m\tok\r\nnext ünïcode\n"
	n, err := w.Write([]byte(in))
	require.NoError(t, err)
	require.Equal(t, len(in), n)
	require.Equal(t, "web-?[2J?]0;pwned?app?31m\tok\r\nnext ünïcode\n", b.String())

	b.Reset()
	_, _ = w.Write([]byte("plain text\n"))
	require.Equal(t, "plain text\n", b.String())
}
