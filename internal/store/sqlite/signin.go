package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const sessionCols = `method, subject, tenant_id, name, username, role, created_at, expires_at, owned_object_ids`

// CreateSession stores a new session's hash.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	if err := codec.CheckSession(ss); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	owned, err := codec.EncodeOwned(ss)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO sessions (org_id, id_hash, `+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(ss.Org), ss.IDHash, ss.Method, ss.Subject, ss.TenantID, ss.Name, ss.Username, ss.Role,
		encTime(ss.CreatedAt), encTime(ss.ExpiresAt), owned)
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("create session: org %s: %w", ss.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create session of %s: %w", ss.Org, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("create session of %s: %w", ss.Org, err)
	}
	return nil
}

// GetSession returns the session whose id hashes to idHash.
func (s *Store) GetSession(ctx context.Context, org domain.OrgID, idHash []byte) (*store.Session, error) {
	ss := store.Session{Org: org, IDHash: append([]byte(nil), idHash...)}
	var created, expires sql.NullString
	var owned *string
	err := s.r.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE org_id = ? AND id_hash = ?`, string(org), idHash).
		Scan(&ss.Method, &ss.Subject, &ss.TenantID, &ss.Name, &ss.Username, &ss.Role, &created, &expires, &owned)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session of %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session of %s: %w", org, err)
	}
	if ss.CreatedAt, err = decTime(created); err != nil {
		return nil, err
	}
	if ss.ExpiresAt, err = decTime(expires); err != nil {
		return nil, err
	}
	if err := codec.DecodeOwned(owned, &ss); err != nil {
		return nil, fmt.Errorf("get session of %s: %w", org, err)
	}
	return &ss, nil
}

// DeleteSession removes a session; a missing one is no error.
func (s *Store) DeleteSession(ctx context.Context, org domain.OrgID, idHash []byte) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE org_id = ? AND id_hash = ?`, string(org), idHash); err != nil {
		return fmt.Errorf("delete session of %s: %w", org, err)
	}
	return nil
}

// DeleteExpiredSessions removes the org's sessions expired at or before
// before.
func (s *Store) DeleteExpiredSessions(ctx context.Context, org domain.OrgID, before time.Time) (int, error) {
	if err := codec.CheckTime("before", before); err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE org_id = ? AND expires_at <= ?`, string(org), encTime(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions of %s: %w", org, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

const localAdminCols = `password_hash, created_at, failed_logins, locked_until, last_login_at`

// CreateLocalAdmin stores a new local admin's password hash.
func (s *Store) CreateLocalAdmin(ctx context.Context, a store.LocalAdmin) error {
	if err := codec.CheckLocalAdmin(a); err != nil {
		return fmt.Errorf("create local admin: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO local_admins (org_id, name, `+localAdminCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(a.Org), a.Name, a.PasswordHash, encTime(a.CreatedAt), a.FailedLogins, encTime(a.LockedUntil), encTime(a.LastLoginAt))
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("create local admin %s: org %s: %w", a.Name, a.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create local admin %s of %s: %w", a.Name, a.Org, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("create local admin %s of %s: %w", a.Name, a.Org, err)
	}
	return nil
}

func scanLocalAdmin(org domain.OrgID, name string, sc rowScanner) (*store.LocalAdmin, error) {
	a := &store.LocalAdmin{Org: org, Name: name}
	var created, locked, last sql.NullString
	if err := sc.Scan(&a.PasswordHash, &created, &a.FailedLogins, &locked, &last); err != nil {
		return nil, err
	}
	var err error
	if a.CreatedAt, err = decTime(created); err != nil {
		return nil, err
	}
	if a.LockedUntil, err = decTime(locked); err != nil {
		return nil, err
	}
	if a.LastLoginAt, err = decTime(last); err != nil {
		return nil, err
	}
	return a, nil
}

// GetLocalAdmin returns one local admin.
func (s *Store) GetLocalAdmin(ctx context.Context, org domain.OrgID, name string) (*store.LocalAdmin, error) {
	a, err := scanLocalAdmin(org, name, s.r.QueryRowContext(ctx,
		`SELECT `+localAdminCols+` FROM local_admins WHERE org_id = ? AND name = ?`, string(org), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("local admin %s of %s: %w", name, org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get local admin %s of %s: %w", name, org, err)
	}
	return a, nil
}

// RecordLocalAdminLogin counts a failure (locking at p.LockAfter) or
// clears the count on success, in one statement.
func (s *Store) RecordLocalAdminLogin(ctx context.Context, p store.RecordLoginParams) (*store.LocalAdmin, error) {
	if err := codec.CheckRecordLogin(p); err != nil {
		return nil, fmt.Errorf("record local admin login: %w", err)
	}
	var q string
	var args []any
	if p.Succeeded {
		q = `UPDATE local_admins SET failed_logins = 0, last_login_at = ? WHERE org_id = ? AND name = ? RETURNING ` + localAdminCols
		args = []any{encTime(p.At), string(p.Org), p.Name}
	} else {
		q = `UPDATE local_admins SET
			locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END,
			failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END
			WHERE org_id = ? AND name = ? RETURNING ` + localAdminCols
		args = []any{p.LockAfter, encTime(p.At.Add(p.LockFor)), p.LockAfter, string(p.Org), p.Name}
	}
	a, err := scanLocalAdmin(p.Org, p.Name, s.w.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("local admin %s of %s: %w", p.Name, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("record local admin login %s of %s: %w", p.Name, p.Org, err)
	}
	return a, nil
}
