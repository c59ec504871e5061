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

const settingsColumns = `object_id, enabled, notify, lifetime_ns, renew_before_ns, overlap_ns, keyvault_url, keyvault_secret, updated_at, updated_by`

func scanSettings(org domain.OrgID, row pgx.Row) (store.ApplicationSettings, error) {
	out := store.ApplicationSettings{Org: org}
	var r codec.SettingsRow
	var at pgtype.Timestamptz
	if err := row.Scan(&out.ObjectID, &r.Enabled, &r.Notify, &r.Lifetime, &r.Renew, &r.Overlap, &r.VaultURL, &r.Secret, &at, &out.UpdatedBy); err != nil {
		return out, err
	}
	out.Settings, out.UpdatedAt = r.Decode(), fromTZ(at)
	return out, nil
}

// GetApplicationSettings reads one application's settings.
func (s *Store) GetApplicationSettings(ctx context.Context, org domain.OrgID, objectID string) (*store.ApplicationSettings, error) {
	var out store.ApplicationSettings
	err := s.readOrg(ctx, org, func(tx pgx.Tx) (err error) {
		out, err = scanSettings(org, tx.QueryRow(ctx, `SELECT `+settingsColumns+` FROM application_settings WHERE org_id = $1 AND object_id = $2`, string(org), objectID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("settings of application %s: %w", objectID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("settings of application %s: %w", objectID, err)
	}
	return &out, nil
}

// PutApplicationSettings replaces one application's settings; settings
// that set nothing delete the row.
func (s *Store) PutApplicationSettings(ctx context.Context, p store.ApplicationSettings) error {
	if err := codec.CheckSettings(p); err != nil {
		return err
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = s.clock.Now()
	}
	r := codec.EncodeSettings(p.Settings)
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if p.Settings.IsZero() {
			_, err := tx.Exec(ctx, `DELETE FROM application_settings WHERE org_id = $1 AND object_id = $2`, string(p.Org), p.ObjectID)
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO application_settings (org_id, `+settingsColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (org_id, object_id) DO UPDATE SET
				enabled = excluded.enabled, notify = excluded.notify, lifetime_ns = excluded.lifetime_ns,
				renew_before_ns = excluded.renew_before_ns, overlap_ns = excluded.overlap_ns,
				keyvault_url = excluded.keyvault_url, keyvault_secret = excluded.keyvault_secret,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			string(p.Org), p.ObjectID, r.Enabled, r.Notify, r.Lifetime, r.Renew, r.Overlap, r.VaultURL, r.Secret, tz(p.UpdatedAt), p.UpdatedBy)
		return err
	})
	if isOrgMissing(err) {
		return fmt.Errorf("settings of application %s: organization %q: %w", p.ObjectID, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("settings of application %s: %w", p.ObjectID, err)
	}
	return nil
}

// ListApplicationSettings lists an org's application settings by object id.
func (s *Store) ListApplicationSettings(ctx context.Context, org domain.OrgID) ([]store.ApplicationSettings, error) {
	var out []store.ApplicationSettings
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		out = []store.ApplicationSettings{}
		rows, err := tx.Query(ctx, `SELECT `+settingsColumns+` FROM application_settings WHERE org_id = $1 ORDER BY object_id`, string(org))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			st, err := scanSettings(org, rows)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("application settings of %s: %w", org, err)
	}
	return out, nil
}
