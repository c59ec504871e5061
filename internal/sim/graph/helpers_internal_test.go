package graph

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/sim/core"
)

// newTestServer builds a Graph service on a core without listeners:
// enough for throttling, filter and policy logic.
func newTestServer(t testing.TB, c clock.Clock) *Service {
	t.Helper()
	s := New(nil)
	_, err := core.New(core.Options{StateDir: t.TempDir(), Clock: c, Seed: "apps=3,tenants=2"}, s)
	require.NoError(t, err)
	return s
}
