// Package storetest is the conformance suite of store.Store: every
// implementation (SQLite, PostgreSQL) runs Run against itself and must
// pass it unchanged. The suite speaks only through the interface.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Run runs the conformance suite. newStore returns a new, empty store for
// one test; the suite closes it. Tests run in parallel, so newStore must
// be safe to call concurrently.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	t.Helper()
	o := options{precision: time.Nanosecond}
	for _, opt := range opts {
		opt(&o)
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"EnsureOrg/IsIdempotent", testEnsureOrgIdempotent},
		{"Sync/InsertsNewApplications", testSyncInserts},
		{"Sync/RewritesChangedApplications", testSyncRewritesChanged},
		{"Sync/SkipsUnchangedButStampsThem", testSyncSkipsUnchanged},
		{"Sync/DetectsEachKindOfChange", testSyncDetectsEachChange},
		{"Sync/RejectsApplicationsOfAnotherOrgOrConnection", testSyncRejectsForeign},
		{"Sync/EmptyPageIsANoOp", testSyncEmptyPage},
		{"Sync/LaterCopyInOnePageWins", testSyncDuplicateInPage},
		{"Sync/ManyCredentials", testSyncManyCredentials},
		{"FinishSync/RemovesApplicationsNotSeen", testFinishSyncRemoves},
		{"FinishSync/RemovedApplicationsTakeTheirCredentials", testFinishSyncCascades},
		{"FinishSync/KeepsRowsOfALaterSync", testFinishSyncKeepsLater},
		{"Connections/AreIsolated", testConnectionsIsolated},
		{"Orgs/ApplicationsAreIsolated", testOrgsApplicationsIsolated},
		{"Orgs/RunsAreIsolated", testOrgsRunsIsolated},
		{"Applications/RoundTripExactly", testAppsRoundTrip},
		{"Applications/TimesRoundTripWithTimeEqual", testTimesRoundTrip},
		{"List/ExpiringBefore", testListExpiring},
		{"List/NamePrefix", testListNamePrefix},
		{"List/ManageableOnly", testListManageable},
		{"List/PagesWithoutGapsOrRepeats", testListPaging},
		{"List/PagesWithFilters", testListPagingFiltered},
		{"List/OrderByExpiry", testListByExpiry},
		{"List/RenewableBefore", testListRenewableBefore},
		{"Credentials/CountByExpiry", testCountCredentialsByExpiry},
		{"Get/ByObjectID", testGetByObjectID},
		{"Get/ByAppID", testGetByAppID},
		{"Get/ByDisplayName", testGetByName},
		{"Get/ObjectIDWinsOverName", testGetPrecedence},
		{"Get/NotFound", testGetNotFound},
		{"Get/AmbiguousNameListsObjectIDs", testGetAmbiguous},
		{"Runs/CreateAndGetRoundTrip", testRunRoundTrip},
		{"Runs/CreateFillsDefaults", testRunDefaults},
		{"Runs/SecondActiveRunConflicts", testRunActiveConflict},
		{"Runs/NewRunAllowedOnceFirstIsTerminalOrRetiring", testRunAllowedAfterTerminal},
		{"Runs/SequencePerApplication", testRunSequence},
		{"Runs/DuplicateIDConflicts", testRunDuplicateID},
		{"Runs/TransitionSetsFields", testTransitionSetsFields},
		{"Runs/TransitionFromWrongStateConflicts", testTransitionWrongFrom},
		{"Runs/TransitionOfMissingRunNotFound", testTransitionNotFound},
		{"Runs/TransitionToSameStateRejected", testTransitionSameState},
		{"Runs/TransitionBackToActiveCannotMakeTwoActive", testTransitionReactivateConflict},
		{"Runs/ConcurrentTransitionsOneWins", testTransitionRace},
		{"Runs/EventsKeepTheirOrder", testEventsOrder},
		{"Runs/AppendEventToMissingRunNotFound", testAppendNotFound},
		{"Runs/ListNewestFirstWithFilters", testListRuns},
		{"Runs/ListPagesWithACursor", testListRunsPages},
		{"Leases/FenceEveryWrite", testLeaseFencesEveryWrite},
		{"Leases/ClaimOnlyWhenTheHolderIsGone", testLeaseClaim},
		{"Leases/CountLive", testLeaseCountLive},
		{"Access/OneViewPerConnection", testAccessPerConnection},
		{"Applications/SetCredentialsBetweenSyncs", testSetCredentials},
		{"Targets/PinnedPerOrgAppPolicyAndSink", testPinnedTargets},
		{"Targets/DeliveriesPerOrgAppAndTarget", testSinkDeliveries},
		{"Applications/CertificateDetails", testCertificateDetails},
		{"Access/DeletedConnectionTakesItsView", testDeletedConnectionTakesItsView},
		{"Access/OverlappingSyncsKeepWhatBothSaw", testOverlappingSyncsKeepWhatBothSaw},
		{"SyncState/OnlyMovesForward", testSyncStateOnlyMovesForward},
		{"SyncState/IsWhenViewsWereSeen", testSyncStateIsWhenViewsWereSeen},
		{"SyncState/DeletedConnectionTakesIt", testDeletedConnectionTakesItsSyncState},
		{"Incremental/RemoveApplications", testRemoveApplications},
		{"Incremental/ReconcileManageable", testReconcileManageable},
		{"Incremental/KeepCanChange", testSyncKeepCanChange},
		{"Catalog/ConnectionsRoundTrip", testConnectionRoundTrip},
		{"Catalog/ConnectionHealth", testConnectionHealth},
		{"Catalog/ConnectionsRejectInvalidOnes", testConnectionRejectsBadReferences},
		{"Catalog/ConnectionsUpdateAndDelete", testConnectionUpdateAndDelete},
		{"Catalog/OrgsAreIsolated", testCatalogOrgsAreIsolated},
		{"Catalog/PoliciesRoundTripInOrder", testPolicyRoundTripAndOrder},
		{"Catalog/ProvisionedAreReadOnlyElsewhere", testProvisionedAreReadOnlyElsewhere},
		{"Catalog/ProvisionIsDeclarativeAndIdempotent", testProvisionIsDeclarativeAndIdempotent},
		{"Catalog/ProvisionCreatesTheOrg", testProvisionCreatesTheOrg},
		{"Audit/AppendNumbersAndChains", testAuditAppendNumbersAndChains},
		{"Audit/RoundTripsEveryField", testAuditRoundTripsEveryField},
		{"Audit/OrgsAreIsolated", testAuditOrgsAreIsolated},
		{"Audit/ListFiltersAndPages", testAuditListFiltersAndPages},
		{"Audit/ConcurrentAppendsKeepOneChain", testAuditConcurrentAppendsKeepOneChain},
		{"Audit/RejectsIncompleteRecords", testAuditRejectsIncompleteRecords},
		{"APIKeys/RoundTrip", testAPIKeysRoundTrip},
		{"APIKeys/AreIsolated", testAPIKeysAreIsolated},
		{"APIKeys/RevokeAndRefuse", testAPIKeysRevokeAndRefuse},
		{"Sessions/RoundTrip", testSessionsRoundTrip},
		{"Sessions/AreIsolated", testSessionsAreIsolated},
		{"Sessions/Expire", testSessionsExpire},
		{"LocalAdmins/CreateGetAndLockOut", testLocalAdmins},
		{"ApplicationSettings/RoundTrip", testApplicationSettingsRoundTrip},
		{"ApplicationSettings/AreIsolated", testApplicationSettingsAreIsolated},
		{"Owned/ListApplicationsByObjectIDs", testListObjectIDs},
		{"Owned/CountCredentialsByExpiryObjectIDs", testCountCredentialsByExpiryObjectIDs},
		{"Owned/ListRunsByAppObjectIDs", testListRunsAppObjectIDs},
		{"Owned/OrgSettings", testOrgSettings},
		{"Owned/SessionsKeepOwnedObjectIDs", testSessionsOwned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, newStore, o))
		})
	}
}

// Option changes how Run tests a store.
type Option func(*options)

type options struct {
	precision time.Duration
}

// TimePrecision declares the finest step of time the store keeps: every
// time comes back truncated (never rounded) to a multiple of p since
// time.Time's zero. PostgreSQL's timestamptz keeps microseconds. The
// suite then compares each time it wrote, truncated to p, with the time
// read back, which must be exactly that: a store that rounds, or keeps
// less than it declares, still fails. The default, time.Nanosecond,
// demands exact round trips (SQLite keeps nanoseconds).
func TimePrecision(p time.Duration) Option {
	return func(o *options) {
		if p > 0 {
			o.precision = p
		}
	}
}

// bundle is what every test starts from: an empty store with two orgs.
type bundle struct {
	ctx   context.Context
	s     store.Store
	org   domain.OrgID // the org under test
	other domain.OrgID // a second org that must never see org's rows
	// t0 is a base time with nanoseconds and a non-UTC zone, so every
	// round trip has to be exact.
	t0 time.Time
	// runs counts newRun calls, for unique ids and CreatedAt order.
	runs int
	// precision is the store's (TimePrecision).
	precision time.Duration
}

func setup(t *testing.T, newStore func(t *testing.T) store.Store, o options) *bundle {
	t.Helper()
	s := newStore(t)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	b := &bundle{
		ctx:   t.Context(),
		s:     s,
		org:   "org-a",
		other: "org-b",
		t0:    time.Date(2030, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600)),

		precision: o.precision,
	}
	require.NoError(t, s.EnsureOrg(b.ctx, b.org, "Org A"))
	require.NoError(t, s.EnsureOrg(b.ctx, b.other, "Org B"))
	return b
}

const (
	tenant1 = "11111111-1111-1111-1111-111111111111"
	tenant2 = "22222222-2222-2222-2222-222222222222"
	conn1   = "contoso-read"
	conn2   = "fabrikam-read"
)

func objectID(n int) string { return fmt.Sprintf("0bec0000-0000-4000-8000-%012d", n) }
func appID(n int) string    { return fmt.Sprintf("a9900000-0000-4000-8000-%012d", n) }
func keyID(n, i int) string { return fmt.Sprintf("4e400000-%04d-4000-8000-%012d", i, n) }

// newApp builds application n of tenant1 from one valid base, then
// applies the tweaks.
func (b *bundle) newApp(n int, tweaks ...func(*domain.Application)) domain.Application {
	a := domain.Application{
		TenantID:       tenant1,
		ObjectID:       objectID(n),
		AppID:          appID(n),
		DisplayName:    fmt.Sprintf("app-%03d", n),
		SignInAudience: "AzureADMyOrg",
		CreatedAt:      b.t0.Add(-time.Duration(n) * time.Hour),
		Owners:         []string{"owner-rotor", fmt.Sprintf("owner-%d", n)},
		Manageable:     n%2 == 0,
		Credentials: []domain.Credential{
			{KeyID: keyID(n, 1), Kind: domain.KindSecret, DisplayName: "ci", Hint: "abc",
				Start: b.t0.Add(-24 * time.Hour), End: b.t0.Add(time.Duration(30+n) * 24 * time.Hour)},
			{KeyID: keyID(n, 2), Kind: domain.KindCertificate, DisplayName: "CN=app", Thumbprint: "0A1B2C",
				Start: b.t0.Add(-48 * time.Hour), End: b.t0.Add(time.Duration(365+n) * 24 * time.Hour)},
		},
	}
	for _, tw := range tweaks {
		tw(&a)
	}
	return a
}

func (b *bundle) newApps(from, to int, tweaks ...func(*domain.Application)) []domain.Application {
	var out []domain.Application
	for n := from; n <= to; n++ {
		out = append(out, b.newApp(n, tweaks...))
	}
	return out
}

func named(name string) func(*domain.Application) {
	return func(a *domain.Application) { a.DisplayName = name }
}

func inTenant(tenant string) func(*domain.Application) {
	return func(a *domain.Application) { a.TenantID = tenant }
}

func noCredentials(a *domain.Application) { a.Credentials = nil }

// sync writes apps as one page of org's connection, stamped at.
func (b *bundle) sync(t *testing.T, org domain.OrgID, connection string, at time.Time, apps []domain.Application) int {
	t.Helper()
	n, err := b.s.SyncApplications(b.ctx, store.SyncApplicationsParams{
		Org: org, Connection: connection, SyncStarted: at, Applications: apps,
	})
	require.NoError(t, err)
	return n
}

func (b *bundle) list(t *testing.T, p store.ListApplicationsParams) []domain.Application {
	t.Helper()
	if p.Org == "" {
		p.Org = b.org
	}
	apps, err := b.s.ListApplications(b.ctx, p)
	require.NoError(t, err)
	return apps
}

func (b *bundle) get(t *testing.T, org domain.OrgID, ref string) *domain.Application {
	t.Helper()
	a, err := b.s.GetApplication(b.ctx, org, ref)
	require.NoError(t, err)
	return a
}

func objectIDs(apps []domain.Application) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.ObjectID
	}
	return out
}

// stored is what the store should return for app synced into org and
// connection at syncedAt: owners sorted, credentials by end then key id,
// empty lists nil, times in UTC at the store's precision.
func (b *bundle) stored(app domain.Application, org domain.OrgID, connection string, syncedAt time.Time) domain.Application {
	app.Org, app.SyncedAt = org, syncedAt
	app.Access = []domain.Access{{Connection: connection, CanChange: app.Manageable}}
	return b.normApp(app)
}

// normApp puts an application in the store's documented order, in UTC
// at the store's precision, so that require.Equal compares what matters.
func (b *bundle) normApp(a domain.Application) domain.Application {
	a.CreatedAt = b.utc(a.CreatedAt)
	a.SyncedAt = b.utc(a.SyncedAt)
	if len(a.Owners) == 0 {
		a.Owners = nil
	} else {
		a.Owners = slices.Clone(a.Owners)
		slices.Sort(a.Owners)
	}
	if len(a.Credentials) == 0 {
		a.Credentials = nil
	} else {
		a.Credentials = slices.Clone(a.Credentials)
		for i := range a.Credentials {
			a.Credentials[i].Start = b.utc(a.Credentials[i].Start)
			a.Credentials[i].End = b.utc(a.Credentials[i].End)
		}
		slices.SortFunc(a.Credentials, func(x, y domain.Credential) int {
			if c := x.End.Compare(y.End); c != 0 {
				return c
			}
			return strings.Compare(x.KeyID, y.KeyID)
		})
	}
	return a
}

func (b *bundle) normApps(apps []domain.Application) []domain.Application {
	out := make([]domain.Application, len(apps))
	for i, a := range apps {
		out[i] = b.normApp(a)
	}
	return out
}

// utc is t as the store gives it back: the same instant in UTC, without a
// monotonic reading, truncated to the store's precision (a no-op at the
// default nanosecond). The zero time stays zero.
func (b *bundle) utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0).Truncate(b.precision)
}

// sameTime reports whether got is what the store must return for a time
// written as want: want truncated to the store's precision, as an instant.
// got is not truncated: a store that rounds, or keeps less than it
// declares, fails.
func (b *bundle) sameTime(want, got time.Time) bool {
	return b.utc(want).Equal(got)
}

// requireSameApp compares after normalizing both sides. Converting to
// UTC keeps the instant, so equal normalized times are time.Equal.
func (b *bundle) requireSameApp(t *testing.T, want, got domain.Application) {
	t.Helper()
	require.Equal(t, b.normApp(want), b.normApp(got))
}
