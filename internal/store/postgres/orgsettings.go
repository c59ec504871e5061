package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// GetOrgSettings reads an organization's switches, under its own
// row-level security setting.
func (s *Store) GetOrgSettings(ctx context.Context, org domain.OrgID) (*store.OrgSettings, error) {
	out := store.OrgSettings{Org: org}
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT owned_apps_only FROM organizations WHERE id = $1`, string(org)).Scan(&out.OwnedAppsOnly)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("organization %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get settings of %s: %w", org, err)
	}
	return &out, nil
}

// PutOrgSettings replaces an organization's switches.
func (s *Store) PutOrgSettings(ctx context.Context, set store.OrgSettings) error {
	var n int64
	err := s.inOrg(ctx, set.Org, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE organizations SET owned_apps_only = $1 WHERE id = $2`, set.OwnedAppsOnly, string(set.Org))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("put settings of %s: %w", set.Org, err)
	}
	if n == 0 {
		return fmt.Errorf("organization %s: %w", set.Org, store.ErrNotFound)
	}
	return nil
}
