package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// newSession builds one valid session of org whose id is id, then applies
// the tweaks.
func (b *bundle) newSession(org domain.OrgID, id string, tweaks ...func(*store.Session)) store.Session {
	h := sha256.Sum256([]byte(id))
	s := store.Session{
		Org: org, IDHash: h[:], Method: "entra", Subject: objectID(7), TenantID: tenant1,
		Name: "Ada Admin ✓", Username: "ada@contoso.example", Role: "admin",
		CreatedAt: b.t0, ExpiresAt: b.t0.Add(8 * time.Hour),
	}
	for _, tw := range tweaks {
		tw(&s)
	}
	return s
}

func (b *bundle) normSession(s store.Session) store.Session {
	s.CreatedAt, s.ExpiresAt = b.utc(s.CreatedAt), b.utc(s.ExpiresAt)
	return s
}

// testSessionsRoundTrip: a session comes back exactly by its hash,
// another hash finds nothing, a malformed hash is refused before the
// database, and deleting twice succeeds.
func testSessionsRoundTrip(t *testing.T, b *bundle) {
	s1 := b.newSession(b.org, "first")
	s2 := b.newSession(b.org, "second", func(s *store.Session) {
		s.Method, s.Subject, s.TenantID, s.Name, s.Username, s.Role = "local", "breakglass", "", "", "", "viewer"
	})
	require.NoError(t, b.s.CreateSession(b.ctx, s1))
	require.NoError(t, b.s.CreateSession(b.ctx, s2))
	require.ErrorIs(t, b.s.CreateSession(b.ctx, s1), store.ErrConflict)
	got, err := b.s.GetSession(b.ctx, b.org, s1.IDHash)
	require.NoError(t, err)
	require.Equal(t, b.normSession(s1), *got)
	got, err = b.s.GetSession(b.ctx, b.org, s2.IDHash)
	require.NoError(t, err)
	require.Equal(t, b.normSession(s2), *got)
	none := sha256.Sum256([]byte("nobody"))
	_, err = b.s.GetSession(b.ctx, b.org, none[:])
	require.ErrorIs(t, err, store.ErrNotFound)

	require.Error(t, b.s.CreateSession(b.ctx, b.newSession(b.org, "x", func(s *store.Session) { s.IDHash = []byte("not-a-hash") })))
	require.Error(t, b.s.CreateSession(b.ctx, b.newSession(b.org, "y", func(s *store.Session) { s.ExpiresAt = s.CreatedAt })))
	require.ErrorIs(t, b.s.CreateSession(b.ctx, b.newSession("org-missing", "z")), store.ErrNotFound)

	require.NoError(t, b.s.DeleteSession(b.ctx, b.org, s1.IDHash))
	_, err = b.s.GetSession(b.ctx, b.org, s1.IDHash)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, b.s.DeleteSession(b.ctx, b.org, s1.IDHash), "deleting a deleted session succeeds")
}

// testSessionsAreIsolated: one org's session is invisible to, and cannot
// be deleted by, another.
func testSessionsAreIsolated(t *testing.T, b *bundle) {
	s := b.newSession(b.org, "mine")
	require.NoError(t, b.s.CreateSession(b.ctx, s))
	_, err := b.s.GetSession(b.ctx, b.other, s.IDHash)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, b.s.DeleteSession(b.ctx, b.other, s.IDHash))
	n, err := b.s.DeleteExpiredSessions(b.ctx, b.other, b.t0.Add(100*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = b.s.GetSession(b.ctx, b.org, s.IDHash)
	require.NoError(t, err)
}

// testSessionsExpire: DeleteExpiredSessions removes exactly the sessions
// expired at or before its time.
func testSessionsExpire(t *testing.T, b *bundle) {
	early := b.newSession(b.org, "early", func(s *store.Session) { s.ExpiresAt = b.t0.Add(time.Hour) })
	edge := b.newSession(b.org, "edge", func(s *store.Session) { s.ExpiresAt = b.t0.Add(2 * time.Hour) })
	late := b.newSession(b.org, "late", func(s *store.Session) { s.ExpiresAt = b.t0.Add(3 * time.Hour) })
	for _, s := range []store.Session{early, edge, late} {
		require.NoError(t, b.s.CreateSession(b.ctx, s))
	}
	n, err := b.s.DeleteExpiredSessions(b.ctx, b.org, b.t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = b.s.GetSession(b.ctx, b.org, late.IDHash)
	require.NoError(t, err)
	_, err = b.s.GetSession(b.ctx, b.org, edge.IDHash)
	require.ErrorIs(t, err, store.ErrNotFound)
}

const phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

// testLocalAdmins: a local admin round-trips, a second one of the same
// name conflicts (two processes starting at once), another org sees
// nothing, and failed sign-ins count up to the lock, which starts the
// count again; a success clears it.
func testLocalAdmins(t *testing.T, b *bundle) {
	a := store.LocalAdmin{Org: b.org, Name: "breakglass", PasswordHash: phc, CreatedAt: b.t0}
	require.NoError(t, b.s.CreateLocalAdmin(b.ctx, a))
	require.ErrorIs(t, b.s.CreateLocalAdmin(b.ctx, a), store.ErrConflict)
	require.Error(t, b.s.CreateLocalAdmin(b.ctx, store.LocalAdmin{Org: b.org, Name: "plain", PasswordHash: "hunter2", CreatedAt: b.t0}),
		"a password is not a hash")
	got, err := b.s.GetLocalAdmin(b.ctx, b.org, "breakglass")
	require.NoError(t, err)
	require.Equal(t, store.LocalAdmin{Org: b.org, Name: "breakglass", PasswordHash: phc, CreatedAt: b.utc(b.t0)}, *got)
	_, err = b.s.GetLocalAdmin(b.ctx, b.other, "breakglass")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.s.RecordLocalAdminLogin(b.ctx, store.RecordLoginParams{Org: b.other, Name: "breakglass", At: b.t0, LockAfter: 3, LockFor: time.Minute})
	require.ErrorIs(t, err, store.ErrNotFound)

	fail := func(at time.Time) *store.LocalAdmin {
		t.Helper()
		got, err := b.s.RecordLocalAdminLogin(b.ctx, store.RecordLoginParams{Org: b.org, Name: "breakglass", At: at, LockAfter: 3, LockFor: 15 * time.Minute})
		require.NoError(t, err)
		return got
	}
	require.Equal(t, 1, fail(b.t0).FailedLogins)
	require.Equal(t, 2, fail(b.t0).FailedLogins)
	locked := fail(b.t0.Add(time.Second))
	require.Zero(t, locked.FailedLogins)
	require.Equal(t, b.utc(b.t0.Add(time.Second+15*time.Minute)), locked.LockedUntil)
	require.Equal(t, 1, fail(b.t0.Add(2*time.Second)).FailedLogins)

	ok, err := b.s.RecordLocalAdminLogin(b.ctx, store.RecordLoginParams{Org: b.org, Name: "breakglass", At: b.t0.Add(time.Hour), Succeeded: true, LockAfter: 3, LockFor: time.Minute})
	require.NoError(t, err)
	require.Zero(t, ok.FailedLogins)
	require.Equal(t, b.utc(b.t0.Add(time.Hour)), ok.LastLoginAt)
	require.Equal(t, locked.LockedUntil, ok.LockedUntil, "a success does not rewrite the last lock")
}
