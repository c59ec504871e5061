package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// GetOrgSettings reads an organization's switches.
func (s *Store) GetOrgSettings(ctx context.Context, org domain.OrgID) (*store.OrgSettings, error) {
	out := store.OrgSettings{Org: org}
	err := s.r.QueryRowContext(ctx, `SELECT owned_apps_only FROM organizations WHERE id = ?`, string(org)).Scan(&out.OwnedAppsOnly)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("organization %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get settings of %s: %w", org, err)
	}
	return &out, nil
}

// PutOrgSettings replaces an organization's switches.
func (s *Store) PutOrgSettings(ctx context.Context, set store.OrgSettings) error {
	res, err := s.w.ExecContext(ctx, `UPDATE organizations SET owned_apps_only = ? WHERE id = ?`, set.OwnedAppsOnly, string(set.Org))
	if err != nil {
		return fmt.Errorf("put settings of %s: %w", set.Org, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("put settings of %s: %w", set.Org, err)
	}
	if n == 0 {
		return fmt.Errorf("organization %s: %w", set.Org, store.ErrNotFound)
	}
	return nil
}
