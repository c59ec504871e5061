package azure

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenObjectID(t *testing.T) {
	t.Parallel()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	oid, err := tokenObjectID(enc(`{"alg":"RS256"}`) + "." + enc(`{"oid":"sp-1","tid":"t"}`) + ".sig")
	require.NoError(t, err)
	require.Equal(t, "sp-1", oid)

	for name, tok := range map[string]string{
		"not a jwt":    "abc",
		"bad base64":   "a.!!!.c",
		"bad json":     "a." + enc("{") + ".c",
		"no oid claim": "a." + enc(`{"tid":"t"}`) + ".c",
	} {
		_, err := tokenObjectID(tok)
		require.Error(t, err, name)
	}
}
