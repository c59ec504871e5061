package breakglass_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
)

const org domain.OrgID = "default"

func setup(t *testing.T) (*sqlite.Store, *clock.Fake) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.EnsureOrg(t.Context(), org, "Default"))
	return st, clock.NewFake(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC))
}

var passwordRE = regexp.MustCompile(`\n      ([a-z2-7]{24})\n`)

func TestEnsurePrintsThePasswordOnceAndKeepsOnlyItsHash(t *testing.T) {
	t.Parallel()
	st, clk := setup(t)
	var out bytes.Buffer
	made, err := breakglass.Ensure(t.Context(), st, org, clk, &out, "https://rotor.example.com/login/local")
	require.NoError(t, err)
	require.True(t, made)
	m := passwordRE.FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	password := m[1]
	require.Contains(t, out.String(), "https://rotor.example.com/login/local")

	a, err := st.GetLocalAdmin(t.Context(), org, breakglass.Name)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$"), a.PasswordHash)
	require.NotContains(t, a.PasswordHash, password)
	ok, err := breakglass.VerifyPassword(a.PasswordHash, password)
	require.NoError(t, err)
	require.True(t, ok)

	out.Reset()
	made, err = breakglass.Ensure(t.Context(), st, org, clk, &out, "/login/local")
	require.NoError(t, err)
	require.False(t, made)
	require.Empty(t, out.String(), "printed once only")
}

func TestEnsureRacingProcessesPrintOnce(t *testing.T) {
	t.Parallel()
	st, clk := setup(t)
	var mu sync.Mutex
	var printed []string
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			if _, err := breakglass.Ensure(context.Background(), st, org, clk, &out, "/login/local"); err != nil {
				errs <- err
				return
			}
			if out.Len() > 0 {
				mu.Lock()
				printed = append(printed, out.String())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, printed, 1)
}

func TestVerifyPasswordRefusesWhatIsNotArgon2id(t *testing.T) {
	t.Parallel()
	h, err := breakglass.HashPassword("correct horse")
	require.NoError(t, err)
	h2, err := breakglass.HashPassword("correct horse")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")
	ok, err := breakglass.VerifyPassword(h, "correct horse")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = breakglass.VerifyPassword(h, "correct horse ")
	require.NoError(t, err)
	require.False(t, ok)
	for _, bad := range []string{"", "plain", "$2a$10$bcryptbcryptbcryptbcryp", "$argon2i$v=19$m=8,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=8,t=1,p=1$!!$aGFzaA"} {
		_, err := breakglass.VerifyPassword(bad, "x")
		require.Error(t, err, bad)
	}
}

// newAdmin makes the break-glass admin and returns its password.
func newAdmin(t *testing.T, st *sqlite.Store, clk clock.Clock) string {
	t.Helper()
	var out bytes.Buffer
	_, err := breakglass.Ensure(t.Context(), st, org, clk, &out, "/login/local")
	require.NoError(t, err)
	return passwordRE.FindStringSubmatch(out.String())[1]
}

func TestWrongPasswordsLockTheAccountForEveryone(t *testing.T) {
	t.Parallel()
	st, clk := setup(t)
	pw := newAdmin(t, st, clk)
	a := &breakglass.Authenticator{Store: st, Clock: clk, Rate: 1000, Burst: 1000}
	ctx := t.Context()

	_, err := a.Authenticate(ctx, org, "wrong", "192.0.2.1")
	require.ErrorIs(t, err, breakglass.ErrRefused)
	_, err = a.Authenticate(ctx, "nosuchorg", pw, "192.0.2.1")
	require.ErrorIs(t, err, breakglass.ErrRefused, "no account reads as a wrong password")
	acct, err := a.Authenticate(ctx, org, pw, "192.0.2.1")
	require.NoError(t, err)
	require.Equal(t, clk.Now(), acct.LastLoginAt)

	for i := 1; i < breakglass.DefaultLockAfter; i++ {
		_, err = a.Authenticate(ctx, org, "wrong", "192.0.2.1")
		require.ErrorIs(t, err, breakglass.ErrRefused, "failure %d", i)
	}
	_, err = a.Authenticate(ctx, org, "wrong", "192.0.2.1")
	var locked *breakglass.LockedError
	require.True(t, errors.As(err, &locked), "%v", err)
	require.Equal(t, clk.Now().Add(breakglass.DefaultLockFor), locked.Until)

	// Locked: even the right password, from another process and address.
	other := &breakglass.Authenticator{Store: st, Clock: clk}
	_, err = other.Authenticate(ctx, org, pw, "198.51.100.7")
	require.True(t, errors.As(err, &locked), "%v", err)

	clk.Advance(breakglass.DefaultLockFor)
	_, err = other.Authenticate(ctx, org, pw, "198.51.100.7")
	require.NoError(t, err)
}

func TestAttemptsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	st, clk := setup(t)
	pw := newAdmin(t, st, clk)
	a := &breakglass.Authenticator{Store: st, Clock: clk, LockAfter: 100}
	ctx := t.Context()
	for i := 0; i < breakglass.DefaultBurst; i++ {
		_, err := a.Authenticate(ctx, org, "wrong", "192.0.2.1")
		require.ErrorIs(t, err, breakglass.ErrRefused)
	}
	_, err := a.Authenticate(ctx, org, pw, "192.0.2.1")
	var rl *breakglass.RateLimitedError
	require.True(t, errors.As(err, &rl), "%v", err)
	require.Equal(t, 12*time.Second, rl.RetryAfter, "five a minute")

	_, err = a.Authenticate(ctx, org, pw, "192.0.2.2")
	require.NoError(t, err, "another address has its own budget")

	clk.Advance(12 * time.Second)
	_, err = a.Authenticate(ctx, org, pw, "192.0.2.1")
	require.NoError(t, err)
}
