package storetest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// newAPIKey builds one valid key of org from a base, then applies the
// tweaks.
func (b *bundle) newAPIKey(org domain.OrgID, id string, tweaks ...func(*store.APIKey)) store.APIKey {
	h := sha256.Sum256([]byte(string(org) + "/" + id))
	k := store.APIKey{
		Org: org, ID: id, Name: "ci-" + id, Role: "operator", Hash: h[:],
		CreatedAt: b.t0, CreatedBy: "system:cli", ExpiresAt: b.t0.Add(90 * 24 * time.Hour),
	}
	for _, tw := range tweaks {
		tw(&k)
	}
	return k
}

// normKey is k as a store returns it: times in UTC at the store's
// precision.
func (b *bundle) normKey(k store.APIKey) store.APIKey {
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = b.utc(k.CreatedAt), b.utc(k.ExpiresAt), b.utc(k.RevokedAt)
	return k
}

// testAPIKeysRoundTrip: a key comes back exactly, a key that never
// expires has a zero ExpiresAt, the list is oldest first, and nothing is
// stored but what was given (the hash, never a key).
func testAPIKeysRoundTrip(t *testing.T, b *bundle) {
	k1 := b.newAPIKey(b.org, "aaaaaaaaaaaaaaaa")
	k2 := b.newAPIKey(b.org, "bbbbbbbbbbbbbbbb", func(k *store.APIKey) {
		k.CreatedAt, k.ExpiresAt, k.Role, k.Name = b.t0.Add(-time.Hour), time.Time{}, "admin", "automation ✓"
	})
	k3 := b.newAPIKey(b.org, "cccccccccccccccc", func(k *store.APIKey) { k.CreatedAt = b.t0 }) // same time as k1: by id
	for _, k := range []store.APIKey{k1, k2, k3} {
		require.NoError(t, b.s.CreateAPIKey(b.ctx, k))
	}
	got, err := b.s.GetAPIKey(b.ctx, b.org, k1.ID)
	require.NoError(t, err)
	require.Equal(t, b.normKey(k1), *got)
	got, err = b.s.GetAPIKey(b.ctx, b.org, k2.ID)
	require.NoError(t, err)
	require.Equal(t, b.normKey(k2), *got)
	require.True(t, got.ExpiresAt.IsZero())
	require.True(t, got.RevokedAt.IsZero())

	list, err := b.s.ListAPIKeys(b.ctx, b.org)
	require.NoError(t, err)
	require.Equal(t, []store.APIKey{b.normKey(k2), b.normKey(k1), b.normKey(k3)}, list)
}

// testAPIKeysAreIsolated: one org's keys are invisible to another, which
// may use the same id for a key of its own; neither can revoke the
// other's.
func testAPIKeysAreIsolated(t *testing.T, b *bundle) {
	const id = "dddddddddddddddd"
	mine := b.newAPIKey(b.org, id)
	require.NoError(t, b.s.CreateAPIKey(b.ctx, mine))
	_, err := b.s.GetAPIKey(b.ctx, b.other, id)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := b.s.ListAPIKeys(b.ctx, b.other)
	require.NoError(t, err)
	require.Empty(t, list)
	require.ErrorIs(t, b.s.RevokeAPIKey(b.ctx, store.RevokeAPIKeyParams{Org: b.other, ID: id, At: b.t0}), store.ErrNotFound)

	theirs := b.newAPIKey(b.other, id, func(k *store.APIKey) { k.Role = "viewer" })
	require.NoError(t, b.s.CreateAPIKey(b.ctx, theirs), "ids are unique per organization")
	got, err := b.s.GetAPIKey(b.ctx, b.org, id)
	require.NoError(t, err)
	require.Equal(t, "operator", got.Role)
	require.True(t, got.RevokedAt.IsZero(), "the other org's revocation attempt changed nothing")
	require.False(t, bytes.Equal(mine.Hash, theirs.Hash))
}

// testAPIKeysRevokeAndRefuse: revoking keeps the first time (a second
// revocation succeeds and changes nothing), a missing key is not found, a
// duplicate id conflicts, an unknown org is not found, and an invalid key
// (no hash, a short hash, no role) is refused before anything is written.
func testAPIKeysRevokeAndRefuse(t *testing.T, b *bundle) {
	k := b.newAPIKey(b.org, "eeeeeeeeeeeeeeee")
	require.NoError(t, b.s.CreateAPIKey(b.ctx, k))
	at := b.t0.Add(time.Hour)
	require.NoError(t, b.s.RevokeAPIKey(b.ctx, store.RevokeAPIKeyParams{Org: b.org, ID: k.ID, At: at}))
	require.NoError(t, b.s.RevokeAPIKey(b.ctx, store.RevokeAPIKeyParams{Org: b.org, ID: k.ID, At: at.Add(time.Hour)}))
	got, err := b.s.GetAPIKey(b.ctx, b.org, k.ID)
	require.NoError(t, err)
	require.True(t, b.sameTime(at, got.RevokedAt), "%s", got.RevokedAt)
	require.ErrorIs(t, b.s.RevokeAPIKey(b.ctx, store.RevokeAPIKeyParams{Org: b.org, ID: "nosuchkeynosuchk", At: at}), store.ErrNotFound)
	require.Error(t, b.s.RevokeAPIKey(b.ctx, store.RevokeAPIKeyParams{Org: b.org, ID: k.ID}), "a revocation needs a time")

	require.ErrorIs(t, b.s.CreateAPIKey(b.ctx, k), store.ErrConflict)
	require.ErrorIs(t, b.s.CreateAPIKey(b.ctx, b.newAPIKey("no-such-org", "ffffffffffffffff")), store.ErrNotFound)
	for name, tw := range map[string]func(*store.APIKey){
		"NoHash":    func(k *store.APIKey) { k.Hash = nil },
		"ShortHash": func(k *store.APIKey) { k.Hash = k.Hash[:16] },
		"NoRole":    func(k *store.APIKey) { k.Role = "" },
		"NoName":    func(k *store.APIKey) { k.Name = "" },
		"NoCreated": func(k *store.APIKey) { k.CreatedAt = time.Time{} },
	} {
		require.Error(t, b.s.CreateAPIKey(b.ctx, b.newAPIKey(b.org, "gggggggggggggggg", tw)), name)
	}
	_, err = b.s.GetAPIKey(b.ctx, b.org, "gggggggggggggggg")
	require.ErrorIs(t, err, store.ErrNotFound, "no invalid key was written")
}
