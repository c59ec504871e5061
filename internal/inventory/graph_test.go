package inventory_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

func TestCredentials(t *testing.T) {
	t.Parallel()
	start, end := t0, t0.AddDate(0, 3, 0)
	got := inventory.Credentials(&graph.Application{
		PasswordCredentials: []graph.PasswordCredential{{KeyID: "pw", DisplayName: "rotor:run-1", Hint: "abc", StartDateTime: start, EndDateTime: end, SecretText: secret.New("never stored")}},
		KeyCredentials:      []graph.KeyCredential{{KeyID: "kc", DisplayName: "CN=app", Type: "AsymmetricX509Cert", Usage: "Verify", CustomKeyIdentifier: "q83vEjRWeJA=", Key: []byte("der"), StartDateTime: start, EndDateTime: end}},
	})
	require.Equal(t, []domain.Credential{
		{KeyID: "pw", Kind: domain.KindSecret, DisplayName: "rotor:run-1", Hint: "abc", Start: start, End: end},
		{KeyID: "kc", Kind: domain.KindCertificate, DisplayName: "CN=app", Thumbprint: "q83vEjRWeJA=", Start: start, End: end},
	}, got)
}

// simDirectory starts a simulator with seed and returns the Graph directory
// of its first tenant, signed in as the tenant's rotation identity exactly
// as the server does: only from sim.json.
func simDirectory(t *testing.T, seed string) (inventory.Directory, *graph.Client, *simfile.Tenant) {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: seed})
	simFile, info := s.File, s.Info
	require.NotEmpty(t, info.Tenants)
	ten := &info.Tenants[0]
	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	require.NoError(t, err)
	cred, err := azure.NewCredential(azure.Connection{
		Name: conn, TenantID: ten.ID, Cloud: azure.Sim, SimFile: simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: ten.Rotation.ClientID, ClientSecret: secret.New(ten.Rotation.ClientSecret)},
	}, ep)
	require.NoError(t, err)
	client, err := graph.New(cred, ep)
	require.NoError(t, err)
	sp, err := client.GetServicePrincipalByAppID(t.Context(), ten.Rotation.ClientID)
	require.NoError(t, err)
	return inventory.NewGraphDirectory(client, ten.ID, sp.ID), client, ten
}

// TestSyncFromSimulator syncs 2,000 applications from the simulator over
// real HTTPS with Microsoft's SDK credential, in pages of 999.
func TestSyncFromSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	dir, client, ten := simDirectory(t, "apps=2000,tenants=1,expiring=1h")

	var progress []inventory.Progress
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, func(p inventory.Progress) { progress = append(progress, p) })
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Seen, 2000)
	require.Equal(t, res.Seen, res.Changed)
	require.Equal(t, 2000, res.Manageable, "the bulk seed makes the rotation identity own every bulk app")
	require.GreaterOrEqual(t, len(progress), 3, "2,000+ applications in pages of 999, written three at a time or more")
	require.Equal(t, res.Seen, progress[len(progress)-1].Seen)

	n, err := b.store.CountApplications(t.Context(), org, conn)
	require.NoError(t, err)
	require.Equal(t, res.Seen, n)

	got, err := b.store.GetApplication(t.Context(), org, "bulk-app-000001")
	require.NoError(t, err)
	require.True(t, got.Manageable)
	require.Equal(t, ten.ID, got.TenantID)
	require.Len(t, got.Credentials, 1)
	require.Equal(t, domain.KindSecret, got.Credentials[0].Kind)
	require.NotEmpty(t, got.Credentials[0].Hint)

	// Manageable means owned by the rotation principal, which Graph confirms.
	owners, err := client.ListOwners(t.Context(), got.ObjectID)
	require.NoError(t, err)
	ids := make([]string, 0, len(owners))
	for _, o := range owners {
		ids = append(ids, o.ID)
	}
	require.Contains(t, ids, ten.Rotation.ObjectID)

	// A second pass changes nothing and removes nothing.
	b.clock.Advance(15 * time.Minute)
	res2, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 2000}, sansAt(res2))
}

// TestSyncFromSimulatorDemo: the demo tenant mixes applications rotor owns
// with ones it does not.
func TestSyncFromSimulatorDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	dir, _, _ := simDirectory(t, "demo")
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Positive(t, res.Manageable)
	require.Less(t, res.Manageable, res.Seen)

	manageable, err := b.store.ListApplications(t.Context(), store.ListApplicationsParams{Org: org, Connection: conn, ManageableOnly: true})
	require.NoError(t, err)
	require.Len(t, manageable, res.Manageable)
}

// simEnv is a simulator tenant seen through rotor's Graph adapter, with
// the simulator itself at hand to change the directory behind rotor's back.
type simEnv struct {
	sim    *simtest.Sim
	ten    *simfile.Tenant
	client *graph.Client
	dir    inventory.Directory
}

func startSim(t *testing.T, seed string) *simEnv {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: seed})
	e := &simEnv{sim: s, ten: &s.Info.Tenants[0]}
	e.signIn(t)
	return e
}

// signIn builds a new client and directory, with a new token: after the
// simulator's clock moved days ahead, the old token has expired there.
func (e *simEnv) signIn(t testing.TB) {
	t.Helper()
	ep, err := azure.ResolveEndpoints(azure.Sim, e.sim.File)
	require.NoError(t, err)
	cred, err := azure.NewCredential(azure.Connection{
		Name: conn, TenantID: e.ten.ID, Cloud: azure.Sim, SimFile: e.sim.File,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: e.ten.Rotation.ClientID, ClientSecret: secret.New(e.ten.Rotation.ClientSecret)},
	}, ep)
	require.NoError(t, err)
	e.client, err = graph.New(cred, ep)
	require.NoError(t, err)
	e.dir = inventory.NewGraphDirectory(e.client, e.ten.ID, e.ten.Rotation.ObjectID)
}

// update changes the simulated tenant in place.
func (e *simEnv) update(fn func(t *sim.Tenant)) {
	w := e.sim.Server.World()
	w.Update(func() { fn(w.TenantLocked(e.ten.ID)) })
}

func (e *simEnv) appNamed(t *testing.T, name string) *sim.Application {
	t.Helper()
	var out *sim.Application
	e.update(func(tn *sim.Tenant) {
		for _, a := range tn.Apps {
			if a.DisplayName == name {
				out = a
			}
		}
	})
	require.NotNil(t, out, name)
	return out
}

// TestIncrementalSyncFromSimulator: after the first (full) sync of 2,000
// applications, an unchanged sync costs a delta request and the ownership
// pages and writes only its sync state; changes made through rotor's
// client and behind its back arrive through Graph's delta query.
func TestIncrementalSyncFromSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	e := startSim(t, "apps=2000,tenants=1,expiring=1h")
	res := b.sync(t, e.dir)
	require.Equal(t, inventory.FullFirst, res.FullReason)
	require.Equal(t, 2001, res.Seen, "2,000 bulk applications and rotor's own")
	require.Equal(t, 2000, res.Manageable)

	b.clock.Advance(15 * time.Minute)
	before := e.client.Requests()
	n := b.writes(t, func() { res = b.sync(t, e.dir) })
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 2000}, sansAt(res))
	require.Equal(t, int64(1), n, "an unchanged sync writes its sync state and nothing else")
	require.Equal(t, int64(1), e.client.Requests()-before, "one delta page: the ownership read 15 minutes ago stands")
	got, err := b.store.GetApplication(t.Context(), org, "bulk-app-000010")
	require.NoError(t, err)
	require.True(t, b.clock.Now().Equal(got.SyncedAt), "seen by this sync, though not written")

	rekeyed, renamed, deleted, disowned := e.appNamed(t, "bulk-app-000001"), e.appNamed(t, "bulk-app-000002"), e.appNamed(t, "bulk-app-000003"), e.appNamed(t, "bulk-app-000004")
	pc, err := e.client.AddPassword(t.Context(), rekeyed.ObjectID, graph.AddPasswordRequest{DisplayName: "rotor:run-delta", EndDateTime: time.Now().Add(30 * 24 * time.Hour)})
	require.NoError(t, err)
	added := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "created-later", SignInAudience: "AzureADMyOrg",
		CreatedDateTime: time.Now().UTC().Truncate(time.Second), Owners: []string{e.ten.Rotation.ObjectID}}
	e.update(func(tn *sim.Tenant) {
		renamed.DisplayName = "bulk-app-000002-renamed"
		tn.RemoveApp(deleted.ObjectID)
		tn.AddApp(added)
		disowned.Owners = nil
	})

	// Fifteen minutes on: the changed applications are asked about one
	// by one (one $batch), the rest of the ownership is the last
	// reading's, so the disowned application is still rotor's.
	b.clock.Advance(15 * time.Minute)
	before = e.client.Requests()
	res = b.sync(t, e.dir)
	require.Equal(t, inventory.Result{Incremental: true, Seen: 4, Changed: 3, Removed: 1, Manageable: 2000, OwnershipAt: t0}, res)
	require.Equal(t, int64(2), e.client.Requests()-before, "one delta page and one $batch of owners")
	a, err := b.store.GetApplication(t.Context(), org, disowned.ObjectID)
	require.NoError(t, err)
	require.True(t, a.Manageable, "not reported by change tracking: waits for the next reading")

	// An hour after the last reading the ownership is read in full.
	b.clock.Advance(time.Hour)
	res = b.sync(t, e.dir)
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 1999, OwnershipAt: b.clock.Now()}, res)

	a, err = b.store.GetApplication(t.Context(), org, rekeyed.ObjectID)
	require.NoError(t, err)
	require.Len(t, a.Credentials, 2)
	require.True(t, slices.ContainsFunc(a.Credentials, func(c domain.Credential) bool { return c.KeyID == pc.KeyID && c.Hint == pc.Hint }))
	a, err = b.store.GetApplication(t.Context(), org, renamed.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "bulk-app-000002-renamed", a.DisplayName)
	require.Len(t, a.Credentials, 1, "the credentials the change left out are kept")
	_, err = b.store.GetApplication(t.Context(), org, deleted.ObjectID)
	require.ErrorIs(t, err, store.ErrNotFound)
	a, err = b.store.GetApplication(t.Context(), org, added.ObjectID)
	require.NoError(t, err)
	require.True(t, a.Manageable)
	a, err = b.store.GetApplication(t.Context(), org, disowned.ObjectID)
	require.NoError(t, err)
	require.False(t, a.Manageable, "ownership removed: still seen (Application.Read.All), no longer rotor's to change")
	count, err := b.store.CountApplications(t.Context(), org, conn)
	require.NoError(t, err)
	require.Equal(t, 2001, count)

	// Seven days on, Graph no longer has the link's state: the sync
	// lists everything again and takes a new link.
	e.sim.AdvanceClock(7*24*time.Hour + time.Minute)
	e.signIn(t)
	b.clock.Advance(time.Hour)
	res = b.sync(t, e.dir)
	require.False(t, res.Incremental)
	require.Equal(t, inventory.FullExpired, res.FullReason)
	require.Equal(t, 2001, res.Seen)
	require.Zero(t, res.Changed)
	require.Zero(t, res.Removed)
	b.clock.Advance(15 * time.Minute)
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 1999}, sansAt(b.sync(t, e.dir)))
}

// TestIncrementalReadConnectionBesideRotationFromSimulator: a read
// connection's incremental syncs keep the rotation connection's view.
func TestIncrementalReadConnectionBesideRotationFromSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	e := startSim(t, "demo")
	const read = "contoso-read"
	readDir := inventory.ReadOnly(inventory.NewGraphDirectory(e.client, e.ten.ID, ""))
	syncAs := func(name string, dir inventory.Directory) inventory.Result {
		res, err := b.syncer.Sync(t.Context(), org, name, dir, nil)
		require.NoError(t, err)
		return res
	}
	first := syncAs(conn, e.dir)
	require.Positive(t, first.Manageable)
	syncAs(read, readDir)

	var owned, foreign *sim.Application
	e.update(func(tn *sim.Tenant) {
		for _, a := range tn.Apps {
			switch {
			case owned == nil && a.OwnedBy(e.ten.Rotation.ObjectID):
				owned = a
			case foreign == nil && !a.OwnedBy(e.ten.Rotation.ObjectID) && a.AppID != e.ten.Rotation.ClientID:
				foreign = a
			}
		}
		owned.DisplayName = "renamed-in-entra"
		tn.RemoveApp(foreign.ObjectID)
	})
	b.clock.Advance(15 * time.Minute)
	res := syncAs(read, readDir)
	require.True(t, res.Incremental)
	require.Equal(t, 2, res.Seen)
	require.Zero(t, res.Manageable)
	a, err := b.store.GetApplication(t.Context(), org, owned.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "renamed-in-entra", a.DisplayName)
	require.True(t, a.CanChange(conn), "the read connection's sync keeps the rotation connection's view")
	require.False(t, a.CanChange(read))
	still, err := b.store.GetApplication(t.Context(), org, foreign.ObjectID)
	require.NoError(t, err, "the rotation connection still sees it until its own sync")
	require.Equal(t, []domain.Access{{Connection: conn}}, still.Access)

	res = syncAs(conn, e.dir)
	require.True(t, res.Incremental)
	require.Equal(t, first.Manageable, res.Manageable)
	_, err = b.store.GetApplication(t.Context(), org, foreign.ObjectID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestGraphDirectoryBatchReadsFromSimulator reads applications, their
// owners and their certificates twenty to a $batch, across two batches,
// with an object id Graph does not have among them: it is gone, not owned
// and has no certificates, and the others read as Graph holds them.
func TestGraphDirectoryBatchReadsFromSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	dir, client, _ := simDirectory(t, "apps=25,tenants=1")
	apps, err := client.ListApplications(graph.ListOptions{Top: 999}).Collect(t.Context())
	require.NoError(t, err)
	var ids []string
	bulk := map[string]bool{}
	for _, a := range apps {
		ids = append(ids, a.ID)
		bulk[a.ID] = strings.HasPrefix(a.DisplayName, "bulk-app-")
	}
	require.Greater(t, len(ids), graph.MaxBatchRequests, "two batches")
	missing := uuid.NewString()
	ids = append(ids[:3:3], append([]string{missing}, ids[3:]...)...)

	found, gone, err := dir.(inventory.ChangeTracker).GetApplications(t.Context(), ids)
	require.NoError(t, err)
	require.Equal(t, []string{missing}, gone)
	require.Len(t, found, len(ids)-1)

	owned, err := dir.(inventory.OwnershipChecker).OwnsApplications(t.Context(), ids)
	require.NoError(t, err)
	require.False(t, owned[missing])
	for id, isBulk := range bulk {
		require.Equal(t, isBulk, owned[id], "the bulk seed makes the rotation identity own every bulk app (%s)", id)
	}

	certs, err := dir.(inventory.CertificateReader).ReadCertificates(t.Context(), ids)
	require.NoError(t, err)
	require.NotContains(t, certs, missing)
}
