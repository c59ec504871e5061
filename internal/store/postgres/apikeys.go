package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	err := s.inOrg(ctx, k.Org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (org_id, `+apiKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			string(k.Org), k.ID, k.Name, k.Role, k.Hash, tz(k.CreatedAt), k.CreatedBy, tz(k.ExpiresAt), tz(k.RevokedAt))
		return err
	})
	switch {
	case isOrgMissing(err):
		return fmt.Errorf("create api key %s: org %s: %w", k.ID, k.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("create api key %s of %s: %w", k.ID, k.Org, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("create api key %s of %s: %w", k.ID, k.Org, err)
	}
	return nil
}

func scanAPIKey(org domain.OrgID, row pgx.Row) (store.APIKey, error) {
	k := store.APIKey{Org: org}
	var created, expires, revoked pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &created, &k.CreatedBy, &expires, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromTZ(created), fromTZ(expires), fromTZ(revoked)
	return k, nil
}

// GetAPIKey returns one key of an org.
func (s *Store) GetAPIKey(ctx context.Context, org domain.OrgID, id string) (*store.APIKey, error) {
	var k store.APIKey
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		var err error
		k, err = scanAPIKey(org, tx.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE org_id = $1 AND id = $2`, string(org), id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("api key %s of %s: %w", id, org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get api key %s of %s: %w", id, org, err)
	}
	return &k, nil
}

// ListAPIKeys lists an org's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, org domain.OrgID) ([]store.APIKey, error) {
	var out []store.APIKey
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE org_id = $1 ORDER BY created_at, id`, string(org))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scanAPIKey(org, rows)
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list api keys of %s: %w", org, err)
	}
	return out, nil
}

// RevokeAPIKey marks a key revoked, keeping the first revocation's time.
func (s *Store) RevokeAPIKey(ctx context.Context, p store.RevokeAPIKeyParams) error {
	if p.At.IsZero() {
		return errors.New("revoke api key: a time is required")
	}
	if err := codec.CheckTime("at", p.At); err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	var n int64
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE org_id = $1 AND id = $2`,
			string(p.Org), p.ID, tz(p.At))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke api key %s of %s: %w", p.ID, p.Org, err)
	}
	if n == 0 {
		return fmt.Errorf("api key %s of %s: %w", p.ID, p.Org, store.ErrNotFound)
	}
	return nil
}
