package sinktest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

type opaque struct{ inner string }

func (opaque) Error() string { return "opaque failure" }

func TestNoSecret(t *testing.T) {
	t.Parallel()
	const v = "the-secret-value"
	for _, tc := range []struct {
		name string
		err  error
		leak bool
	}{
		{"nil", nil, false},
		{"clean", errors.New("denied"), false},
		{"in the message", fmt.Errorf("write %s failed", v), true},
		{"deep in a wrap chain", fmt.Errorf("a: %w", fmt.Errorf("b: %w", errors.New("c "+v))), true},
		{"in a joined error", errors.Join(errors.New("x"), errors.New(v)), true},
		{"in a field only %#v shows", fmt.Errorf("wrapped: %w", opaque{inner: v}), true},
	} {
		r := &recorder{TB: t}
		NoSecret(r, tc.err, v)
		require.Equal(t, tc.leak, r.failed != "", "%s: %s", tc.name, r.failed)
		require.NotContains(t, r.failed, v, "the failure message does not repeat the value")
	}
}
