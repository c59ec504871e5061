package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store"
)

// testConnectionHealth: successes and failures are kept apart, an older
// outcome (a slower process reporting late) never replaces a newer one,
// roles stay when a success does not carry them, a long failure is cut to
// 1 KiB, and one org's records are not another's.
func testConnectionHealth(t *testing.T, b *bundle) {
	rec := func(h store.ConnectionHealth) {
		t.Helper()
		require.NoError(t, b.s.RecordConnectionHealth(b.ctx, h))
	}
	t1, t2, t3 := b.t0.Add(time.Minute), b.t0.Add(2*time.Minute), b.t0.Add(3*time.Minute)
	rec(store.ConnectionHealth{Org: b.org, Connection: conn1, Success: true, At: t1, Roles: []string{"Application.ReadWrite.OwnedBy"}})
	rec(store.ConnectionHealth{Org: b.org, Connection: conn1, Failure: true, At: t2, Message: "AADSTS7000215: Invalid client secret provided.", AADSTS: 7000215})
	rec(store.ConnectionHealth{Org: b.org, Connection: conn1, Failure: true, At: t1, Message: "older", AADSTS: 1}) // late, older
	rec(store.ConnectionHealth{Org: b.org, Connection: conn1, Success: true, At: b.t0, Roles: []string{"stale"}})  // late, older
	rec(store.ConnectionHealth{Org: b.org, Connection: conn1, Success: true, At: t3})                              // no roles: keep
	rec(store.ConnectionHealth{Org: b.org, Connection: conn2, Failure: true, At: t1, Message: strings.Repeat("é", 2000)})
	rec(store.ConnectionHealth{Org: b.other, Connection: conn1, Failure: true, At: t3, Message: "other org"})

	got, err := b.s.ListConnectionHealth(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, got, 2)
	c1, c2 := got[0], got[1]
	require.Equal(t, conn1, c1.Connection)
	require.True(t, b.sameTime(t3, c1.LastSuccess), "%s", c1.LastSuccess)
	require.True(t, b.sameTime(t2, c1.LastFailure), "%s", c1.LastFailure)
	require.Equal(t, "AADSTS7000215: Invalid client secret provided.", c1.Message)
	require.Equal(t, 7000215, c1.AADSTS)
	require.Equal(t, []string{"Application.ReadWrite.OwnedBy"}, c1.Roles)
	require.Equal(t, conn2, c2.Connection)
	require.True(t, c2.LastSuccess.IsZero())
	require.LessOrEqual(t, len(c2.Message), 1024)
	require.True(t, strings.HasPrefix(c2.Message, "éé"))
	require.Empty(t, c2.Roles)

	other, err := b.s.ListConnectionHealth(b.ctx, b.other)
	require.NoError(t, err)
	require.Len(t, other, 1)
	require.Equal(t, "other org", other[0].Message)

	require.Error(t, b.s.RecordConnectionHealth(b.ctx, store.ConnectionHealth{Org: b.org, Connection: conn1, At: t1}), "neither success nor failure")
	require.ErrorIs(t, b.s.RecordConnectionHealth(b.ctx, store.ConnectionHealth{Org: "no-such-org", Connection: conn1, Success: true, At: t1}), store.ErrNotFound)
}
