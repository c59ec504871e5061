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

// RecordConnectionHealth upserts one outcome; times only move forward, and
// what an outcome carries (roles, a failure's message and code) replaces
// what is recorded only when that outcome is not older.
func (s *Store) RecordConnectionHealth(ctx context.Context, p store.ConnectionHealth) error {
	if p.Org == "" || p.Connection == "" || p.Success == p.Failure || p.At.IsZero() {
		return errors.New("record connection health: org, connection, a time and exactly one of success and failure must be set")
	}
	if err := codec.CheckTime("at", p.At); err != nil {
		return fmt.Errorf("record connection health: %w", err)
	}
	at := tz(p.At)
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		var err error
		if p.Success {
			// A nil Roles is NULL: keep what is recorded.
			_, err = tx.Exec(ctx, `INSERT INTO connection_health (org_id, connection, last_success_at, roles)
				VALUES ($1, $2, $3, coalesce($4::text[], '{}'))
				ON CONFLICT (org_id, connection) DO UPDATE SET
					roles = CASE WHEN excluded.last_success_at >= coalesce(connection_health.last_success_at, '-infinity') AND $4::text[] IS NOT NULL
						THEN excluded.roles ELSE connection_health.roles END,
					last_success_at = greatest(connection_health.last_success_at, excluded.last_success_at)`,
				string(p.Org), p.Connection, at, p.Roles)
		} else {
			msg := codec.TruncateUTF8(p.Message, codec.MaxHealthMessage)
			_, err = tx.Exec(ctx, `INSERT INTO connection_health (org_id, connection, last_failure_at, failure, aadsts)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (org_id, connection) DO UPDATE SET
					failure = CASE WHEN excluded.last_failure_at >= coalesce(connection_health.last_failure_at, '-infinity')
						THEN excluded.failure ELSE connection_health.failure END,
					aadsts = CASE WHEN excluded.last_failure_at >= coalesce(connection_health.last_failure_at, '-infinity')
						THEN excluded.aadsts ELSE connection_health.aadsts END,
					last_failure_at = greatest(connection_health.last_failure_at, excluded.last_failure_at)`,
				string(p.Org), p.Connection, at, msg, p.AADSTS)
		}
		return err
	})
	if isOrgMissing(err) {
		return fmt.Errorf("record connection health of %s: org %s: %w", p.Connection, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("record connection health of %s: %w", p.Connection, err)
	}
	return nil
}

// ListConnectionHealth lists an org's recorded outcomes by connection name.
func (s *Store) ListConnectionHealth(ctx context.Context, org domain.OrgID) ([]store.ConnectionHealth, error) {
	var out []store.ConnectionHealth
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		out = []store.ConnectionHealth{}
		rows, err := tx.Query(ctx, `SELECT connection, last_success_at, last_failure_at, failure, aadsts, roles
			FROM connection_health WHERE org_id = $1 ORDER BY connection`, string(org))
		if err != nil {
			return err
		}
		var h store.ConnectionHealth
		var ok, failed pgtype.Timestamptz
		var roles []string
		_, err = pgx.ForEachRow(rows, []any{&h.Connection, &ok, &failed, &h.Message, &h.AADSTS, &roles}, func() error {
			rec := h
			rec.Org, rec.LastSuccess, rec.LastFailure = org, fromTZ(ok), fromTZ(failed)
			rec.Roles = append([]string{}, roles...)
			out = append(out, rec)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list connection health: %w", err)
	}
	return out, nil
}
