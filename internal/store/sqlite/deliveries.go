package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// SinkDeliveries reads what rotor last delivered to each target of one
// application.
func (s *Store) SinkDeliveries(ctx context.Context, p store.SinkDeliveriesParams) (map[string]store.SinkDelivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT target, key_id, version, run_id, delivered_at
		FROM sink_deliveries WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?`,
		string(p.Org), p.TenantID, p.AppObjectID)
	if err != nil {
		return nil, fmt.Errorf("sink deliveries of %s: %w", p.AppObjectID, err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]store.SinkDelivery{}
	for rows.Next() {
		var d store.SinkDelivery
		var at sql.NullString
		if err := rows.Scan(&d.Target, &d.KeyID, &d.Version, &d.RunID, &at); err != nil {
			return nil, fmt.Errorf("sink deliveries of %s: %w", p.AppObjectID, err)
		}
		if d.DeliveredAt, err = decTime(at); err != nil {
			return nil, err
		}
		out[d.Target] = d
	}
	return out, rows.Err()
}

// RecordSinkDelivery upserts what rotor last delivered to one target.
func (s *Store) RecordSinkDelivery(ctx context.Context, p store.RecordSinkDeliveryParams) error {
	d := p.Delivery
	if err := checkDelivery(p); err != nil {
		return err
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.clock.Now()
	}
	if err := codec.CheckTimes(codec.NamedTime{Name: "delivered at", T: d.DeliveredAt}); err != nil {
		return fmt.Errorf("record sink delivery: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO sink_deliveries (org_id, tenant_id, app_object_id, target, key_id, version, run_id, delivered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, tenant_id, app_object_id, target) DO UPDATE SET
			key_id = excluded.key_id, version = excluded.version, run_id = excluded.run_id, delivered_at = excluded.delivered_at`,
		string(p.Org), p.TenantID, p.AppObjectID, d.Target, d.KeyID, d.Version, d.RunID, encTime(d.DeliveredAt))
	if err != nil {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("record sink delivery: organization %q: %w", p.Org, store.ErrNotFound)
		}
		return fmt.Errorf("record sink delivery to %s: %w", d.Target, err)
	}
	return nil
}

func checkDelivery(p store.RecordSinkDeliveryParams) error {
	if p.Org == "" || p.TenantID == "" || p.AppObjectID == "" || p.Delivery.Target == "" || p.Delivery.KeyID == "" {
		return errors.New("record sink delivery: org, tenant, application, target and key id must be set")
	}
	return nil
}
