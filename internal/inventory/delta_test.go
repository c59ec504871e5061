package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/store"
)

// tracked is a tenant that tracks changes, the input boundary of an
// incremental sync: a list of applications, the rotation identity's
// ownership, and a log of what changed, read from a link that names a
// position in the log. The simulator tests (graph_test.go) run the same
// syncs against Graph's protocol; this one reaches the corners the
// simulator does not produce (a change that carries some properties only,
// a soft delete, a round that fails part-way).
type tracked struct {
	mu     sync.Mutex
	apps   map[string]domain.Application
	order  []string
	owned  map[string]bool
	hidden map[string]bool // not shown to this identity (GetApplications says gone)
	log    []inventory.Change
	scope  string
	// expireBefore refuses links older than this log position.
	expireBefore int
	// failAfterPages fails a round after that many pages (0: never).
	failAfterPages int
	pageSize       int

	listings, rounds, gets int
}

var (
	_ inventory.Directory     = (*tracked)(nil)
	_ inventory.ChangeTracker = (*tracked)(nil)
)

func trackedOf(n int) *tracked {
	d := &tracked{apps: map[string]domain.Application{}, owned: map[string]bool{}, hidden: map[string]bool{}, scope: tenant + "/" + principal, pageSize: 3}
	for i := 0; i < n; i++ {
		a := app(i)
		d.apps[a.ObjectID] = a
		d.order = append(d.order, a.ObjectID)
		if i%2 == 0 {
			d.owned[a.ObjectID] = true
		}
	}
	return d
}

func (d *tracked) ListApplications(ctx context.Context, fn func([]domain.Application) error) error {
	d.mu.Lock()
	d.listings++
	var all []domain.Application
	for _, id := range d.order {
		if a, ok := d.apps[id]; ok && !d.hidden[id] {
			all = append(all, a)
		}
	}
	d.mu.Unlock()
	for p := range slices.Chunk(all, 4) {
		if err := fn(slices.Clone(p)); err != nil {
			return err
		}
	}
	return nil
}

func (d *tracked) OwnedApplicationIDs(context.Context) (map[string]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]bool{}
	for id, ok := range d.owned {
		if ok {
			out[id] = true
		}
	}
	return out, nil
}

func (d *tracked) TrackingScope() string { return d.scope }

func (d *tracked) LatestLink(context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return "fake-delta:" + strconv.Itoa(len(d.log)), nil
}

func (d *tracked) Changes(ctx context.Context, link string, fn func([]inventory.Change) error) (string, error) {
	d.mu.Lock()
	d.rounds++
	pos, err := strconv.Atoi(strings.TrimPrefix(link, "fake-delta:"))
	if err != nil || pos < d.expireBefore {
		d.mu.Unlock()
		return "", fmt.Errorf("%w: 400 syncStateNotFound", inventory.ErrLinkExpired)
	}
	changes := slices.Clone(d.log[pos:])
	next := "fake-delta:" + strconv.Itoa(len(d.log))
	failAfter, size := d.failAfterPages, d.pageSize
	d.mu.Unlock()
	pages := slices.Collect(slices.Chunk(changes, size))
	if len(pages) == 0 {
		pages = [][]inventory.Change{nil} // an unchanged round is one empty page
	}
	for i, p := range pages {
		if failAfter > 0 && i == failAfter {
			return "", errors.New("graph: 503 Service Unavailable")
		}
		if err := fn(slices.Clone(p)); err != nil {
			return "", err
		}
	}
	return next, nil
}

func (d *tracked) GetApplications(_ context.Context, ids []string) ([]domain.Application, []string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gets += len(ids)
	var found []domain.Application
	var gone []string
	for _, id := range ids {
		a, ok := d.apps[id]
		if !ok || d.hidden[id] {
			gone = append(gone, id)
			continue
		}
		found = append(found, a)
	}
	return found, gone, nil
}

// change applies fn to application i and logs what the tenant reports.
func (d *tracked) change(i int, missing inventory.Fields, fn func(a *domain.Application)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := fmt.Sprintf("obj-%03d", i)
	a := d.apps[id]
	fn(&a)
	d.apps[id] = a
	c := inventory.Change{App: a, Missing: missing}
	c.App.Credentials = nil
	for _, cr := range a.Credentials {
		if (cr.Kind == domain.KindSecret && missing&inventory.FieldSecrets == 0) || (cr.Kind == domain.KindCertificate && missing&inventory.FieldCertificates == 0) {
			c.App.Credentials = append(c.App.Credentials, cr)
		}
	}
	if missing&inventory.FieldDisplayName != 0 {
		c.App.DisplayName = ""
	}
	if missing&inventory.FieldAppID != 0 {
		c.App.AppID = ""
	}
	d.log = append(d.log, c)
}

func (d *tracked) add(i int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := app(i)
	d.apps[a.ObjectID] = a
	d.order = append(d.order, a.ObjectID)
	d.log = append(d.log, inventory.Change{App: a})
}

func (d *tracked) remove(i int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := fmt.Sprintf("obj-%03d", i)
	delete(d.apps, id)
	d.log = append(d.log, inventory.Change{App: domain.Application{TenantID: tenant, ObjectID: id}, Removed: true})
}

func (d *tracked) setOwned(i int, owned bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.owned[fmt.Sprintf("obj-%03d", i)] = owned
}

// writes counts the rows a call writes to the store.
func (b *bundle) writes(t *testing.T, fn func()) int64 {
	t.Helper()
	before, err := b.store.RowsWritten(t.Context())
	require.NoError(t, err)
	fn()
	after, err := b.store.RowsWritten(t.Context())
	require.NoError(t, err)
	return after - before
}

func (b *bundle) sync(t *testing.T, dir inventory.Directory) inventory.Result {
	t.Helper()
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	return res
}

func (b *bundle) app(t *testing.T, i int) *domain.Application {
	t.Helper()
	a, err := b.store.GetApplication(t.Context(), org, fmt.Sprintf("obj-%03d", i))
	require.NoError(t, err)
	return a
}

func (b *bundle) gone(t *testing.T, i int) {
	t.Helper()
	_, err := b.store.GetApplication(t.Context(), org, fmt.Sprintf("obj-%03d", i))
	require.ErrorIs(t, err, store.ErrNotFound, "obj-%03d", i)
}

func TestIncrementalSyncAppliesChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := trackedOf(6)
	res := b.sync(t, d)
	require.Equal(t, inventory.Result{FullReason: inventory.FullFirst, Seen: 6, Changed: 6, Manageable: 3}, sansAt(res))
	require.Equal(t, 1, d.listings)

	b.clock.Advance(15 * time.Minute)
	later := b.clock.Now()
	newSecret := domain.Credential{KeyID: "pw-new", Kind: domain.KindSecret, DisplayName: "rotor:run-9", Hint: "xyz", Start: t0, End: t0.AddDate(0, 3, 0)}
	// Graph may report a changed application with only what changed.
	d.change(1, inventory.FieldAppID|inventory.FieldSignInAudience|inventory.FieldCreatedAt|inventory.FieldSecrets|inventory.FieldCertificates,
		func(a *domain.Application) { a.DisplayName = "renamed" })
	d.change(2, inventory.FieldAppID|inventory.FieldDisplayName|inventory.FieldSignInAudience|inventory.FieldCreatedAt|inventory.FieldCertificates,
		func(a *domain.Application) { a.Credentials = append(a.Credentials, newSecret) })
	d.add(7)
	d.remove(3)
	d.remove(4)
	d.change(5, 0, func(a *domain.Application) { a.DisplayName = "first" })
	d.change(5, 0, func(a *domain.Application) { a.DisplayName = "last wins" })
	res = b.sync(t, d)
	// Pages of three: obj-005 changes in two pages, and is written twice.
	require.Equal(t, inventory.Result{Incremental: true, Seen: 7, Changed: 5, Removed: 2, Manageable: 2}, sansAt(res))
	require.Equal(t, 1, d.listings, "no second listing")

	one := b.app(t, 1)
	require.Equal(t, "renamed", one.DisplayName)
	require.Equal(t, "app-001", one.AppID, "a property the change left out is unchanged, not empty")
	require.ElementsMatch(t, app(1).Credentials, one.Credentials)
	require.True(t, later.Equal(one.SyncedAt))

	two := b.app(t, 2)
	require.Equal(t, "web-002", two.DisplayName)
	require.ElementsMatch(t, append(app(2).Credentials, newSecret), two.Credentials, "the secrets are replaced, the certificate kept")
	require.True(t, two.Manageable)

	b.gone(t, 3)
	b.gone(t, 4)
	require.Equal(t, "last wins", b.app(t, 5).DisplayName)
	require.False(t, b.app(t, 7).Manageable, "not owned")
	require.Len(t, b.apps(t), 5)

	// Nothing changed: one round, one page, and no row written but the
	// connection's sync state; every application counts as seen now.
	b.clock.Advance(15 * time.Minute)
	var res2 inventory.Result
	n := b.writes(t, func() { res2 = b.sync(t, d) })
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 2}, sansAt(res2))
	require.Equal(t, int64(1), n, "an unchanged sync writes its sync state and nothing else")
	require.True(t, b.clock.Now().Equal(b.app(t, 0).SyncedAt))
	st, err := b.store.GetSyncState(t.Context(), org, conn)
	require.NoError(t, err)
	require.True(t, b.clock.Now().Equal(st.SyncedAt))
	require.True(t, t0.Equal(st.FullAt))
	require.Equal(t, "fake-delta:7", st.DeltaLink)
}

// TestIncrementalSyncFallsBackToFull: a refused link, another scope, the
// full sync interval and too many ownership changes each make the sync
// list everything, in the same call.
func TestIncrementalSyncFallsBackToFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(b *bundle, d *tracked)
		want  inventory.FullReason
	}{
		{name: "LinkExpired", tweak: func(_ *bundle, d *tracked) { d.expireBefore = 1; d.add(9) }, want: inventory.FullExpired},
		{name: "AnotherIdentity", tweak: func(_ *bundle, d *tracked) { d.scope = tenant + "/another-sp" }, want: inventory.FullScope},
		{name: "FullSyncIntervalPassed", tweak: func(b *bundle, _ *tracked) { b.clock.Advance(24 * time.Hour) }, want: inventory.FullInterval},
		{name: "OwnershipOfManyChanged", tweak: func(_ *bundle, d *tracked) {
			for i := 100; i < 100+inventory.PageSize+1; i++ {
				d.add(i)
				d.owned[fmt.Sprintf("obj-%03d", i)] = true
			}
			d.log = nil // Graph did not report them
		}, want: inventory.FullOwnership},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			d := trackedOf(6)
			b.sync(t, d)
			b.clock.Advance(time.Minute)
			tt.tweak(b, d)
			res := b.sync(t, d)
			require.False(t, res.Incremental)
			require.Equal(t, tt.want, res.FullReason)
			require.Equal(t, 2, d.listings)
			n, err := b.store.CountApplications(t.Context(), org, conn)
			require.NoError(t, err)
			require.Equal(t, res.Seen, n)

			// And the next sync is incremental again, from the new link.
			b.clock.Advance(time.Minute)
			d.expireBefore = 0
			require.True(t, b.sync(t, d).Incremental)
		})
	}
}

func TestIncrementalSyncOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	syncer := inventory.NewSyncer(b.store, b.clock, inventory.Options{FullSyncInterval: -1})
	d := trackedOf(3)
	for range 2 {
		res, err := syncer.Sync(t.Context(), org, conn, d, nil)
		require.NoError(t, err)
		require.Equal(t, inventory.FullOff, res.FullReason)
	}
	require.Equal(t, 2, d.listings)
}

// TestIncrementalSyncFollowsOwnership: change tracking does not report
// ownership, so every sync reads it again: a gained application becomes
// manageable without being read, a lost one is read again (and leaves the
// view when the identity can no longer see it), and an owned application
// the connection never saw is read and added.
func TestIncrementalSyncFollowsOwnership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := trackedOf(6) // 0, 2, 4 owned
	b.sync(t, d)
	d.setOwned(1, true)
	d.setOwned(2, false)
	d.setOwned(4, false)
	d.hidden["obj-004"] = true // Application.ReadWrite.OwnedBy alone: no longer visible
	d.mu.Lock()
	hiddenApp := app(8)
	d.apps[hiddenApp.ObjectID] = hiddenApp // not in the log: only ownership made it visible
	d.owned[hiddenApp.ObjectID] = true
	d.mu.Unlock()

	b.clock.Advance(15 * time.Minute)
	res := b.sync(t, d)
	require.Equal(t, inventory.Result{Incremental: true, Changed: 1, Removed: 1, Manageable: 3}, sansAt(res))
	require.Equal(t, 3, d.gets, "the two that lost ownership and the new one")
	require.True(t, b.app(t, 1).Manageable)
	require.False(t, b.app(t, 2).Manageable)
	b.gone(t, 4)
	require.True(t, b.app(t, 8).Manageable)

	b.clock.Advance(15 * time.Minute)
	n := b.writes(t, func() { res = b.sync(t, d) })
	require.Equal(t, inventory.Result{Incremental: true, Manageable: 3, OwnershipAt: b.clock.Now()}, res,
		"a directory that cannot ask about single applications has its ownership read at every sync")
	require.Equal(t, int64(1), n)
	require.Equal(t, 3, d.gets, "nothing read one by one once ownership is steady")
}

// checking is a tracked tenant that can also say who owns single
// applications (inventory.OwnershipChecker, as Graph's per-application
// owners), counting full readings of the ownership and applications
// asked about.
type checking struct {
	*tracked
	reads, asked int
}

var _ inventory.OwnershipChecker = (*checking)(nil)

func (c *checking) OwnedApplicationIDs(ctx context.Context) (map[string]bool, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.tracked.OwnedApplicationIDs(ctx)
}

func (c *checking) OwnsApplications(_ context.Context, ids []string) (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked += len(ids)
	out := map[string]bool{}
	for _, id := range ids {
		if _, ok := c.apps[id]; ok && c.owned[id] {
			out[id] = true
		}
	}
	return out, nil
}

// TestOwnershipIsReadInFullOnlyEveryInterval: between two full readings
// of what the identity owns (an hour by default), an unchanged round
// costs nothing more, the applications a round reports are asked about
// one by one, a round reporting more than a reading costs reads it in
// full, and an ownership change nothing else reported waits for the next
// reading.
func TestOwnershipIsReadInFullOnlyEveryInterval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := &checking{tracked: trackedOf(6)} // 0, 2, 4 owned
	first := b.sync(t, d)
	require.Equal(t, 1, d.reads)
	require.Equal(t, t0, first.OwnershipAt)

	b.clock.Advance(15 * time.Minute)
	n := b.writes(t, func() {
		require.Equal(t, inventory.Result{Incremental: true, Manageable: 3, OwnershipAt: t0}, b.sync(t, d))
	})
	require.Equal(t, int64(1), n, "the sync state, nothing else")
	require.Equal(t, 1, d.reads, "the reading of 15 minutes ago stands")
	require.Zero(t, d.asked)

	// Reported: a new owned application and a changed one rotor now owns.
	// Not reported: application 2 lost its owner.
	d.add(7)
	d.setOwned(7, true)
	d.setOwned(1, true)
	d.change(1, 0, func(a *domain.Application) { a.DisplayName = "renamed" })
	d.setOwned(2, false)
	b.clock.Advance(15 * time.Minute)
	res := b.sync(t, d)
	require.Equal(t, 1, d.reads)
	require.Equal(t, 2, d.asked, "only the two reported")
	require.Equal(t, 2, res.Changed)
	require.True(t, b.app(t, 7).Manageable)
	require.True(t, b.app(t, 1).Manageable)
	require.True(t, b.app(t, 2).Manageable, "an unreported ownership change waits for the next reading")

	// An hour after the first reading: read in full again.
	b.clock.Advance(31 * time.Minute)
	res = b.sync(t, d)
	require.Equal(t, 2, d.reads)
	require.Equal(t, b.clock.Now(), res.OwnershipAt)
	require.False(t, b.app(t, 2).Manageable)
	require.Equal(t, 4, res.Manageable, "0, 1, 4 and 7")

	// More changes than one reading's page costs to ask about (twenty
	// to a request): read in full instead.
	for i := 10; i < 40; i++ {
		d.add(i)
		d.setOwned(i, i%2 == 0)
	}
	b.clock.Advance(time.Minute)
	b.sync(t, d)
	require.Equal(t, 3, d.reads)
	require.Equal(t, 2+3, d.asked, "the first page of three (one request), then a reading for the other 27")
	require.True(t, b.app(t, 10).Manageable)
	require.False(t, b.app(t, 11).Manageable)

	// A negative interval reads it at every sync.
	every := inventory.NewSyncer(b.store, b.clock, inventory.Options{OwnershipInterval: -1})
	for range 2 {
		b.clock.Advance(time.Minute)
		_, err := every.Sync(t.Context(), org, conn, d, nil)
		require.NoError(t, err)
	}
	require.Equal(t, 5, d.reads)
}

// TestFailedIncrementalSyncKeepsTheLink: what a round that failed
// part-way applied stays (every change is idempotent), the link does not
// move, and the next sync reads the round again.
func TestFailedIncrementalSyncKeepsTheLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := trackedOf(6)
	b.sync(t, d)
	for i := range 5 {
		d.change(i, 0, func(a *domain.Application) { a.DisplayName = "v2" })
	}
	d.remove(5)
	d.failAfterPages = 1
	b.clock.Advance(time.Minute)
	_, err := b.syncer.Sync(t.Context(), org, conn, d, nil)
	require.ErrorContains(t, err, "inventory contoso: after 3 changes: graph: 503 Service Unavailable")
	require.Len(t, b.apps(t), 6, "the removal was in the page that failed")
	st, err := b.store.GetSyncState(t.Context(), org, conn)
	require.NoError(t, err)
	require.Equal(t, "fake-delta:0", st.DeltaLink)

	d.failAfterPages = 0
	b.clock.Advance(time.Minute)
	res := b.sync(t, d)
	require.Equal(t, inventory.Result{Incremental: true, Seen: 6, Changed: 2, Removed: 1, Manageable: 3}, sansAt(res),
		"the page applied before the failure is read again and changes nothing")
	for _, a := range b.apps(t) {
		require.Equal(t, "v2", a.DisplayName)
	}
}

// TestIncrementalReadConnectionBesideRotation: both connections sync
// incrementally; neither undoes the other's view, and an application
// leaves the inventory only when neither sees it.
func TestIncrementalReadConnectionBesideRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const read = "contoso-read"
	rot := trackedOf(6)
	rd := trackedOf(6)
	rd.scope = tenant + "/"
	syncAs := func(name string, dir inventory.Directory) inventory.Result {
		res, err := b.syncer.Sync(t.Context(), org, name, dir, nil)
		require.NoError(t, err)
		return res
	}
	syncAs(conn, rot)
	syncAs(read, inventory.ReadOnly(rd))
	b.clock.Advance(15 * time.Minute)

	rot.remove(5) // deleted in Entra: each connection hears of it in turn
	rd.remove(5)
	rot.change(0, 0, func(a *domain.Application) { a.DisplayName = "renamed" })
	require.Equal(t, inventory.Result{Incremental: true, Seen: 2, Changed: 1, Removed: 1, Manageable: 3}, sansAt(syncAs(conn, rot)))
	still := b.app(t, 5)
	require.Equal(t, []domain.Access{{Connection: read}}, still.Access, "the read connection has not synced yet")

	res := syncAs(read, inventory.ReadOnly(rd))
	require.Equal(t, inventory.Result{Incremental: true, Seen: 1, Removed: 1}, res)
	b.gone(t, 5)
	zero := b.app(t, 0)
	require.True(t, zero.CanChange(conn), "the read sync did not undo the rotation connection's view")
	require.False(t, zero.CanChange(read))
	require.Equal(t, "renamed", zero.DisplayName)
	require.Equal(t, 0, rd.gets, "a read connection reads no ownership")
}
