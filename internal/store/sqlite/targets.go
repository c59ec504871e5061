package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// PinnedTargets reads the pinned targets of one application and policy.
func (s *Store) PinnedTargets(ctx context.Context, p store.PinnedTargetsParams) ([]store.PinnedTarget, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sink_index, sink_type, target, pinned_at, pinned_by_run, previous, retire_old_at
		FROM sink_targets WHERE org_id = ? AND tenant_id = ? AND app_object_id = ? AND policy = ? ORDER BY sink_index`,
		string(p.Org), p.TenantID, p.AppObjectID, p.Policy)
	if err != nil {
		return nil, fmt.Errorf("pinned targets of %s: %w", p.AppObjectID, err)
	}
	defer func() { _ = rows.Close() }()
	var out []store.PinnedTarget
	for rows.Next() {
		var t store.PinnedTarget
		var at, retire sql.NullString
		if err := rows.Scan(&t.SinkIndex, &t.SinkType, &t.Target, &at, &t.PinnedByRun, &t.Previous, &retire); err != nil {
			return nil, fmt.Errorf("pinned targets of %s: %w", p.AppObjectID, err)
		}
		if t.PinnedAt, err = decTime(at); err != nil {
			return nil, err
		}
		if t.RetireOldAt, err = decTime(retire); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// PinTarget upserts one pinned target.
func (s *Store) PinTarget(ctx context.Context, p store.PinTargetParams) error {
	t := p.Target
	if p.Org == "" || p.AppObjectID == "" || p.Policy == "" || t.Target == "" || t.SinkIndex < 0 {
		return errors.New("pin target: org, application, policy, sink index and target must be set")
	}
	if t.PinnedAt.IsZero() {
		t.PinnedAt = s.clock.Now()
	}
	if err := codec.CheckTimes(codec.NamedTime{Name: "pinned at", T: t.PinnedAt}, codec.NamedTime{Name: "retire old at", T: t.RetireOldAt}); err != nil {
		return fmt.Errorf("pin target: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO sink_targets (org_id, tenant_id, app_object_id, policy, sink_index,
			sink_type, target, pinned_at, pinned_by_run, previous, retire_old_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, app_object_id, policy, sink_index) DO UPDATE SET
			sink_type = excluded.sink_type, target = excluded.target, pinned_at = excluded.pinned_at,
			pinned_by_run = excluded.pinned_by_run, previous = excluded.previous, retire_old_at = excluded.retire_old_at
		WHERE sink_targets.target <> excluded.target OR sink_targets.previous <> excluded.previous
			OR sink_targets.retire_old_at IS NOT excluded.retire_old_at`,
		string(p.Org), p.TenantID, p.AppObjectID, p.Policy, t.SinkIndex, t.SinkType, t.Target,
		encTime(t.PinnedAt), t.PinnedByRun, t.Previous, encTime(t.RetireOldAt))
	if err != nil {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("pin target: organization %q: %w", p.Org, store.ErrNotFound)
		}
		return fmt.Errorf("pin target of %s: %w", p.AppObjectID, err)
	}
	return nil
}
