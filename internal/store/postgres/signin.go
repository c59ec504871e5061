package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	err = s.inOrg(ctx, ss.Org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (org_id, id_hash, `+sessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)`,
			string(ss.Org), ss.IDHash, ss.Method, ss.Subject, ss.TenantID, ss.Name, ss.Username, ss.Role, tz(ss.CreatedAt), tz(ss.ExpiresAt), owned)
		return err
	})
	switch {
	case isOrgMissing(err):
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
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		var created, expires pgtype.Timestamptz
		var owned *string
		err := tx.QueryRow(ctx, `SELECT `+strings.Replace(sessionCols, "owned_object_ids", "owned_object_ids::text", 1)+` FROM sessions WHERE org_id = $1 AND id_hash = $2`, string(org), idHash).
			Scan(&ss.Method, &ss.Subject, &ss.TenantID, &ss.Name, &ss.Username, &ss.Role, &created, &expires, &owned)
		ss.CreatedAt, ss.ExpiresAt = fromTZ(created), fromTZ(expires)
		if err != nil {
			return err
		}
		return codec.DecodeOwned(owned, &ss)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session of %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session of %s: %w", org, err)
	}
	return &ss, nil
}

// DeleteSession removes a session; a missing one is no error.
func (s *Store) DeleteSession(ctx context.Context, org domain.OrgID, idHash []byte) error {
	err := s.inOrg(ctx, org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM sessions WHERE org_id = $1 AND id_hash = $2`, string(org), idHash)
		return err
	})
	if err != nil {
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
	var n int64
	err := s.inOrg(ctx, org, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE org_id = $1 AND expires_at <= $2`, string(org), tz(before))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions of %s: %w", org, err)
	}
	return int(n), nil
}

const localAdminCols = `password_hash, created_at, failed_logins, locked_until, last_login_at`

// CreateLocalAdmin stores a new local admin's password hash.
func (s *Store) CreateLocalAdmin(ctx context.Context, a store.LocalAdmin) error {
	if err := codec.CheckLocalAdmin(a); err != nil {
		return fmt.Errorf("create local admin: %w", err)
	}
	err := s.inOrg(ctx, a.Org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO local_admins (org_id, name, `+localAdminCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			string(a.Org), a.Name, a.PasswordHash, tz(a.CreatedAt), a.FailedLogins, tz(a.LockedUntil), tz(a.LastLoginAt))
		return err
	})
	switch {
	case isOrgMissing(err):
		return fmt.Errorf("create local admin %s: org %s: %w", a.Name, a.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create local admin %s of %s: %w", a.Name, a.Org, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("create local admin %s of %s: %w", a.Name, a.Org, err)
	}
	return nil
}

func scanLocalAdmin(org domain.OrgID, name string, row pgx.Row) (*store.LocalAdmin, error) {
	a := &store.LocalAdmin{Org: org, Name: name}
	var created, locked, last pgtype.Timestamptz
	if err := row.Scan(&a.PasswordHash, &created, &a.FailedLogins, &locked, &last); err != nil {
		return nil, err
	}
	a.CreatedAt, a.LockedUntil, a.LastLoginAt = fromTZ(created), fromTZ(locked), fromTZ(last)
	return a, nil
}

// GetLocalAdmin returns one local admin.
func (s *Store) GetLocalAdmin(ctx context.Context, org domain.OrgID, name string) (*store.LocalAdmin, error) {
	var a *store.LocalAdmin
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		var err error
		a, err = scanLocalAdmin(org, name, tx.QueryRow(ctx, `SELECT `+localAdminCols+` FROM local_admins WHERE org_id = $1 AND name = $2`, string(org), name))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
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
	var a *store.LocalAdmin
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		var row pgx.Row
		if p.Succeeded {
			row = tx.QueryRow(ctx, `UPDATE local_admins SET failed_logins = 0, last_login_at = $3
				WHERE org_id = $1 AND name = $2 RETURNING `+localAdminCols, string(p.Org), p.Name, tz(p.At))
		} else {
			row = tx.QueryRow(ctx, `UPDATE local_admins SET
				locked_until = CASE WHEN failed_logins + 1 >= $3 THEN $4 ELSE locked_until END,
				failed_logins = CASE WHEN failed_logins + 1 >= $3 THEN 0 ELSE failed_logins + 1 END
				WHERE org_id = $1 AND name = $2 RETURNING `+localAdminCols, string(p.Org), p.Name, p.LockAfter, tz(p.At.Add(p.LockFor)))
		}
		var err error
		a, err = scanLocalAdmin(p.Org, p.Name, row)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("local admin %s of %s: %w", p.Name, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("record local admin login %s of %s: %w", p.Name, p.Org, err)
	}
	return a, nil
}
