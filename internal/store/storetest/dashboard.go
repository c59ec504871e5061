package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// withEnds gives an application one secret per end, named name.
func withEnds(name string, ends ...time.Time) func(*domain.Application) {
	return func(a *domain.Application) {
		a.Credentials = nil
		for i, end := range ends {
			a.Credentials = append(a.Credentials, domain.Credential{KeyID: keyID(len(a.DisplayName)*100+i, 9), Kind: domain.KindSecret,
				DisplayName: name, Hint: "abc", Start: end.Add(-30 * 24 * time.Hour), End: end})
		}
	}
}

func testCountCredentialsByExpiry(t *testing.T, b *bundle) {
	now := b.t0
	day := 24 * time.Hour
	b.sync(t, b.org, conn1, b.t0, []domain.Application{
		b.newApp(1, withEnds("ci", now.Add(-time.Second), now)),           // expired 1s ago; ends exactly now (expired: no longer valid)
		b.newApp(2, withEnds("ci", now.Add(time.Second), now.Add(7*day))), // within 7 days, the second exactly at 7 days
		b.newApp(3, withEnds("rotor:r1", now.Add(7*day+time.Second))),     // just past 7 days
		b.newApp(4, withEnds("ci", now.Add(30*day), now.Add(400*day))),    // exactly 30 days; far away
		b.newApp(5, noCredentials),
	})
	// Another organization's credentials, ending in every bucket, are
	// never counted.
	b.sync(t, b.other, conn1, b.t0, []domain.Application{
		b.newApp(1, withEnds("ci", now.Add(-time.Hour), now.Add(time.Hour), now.Add(20*day), now.Add(60*day))),
	})
	bounds := []time.Time{now, now.Add(7 * day), now.Add(30 * day), now.Add(90 * day)}
	got, err := b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org, Bounds: bounds})
	require.NoError(t, err)
	require.Equal(t, []int{2, 4, 6, 6}, got, "cumulative counts of credentials ending at or before each bound")

	// Bounds in any order; each answered for itself.
	got, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org, Bounds: []time.Time{now.Add(7*day + time.Second), now.Add(-time.Second), now.Add(-2 * time.Second)}})
	require.NoError(t, err)
	require.Equal(t, []int{5, 1, 0}, got)

	got, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.other, Bounds: bounds})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4}, got)

	got, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: "org-none", Bounds: bounds})
	require.NoError(t, err)
	require.Equal(t, []int{0, 0, 0, 0}, got, "an organization without credentials")

	got, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org})
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org, Bounds: make([]time.Time, store.MaxExpiryBounds+1)})
	require.Error(t, err)
	_, err = b.s.CountCredentialsByExpiry(b.ctx, store.CountCredentialsByExpiryParams{Org: b.org, Bounds: []time.Time{{}}})
	require.Error(t, err, "a zero bound is a mistake, not 'nothing'")
}

func testListRenewableBefore(t *testing.T, b *bundle) {
	now := b.t0
	day := 24 * time.Hour
	bound := now.Add(17 * day)
	apps := []domain.Application{
		b.newApp(1, withEnds("rotor:r1", now.Add(60*day))),                                    // renewed far ahead: left out
		b.newApp(2, withEnds("rotor:r2", now.Add(10*day))),                                    // rotor's ends soon
		b.newApp(3, withEnds("ci", now.Add(300*day))),                                         // no rotor credential: adoption
		b.newApp(4, noCredentials),                                                            // none at all: adoption
		b.newApp(5, withEnds("rotor:r5", bound)),                                              // ends exactly at the bound: kept
		b.newApp(6, withEnds("rotor:r6", now.Add(5*day), now.Add(40*day))),                    // a newer rotor credential ends later: left out
		b.newApp(7, withEnds("Rotor:r7", now.Add(60*day))),                                    // not rotor's prefix (case matters)
		b.newApp(8, withEnds("ci", now.Add(60*day)), withEndsAlso("rotor:r8", now.Add(-day))), // rotor's expired
	}
	b.sync(t, b.org, conn1, b.t0, apps)
	// Another organization's rotor credential of the same application
	// never hides this one.
	b.sync(t, b.other, conn1, b.t0, []domain.Application{b.newApp(3, withEnds("rotor:x", now.Add(90*day)))})

	want := []string{objectID(2), objectID(3), objectID(4), objectID(5), objectID(7), objectID(8)}
	require.Equal(t, want, objectIDs(b.list(t, store.ListApplicationsParams{RenewableBefore: bound})))
	require.Empty(t, b.list(t, store.ListApplicationsParams{Org: b.other, RenewableBefore: now}), "the other org's copy has its own rotor credential")
	require.Equal(t, []string{objectID(3)}, objectIDs(b.list(t, store.ListApplicationsParams{Org: b.other, RenewableBefore: now.Add(90 * day)})))
	require.Len(t, b.list(t, store.ListApplicationsParams{}), len(apps), "zero: no filter")

	// With the other filters and the expiry order, paged.
	got := objectIDs(b.pageAllByExpiry(t, store.ListApplicationsParams{RenewableBefore: bound, ManageableOnly: true, Limit: 2}))
	require.ElementsMatch(t, []string{objectID(2), objectID(4), objectID(8)}, got)
	require.Equal(t, objectID(4), got[len(got)-1], "without credentials last")
}

// withEndsAlso adds one secret named name ending at end.
func withEndsAlso(name string, end time.Time) func(*domain.Application) {
	return func(a *domain.Application) {
		a.Credentials = append(a.Credentials, domain.Credential{KeyID: keyID(len(a.Credentials), 8), Kind: domain.KindSecret,
			DisplayName: name, Hint: "xyz", Start: end.Add(-30 * 24 * time.Hour), End: end})
	}
}
