package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

const leaseTTL = time.Hour

func (b *bundle) lease(t *testing.T, holder string) {
	t.Helper()
	exp, err := b.s.RenewLease(b.ctx, store.RenewLeaseParams{Holder: holder, Description: "test " + holder, TTL: leaseTTL})
	require.NoError(t, err)
	require.True(t, exp.After(time.Now()), "a lease expires in the future")
}

func held(holder string) func(*domain.Run) { return func(r *domain.Run) { r.Holder = holder } }

// testLeaseFencesEveryWrite: a run belongs to its holder; another holder,
// or the holder after its lease ended, can neither transition it nor add
// to its journal.
func testLeaseFencesEveryWrite(t *testing.T, b *bundle) {
	b.lease(t, "p1")
	b.lease(t, "p2")
	r := b.createRun(t, b.newRun(1, held("p1")))
	require.Equal(t, "p1", b.getRun(t, b.org, r.ID).Holder)

	ev := domain.RunEvent{At: b.t0, Step: domain.StepCreated.Step()}
	err := b.s.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: r.ID, Holder: "p2",
		From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated, Event: ev})
	require.ErrorIs(t, err, store.ErrLeaseLost, "another holder cannot move the run")
	err = b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Holder: "p2", Event: ev})
	require.ErrorIs(t, err, store.ErrLeaseLost, "nor write its journal")
	_, err = b.s.FenceRun(b.ctx, store.FenceRunParams{Org: b.org, RunID: r.ID, Holder: "p2", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrLeaseLost)

	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: r.ID, Holder: "p1",
		From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated, Event: ev}))
	exp, err := b.s.FenceRun(b.ctx, store.FenceRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.NoError(t, err)
	require.True(t, exp.After(time.Now().Add(leaseTTL/2)), "fencing extends the lease")

	// p1's lease lapses (a long pause) but nobody claims the run: it is
	// still p1's, and fencing renews the lease.
	require.NoError(t, b.s.ReleaseLease(b.ctx, "p1"))
	_, err = b.s.FenceRun(b.ctx, store.FenceRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.NoError(t, err, "the run's holder column is the fencing token")
	orphans, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: domain.ActiveStates, Orphaned: true})
	require.NoError(t, err)
	require.Empty(t, orphans, "fencing renewed the lease")

	// p1 dies for good and p2 takes over: from then on every write of p1's
	// is refused.
	require.NoError(t, b.s.ReleaseLease(b.ctx, "p1"))
	_, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p2", TTL: leaseTTL})
	require.NoError(t, err)
	err = b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Holder: "p1", Event: ev})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	err = b.s.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: r.ID, Holder: "p1",
		From: []domain.RunState{domain.RunCreated}, To: domain.RunPropagated, Event: ev})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	_, err = b.s.FenceRun(b.ctx, store.FenceRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.Equal(t, domain.RunCreated, b.getRun(t, b.org, r.ID).State)
	require.Equal(t, "p2", b.getRun(t, b.org, r.ID).Holder)
}

// testLeaseClaim: only a run whose holder's lease ended can be taken over;
// the old holder is fenced out afterwards even if its lease comes back.
func testLeaseClaim(t *testing.T, b *bundle) {
	b.lease(t, "p1")
	b.lease(t, "p2")
	r := b.createRun(t, b.newRun(1, held("p1")))

	_, err := b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p2", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrLeaseHeld, "a live holder keeps its run")
	prev, err := b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.NoError(t, err, "claiming one's own run is a no-op")
	require.Equal(t, "p1", prev)

	orphans, err := b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: domain.ActiveStates, Orphaned: true})
	require.NoError(t, err)
	require.Empty(t, orphans)

	require.NoError(t, b.s.ReleaseLease(b.ctx, "p1"))
	orphans, err = b.s.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: domain.ActiveStates, Orphaned: true})
	require.NoError(t, err)
	require.Equal(t, []string{r.ID}, runIDs(orphans), "a run whose holder's lease ended is orphaned")

	prev, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p2", TTL: leaseTTL})
	require.NoError(t, err)
	require.Equal(t, "p1", prev)

	// p1 comes back (a long GC pause, a network partition): the run stays p2's.
	b.lease(t, "p1")
	err = b.s.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: r.ID, Holder: "p1",
		Event: domain.RunEvent{At: b.t0, Step: domain.SinkStep(0, domain.PhaseWriting)}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	_, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrLeaseHeld)

	// Release with a transition: the run belongs to nobody, and anyone
	// live may claim it (a retiring run's retirement).
	require.NoError(t, b.s.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: r.ID, Holder: "p2", Release: true,
		From: []domain.RunState{domain.RunPlanned}, To: domain.RunAbandoned, Event: domain.RunEvent{At: b.t0, Step: domain.StepAbandoned.Step()}}))
	require.Empty(t, b.getRun(t, b.org, r.ID).Holder)
	_, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.NoError(t, err)

	// ReleaseRun gives a claim back without a state change; only the
	// holder's own release counts.
	_, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.org, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.NoError(t, err)
	require.NoError(t, b.s.ReleaseRun(b.ctx, b.org, r.ID, "p2"))
	require.Equal(t, "p1", b.getRun(t, b.org, r.ID).Holder, "another holder's release changes nothing")
	require.NoError(t, b.s.ReleaseRun(b.ctx, b.other, r.ID, "p1"))
	require.Equal(t, "p1", b.getRun(t, b.org, r.ID).Holder, "nor does a release in another org")
	require.NoError(t, b.s.ReleaseRun(b.ctx, b.org, r.ID, "p1"))
	require.Empty(t, b.getRun(t, b.org, r.ID).Holder)

	// Leases never reach across orgs: the same run id in the other org is
	// not found.
	_, err = b.s.ClaimRun(b.ctx, store.ClaimRunParams{Org: b.other, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.s.FenceRun(b.ctx, store.FenceRunParams{Org: b.other, RunID: r.ID, Holder: "p1", TTL: leaseTTL})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testAccessPerConnection: a read connection beside the rotation one sees
// the same application; neither's sync undoes the other's view.
func testAccessPerConnection(t *testing.T, b *bundle) {
	const read, rotation = "contoso-read", "contoso-rotation"
	apps := b.newApps(1, 4) // even ones are owned
	b.sync(t, b.org, rotation, b.t0, apps)
	readView := b.newApps(1, 4, func(a *domain.Application) { a.Manageable = false })
	require.Zero(t, b.sync(t, b.org, read, b.t0.Add(time.Minute), readView), "the second connection's view changes no content")

	a2 := b.get(t, b.org, objectID(2))
	require.Equal(t, []domain.Access{{Connection: read}, {Connection: rotation, CanChange: true}}, a2.Access)
	require.True(t, a2.Manageable)
	require.True(t, a2.CanChange(rotation))
	require.False(t, a2.CanChange(read))
	a1 := b.get(t, b.org, objectID(1))
	require.False(t, a1.Manageable)
	require.True(t, a1.SeenBy(read) && a1.SeenBy(rotation))

	for conn, want := range map[string]int{read: 4, rotation: 4, "": 4} {
		n, err := b.s.CountApplications(b.ctx, b.org, conn)
		require.NoError(t, err)
		require.Equal(t, want, n, "connection %q", conn)
	}
	require.Equal(t, []string{objectID(2), objectID(4)}, objectIDs(b.list(t, store.ListApplicationsParams{ManageableOnly: true})))

	// The rotation identity loses ownership of app 4 and app 3 leaves its
	// view; the read connection still sees both.
	t1 := b.t0.Add(time.Hour)
	later := b.newApps(1, 4, func(a *domain.Application) { a.Manageable = a.ObjectID == objectID(2) })
	b.sync(t, b.org, rotation, t1, []domain.Application{later[0], later[1], later[3]})
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: rotation, SyncStarted: t1})
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	require.Equal(t, []string{objectID(2)}, objectIDs(b.list(t, store.ListApplicationsParams{ManageableOnly: true})))
	require.Equal(t, []domain.Access{{Connection: read}}, b.get(t, b.org, objectID(3)).Access, "app 3 stays: the read connection still sees it")
	require.Len(t, b.list(t, store.ListApplicationsParams{Connection: rotation}), 3)

	// Once no connection sees it, the application is gone.
	t2 := t1.Add(time.Hour)
	b.sync(t, b.org, read, t2, readView[:2])
	removed, err = b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: read, SyncStarted: t2})
	require.NoError(t, err)
	require.Equal(t, 2, removed)
	require.Equal(t, []string{objectID(1), objectID(2), objectID(4)}, objectIDs(b.list(t, store.ListApplicationsParams{})))
	_, err = b.s.GetApplication(b.ctx, b.org, objectID(3))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testSetCredentials rewrites one application's credentials between syncs
// and the next sync puts Entra's back.
func testSetCredentials(t *testing.T, b *bundle) {
	app := b.newApp(1)
	b.sync(t, b.org, conn1, b.t0, []domain.Application{app})
	extra := domain.Credential{KeyID: "k-run", Kind: domain.KindSecret, DisplayName: "rotor:r1", Start: b.t0, End: b.t0.Add(time.Hour)}
	require.NoError(t, b.s.SetCredentials(b.ctx, store.SetCredentialsParams{Org: b.org, TenantID: tenant1, ObjectID: objectID(1),
		Credentials: append(app.Credentials, extra)}))
	got := b.get(t, b.org, objectID(1))
	require.Len(t, got.Credentials, len(app.Credentials)+1)
	require.Equal(t, []domain.Access{{Connection: conn1, CanChange: app.Manageable}}, got.Access, "the views are untouched")

	require.Equal(t, 1, b.sync(t, b.org, conn1, b.t0.Add(time.Minute), []domain.Application{app}), "the next sync rewrites Entra's truth")
	b.requireSameApp(t, b.stored(app, b.org, conn1, b.t0.Add(time.Minute)), *b.get(t, b.org, objectID(1)))

	err := b.s.SetCredentials(b.ctx, store.SetCredentialsParams{Org: b.other, TenantID: tenant1, ObjectID: objectID(1)})
	require.ErrorIs(t, err, store.ErrNotFound, "not across orgs")
}

// testPinnedTargets: pinning is per org, application, policy and sink.
func testPinnedTargets(t *testing.T, b *bundle) {
	p := store.PinTargetParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1), Policy: "web",
		Target: store.PinnedTarget{SinkIndex: 0, SinkType: "keyvault", Target: "keyvault:https://v/secrets/a", PinnedAt: b.t0, PinnedByRun: "r1"}}
	require.NoError(t, b.s.PinTarget(b.ctx, p))
	again := p
	again.Target.PinnedByRun, again.Target.PinnedAt = "r2", b.t0.Add(time.Hour)
	require.NoError(t, b.s.PinTarget(b.ctx, again))
	got, err := b.s.PinnedTargets(b.ctx, store.PinnedTargetsParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1), Policy: "web"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "r1", got[0].PinnedByRun, "pinning the same target again keeps the first pin")

	moved := p
	moved.Target = store.PinnedTarget{SinkIndex: 0, SinkType: "keyvault", Target: "keyvault:https://v/secrets/b", PinnedAt: b.t0.Add(time.Hour),
		PinnedByRun: "r3", Previous: "keyvault:https://v/secrets/a", RetireOldAt: b.t0.Add(25 * time.Hour)}
	require.NoError(t, b.s.PinTarget(b.ctx, moved))
	got, err = b.s.PinnedTargets(b.ctx, store.PinnedTargetsParams{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1), Policy: "web"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "keyvault:https://v/secrets/b", got[0].Target)
	require.Equal(t, "keyvault:https://v/secrets/a", got[0].Previous)
	require.True(t, b.sameTime(b.t0.Add(25*time.Hour), got[0].RetireOldAt))

	for _, q := range []store.PinnedTargetsParams{
		{Org: b.other, TenantID: tenant1, AppObjectID: objectID(1), Policy: "web"},
		{Org: b.org, TenantID: tenant1, AppObjectID: objectID(1), Policy: "api"},
		{Org: b.org, TenantID: tenant2, AppObjectID: objectID(1), Policy: "web"},
	} {
		got, err := b.s.PinnedTargets(b.ctx, q)
		require.NoError(t, err)
		require.Empty(t, got, "%+v sees nothing", q)
	}
}

// testDeletedConnectionTakesItsView: deleting a connection forgets what it
// saw; an application only it saw leaves the inventory, one another
// connection sees stays.
func testDeletedConnectionTakesItsView(t *testing.T, b *bundle) {
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, conn1)}))
	require.NoError(t, b.s.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: newConn(b.org, conn2)}))
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2))
	b.sync(t, b.org, conn2, b.t0, b.newApps(2, 3))
	require.NoError(t, b.s.DeleteConnection(b.ctx, store.DeleteParams{Org: b.org, Name: conn1}))
	require.Equal(t, []string{objectID(2), objectID(3)}, objectIDs(b.list(t, store.ListApplicationsParams{})))
	require.Equal(t, []domain.Access{{Connection: conn2, CanChange: true}}, b.get(t, b.org, objectID(2)).Access)
}

// testOverlappingSyncsKeepWhatBothSaw: two processes sync one connection at
// once; the one that started earlier writes its page last. The later
// one's FinishSync must not delete the applications both saw.
func testOverlappingSyncsKeepWhatBothSaw(t *testing.T, b *bundle) {
	early, late := b.t0, b.t0.Add(time.Second)
	apps := b.newApps(1, 3)
	b.sync(t, b.org, conn1, late, apps)  // the later sync's page lands first
	b.sync(t, b.org, conn1, early, apps) // the earlier sync's page lands after it
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: late})
	require.NoError(t, err)
	require.Zero(t, removed, "both syncs saw every application")
	removed, err = b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: early})
	require.NoError(t, err)
	require.Zero(t, removed)
	require.Len(t, b.list(t, store.ListApplicationsParams{}), 3)

	// Nor does the earlier listing's content replace the later one's: the
	// inventory never goes back to an older picture of Entra.
	later, laterStill := b.t0.Add(time.Hour), b.t0.Add(2*time.Hour)
	fresh := b.newApp(1, named("renamed-in-entra"))
	require.Equal(t, 1, b.sync(t, b.org, conn1, laterStill, []domain.Application{fresh}))
	require.Zero(t, b.sync(t, b.org, conn1, later, []domain.Application{b.newApp(1)}), "an older listing changes nothing")
	got := b.get(t, b.org, objectID(1))
	require.Equal(t, "renamed-in-entra", got.DisplayName)
	require.True(t, b.sameTime(laterStill, got.SyncedAt), "SyncedAt is the listing the content comes from")
}

// testLeaseCountLive: the live leases are the processes sharing the
// store; a released one no longer counts.
func testLeaseCountLive(t *testing.T, b *bundle) {
	count := func() int {
		n, err := b.s.CountLiveLeases(b.ctx)
		require.NoError(t, err)
		return n
	}
	require.Zero(t, count())
	b.lease(t, "p1")
	b.lease(t, "p2")
	b.lease(t, "p2")
	require.Equal(t, 2, count())
	require.NoError(t, b.s.ReleaseLease(b.ctx, "p1"))
	require.Equal(t, 1, count())
}
