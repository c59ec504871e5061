package memtune

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLeanNestsAndRestores(t *testing.T) {
	t.Setenv("GOGC", "") // not the operator's: Lean may change it
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	a := Lean()
	require.Equal(t, LeanGCPercent, gcPercent())
	b := Lean()
	a()
	a() // twice is once
	require.Equal(t, LeanGCPercent, gcPercent(), "another section still runs lean")
	b()
	require.Equal(t, 100, gcPercent(), "the setting from before is back")
}

func TestLeanKeepsALowerSetting(t *testing.T) {
	t.Setenv("GOGC", "")
	for _, set := range []int{20, -1} {
		old := debug.SetGCPercent(set)
		done := Lean()
		require.Equal(t, set, gcPercent())
		done()
		require.Equal(t, set, gcPercent())
		debug.SetGCPercent(old)
	}
}

// gcPercent reads GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(0)
	debug.SetGCPercent(p)
	return p
}

// TestLeanLeavesGOGCFromTheEnvironment: an operator's GOGC wins, so
// GOGC=100 is how to turn Lean off.
func TestLeanLeavesGOGCFromTheEnvironment(t *testing.T) {
	t.Setenv("GOGC", "100")
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	done := Lean()
	require.Equal(t, 100, gcPercent())
	done()
	require.Equal(t, 100, gcPercent())
}
