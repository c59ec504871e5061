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

// SinkDeliveries reads what rotor last delivered to each target of one
// application.
func (s *Store) SinkDeliveries(ctx context.Context, p store.SinkDeliveriesParams) (map[string]store.SinkDelivery, error) {
	var out map[string]store.SinkDelivery
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		out = map[string]store.SinkDelivery{}
		rows, err := tx.Query(ctx, `SELECT target, key_id, version, run_id, delivered_at
			FROM sink_deliveries WHERE org_id = $1 AND tenant_id = $2 AND app_object_id = $3`,
			string(p.Org), p.TenantID, p.AppObjectID)
		if err != nil {
			return err
		}
		var d store.SinkDelivery
		var at pgtype.Timestamptz
		_, err = pgx.ForEachRow(rows, []any{&d.Target, &d.KeyID, &d.Version, &d.RunID, &at}, func() error {
			got := d
			got.DeliveredAt = fromTZ(at)
			out[got.Target] = got
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sink deliveries of %s: %w", p.AppObjectID, err)
	}
	return out, nil
}

// RecordSinkDelivery upserts what rotor last delivered to one target.
func (s *Store) RecordSinkDelivery(ctx context.Context, p store.RecordSinkDeliveryParams) error {
	d := p.Delivery
	if p.Org == "" || p.TenantID == "" || p.AppObjectID == "" || d.Target == "" || d.KeyID == "" {
		return errors.New("record sink delivery: org, tenant, application, target and key id must be set")
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.clock.Now()
	}
	if err := codec.CheckTimes(codec.NamedTime{Name: "delivered at", T: d.DeliveredAt}); err != nil {
		return fmt.Errorf("record sink delivery: %w", err)
	}
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sink_deliveries (org_id, tenant_id, app_object_id, target, key_id, version, run_id, delivered_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (org_id, tenant_id, app_object_id, target) DO UPDATE SET
				key_id = excluded.key_id, version = excluded.version, run_id = excluded.run_id, delivered_at = excluded.delivered_at`,
			string(p.Org), p.TenantID, p.AppObjectID, d.Target, d.KeyID, d.Version, d.RunID, tz(d.DeliveredAt))
		return err
	})
	if err != nil {
		if isOrgMissing(err) {
			return fmt.Errorf("record sink delivery: organization %q: %w", p.Org, store.ErrNotFound)
		}
		return fmt.Errorf("record sink delivery to %s: %w", d.Target, err)
	}
	return nil
}
