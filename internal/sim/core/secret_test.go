package core

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewSecretTextLooksLikeEntras(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		s, err := NewSecretText()
		require.NoError(t, err)
		require.Len(t, s, 40)
		require.Equal(t, "8Q~", s[3:6])
		for _, c := range s {
			require.True(t, strings.ContainsRune(secretAlphabet+"~", c), "char %q", c)
		}
		require.False(t, seen[s])
		seen[s] = true
	}
}
