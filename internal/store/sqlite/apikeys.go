package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const apiKeyCols = `id, name, role, hash, created_at, created_by, expires_at, revoked_at`

// CreateAPIKey stores a new key's hash.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	if err := codec.CheckAPIKey(k); err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (org_id, `+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(k.Org), k.ID, k.Name, k.Role, k.Hash, encTime(k.CreatedAt), k.CreatedBy, encTime(k.ExpiresAt), encTime(k.RevokedAt))
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("create api key %s: org %s: %w", k.ID, k.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create api key %s of %s: %w", k.ID, k.Org, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("create api key %s of %s: %w", k.ID, k.Org, err)
	}
	return nil
}

func scanAPIKey(org domain.OrgID, sc rowScanner) (store.APIKey, error) {
	k := store.APIKey{Org: org}
	var created, expires, revoked sql.NullString
	if err := sc.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &created, &k.CreatedBy, &expires, &revoked); err != nil {
		return k, err
	}
	var err error
	if k.CreatedAt, err = decTime(created); err != nil {
		return k, err
	}
	if k.ExpiresAt, err = decTime(expires); err != nil {
		return k, err
	}
	if k.RevokedAt, err = decTime(revoked); err != nil {
		return k, err
	}
	return k, nil
}

// GetAPIKey returns one key of an org.
func (s *Store) GetAPIKey(ctx context.Context, org domain.OrgID, id string) (*store.APIKey, error) {
	k, err := scanAPIKey(org, s.r.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE org_id = ? AND id = ?`, string(org), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("api key %s of %s: %w", id, org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get api key %s of %s: %w", id, org, err)
	}
	return &k, nil
}

// ListAPIKeys lists an org's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, org domain.OrgID) ([]store.APIKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE org_id = ? ORDER BY created_at, id`, string(org))
	if err != nil {
		return nil, fmt.Errorf("list api keys of %s: %w", org, err)
	}
	defer func() { _ = rows.Close() }()
	var out []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(org, rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys of %s: %w", org, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey marks a key revoked, keeping the first revocation's time.
func (s *Store) RevokeAPIKey(ctx context.Context, p store.RevokeAPIKeyParams) error {
	if p.At.IsZero() {
		return errors.New("revoke api key: a time is required")
	}
	if err := codec.CheckTime("at", p.At); err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE org_id = ? AND id = ?`,
		encTime(p.At), string(p.Org), p.ID)
	if err != nil {
		return fmt.Errorf("revoke api key %s of %s: %w", p.ID, p.Org, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("revoke api key %s of %s: %w", p.ID, p.Org, err)
		}
		return fmt.Errorf("api key %s of %s: %w", p.ID, p.Org, store.ErrNotFound)
	}
	return nil
}
