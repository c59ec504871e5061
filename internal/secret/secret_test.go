package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

const value = "abc8Q~not-for-your-eyes-0123456789"

// TestValueNeverPrints tries every way a value usually leaks: fmt verbs,
// structs holding it, JSON, text marshalling and slog.
func TestValueNeverPrints(t *testing.T) {
	t.Parallel()
	v := New(value)
	holder := struct {
		Name   string
		Secret Value
	}{"app", v}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		require.NotContains(t, fmt.Sprintf(f, v), value, f)
		require.NotContains(t, fmt.Sprintf(f, holder), value, f+" in a struct")
		require.NotContains(t, fmt.Sprintf(f, &holder), value, f+" through a pointer")
	}
	require.Equal(t, "[REDACTED]", v.String())

	_, err := json.Marshal(holder)
	require.True(t, errors.Is(err, ErrMarshal), "JSON must refuse, not print: %v", err)
	_, err = v.MarshalText()
	require.ErrorIs(t, err, ErrMarshal)

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("delivered", "secret", v, "holder", holder)
	require.NotContains(t, buf.String(), value)
	require.Contains(t, buf.String(), "[REDACTED]")
}

func TestReveal(t *testing.T) {
	t.Parallel()
	v := New(value)
	require.Equal(t, value, v.Reveal())
	require.Equal(t, "abc", v.Hint())
	require.False(t, v.IsZero())
	require.True(t, Value{}.IsZero())
	require.Empty(t, New("ab").Hint())
}
