package memtune

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLeanNestsAndRestores(t *testing.T) {
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
