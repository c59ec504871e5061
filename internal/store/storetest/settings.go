package storetest

import (
	"time"

	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

func ptr[T any](v T) *T { return &v }

// fullSettings sets every field, each to a value a round trip could get
// wrong (false, zero, nanoseconds).
func fullSettings() domain.AppSettings {
	return domain.AppSettings{
		Enabled: ptr(false), Notify: ptr(true),
		Lifetime: ptr(30*24*time.Hour + 1), RenewBefore: ptr(36 * time.Hour), Overlap: ptr(time.Duration(0)),
		KeyVaultURL: ptr("https://kv-a.vault.azure.net/"), KeyVaultSecret: ptr("web-secret"),
	}
}

// testApplicationSettingsRoundTrip: every field comes back as written,
// nil ones as nil; a put replaces all fields (one left out is inherited
// again); settings that set nothing remove the row; the list is by
// object id.
func testApplicationSettingsRoundTrip(t *testing.T, b *bundle) {
	_, err := b.s.GetApplicationSettings(b.ctx, b.org, objectID(1))
	require.ErrorIs(t, err, store.ErrNotFound)

	put := store.ApplicationSettings{Org: b.org, ObjectID: objectID(2), Settings: fullSettings(), UpdatedAt: b.t0, UpdatedBy: "user:u-1"}
	require.NoError(t, b.s.PutApplicationSettings(b.ctx, put))
	got, err := b.s.GetApplicationSettings(b.ctx, b.org, objectID(2))
	require.NoError(t, err)
	require.Equal(t, put.Settings, got.Settings)
	require.Equal(t, b.org, got.Org)
	require.Equal(t, objectID(2), got.ObjectID)
	require.Equal(t, "user:u-1", got.UpdatedBy)
	require.True(t, b.sameTime(b.t0, got.UpdatedAt), "%s", got.UpdatedAt)

	// Replace: only lifetime now; the rest inherit again.
	only := domain.AppSettings{Lifetime: ptr(7 * 24 * time.Hour)}
	require.NoError(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.org, ObjectID: objectID(2), Settings: only, UpdatedAt: b.t0.Add(time.Minute), UpdatedBy: "user:u-2"}))
	got, err = b.s.GetApplicationSettings(b.ctx, b.org, objectID(2))
	require.NoError(t, err)
	require.Equal(t, only, got.Settings)
	require.Equal(t, "user:u-2", got.UpdatedBy)

	require.NoError(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.org, ObjectID: objectID(1), Settings: fullSettings()}))
	got, err = b.s.GetApplicationSettings(b.ctx, b.org, objectID(1))
	require.NoError(t, err)
	require.False(t, got.UpdatedAt.IsZero(), "a zero UpdatedAt is the store's now")

	list, err := b.s.ListApplicationSettings(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, objectID(1), list[0].ObjectID)
	require.Equal(t, objectID(2), list[1].ObjectID)
	require.Equal(t, only, list[1].Settings)

	// Nothing set: the row goes.
	require.NoError(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.org, ObjectID: objectID(2)}))
	_, err = b.s.GetApplicationSettings(b.ctx, b.org, objectID(2))
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err = b.s.ListApplicationSettings(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.Error(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.org, Settings: fullSettings()}), "no object id")
	require.ErrorIs(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: "no-such-org", ObjectID: objectID(1), Settings: fullSettings()}), store.ErrNotFound)
}

// testApplicationSettingsAreIsolated: one object id in two organizations
// is two rows; org B's put neither reads nor overwrites org A's, and
// clearing B's leaves A's.
func testApplicationSettingsAreIsolated(t *testing.T, b *bundle) {
	a := store.ApplicationSettings{Org: b.org, ObjectID: objectID(3), Settings: fullSettings(), UpdatedBy: "user:a"}
	require.NoError(t, b.s.PutApplicationSettings(b.ctx, a))

	_, err := b.s.GetApplicationSettings(b.ctx, b.other, objectID(3))
	require.ErrorIs(t, err, store.ErrNotFound, "org B cannot read org A's row")
	list, err := b.s.ListApplicationSettings(b.ctx, b.other)
	require.NoError(t, err)
	require.Empty(t, list)

	bs := domain.AppSettings{Enabled: ptr(true)}
	require.NoError(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.other, ObjectID: objectID(3), Settings: bs, UpdatedBy: "user:b"}))
	got, err := b.s.GetApplicationSettings(b.ctx, b.org, objectID(3))
	require.NoError(t, err)
	require.Equal(t, a.Settings, got.Settings, "org B's put did not overwrite org A's row")
	require.Equal(t, "user:a", got.UpdatedBy)
	gotB, err := b.s.GetApplicationSettings(b.ctx, b.other, objectID(3))
	require.NoError(t, err)
	require.Equal(t, bs, gotB.Settings)

	require.NoError(t, b.s.PutApplicationSettings(b.ctx, store.ApplicationSettings{Org: b.other, ObjectID: objectID(3)}))
	got, err = b.s.GetApplicationSettings(b.ctx, b.org, objectID(3))
	require.NoError(t, err, "clearing org B's row leaves org A's")
	require.Equal(t, a.Settings, got.Settings)
}
