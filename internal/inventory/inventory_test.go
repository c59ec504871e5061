package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

const (
	org       = domain.OrgID("acme")
	conn      = "contoso"
	tenant    = "8f2b1c4e-0d3a-4e5f-9a6b-7c8d9e0f1a2b"
	principal = "sp-rotation"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type bundle struct {
	store  *sqlite.Store
	clock  *clock.Fake
	syncer *inventory.Syncer
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.EnsureOrg(t.Context(), org, "Acme"))
	c := clock.NewFake(t0)
	// Writes of three applications: the small tenants here take several.
	return &bundle{store: st, clock: c, syncer: inventory.NewSyncer(st, c, inventory.Options{WriteBatch: 3})}
}

// directory is a tenant made of pages, the input boundary of a sync.
type directory struct {
	pages [][]domain.Application
	owned map[string]bool
	// failAfter fails the listing after that many pages (0: never).
	failAfter int
	ownedErr  error
}

var _ inventory.Directory = (*directory)(nil)

func (d *directory) ListApplications(ctx context.Context, fn func([]domain.Application) error) error {
	for i, p := range d.pages {
		if d.failAfter > 0 && i == d.failAfter {
			return errors.New("graph: 503 Service Unavailable")
		}
		// Hand out copies, as a real directory would: the syncer edits them.
		if err := fn(append([]domain.Application(nil), p...)); err != nil {
			return err
		}
	}
	return nil
}

func (d *directory) OwnedApplicationIDs(context.Context) (map[string]bool, error) {
	return d.owned, d.ownedErr
}

func app(i int) domain.Application {
	return domain.Application{
		TenantID: tenant, ObjectID: fmt.Sprintf("obj-%03d", i), AppID: fmt.Sprintf("app-%03d", i),
		DisplayName: fmt.Sprintf("web-%03d", i), SignInAudience: "AzureADMyOrg", CreatedAt: t0.AddDate(-1, 0, 0),
		Credentials: []domain.Credential{
			{KeyID: fmt.Sprintf("pw-%03d", i), Kind: domain.KindSecret, DisplayName: "ci", Hint: "abc", Start: t0.AddDate(0, -1, 0), End: t0.AddDate(0, 1, 0)},
			{KeyID: fmt.Sprintf("cert-%03d", i), Kind: domain.KindCertificate, DisplayName: "CN=web", Thumbprint: "q83vEjRWeJA=", Start: t0.AddDate(0, -1, 0), End: t0.AddDate(1, 0, 0)},
		},
	}
}

// tenantOf is n applications in pages of size, the even ones owned.
func tenantOf(n, size int) *directory {
	d := &directory{owned: map[string]bool{}}
	for i := 0; i < n; i++ {
		if i%size == 0 {
			d.pages = append(d.pages, nil)
		}
		a := app(i)
		d.pages[len(d.pages)-1] = append(d.pages[len(d.pages)-1], a)
		if i%2 == 0 {
			d.owned[a.ObjectID] = true
		}
	}
	return d
}

func (b *bundle) apps(t *testing.T) []domain.Application {
	t.Helper()
	apps, err := b.store.ListApplications(t.Context(), store.ListApplicationsParams{Org: org, Connection: conn})
	require.NoError(t, err)
	return apps
}

func TestSyncWritesPagesAndReportsProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := tenantOf(7, 3)
	var progress []inventory.Progress
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, func(p inventory.Progress) { progress = append(progress, p) })
	require.NoError(t, err)
	require.Equal(t, inventory.Result{FullReason: inventory.FullNoTracking, Seen: 7, Changed: 7, Removed: 0, Manageable: 4}, sansAt(res))
	require.Equal(t, []inventory.Progress{
		{Connection: conn, Seen: 3, Changed: 3},
		{Connection: conn, Seen: 6, Changed: 6},
		{Connection: conn, Seen: 7, Changed: 7},
	}, progress)

	apps := b.apps(t)
	require.Len(t, apps, 7)
	for _, a := range apps {
		owned := dir.owned[a.ObjectID]
		require.Equal(t, owned, a.Manageable, a.ObjectID)
		require.Empty(t, a.Owners, "owners are not listed per application")
		require.Equal(t, []domain.Access{{Connection: conn, CanChange: owned}}, a.Access)
		require.Equal(t, tenant, a.TenantID)
		require.Len(t, a.Credentials, 2)
	}
	got, err := b.store.GetApplication(t.Context(), org, "obj-000")
	require.NoError(t, err)
	want := app(0)
	require.ElementsMatch(t, want.Credentials, got.Credentials)
}

func TestSyncAgain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tweak      func(d *directory)
		want       inventory.Result
		wantStored int
	}{
		{
			name: "NothingChanged",
			want: inventory.Result{FullReason: inventory.FullNoTracking, Seen: 6, Changed: 0, Removed: 0, Manageable: 3}, wantStored: 6,
		},
		{
			name:  "AppRemovedFromTenant",
			tweak: func(d *directory) { d.pages[1] = d.pages[1][:2] },
			want:  inventory.Result{FullReason: inventory.FullNoTracking, Seen: 5, Changed: 0, Removed: 1, Manageable: 3}, wantStored: 5,
		},
		{
			name: "CredentialAdded",
			tweak: func(d *directory) {
				a := &d.pages[0][1]
				a.Credentials = append(a.Credentials, domain.Credential{KeyID: "new", Kind: domain.KindSecret, DisplayName: "rotor:run-1", Start: t0, End: t0.AddDate(0, 3, 0)})
			},
			want: inventory.Result{FullReason: inventory.FullNoTracking, Seen: 6, Changed: 1, Removed: 0, Manageable: 3}, wantStored: 6,
		},
		{
			name:  "OwnershipGranted",
			tweak: func(d *directory) { d.owned["obj-001"] = true },
			// Who may change it is the connection's view, not content:
			// no row is rewritten, yet it is manageable now.
			want: inventory.Result{FullReason: inventory.FullNoTracking, Seen: 6, Changed: 0, Removed: 0, Manageable: 4}, wantStored: 6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.syncer.Sync(t.Context(), org, conn, tenantOf(6, 3), nil)
			require.NoError(t, err)

			b.clock.Advance(15 * time.Minute)
			dir := tenantOf(6, 3)
			if tt.tweak != nil {
				tt.tweak(dir)
			}
			res, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
			require.NoError(t, err)
			require.Equal(t, tt.want, sansAt(res))
			require.Len(t, b.apps(t), tt.wantStored)
		})
	}
}

// TestFailedSyncDeletesNothing: only a complete listing may conclude that
// an application is gone.
func TestFailedSyncDeletesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dir     func() *directory
		ctx     func(t *testing.T) context.Context
		wantErr string
	}{
		{
			name:    "ListingFailsPartWay",
			dir:     func() *directory { d := tenantOf(6, 3); d.failAfter = 1; return d },
			wantErr: "inventory contoso: after 3 applications: graph: 503 Service Unavailable",
		},
		{
			name:    "OwnedObjectsFail",
			dir:     func() *directory { d := tenantOf(6, 3); d.ownedErr = errors.New("graph: 403 Forbidden"); return d },
			wantErr: "inventory contoso: list the applications rotor owns: graph: 403 Forbidden",
		},
		{
			name: "Cancelled",
			dir:  func() *directory { return tenantOf(6, 3) },
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return ctx
			},
			wantErr: "context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.syncer.Sync(t.Context(), org, conn, tenantOf(9, 3), nil)
			require.NoError(t, err)

			b.clock.Advance(15 * time.Minute)
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			_, err = b.syncer.Sync(ctx, org, conn, tt.dir(), nil)
			require.ErrorContains(t, err, tt.wantErr)
			require.Len(t, b.apps(t), 9, "a failed sync must not delete what it did not see")
		})
	}
}

func TestEmptyListingRemovesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.syncer.Sync(t.Context(), org, conn, tenantOf(4, 3), nil)
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	res, err := b.syncer.Sync(t.Context(), org, conn, &directory{owned: map[string]bool{}}, nil)
	require.NoError(t, err)
	require.Equal(t, inventory.Result{FullReason: inventory.FullNoTracking}, res)
	require.Len(t, b.apps(t), 4)
}

func TestConnectionsAreSeparate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.syncer.Sync(t.Context(), org, conn, tenantOf(4, 3), nil)
	require.NoError(t, err)

	other := tenantOf(2, 3)
	for _, p := range other.pages {
		for i := range p {
			p[i].ObjectID, p[i].TenantID = "fab-"+p[i].ObjectID, "fabrikam-tenant"
		}
	}
	b.clock.Advance(time.Minute)
	res, err := b.syncer.Sync(t.Context(), org, "fabrikam", other, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.Removed, "a sync of one connection never removes another's applications")
	require.Len(t, b.apps(t), 4)
}

// TestReadConnectionBesideRotation is the least-privilege set-up: a read
// connection (Application.Read.All) and a rotation connection (OwnedBy)
// reach one tenant. Whichever syncs last, the rotation connection's view
// that it may change its own applications stays, and an application leaves
// the inventory only when neither sees it.
func TestReadConnectionBesideRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const read = "contoso-read"
	_, err := b.syncer.Sync(t.Context(), org, conn, tenantOf(6, 3), nil)
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	res, err := b.syncer.Sync(t.Context(), org, read, inventory.ReadOnly(tenantOf(6, 3)), nil)
	require.NoError(t, err)
	require.Equal(t, inventory.Result{FullReason: inventory.FullNoTracking, Seen: 6, Changed: 0, Manageable: 0}, res, "the read view adds no content and may change nothing")

	got, err := b.store.GetApplication(t.Context(), org, "obj-000")
	require.NoError(t, err)
	require.True(t, got.Manageable, "the read sync did not undo the rotation connection's view")
	require.True(t, got.CanChange(conn))
	require.False(t, got.CanChange(read))

	// The rotation identity stops seeing obj-005 (ownership removed and
	// the app hidden from it); the read connection still sees it.
	b.clock.Advance(time.Minute)
	dir := tenantOf(6, 3)
	dir.pages[1] = dir.pages[1][:2]
	res, err = b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed)
	still, err := b.store.GetApplication(t.Context(), org, "obj-005")
	require.NoError(t, err)
	require.Equal(t, []domain.Access{{Connection: read}}, still.Access)
	n, err := b.store.CountApplications(t.Context(), org, "")
	require.NoError(t, err)
	require.Equal(t, 6, n)
}

// sansAt is r without its OwnershipAt, for tests that check the rest.
func sansAt(r inventory.Result) inventory.Result {
	r.OwnershipAt = time.Time{}
	return r
}
