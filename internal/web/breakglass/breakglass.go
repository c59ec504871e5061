// Package breakglass owns the local break-glass admin of an organization:
// an account made at first start when nobody else can administer the
// organization (no sign-in role grants admin), whose password is printed
// once on the console and kept only as an argon2id hash; its sign-in is
// rate limited per client address and locked out, for every rotor process
// alike, after failures in a row (docs/sign-in.md, docs/adr/0023).
package breakglass

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/time/rate"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Name is the break-glass admin's account name.
const Name = "breakglass"

// argon2id parameters: OWASP's recommended minimum (19 MiB, two passes,
// one lane), some 30–60 ms a hash on a small server: slow for a guesser,
// bearable for a login form that is rate limited anyway.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	// passwordLen is the generated password's length in base32
	// characters (5 bits each): 120 bits.
	passwordLen = 24
)

// Lock-out defaults.
const (
	DefaultLockAfter = 5
	DefaultLockFor   = 15 * time.Minute
	// DefaultRate and DefaultBurst bound attempts per client address.
	DefaultRate  = rate.Limit(5.0 / 60) // five a minute
	DefaultBurst = 5
)

// Store is the part of store.Store the break-glass admin needs.
type Store interface {
	CreateLocalAdmin(ctx context.Context, a store.LocalAdmin) error
	GetLocalAdmin(ctx context.Context, org domain.OrgID, name string) (*store.LocalAdmin, error)
	RecordLocalAdminLogin(ctx context.Context, p store.RecordLoginParams) (*store.LocalAdmin, error)
}

var _ Store = store.Store(nil)

// HashPassword hashes a password with argon2id and a random salt, in the
// PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("breakglass: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches a PHC argon2id hash.
// The hash's own parameters are used (within bounds), so a hash made with
// other parameters still verifies.
func VerifyPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("breakglass: not an argon2id PHC string")
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errors.New("breakglass: unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 8 || m > 1<<20 || t < 1 || t > 16 || p < 1 {
		return false, errors.New("breakglass: argon2 parameters out of bounds")
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 || len(want) > 64 {
		return false, errors.New("breakglass: malformed salt or hash")
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// newPassword is 120 random bits in lowercase base32, without padding.
func newPassword() (string, error) {
	b := make([]byte, passwordLen*5/8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("breakglass: random password: %w", err)
	}
	return strings.ToLower(strings.TrimRight(base32Enc.EncodeToString(b), "=")), nil
}

// Ensure makes org's break-glass admin when it has none, and writes its
// password to out, once: the only time it is ever shown (it is written to
// out, the console, never to the log). A second process racing to do the
// same finds the account made and prints nothing. It reports whether it
// made the account. The caller decides whether the organization needs
// one: rotor asks for it when no sign-in role binding grants admin there
// (signin.RoleMap.GrantsAdmin).
func Ensure(ctx context.Context, st Store, org domain.OrgID, clk clock.Clock, out io.Writer, loginURL string) (bool, error) {
	_, err := st.GetLocalAdmin(ctx, org, Name)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("breakglass: %w", err)
	}
	pw, err := newPassword()
	if err != nil {
		return false, err
	}
	h, err := HashPassword(pw)
	if err != nil {
		return false, err
	}
	err = st.CreateLocalAdmin(ctx, store.LocalAdmin{Org: org, Name: Name, PasswordHash: h, CreatedAt: cmp.Or[clock.Clock](clk, clock.Real{}).Now()})
	switch {
	case errors.Is(err, store.ErrConflict):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("breakglass: %w", err)
	}
	_, err = fmt.Fprintf(out, "\nrotor: no one can administer organization %s yet, so it has a break-glass admin.\n"+
		"  Sign in at %s with this password. It is shown only now and kept only as a hash:\n\n      %s\n\n"+
		"  Keep it somewhere safe (a password manager, a sealed envelope), then bind an Entra app role or group to admin.\n\n",
		org, loginURL, pw)
	if err != nil {
		return true, fmt.Errorf("breakglass: the account was made but its password could not be shown (%w); "+
			"remove the local_admins row of %s to make a new one", err, org)
	}
	return true, nil
}

// Errors of Authenticate. None says which part was wrong beyond what the
// person at the form may know.
var (
	// ErrRefused is a wrong password, or an organization without a
	// break-glass admin: the same answer for both.
	ErrRefused = errors.New("breakglass: wrong password")
)

// LockedError says the account is locked out until Until.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return "breakglass: locked after too many failed sign-ins until " + e.Until.UTC().Format(time.RFC3339)
}

// RateLimitedError says this client address must wait RetryAfter.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("breakglass: too many sign-in attempts from this address; retry after %s", e.RetryAfter.Round(time.Second))
}

// Authenticator checks break-glass sign-ins: a rate limit per client
// address first (so nobody burns rotor's CPU on argon2), then the
// account's lock, then the password, recording the outcome in the store.
type Authenticator struct {
	Store Store
	Clock clock.Clock
	// LockAfter failures in a row lock the account for LockFor (defaults
	// DefaultLockAfter, DefaultLockFor).
	LockAfter int
	LockFor   time.Duration
	// Rate and Burst bound attempts per client address (defaults
	// DefaultRate, DefaultBurst).
	Rate  rate.Limit
	Burst int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// maxLimiters bounds the per-address table; when full it starts afresh
// (an attacker with that many addresses is not slowed by it anyway; the
// account lock still holds).
const maxLimiters = 10000

func (a *Authenticator) now() time.Time { return cmp.Or[clock.Clock](a.Clock, clock.Real{}).Now() }

func (a *Authenticator) limiter(addr string) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.limiters == nil || len(a.limiters) >= maxLimiters {
		a.limiters = map[string]*rate.Limiter{}
	}
	l := a.limiters[addr]
	if l == nil {
		l = rate.NewLimiter(cmp.Or(a.Rate, DefaultRate), cmp.Or(a.Burst, DefaultBurst))
		a.limiters[addr] = l
	}
	return l
}

// Authenticate checks password for org's break-glass admin, for a request
// from addr (the client's IP address).
func (a *Authenticator) Authenticate(ctx context.Context, org domain.OrgID, password, addr string) (*store.LocalAdmin, error) {
	now := a.now()
	if r := a.limiter(addr).ReserveN(now, 1); !r.OK() || r.DelayFrom(now) > 0 {
		d := r.DelayFrom(now)
		r.CancelAt(now)
		return nil, &RateLimitedError{RetryAfter: max(d, time.Second)}
	}
	acct, err := a.Store.GetLocalAdmin(ctx, org, Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrRefused
	}
	if err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	if now.Before(acct.LockedUntil) {
		return nil, &LockedError{Until: acct.LockedUntil}
	}
	ok, err := VerifyPassword(acct.PasswordHash, password)
	if err != nil {
		return nil, err
	}
	rec, err := a.Store.RecordLocalAdminLogin(ctx, store.RecordLoginParams{Org: org, Name: Name, At: now, Succeeded: ok,
		LockAfter: cmp.Or(a.LockAfter, DefaultLockAfter), LockFor: cmp.Or(a.LockFor, DefaultLockFor)})
	if err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	if !ok {
		if now.Before(rec.LockedUntil) {
			return nil, &LockedError{Until: rec.LockedUntil}
		}
		return nil, ErrRefused
	}
	return rec, nil
}

var base32Enc = base32.StdEncoding
