package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

func testEnsureOrgIdempotent(t *testing.T, b *bundle) {
	require.NoError(t, b.s.EnsureOrg(b.ctx, b.org, "Org A"))
	require.NoError(t, b.s.EnsureOrg(b.ctx, b.org, "Org A renamed"))
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2))
	require.NoError(t, b.s.EnsureOrg(b.ctx, b.org, "Org A"))
	n, err := b.s.CountApplications(b.ctx, b.org, "")
	require.NoError(t, err)
	require.Equal(t, 2, n, "EnsureOrg on an existing org must not touch its rows")
}

func testSyncInserts(t *testing.T, b *bundle) {
	apps := b.newApps(1, 3)
	require.Equal(t, 3, b.sync(t, b.org, conn1, b.t0, apps))

	n, err := b.s.CountApplications(b.ctx, b.org, "")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	got := b.list(t, store.ListApplicationsParams{})
	want := make([]domain.Application, len(apps))
	for i, a := range apps {
		want[i] = b.stored(a, b.org, conn1, b.t0)
	}
	require.Equal(t, want, b.normApps(got))
}

func testSyncRewritesChanged(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))

	t1 := b.t0.Add(time.Hour)
	apps := b.newApps(1, 3)
	apps[1].DisplayName = "renamed"
	apps[1].Credentials = []domain.Credential{ // one kept, one removed, one added
		apps[1].Credentials[0],
		{KeyID: keyID(2, 9), Kind: domain.KindSecret, DisplayName: "rotor:run-1", Hint: "xyz",
			Start: b.t0, End: b.t0.Add(90 * 24 * time.Hour)},
	}
	require.Equal(t, 1, b.sync(t, b.org, conn1, t1, apps))

	got := b.get(t, b.org, objectID(2))
	b.requireSameApp(t, b.stored(apps[1], b.org, conn1, t1), *got)
}

func testSyncSkipsUnchanged(t *testing.T, b *bundle) {
	apps := b.newApps(1, 5)
	require.Equal(t, 5, b.sync(t, b.org, conn1, b.t0, apps))

	t1 := b.t0.Add(time.Hour)
	require.Equal(t, 0, b.sync(t, b.org, conn1, t1, apps), "nothing changed")

	// Order of owners and credentials is not content.
	reordered := b.newApps(1, 5)
	for i := range reordered {
		a := &reordered[i]
		a.Owners[0], a.Owners[1] = a.Owners[1], a.Owners[0]
		a.Credentials[0], a.Credentials[1] = a.Credentials[1], a.Credentials[0]
	}
	t2 := b.t0.Add(2 * time.Hour)
	require.Equal(t, 0, b.sync(t, b.org, conn1, t2, reordered), "reordering owners or credentials is not a change")

	for _, a := range b.list(t, store.ListApplicationsParams{}) {
		require.True(t, b.sameTime(t2, a.SyncedAt), "unchanged %s must still be stamped with the latest sync", a.ObjectID)
	}
	// And so FinishSync keeps them.
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: t2})
	require.NoError(t, err)
	require.Zero(t, removed)
}

func testSyncDetectsEachChange(t *testing.T, b *bundle) {
	step := 0
	for _, tc := range []struct {
		name  string
		tweak func(*domain.Application)
	}{
		{"AppID", func(a *domain.Application) { a.AppID = "changed" }},
		{"DisplayName", func(a *domain.Application) { a.DisplayName = "changed" }},
		{"SignInAudience", func(a *domain.Application) { a.SignInAudience = "AzureADMultipleOrgs" }},
		{"CreatedAt", func(a *domain.Application) { a.CreatedAt = a.CreatedAt.Add(time.Nanosecond) }},
		{"OwnerAdded", func(a *domain.Application) { a.Owners = append(a.Owners, "owner-new") }},
		{"OwnersRemoved", func(a *domain.Application) { a.Owners = nil }},
		{"CredentialAdded", func(a *domain.Application) {
			a.Credentials = append(a.Credentials, domain.Credential{KeyID: "k-new", Kind: domain.KindSecret, End: b.t0})
		}},
		{"CredentialsRemoved", noCredentials},
		{"CredentialKind", func(a *domain.Application) { a.Credentials[0].Kind = domain.KindCertificate }},
		{"CredentialDisplayName", func(a *domain.Application) { a.Credentials[0].DisplayName = "rotor:x" }},
		{"CredentialHint", func(a *domain.Application) { a.Credentials[0].Hint = "zzz" }},
		{"CredentialThumbprint", func(a *domain.Application) { a.Credentials[1].Thumbprint = "FFFF" }},
		{"CredentialStart", func(a *domain.Application) { a.Credentials[0].Start = a.Credentials[0].Start.Add(time.Second) }},
		{"CredentialEnd", func(a *domain.Application) { a.Credentials[0].End = a.Credentials[0].End.Add(time.Nanosecond) }},
		{"CredentialKeyID", func(a *domain.Application) { a.Credentials[0].KeyID = "k-other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := b.newApp(100)
			// Each case later than the last: a sync's stamp only moves
			// forward (see OverlappingSyncsKeepWhatBothSaw).
			step++
			at := b.t0.Add(time.Duration(step) * time.Hour)
			b.sync(t, b.org, conn1, at, []domain.Application{base})
			changed := b.newApp(100, tc.tweak)
			require.Equal(t, 1, b.sync(t, b.org, conn1, at.Add(time.Minute), []domain.Application{changed}))
			b.requireSameApp(t, b.stored(changed, b.org, conn1, at.Add(time.Minute)), *b.get(t, b.org, objectID(100)))
			// Back to base for the next case.
			require.Equal(t, 1, b.sync(t, b.org, conn1, at.Add(2*time.Minute), []domain.Application{base}))
		})
	}
}

func testSyncRejectsForeign(t *testing.T, b *bundle) {
	for _, tc := range []struct {
		name  string
		tweak func(*domain.Application)
	}{
		{"OtherOrg", func(a *domain.Application) { a.Org = b.other }},
		{"OtherConnection", func(a *domain.Application) { a.Access = []domain.Access{{Connection: conn2}} }},
		{"NoObjectID", func(a *domain.Application) { a.ObjectID = "" }},
		{"NoTenantID", func(a *domain.Application) { a.TenantID = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.s.SyncApplications(b.ctx, store.SyncApplicationsParams{
				Org: b.org, Connection: conn1, SyncStarted: b.t0,
				Applications: []domain.Application{b.newApp(1), b.newApp(2, tc.tweak)},
			})
			require.Error(t, err)
		})
	}
	// Matching Org and Connection are fine.
	ok := b.newApp(3, func(a *domain.Application) { a.Org, a.Access = b.org, []domain.Access{{Connection: conn1}} })
	require.Equal(t, 1, b.sync(t, b.org, conn1, b.t0, []domain.Application{ok}))
	for _, org := range []domain.OrgID{b.org, b.other} {
		n, err := b.s.CountApplications(b.ctx, org, "")
		require.NoError(t, err)
		require.Equal(t, map[domain.OrgID]int{b.org: 1, b.other: 0}[org], n, "a rejected page writes nothing (org %s)", org)
	}
}

func testSyncEmptyPage(t *testing.T, b *bundle) {
	require.Equal(t, 0, b.sync(t, b.org, conn1, b.t0, nil))
	n, err := b.s.CountApplications(b.ctx, b.org, "")
	require.NoError(t, err)
	require.Zero(t, n)
}

func testSyncDuplicateInPage(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 1))
	first := b.newApp(1, named("first"))
	second := b.newApp(1, named("second"), func(a *domain.Application) { a.Credentials = a.Credentials[1:] })
	b.sync(t, b.org, conn1, b.t0.Add(time.Hour), []domain.Application{first, b.newApp(2), second})
	b.requireSameApp(t, b.stored(second, b.org, conn1, b.t0.Add(time.Hour)), *b.get(t, b.org, objectID(1)))
	n, err := b.s.CountApplications(b.ctx, b.org, "")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

func testSyncManyCredentials(t *testing.T, b *bundle) {
	app := b.newApp(1, func(a *domain.Application) {
		a.Credentials = nil
		for i := range 600 {
			a.Credentials = append(a.Credentials, domain.Credential{
				KeyID: keyID(1, i), Kind: domain.KindCertificate, Thumbprint: fmt.Sprintf("%040X", i),
				Start: b.t0, End: b.t0.Add(time.Duration(i) * time.Hour),
			})
		}
	})
	require.Equal(t, 1, b.sync(t, b.org, conn1, b.t0, []domain.Application{app}))
	b.requireSameApp(t, b.stored(app, b.org, conn1, b.t0), *b.get(t, b.org, objectID(1)))
	app.Credentials = app.Credentials[:599]
	require.Equal(t, 1, b.sync(t, b.org, conn1, b.t0.Add(time.Hour), []domain.Application{app}))
	require.Len(t, b.get(t, b.org, objectID(1)).Credentials, 599)
}

func testFinishSyncRemoves(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 5))

	t1 := b.t0.Add(time.Hour)
	b.sync(t, b.org, conn1, t1, b.newApps(1, 2)) // page 1 of the second sync
	b.sync(t, b.org, conn1, t1, b.newApps(4, 4)) // page 2
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: t1})
	require.NoError(t, err)
	require.Equal(t, 2, removed)
	require.Equal(t, []string{objectID(1), objectID(2), objectID(4)}, objectIDs(b.list(t, store.ListApplicationsParams{})))
	_, err = b.s.GetApplication(b.ctx, b.org, objectID(3))
	require.ErrorIs(t, err, store.ErrNotFound)

	removed, err = b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: t1})
	require.NoError(t, err)
	require.Zero(t, removed, "finishing twice removes nothing more")
}

func testFinishSyncCascades(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2))
	t1 := b.t0.Add(time.Hour)
	b.sync(t, b.org, conn1, t1, b.newApps(1, 1))
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: t1})
	require.NoError(t, err)
	require.Equal(t, 1, removed)

	// The app comes back without credentials: none of its old ones may
	// have survived its removal.
	t2 := t1.Add(time.Hour)
	back := b.newApp(2, noCredentials)
	require.Equal(t, 1, b.sync(t, b.org, conn1, t2, []domain.Application{back}))
	got := b.get(t, b.org, objectID(2))
	require.Empty(t, got.Credentials)
	require.Empty(t, b.list(t, store.ListApplicationsParams{ExpiringBefore: b.t0.Add(10 * 365 * 24 * time.Hour), NamePrefix: "app-002"}))
}

func testFinishSyncKeepsLater(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	// A later sync overlaps and sees app 3 before the earlier one finishes.
	later := b.t0.Add(time.Hour)
	b.sync(t, b.org, conn1, later, b.newApps(3, 3))
	mid := b.t0.Add(30 * time.Minute)
	b.sync(t, b.org, conn1, mid, b.newApps(1, 1))
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn1, SyncStarted: mid})
	require.NoError(t, err)
	require.Equal(t, 1, removed, "only app 2, seen by no sync since t0, goes")
	require.Equal(t, []string{objectID(1), objectID(3)}, objectIDs(b.list(t, store.ListApplicationsParams{})))
}

func testConnectionsIsolated(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	b.sync(t, b.org, conn2, b.t0, b.newApps(11, 12, inTenant(tenant2)))

	for conn, want := range map[string]int{conn1: 3, conn2: 2, "": 5} {
		n, err := b.s.CountApplications(b.ctx, b.org, conn)
		require.NoError(t, err)
		require.Equal(t, want, n, "connection %q", conn)
	}
	require.Equal(t, []string{objectID(11), objectID(12)}, objectIDs(b.list(t, store.ListApplicationsParams{Connection: conn2})))

	// A later sync of conn2 alone removes nothing of conn1.
	t1 := b.t0.Add(time.Hour)
	b.sync(t, b.org, conn2, t1, b.newApps(11, 11, inTenant(tenant2)))
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.org, Connection: conn2, SyncStarted: t1})
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	n, err := b.s.CountApplications(b.ctx, b.org, conn1)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	// The same object id in two tenants is two applications.
	b.sync(t, b.org, conn2, t1, b.newApps(1, 1, inTenant(tenant2), named("twin")))
	n, err = b.s.CountApplications(b.ctx, b.org, "")
	require.NoError(t, err)
	require.Equal(t, 5, n)
	require.Equal(t, "app-001", b.list(t, store.ListApplicationsParams{Connection: conn1, NamePrefix: "app-001"})[0].DisplayName)
}

// testOrgsApplicationsIsolated puts the same tenant and object ids in two
// orgs and checks that no method reaches across.
func testOrgsApplicationsIsolated(t *testing.T, b *bundle) {
	aApps := b.newApps(1, 3)
	b.sync(t, b.org, conn1, b.t0, aApps)

	// The other org sees nothing of org A.
	for _, ref := range []string{objectID(1), appID(1), "app-001"} {
		_, err := b.s.GetApplication(b.ctx, b.other, ref)
		require.ErrorIs(t, err, store.ErrNotFound, "ref %s", ref)
	}
	require.Empty(t, b.list(t, store.ListApplicationsParams{Org: b.other}))
	n, err := b.s.CountApplications(b.ctx, b.other, "")
	require.NoError(t, err)
	require.Zero(t, n)

	// Finishing the other org's sync of the same connection name removes
	// nothing of org A.
	removed, err := b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.other, Connection: conn1, SyncStarted: b.t0.Add(time.Hour)})
	require.NoError(t, err)
	require.Zero(t, removed)

	// The other org syncs the very same ids with other content: they are
	// new there (not skipped because org A holds the same fingerprint),
	// and org A's rows do not change.
	same := b.newApps(1, 3)
	require.Equal(t, 3, b.sync(t, b.other, conn1, b.t0, same), "identical content in another org is still new there")
	bApps := b.newApps(1, 3, func(a *domain.Application) {
		a.DisplayName = "b-" + a.DisplayName
		a.Credentials = a.Credentials[:1]
	})
	t1 := b.t0.Add(time.Hour)
	require.Equal(t, 3, b.sync(t, b.other, conn1, t1, bApps))
	b.sync(t, b.other, conn1, t1.Add(time.Hour), bApps[:1])
	removed, err = b.s.FinishSync(b.ctx, store.FinishSyncParams{Org: b.other, Connection: conn1, SyncStarted: t1.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, 2, removed)

	want := make([]domain.Application, len(aApps))
	for i, a := range aApps {
		want[i] = b.stored(a, b.org, conn1, b.t0)
	}
	require.Equal(t, want, b.normApps(b.list(t, store.ListApplicationsParams{})), "org A is untouched")
	b.requireSameApp(t, want[0], *b.get(t, b.org, objectID(1)))
	got := b.get(t, b.other, objectID(1))
	require.Equal(t, b.other, got.Org)
	require.Equal(t, "b-app-001", got.DisplayName)
	require.Len(t, got.Credentials, 1)
	_, err = b.s.GetApplication(b.ctx, b.other, "app-001")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A name shared across orgs is not ambiguous within one.
	require.Equal(t, objectID(1), b.get(t, b.org, "app-001").ObjectID)
}

func testAppsRoundTrip(t *testing.T, b *bundle) {
	apps := []domain.Application{
		b.newApp(1),
		b.newApp(2, noCredentials, func(a *domain.Application) { a.Owners = nil; a.CreatedAt = time.Time{} }),
		b.newApp(3, func(a *domain.Application) {
			a.DisplayName = `Ünïcode "quotes" 'and' %_ wildcards * ? [x]`
			a.Owners = []string{"z", "a", "m"}
			a.Credentials = append(a.Credentials, domain.Credential{KeyID: "no-times", Kind: domain.KindSecret})
		}),
	}
	b.sync(t, b.org, conn1, b.t0, apps)
	for _, a := range apps {
		b.requireSameApp(t, b.stored(a, b.org, conn1, b.t0), *b.get(t, b.org, a.ObjectID))
	}
	got := b.get(t, b.org, objectID(2))
	require.Nil(t, got.Owners)
	require.Nil(t, got.Credentials)
	require.True(t, got.CreatedAt.IsZero())
	got = b.get(t, b.org, objectID(3))
	require.Equal(t, []string{"a", "m", "z"}, got.Owners, "owners come back sorted")
	require.Equal(t, "no-times", got.Credentials[0].KeyID, "a credential without an end sorts first")
}

func testTimesRoundTrip(t *testing.T, b *bundle) {
	times := []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 6, 30, 23, 59, 59, 999999999, time.FixedZone("PDT", -7*3600)),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("IST", 5*3600+1800)),
		time.Date(2299, 12, 31, 0, 0, 0, 0, time.UTC), // legacy "never expires" secrets
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	var apps []domain.Application
	for i, tm := range times {
		apps = append(apps, b.newApp(i+1, func(a *domain.Application) {
			a.CreatedAt = tm
			a.Credentials = []domain.Credential{{KeyID: "k", Kind: domain.KindSecret, Start: tm, End: tm}}
		}))
	}
	synced := time.Date(2031, 2, 3, 4, 5, 6, 7, time.FixedZone("X", 123))
	b.sync(t, b.org, conn1, synced, apps)
	// A wall-clock time carries a monotonic reading; it is dropped, the
	// instant is kept.
	now := time.Now()
	b.sync(t, b.org, conn2, synced, []domain.Application{b.newApp(99, inTenant(tenant2), func(a *domain.Application) {
		a.CreatedAt = now
		a.Credentials = []domain.Credential{{KeyID: "k", Kind: domain.KindSecret, Start: now, End: now}}
	})})
	times = append(times, now)
	objs := []string{objectID(1), objectID(2), objectID(3), objectID(4), objectID(5), objectID(99)}
	for i, tm := range times {
		got := b.get(t, b.org, objs[i])
		require.True(t, b.sameTime(tm, got.CreatedAt), "created %s, got %s", tm, got.CreatedAt)
		require.True(t, b.sameTime(tm, got.Credentials[0].Start), "start %s, got %s", tm, got.Credentials[0].Start)
		require.True(t, b.sameTime(tm, got.Credentials[0].End), "end %s, got %s", tm, got.Credentials[0].End)
		require.True(t, b.sameTime(synced, got.SyncedAt))
	}
	// Expiring compares instants, not zone-local text.
	east := time.Date(2026, 6, 30, 23, 59, 59, 999999999, time.FixedZone("PDT", -7*3600)).In(time.FixedZone("E", 14*3600))
	require.Equal(t, []string{objectID(1), objectID(3)}, objectIDs(b.list(t, store.ListApplicationsParams{Connection: conn1, ExpiringBefore: east})))
	require.Equal(t, []string{objectID(1), objectID(2), objectID(3)},
		objectIDs(b.list(t, store.ListApplicationsParams{Connection: conn1, ExpiringBefore: east.Add(time.Nanosecond)})))

	run := b.newRun(1)
	run.CreatedAt = times[1]
	run.NewEnd = times[3]
	run.RetireAt = times[4]
	require.NoError(t, b.s.CreateRun(b.ctx, run))
	got, err := b.s.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.True(t, b.sameTime(run.CreatedAt, got.CreatedAt))
	require.True(t, b.sameTime(run.NewEnd, got.NewEnd))
	require.True(t, b.sameTime(run.RetireAt, got.RetireAt))
}

func testListExpiring(t *testing.T, b *bundle) {
	// newApp(n)'s earliest credential ends t0 + (30+n) days.
	apps := b.newApps(1, 5)
	apps = append(apps, b.newApp(6, noCredentials))
	apps = append(apps, b.newApp(7, func(a *domain.Application) { // expired already
		a.Credentials[0].End = b.t0.Add(-time.Hour)
	}))
	b.sync(t, b.org, conn1, b.t0, apps)

	for _, tc := range []struct {
		name   string
		before time.Time
		want   []string
	}{
		{"NoFilter", time.Time{}, objectIDs(apps)},
		{"NothingBeforeEarliest", b.t0.Add(-2 * time.Hour), nil},
		{"ExpiredOnly", b.t0, []string{objectID(7)}},
		{"StrictlyBefore", b.t0.Add(33 * 24 * time.Hour), []string{objectID(1), objectID(2), objectID(7)}},
		{"AnyCredentialCounts", b.t0.Add(36 * 24 * time.Hour), []string{objectID(1), objectID(2), objectID(3), objectID(4), objectID(5), objectID(7)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, nilIfEmpty(objectIDs(b.list(t, store.ListApplicationsParams{ExpiringBefore: tc.before}))))
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testListNamePrefix(t *testing.T, b *bundle) {
	names := []string{"pa", "pay", "payroll", "payroll-eu", "Payroll", "pbx", "p%y", "p_y", "paz"}
	var apps []domain.Application
	for i, n := range names {
		apps = append(apps, b.newApp(i+1, named(n)))
	}
	b.sync(t, b.org, conn1, b.t0, apps)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"pay", []string{"pay", "payroll", "payroll-eu"}},
		{"payroll", []string{"payroll", "payroll-eu"}},
		{"Pay", []string{"Payroll"}},
		{"pa", []string{"pa", "pay", "payroll", "payroll-eu", "paz"}},
		{"p%", []string{"p%y"}},
		{"p_", []string{"p_y"}},
		{"q", []string{}},
		{"", []string{"Payroll", "p%y", "p_y", "pa", "pay", "payroll", "payroll-eu", "paz", "pbx"}},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			got := []string{}
			for _, a := range b.list(t, store.ListApplicationsParams{NamePrefix: tc.prefix}) {
				got = append(got, a.DisplayName)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func testListManageable(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 6)) // even n are manageable
	got := b.list(t, store.ListApplicationsParams{ManageableOnly: true})
	require.Equal(t, []string{objectID(2), objectID(4), objectID(6)}, objectIDs(got))
	for _, a := range got {
		require.True(t, a.Manageable)
	}
	require.Len(t, b.list(t, store.ListApplicationsParams{}), 6)
}

// pageAll walks every page of p and returns the rows in order.
func (b *bundle) pageAll(t *testing.T, p store.ListApplicationsParams) []domain.Application {
	t.Helper()
	var all []domain.Application
	for range 1000 {
		page := b.list(t, p)
		require.LessOrEqual(t, len(page), p.Limit)
		all = append(all, page...)
		if len(page) < p.Limit {
			return all
		}
		last := page[len(page)-1]
		p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
	}
	t.Fatal("paging does not end")
	return nil
}

func testListPaging(t *testing.T, b *bundle) {
	// 25 apps; names repeat so that object id breaks ties, and one name is
	// empty.
	var apps []domain.Application
	for n := 1; n <= 25; n++ {
		name := []string{"alpha", "beta", "gamma", "", "delta"}[n%5]
		apps = append(apps, b.newApp(n, named(name)))
	}
	b.sync(t, b.org, conn1, b.t0, apps[:12])
	b.sync(t, b.org, conn1, b.t0, apps[12:])

	all := b.list(t, store.ListApplicationsParams{})
	require.Len(t, all, 25)
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		require.True(t, prev.DisplayName < cur.DisplayName ||
			(prev.DisplayName == cur.DisplayName && prev.ObjectID < cur.ObjectID), "ordered by name, object id at %d", i)
	}
	for _, size := range []int{1, 4, 7, 25, 26} {
		got := b.pageAll(t, store.ListApplicationsParams{Limit: size})
		require.Equal(t, objectIDs(all), objectIDs(got), "page size %d", size)
		require.Equal(t, b.normApps(all), b.normApps(got), "pages carry credentials and owners too")
	}
	require.Len(t, b.list(t, store.ListApplicationsParams{Limit: 3}), 3)
}

func testListPagingFiltered(t *testing.T, b *bundle) {
	var apps []domain.Application
	for n := 1; n <= 30; n++ {
		apps = append(apps, b.newApp(n, named([]string{"svc-a", "svc-b", "web"}[n%3])))
	}
	b.sync(t, b.org, conn1, b.t0, apps)
	p := store.ListApplicationsParams{
		NamePrefix: "svc", ManageableOnly: true, ExpiringBefore: b.t0.Add(50 * 24 * time.Hour),
	}
	all := b.list(t, p)
	require.NotEmpty(t, all)
	for _, a := range all {
		require.True(t, a.Manageable)
		require.Contains(t, []string{"svc-a", "svc-b"}, a.DisplayName)
	}
	p.Limit = 2
	require.Equal(t, objectIDs(all), objectIDs(b.pageAll(t, p)))
}

func testGetByObjectID(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	got := b.get(t, b.org, objectID(2))
	b.requireSameApp(t, b.stored(b.newApp(2), b.org, conn1, b.t0), *got)
	// GUIDs match whatever their case.
	require.Equal(t, objectID(2), b.get(t, b.org, upper(objectID(2))).ObjectID)
}

func testGetByAppID(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	require.Equal(t, objectID(3), b.get(t, b.org, appID(3)).ObjectID)
	require.Equal(t, objectID(3), b.get(t, b.org, upper(appID(3))).ObjectID)
}

func testGetByName(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 3))
	got := b.get(t, b.org, "app-003")
	require.Equal(t, objectID(3), got.ObjectID)
	require.Len(t, got.Credentials, 2)
	_, err := b.s.GetApplication(b.ctx, b.org, "APP-003")
	require.ErrorIs(t, err, store.ErrNotFound, "display names match exactly")
	_, err = b.s.GetApplication(b.ctx, b.org, "app-00")
	require.ErrorIs(t, err, store.ErrNotFound, "not a prefix")
}

func testGetPrecedence(t *testing.T, b *bundle) {
	// App 2 is named like app 1's object id, app 3 like app 1's app id.
	b.sync(t, b.org, conn1, b.t0, []domain.Application{
		b.newApp(1), b.newApp(2, named(objectID(1))), b.newApp(3, named(appID(1))),
		b.newApp(4, func(a *domain.Application) { a.AppID = objectID(5) }), b.newApp(5),
	})
	require.Equal(t, objectID(1), b.get(t, b.org, objectID(1)).ObjectID, "object id before display name")
	require.Equal(t, objectID(1), b.get(t, b.org, appID(1)).ObjectID, "app id before display name")
	require.Equal(t, objectID(5), b.get(t, b.org, objectID(5)).ObjectID, "object id before app id")
}

func testGetNotFound(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, b.newApps(1, 2))
	for _, ref := range []string{objectID(9), appID(9), "nope", ""} {
		_, err := b.s.GetApplication(b.ctx, b.org, ref)
		require.ErrorIs(t, err, store.ErrNotFound, "ref %q", ref)
	}
	_, err := b.s.GetApplication(b.ctx, "no-such-org", objectID(1))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testGetAmbiguous(t *testing.T, b *bundle) {
	b.sync(t, b.org, conn1, b.t0, []domain.Application{
		b.newApp(1, named("shared")), b.newApp(2, named("shared")), b.newApp(3),
	})
	_, err := b.s.GetApplication(b.ctx, b.org, "shared")
	require.ErrorIs(t, err, store.ErrAmbiguous)
	require.NotErrorIs(t, err, store.ErrNotFound)
	var amb *store.AmbiguousError
	require.True(t, errors.As(err, &amb))
	require.ElementsMatch(t, []string{objectID(1), objectID(2)}, amb.ObjectIDs)
	require.Contains(t, err.Error(), objectID(1))
	require.Contains(t, err.Error(), objectID(2))
	require.Contains(t, err.Error(), "ambiguous")

	// The object ids still resolve.
	require.Equal(t, objectID(2), b.get(t, b.org, objectID(2)).ObjectID)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// minEnd is the earliest end of a's credentials (zero without any): the
// key OrderByExpiry sorts on.
func minEnd(a domain.Application) time.Time {
	var m time.Time
	for _, c := range a.Credentials {
		if !c.End.IsZero() && (m.IsZero() || c.End.Before(m)) {
			m = c.End
		}
	}
	return m
}

// pageAllByExpiry walks every page of p in OrderByExpiry and returns the
// rows in order.
func (b *bundle) pageAllByExpiry(t *testing.T, p store.ListApplicationsParams) []domain.Application {
	t.Helper()
	p.Order = store.OrderByExpiry
	var all []domain.Application
	for range 1000 {
		page := b.list(t, p)
		require.LessOrEqual(t, len(page), p.Limit)
		all = append(all, page...)
		if len(page) < p.Limit {
			return all
		}
		last := page[len(page)-1]
		p.AfterName, p.AfterObjectID, p.AfterMinEnd = last.DisplayName, last.ObjectID, minEnd(last)
	}
	t.Fatal("paging does not end")
	return nil
}

// testListByExpiry: soonest earliest end first, expired ones first of
// all, ties by name and object id, applications without credentials last;
// pages of every size give the same rows, filters included.
func testListByExpiry(t *testing.T, b *bundle) {
	var apps []domain.Application
	for n := 1; n <= 24; n++ {
		apps = append(apps, b.newApp(n, named([]string{"web", "api", "batch"}[n%3]), func(a *domain.Application) {
			// Four apps share each end, so names and object ids break ties.
			a.Credentials[0].End = b.t0.Add(time.Duration(n%6) * 24 * time.Hour)
		}))
	}
	apps = append(apps, b.newApp(25, noCredentials), b.newApp(26, noCredentials, named("api")),
		b.newApp(27, func(a *domain.Application) { a.Credentials[0].End = b.t0.Add(-time.Hour) }))
	b.sync(t, b.org, conn1, b.t0, apps)

	all := b.list(t, store.ListApplicationsParams{Order: store.OrderByExpiry})
	require.Len(t, all, len(apps))
	require.Equal(t, objectID(27), all[0].ObjectID, "the expired one first")
	require.Equal(t, []string{objectID(26), objectID(25)}, objectIDs(all[len(all)-2:]), "no credentials last, by name")
	for i := 1; i < len(all)-2; i++ {
		prev, cur := all[i-1], all[i]
		pe, ce := minEnd(prev), minEnd(cur)
		require.True(t, pe.Before(ce) || (pe.Equal(ce) && (prev.DisplayName < cur.DisplayName ||
			(prev.DisplayName == cur.DisplayName && prev.ObjectID < cur.ObjectID))), "ordered by earliest end, name, object id at %d", i)
	}
	for _, size := range []int{1, 3, 4, 5, 27, 28} {
		got := b.pageAllByExpiry(t, store.ListApplicationsParams{Limit: size})
		require.Equal(t, objectIDs(all), objectIDs(got), "page size %d", size)
	}
	require.Equal(t, b.normApps(all[:5]), b.normApps(b.list(t, store.ListApplicationsParams{Order: store.OrderByExpiry, Limit: 5})),
		"pages carry credentials and owners too")

	p := store.ListApplicationsParams{NamePrefix: "a", ManageableOnly: true, ExpiringBefore: b.t0.Add(5 * 24 * time.Hour)}
	filtered := b.list(t, store.ListApplicationsParams{Order: store.OrderByExpiry, NamePrefix: p.NamePrefix, ManageableOnly: true, ExpiringBefore: p.ExpiringBefore})
	require.Len(t, filtered, 4)
	p.Limit = 3
	require.Equal(t, objectIDs(filtered), objectIDs(b.pageAllByExpiry(t, p)))

	_, err := b.s.ListApplications(b.ctx, store.ListApplicationsParams{Org: b.org, Order: "size"})
	require.Error(t, err, "an unknown order is refused")
}
