package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// The ObjectIDs filters restrict a person who may see only the
// applications they own in Entra (docs/adr/0030): every listing keeps
// exactly the named applications, pages stay exact, an empty list keeps
// none, and another organization's application of the same object id is
// never let in.

// testListObjectIDs: ListApplications with ObjectIDs, in both orders, with
// the other filters and paged.
func testListObjectIDs(t *testing.T, b *bundle) {
	day := 24 * time.Hour
	b.sync(t, b.org, conn1, b.t0, []domain.Application{
		b.newApp(1, named("alpha"), withEnds("ci", b.t0.Add(3*day))),
		b.newApp(2, named("bravo"), withEnds("ci", b.t0.Add(day))),
		b.newApp(3, named("charlie"), withEnds("ci", b.t0.Add(2*day))),
		b.newApp(4, named("delta"), noCredentials),
		b.newApp(5, named("echo"), withEnds("ci", b.t0.Add(-day))),
	})
	// The other organization has application 9 and one with the object
	// id of org's 2: neither may appear in org's listing.
	b.sync(t, b.other, conn1, b.t0, []domain.Application{b.newApp(2, named("other-bravo")), b.newApp(9, named("other-nine"))})
	owned := []string{objectID(2), objectID(4), objectID(5), objectID(9)}

	require.Equal(t, []string{objectID(2), objectID(4), objectID(5)}, objectIDs(b.list(t, store.ListApplicationsParams{ObjectIDs: owned})), "by name")
	require.Equal(t, []string{objectID(5), objectID(2), objectID(4)},
		objectIDs(b.list(t, store.ListApplicationsParams{ObjectIDs: owned, Order: store.OrderByExpiry})), "by expiry, no credentials last")
	require.Equal(t, []string{objectID(2), objectID(5)},
		objectIDs(b.list(t, store.ListApplicationsParams{ObjectIDs: owned, ExpiringBefore: b.t0.Add(2 * day)})), "with another filter")
	require.Equal(t, []string{objectID(2)},
		objectIDs(b.list(t, store.ListApplicationsParams{ObjectIDs: owned, NamePrefix: "br"})), "with a name prefix")
	require.Empty(t, b.list(t, store.ListApplicationsParams{ObjectIDs: []string{}}), "an empty, non-nil list keeps nothing")
	require.Len(t, b.list(t, store.ListApplicationsParams{}), 5, "nil keeps everything")
	require.Empty(t, b.list(t, store.ListApplicationsParams{ObjectIDs: []string{objectID(9)}}), "another organization's application")

	// Paged one at a time, in each order: the same rows, no gap, no
	// repeat.
	for _, order := range []store.AppOrder{store.OrderByName, store.OrderByExpiry} {
		want := objectIDs(b.list(t, store.ListApplicationsParams{ObjectIDs: owned, Order: order}))
		var got []string
		p := store.ListApplicationsParams{ObjectIDs: owned, Order: order, Limit: 1}
		for range 10 {
			page := b.list(t, p)
			if len(page) == 0 {
				break
			}
			got = append(got, objectIDs(page)...)
			last := page[0]
			p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
			p.AfterMinEnd = time.Time{}
			if len(last.Credentials) > 0 {
				p.AfterMinEnd = last.Credentials[0].End
			}
		}
		require.Equal(t, want, got, "paged by %q", order)
	}
}

// testCountCredentialsByExpiryObjectIDs: only the named applications'
// credentials count.
func testCountCredentialsByExpiryObjectIDs(t *testing.T, b *bundle) {
	now, day := b.t0, 24*time.Hour
	b.sync(t, b.org, conn1, b.t0, []domain.Application{
		b.newApp(1, withEnds("ci", now.Add(-time.Hour), now.Add(day))),
		b.newApp(2, withEnds("ci", now.Add(2*day), now.Add(40*day))),
		b.newApp(3, withEnds("ci", now.Add(-day))),
	})
	b.sync(t, b.other, conn1, b.t0, []domain.Application{b.newApp(2, withEnds("ci", now.Add(-day), now.Add(day)))})
	bounds := []time.Time{now, now.Add(7 * day), now.Add(90 * day)}
	count := func(ids []string) []int {
		t.Helper()
		got, err := b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org, Bounds: bounds, ObjectIDs: ids})
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []int{2, 4, 5}, count(nil), "nil counts every application")
	require.Equal(t, []int{0, 1, 2}, count([]string{objectID(2)}), "application 2 only, not the other organization's 2")
	require.Equal(t, []int{2, 3, 3}, count([]string{objectID(1), objectID(3), objectID(8)}))
	require.Equal(t, []int{0, 0, 0}, count([]string{}), "an empty list counts nothing")
}

// testListRunsAppObjectIDs: only the named applications' runs, paged.
func testListRunsAppObjectIDs(t *testing.T, b *bundle) {
	r1 := b.createRun(t, b.newRun(1))
	b.move(t, r1.ID, domain.RunPlanned, domain.RunDone, b.t0.Add(time.Hour))
	r2 := b.createRun(t, b.newRun(2))
	r3 := b.createRun(t, b.newRun(3))
	b.move(t, r3.ID, domain.RunPlanned, domain.RunFailed, b.t0.Add(time.Hour))
	r4 := b.createRun(t, b.newRun(1))
	b.createRun(t, b.newRun(1, func(r *domain.Run) { r.Org = b.other }))
	list := func(p store.ListRunsParams) []string {
		t.Helper()
		p.Org = b.org
		runs, err := b.s.ListRuns(b.ctx, p)
		require.NoError(t, err)
		return runIDs(runs)
	}
	require.Equal(t, []string{r4.ID, r3.ID, r2.ID, r1.ID}, list(store.ListRunsParams{}))
	require.Equal(t, []string{r4.ID, r3.ID, r1.ID}, list(store.ListRunsParams{AppObjectIDs: []string{objectID(1), objectID(3)}}))
	require.Equal(t, []string{r3.ID}, list(store.ListRunsParams{AppObjectIDs: []string{objectID(1), objectID(3)}, States: []domain.RunState{domain.RunFailed}}))
	require.Equal(t, []string{r4.ID}, list(store.ListRunsParams{AppObjectIDs: []string{objectID(1), objectID(3)}, Limit: 1}))
	require.Equal(t, []string{r3.ID, r1.ID}, list(store.ListRunsParams{AppObjectIDs: []string{objectID(1), objectID(3)}, BeforeCreatedAt: r4.CreatedAt, BeforeID: r4.ID}))
	require.Empty(t, list(store.ListRunsParams{AppObjectIDs: []string{}}), "an empty list keeps none")
	require.Equal(t, []string{r4.ID, r1.ID}, list(store.ListRunsParams{AppObjectIDs: []string{objectID(1)}}),
		"not the other organization's run of an application with the same object id")
}

// testOrgSettings: the switch defaults off, round-trips per organization,
// and a missing organization is ErrNotFound.
func testOrgSettings(t *testing.T, b *bundle) {
	got, err := b.s.GetOrgSettings(b.ctx, b.org)
	require.NoError(t, err)
	require.Equal(t, store.OrgSettings{Org: b.org}, *got, "off by default")
	require.NoError(t, b.s.PutOrgSettings(b.ctx, store.OrgSettings{Org: b.org, OwnedAppsOnly: true}))
	got, err = b.s.GetOrgSettings(b.ctx, b.org)
	require.NoError(t, err)
	require.True(t, got.OwnedAppsOnly)
	other, err := b.s.GetOrgSettings(b.ctx, b.other)
	require.NoError(t, err)
	require.False(t, other.OwnedAppsOnly, "the other organization is unchanged")
	require.NoError(t, b.s.PutOrgSettings(b.ctx, store.OrgSettings{Org: b.org}))
	got, err = b.s.GetOrgSettings(b.ctx, b.org)
	require.NoError(t, err)
	require.False(t, got.OwnedAppsOnly)

	_, err = b.s.GetOrgSettings(b.ctx, "org-missing")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.s.PutOrgSettings(b.ctx, store.OrgSettings{Org: "org-missing", OwnedAppsOnly: true}), store.ErrNotFound)
}

// testSessionsOwned: a restricted session keeps its owned ids (none is
// not the same as unrestricted), an unrestricted one none, and ids without
// the restriction are refused.
func testSessionsOwned(t *testing.T, b *bundle) {
	some := b.newSession(b.org, "some", func(s *store.Session) {
		s.Role, s.OwnedOnly, s.OwnedObjectIDs = "viewer", true, []string{objectID(2), objectID(1)}
	})
	none := b.newSession(b.org, "none", func(s *store.Session) { s.Role, s.OwnedOnly = "operator", true })
	free := b.newSession(b.org, "free")
	for _, s := range []store.Session{some, none, free} {
		require.NoError(t, b.s.CreateSession(b.ctx, s))
	}
	got, err := b.s.GetSession(b.ctx, b.org, some.IDHash)
	require.NoError(t, err)
	require.True(t, got.OwnedOnly)
	require.Equal(t, []string{objectID(2), objectID(1)}, got.OwnedObjectIDs)

	got, err = b.s.GetSession(b.ctx, b.org, none.IDHash)
	require.NoError(t, err)
	require.True(t, got.OwnedOnly, "restricted to nothing stays restricted")
	require.NotNil(t, got.OwnedObjectIDs)
	require.Empty(t, got.OwnedObjectIDs)

	got, err = b.s.GetSession(b.ctx, b.org, free.IDHash)
	require.NoError(t, err)
	require.False(t, got.OwnedOnly)
	require.Nil(t, got.OwnedObjectIDs)

	require.Error(t, b.s.CreateSession(b.ctx, b.newSession(b.org, "bad", func(s *store.Session) { s.OwnedObjectIDs = []string{objectID(1)} })),
		"owned ids on an unrestricted session")
}
