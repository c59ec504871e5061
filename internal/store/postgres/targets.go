package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// PinnedTargets reads the pinned targets of one application and policy.
func (s *Store) PinnedTargets(ctx context.Context, p store.PinnedTargetsParams) ([]store.PinnedTarget, error) {
	var out []store.PinnedTarget
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT sink_index, sink_type, target, pinned_at, pinned_by_run, previous, retire_old_at
			FROM sink_targets WHERE org_id = $1 AND tenant_id = $2 AND app_object_id = $3 AND policy = $4 ORDER BY sink_index`,
			string(p.Org), p.TenantID, p.AppObjectID, p.Policy)
		if err != nil {
			return err
		}
		var t store.PinnedTarget
		var at, retire pgtype.Timestamptz
		_, err = pgx.ForEachRow(rows, []any{&t.SinkIndex, &t.SinkType, &t.Target, &at, &t.PinnedByRun, &t.Previous, &retire}, func() error {
			pt := t
			pt.PinnedAt, pt.RetireOldAt = fromTZ(at), fromTZ(retire)
			out = append(out, pt)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pinned targets of %s: %w", p.AppObjectID, err)
	}
	return out, nil
}

// PinTarget upserts one pinned target; pinning the target already pinned
// (same target, previous and retirement) changes nothing.
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
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sink_targets (org_id, tenant_id, app_object_id, policy, sink_index,
				sink_type, target, pinned_at, pinned_by_run, previous, retire_old_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (org_id, tenant_id, app_object_id, policy, sink_index) DO UPDATE SET
				sink_type = excluded.sink_type, target = excluded.target, pinned_at = excluded.pinned_at,
				pinned_by_run = excluded.pinned_by_run, previous = excluded.previous, retire_old_at = excluded.retire_old_at
			WHERE sink_targets.target <> excluded.target OR sink_targets.previous <> excluded.previous
				OR sink_targets.retire_old_at IS DISTINCT FROM excluded.retire_old_at`,
			string(p.Org), p.TenantID, p.AppObjectID, p.Policy, t.SinkIndex, t.SinkType, t.Target,
			tz(t.PinnedAt), t.PinnedByRun, t.Previous, tz(t.RetireOldAt))
		return err
	})
	if err != nil {
		if isOrgMissing(err) {
			return fmt.Errorf("pin target: organization %q: %w", p.Org, store.ErrNotFound)
		}
		return fmt.Errorf("pin target of %s: %w", p.AppObjectID, err)
	}
	return nil
}
