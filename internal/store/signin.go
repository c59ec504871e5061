package store

import (
	"context"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// SessionStore keeps the sessions of people signed in to the UI: never a
// session's id, only its SHA-256, with who signed in, how, the role they
// hold in the session's organization and when the session ends. A
// session lives in one organization, as every row does.
type SessionStore interface {
	// CreateSession stores a new session. ErrConflict when the org
	// already has a session with that hash, ErrNotFound when the org does
	// not exist.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session of org whose id hashes to idHash,
	// expired ones too (the caller judges the time); ErrNotFound when
	// there is none.
	GetSession(ctx context.Context, org domain.OrgID, idHash []byte) (*Session, error)
	// DeleteSession removes a session (sign-out). Deleting a session that
	// is not there succeeds.
	DeleteSession(ctx context.Context, org domain.OrgID, idHash []byte) error
	// DeleteExpiredSessions removes the org's sessions that expired at or
	// before `before`, and says how many.
	DeleteExpiredSessions(ctx context.Context, org domain.OrgID, before time.Time) (int, error)
}

// Session is a stored sign-in session.
type Session struct {
	Org domain.OrgID
	// IDHash is the SHA-256 of the session's id (the secret in the
	// cookie), 32 bytes.
	IDHash []byte
	// Method is how the person signed in: "entra" or "local" (the
	// break-glass admin).
	Method string
	// Subject is who: an Entra user's object id, or the local admin's
	// name.
	Subject string
	// TenantID is the Entra tenant of the user ("" for a local admin).
	TenantID string
	// Name is the display name and Username the sign-in name
	// (preferred_username), for people reading the audit trail.
	Name     string
	Username string
	// Role is the rotor role held in Org (admin, operator, viewer).
	Role      string
	CreatedAt time.Time
	ExpiresAt time.Time
	// OwnedOnly says the session sees only the applications with the
	// object ids OwnedObjectIDs: those the person owned in Entra when
	// they signed in (/me/ownedObjects, read with their own delegated
	// token, which is never stored). False: unrestricted, and
	// OwnedObjectIDs is nil.
	OwnedOnly      bool
	OwnedObjectIDs []string
}

// MaxOwnedObjectIDs bounds the owned applications a session keeps (the
// sign-in's Graph walk is bounded to as many).
const MaxOwnedObjectIDs = 50 * 999

// LocalAdminStore keeps the break-glass admin of each organization: a
// local account for when sign-in with Entra is not set up or not working.
// It keeps only the password's hash, and counts failed sign-ins so that
// every rotor process sharing the database locks the account out alike.
type LocalAdminStore interface {
	// CreateLocalAdmin stores a new local admin. ErrConflict when the org
	// already has one of that name (another process made it first),
	// ErrNotFound when the org does not exist.
	CreateLocalAdmin(ctx context.Context, a LocalAdmin) error
	// GetLocalAdmin returns one; ErrNotFound when there is none.
	GetLocalAdmin(ctx context.Context, org domain.OrgID, name string) (*LocalAdmin, error)
	// RecordLocalAdminLogin records one sign-in attempt in one statement:
	// a success clears the failures and stamps LastLoginAt; a failure
	// counts one more, and the one that reaches p.LockAfter locks the
	// account until p.At + p.LockFor and starts the count again. It
	// returns the account as it is now; ErrNotFound when there is none.
	RecordLocalAdminLogin(ctx context.Context, p RecordLoginParams) (*LocalAdmin, error)
}

// LocalAdmin is a stored break-glass admin.
type LocalAdmin struct {
	Org  domain.OrgID
	Name string
	// PasswordHash is the password's hash in PHC string format
	// ("$argon2id$v=19$m=…,t=…,p=…$salt$hash").
	PasswordHash string
	CreatedAt    time.Time
	// FailedLogins counts failed sign-ins since the last success or lock.
	FailedLogins int
	// LockedUntil is when a lock-out ends; zero: not locked.
	LockedUntil time.Time
	// LastLoginAt is the last successful sign-in; zero: never.
	LastLoginAt time.Time
}

// RecordLoginParams is one sign-in attempt of a local admin.
type RecordLoginParams struct {
	Org       domain.OrgID
	Name      string
	At        time.Time
	Succeeded bool
	// LockAfter is the number of failures in a row that locks the
	// account, for LockFor.
	LockAfter int
	LockFor   time.Duration
}
