package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// These test what an incremental sync (ADR 17) needs from the store.

func (b *bundle) saveState(t *testing.T, org domain.OrgID, connection, link string, at time.Time, full bool) {
	t.Helper()
	require.NoError(t, b.s.SaveSyncState(b.ctx, store.SaveSyncStateParams{
		Org: org, Connection: connection, Scope: "tenant/sp", DeltaLink: link, SyncStarted: at, Full: full,
	}))
}

func (b *bundle) state(t *testing.T, org domain.OrgID, connection string) *store.SyncState {
	t.Helper()
	st, err := b.s.GetSyncState(b.ctx, org, connection)
	require.NoError(t, err)
	return st
}

// testSyncStateOnlyMovesForward: the state is per org and connection, a
// full sync moves FullAt, an incremental one only SyncedAt, and a sync
// that started earlier than the recorded one changes nothing.
func testSyncStateOnlyMovesForward(t *testing.T, b *bundle) {
	_, err := b.s.GetSyncState(b.ctx, b.org, conn1)
	require.ErrorIs(t, err, store.ErrNotFound)

	t1, t2 := b.t0, b.t0.Add(time.Hour)
	b.saveState(t, b.org, conn1, "https://graph/delta?$deltatoken=1", t1, true)
	require.Equal(t, &store.SyncState{Org: b.org, Connection: conn1, Scope: "tenant/sp", DeltaLink: "https://graph/delta?$deltatoken=1",
		SyncedAt: b.utc(t1), FullAt: b.utc(t1)}, b.utcState(b.state(t, b.org, conn1)))

	b.saveState(t, b.org, conn1, "https://graph/delta?$deltatoken=2", t2, false)
	got := b.utcState(b.state(t, b.org, conn1))
	require.Equal(t, "https://graph/delta?$deltatoken=2", got.DeltaLink)
	require.Equal(t, b.utc(t2), got.SyncedAt)
	require.Equal(t, b.utc(t1), got.FullAt, "an incremental sync is not a full one")

	b.saveState(t, b.org, conn1, "https://graph/delta?$deltatoken=old", t1.Add(time.Minute), true)
	require.Equal(t, got, b.utcState(b.state(t, b.org, conn1)), "an older sync never replaces a newer one's state")

	_, err = b.s.GetSyncState(b.ctx, b.other, conn1)
	require.ErrorIs(t, err, store.ErrNotFound, "states are per org")
	_, err = b.s.GetSyncState(b.ctx, b.org, conn2)
	require.ErrorIs(t, err, store.ErrNotFound, "and per connection")
	err = b.s.SaveSyncState(b.ctx, store.SaveSyncStateParams{Org: "no-such-org", Connection: conn1, SyncStarted: t1})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func (b *bundle) utcState(st *store.SyncState) *store.SyncState {
	c := *st
	c.SyncedAt, c.FullAt = b.utc(c.SyncedAt), b.utc(c.FullAt)
	return &c
}

// testSyncStateIsWhenViewsWereSeen: an incremental sync writes no view it
// found unchanged, yet the application was seen then: SyncedAt is the
// later of a view's stamp and its connection's last successful sync.
func testSyncStateIsWhenViewsWereSeen(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2))
	b.sync(t, b.org, conn2, b.t0, b.newApps(2, 3))
	later := b.t0.Add(time.Hour)
	b.saveState(t, b.org, conn1, "", later, false)
	require.True(t, b.sameTime(later, b.get(t, b.org, objectID(1)).SyncedAt))
	require.True(t, b.sameTime(later, b.get(t, b.org, objectID(2)).SyncedAt), "the latest of its connections")
	require.True(t, b.sameTime(b.t0, b.get(t, b.org, objectID(3)).SyncedAt), "another connection's sync says nothing of it")
}

// testRemoveApplications: change tracking says applications are gone;
// the connection's views go, and the applications nobody sees with them,
// unless a later sync saw them.
func testRemoveApplications(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	b.sync(t, b.org, conn2, b.t0, b.newApps(2, 2))
	n, err := b.s.RemoveApplications(b.ctx, store.RemoveApplicationsParams{
		Org: b.org, Connection: conn1, ObjectIDs: []string{objectID(1), objectID(2), objectID(9)},
		SyncStarted: b.t0.Add(time.Minute),
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = b.s.GetApplication(b.ctx, b.org, objectID(1))
	require.ErrorIs(t, err, store.ErrNotFound, "nobody sees it: gone with its credentials")
	require.Equal(t, []domain.Access{{Connection: conn2, CanChange: true}}, b.get(t, b.org, objectID(2)).Access)
	// Listed again without credentials: none of the old ones survived.
	b.sync(t, b.org, conn2, b.t0.Add(30*time.Second), []domain.Application{b.newApp(1, noCredentials)})
	require.Empty(t, b.get(t, b.org, objectID(1)).Credentials)
	n, err = b.s.RemoveApplications(b.ctx, store.RemoveApplicationsParams{
		Org: b.org, Connection: conn2, ObjectIDs: []string{objectID(1)}, SyncStarted: b.t0.Add(time.Minute),
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// A sync that started after the removal's sync saw it: it stays.
	b.sync(t, b.org, conn1, b.t0.Add(2*time.Minute), b.newApps(3, 3))
	n, err = b.s.RemoveApplications(b.ctx, store.RemoveApplicationsParams{
		Org: b.org, Connection: conn1, ObjectIDs: []string{objectID(3)}, SyncStarted: b.t0.Add(time.Minute),
	})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, b.list(t, store.ListApplicationsParams{Connection: conn1}), 1)

	n, err = b.s.RemoveApplications(b.ctx, store.RemoveApplicationsParams{
		Org: b.other, Connection: conn1, ObjectIDs: []string{objectID(3)}, SyncStarted: b.t0.Add(time.Hour),
	})
	require.NoError(t, err)
	require.Zero(t, n, "another org's call touches nothing of this one")
}

// testReconcileManageable: only the views whose CanChange differs from
// the ownership are written; owned applications without a view and views
// that lost ownership are reported.
func testReconcileManageable(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 4)) // 2 and 4 manageable
	b.sync(t, b.org, conn2, b.t0, b.newApps(1, 1))
	at := b.t0.Add(time.Minute)
	res, err := b.s.ReconcileManageable(b.ctx, store.ReconcileManageableParams{
		Org: b.org, Connection: conn1, Owned: []string{objectID(2), objectID(3), objectID(5), objectID(3)}, SyncStarted: at,
	})
	require.NoError(t, err)
	require.Equal(t, []string{objectID(5)}, res.Missing)
	require.Equal(t, []string{objectID(4)}, res.Lost)
	require.Equal(t, 1, res.Gained)
	require.Equal(t, 2, res.Manageable)
	owned, err := b.s.CountOwnedApplications(b.ctx, b.org, conn1)
	require.NoError(t, err)
	require.Equal(t, 2, owned, "the views that say conn1 may change them")
	owned, err = b.s.CountOwnedApplications(b.ctx, b.other, conn1)
	require.NoError(t, err)
	require.Zero(t, owned, "another organization's")
	for n, want := range map[int]bool{1: false, 2: true, 3: true, 4: false} {
		require.Equal(t, want, b.get(t, b.org, objectID(n)).CanChange(conn1), "app %d", n)
	}
	require.Equal(t, []domain.Access{{Connection: conn1}, {Connection: conn2, CanChange: false}}, b.get(t, b.org, objectID(1)).Access)

	res, err = b.s.ReconcileManageable(b.ctx, store.ReconcileManageableParams{
		Org: b.org, Connection: conn1, Owned: []string{objectID(2), objectID(3), objectID(5)}, SyncStarted: at,
	})
	require.NoError(t, err)
	require.Equal(t, store.ReconcileManageableResult{Missing: []string{objectID(5)}, Manageable: 2}, res, "nothing left to change")

	// A view a later sync wrote is that sync's.
	b.sync(t, b.org, conn1, at.Add(time.Hour), []domain.Application{b.newApp(1, func(a *domain.Application) { a.Manageable = false })})
	res, err = b.s.ReconcileManageable(b.ctx, store.ReconcileManageableParams{
		Org: b.org, Connection: conn1, Owned: []string{objectID(1), objectID(2), objectID(3)}, SyncStarted: at,
	})
	require.NoError(t, err)
	require.Zero(t, res.Gained)
	require.Equal(t, 2, res.Manageable)
	require.False(t, b.get(t, b.org, objectID(1)).CanChange(conn1))
}

// testSyncKeepCanChange: a page written before the ownership is known
// keeps each existing view's CanChange, and new views start without it.
func testSyncKeepCanChange(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2)) // 2 manageable
	apps := b.newApps(1, 3, func(a *domain.Application) { a.Manageable = !a.Manageable })
	_, err := b.s.SyncApplications(b.ctx, store.SyncApplicationsParams{
		Org: b.org, Connection: conn1, SyncStarted: b.t0.Add(time.Minute), Applications: apps, KeepCanChange: true,
	})
	require.NoError(t, err)
	for n, want := range map[int]bool{1: false, 2: true, 3: false} {
		require.Equal(t, want, b.get(t, b.org, objectID(n)).CanChange(conn1), "app %d", n)
	}
}

// testDeletedConnectionTakesItsSyncState: a connection made again under
// the same name starts with a full sync.
func testDeletedConnectionTakesItsSyncState(t *testing.T, b *bundle) {
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, conn1)}))
	b.saveState(t, b.org, conn1, "https://graph/delta?$deltatoken=1", b.t0, true)
	require.NoError(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.org, Name: conn1}))
	_, err := b.s.GetSyncState(b.ctx, b.org, conn1)
	require.ErrorIs(t, err, store.ErrNotFound)
}
