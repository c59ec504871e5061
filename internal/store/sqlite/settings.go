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

const settingsColumns = `object_id, enabled, notify, lifetime_ns, renew_before_ns, overlap_ns, keyvault_url, keyvault_secret, updated_at, updated_by`

type settingsScanner interface{ Scan(dest ...any) error }

func scanSettings(org domain.OrgID, sc settingsScanner) (store.ApplicationSettings, error) {
	out := store.ApplicationSettings{Org: org}
	var r codec.SettingsRow
	var at sql.NullString
	if err := sc.Scan(&out.ObjectID, &r.Enabled, &r.Notify, &r.Lifetime, &r.Renew, &r.Overlap, &r.VaultURL, &r.Secret, &at, &out.UpdatedBy); err != nil {
		return out, err
	}
	out.Settings = r.Decode()
	var err error
	out.UpdatedAt, err = decTime(at)
	return out, err
}

// GetApplicationSettings reads one application's settings.
func (s *Store) GetApplicationSettings(ctx context.Context, org domain.OrgID, objectID string) (*store.ApplicationSettings, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+settingsColumns+` FROM application_settings WHERE org_id = ? AND object_id = ?`, string(org), objectID)
	out, err := scanSettings(org, row)
	if errors.Is(err, sql.ErrNoRows) {
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
	if p.Settings.IsZero() {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM application_settings WHERE org_id = ? AND object_id = ?`, string(p.Org), p.ObjectID); err != nil {
			return fmt.Errorf("clear settings of application %s: %w", p.ObjectID, err)
		}
		return nil
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = s.clock.Now()
	}
	r := codec.EncodeSettings(p.Settings)
	_, err := s.w.ExecContext(ctx, `INSERT INTO application_settings (org_id, `+settingsColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, object_id) DO UPDATE SET
			enabled = excluded.enabled, notify = excluded.notify, lifetime_ns = excluded.lifetime_ns,
			renew_before_ns = excluded.renew_before_ns, overlap_ns = excluded.overlap_ns,
			keyvault_url = excluded.keyvault_url, keyvault_secret = excluded.keyvault_secret,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		string(p.Org), p.ObjectID, r.Enabled, r.Notify, r.Lifetime, r.Renew, r.Overlap, r.VaultURL, r.Secret, encTime(p.UpdatedAt), p.UpdatedBy)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("settings of application %s: organization %q: %w", p.ObjectID, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("settings of application %s: %w", p.ObjectID, err)
	}
	return nil
}

// ListApplicationSettings lists an org's application settings by object id.
func (s *Store) ListApplicationSettings(ctx context.Context, org domain.OrgID) ([]store.ApplicationSettings, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+settingsColumns+` FROM application_settings WHERE org_id = ? ORDER BY object_id`, string(org))
	if err != nil {
		return nil, fmt.Errorf("application settings of %s: %w", org, err)
	}
	defer func() { _ = rows.Close() }()
	out := []store.ApplicationSettings{}
	for rows.Next() {
		st, err := scanSettings(org, rows)
		if err != nil {
			return nil, fmt.Errorf("application settings of %s: %w", org, err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
