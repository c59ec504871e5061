package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// RecordConnectionHealth upserts one outcome; times only move forward.
func (s *Store) RecordConnectionHealth(ctx context.Context, p store.ConnectionHealth) error {
	if p.Org == "" || p.Connection == "" || p.Success == p.Failure || p.At.IsZero() {
		return errors.New("record connection health: org, connection, a time and exactly one of success and failure must be set")
	}
	if err := codec.CheckTime("at", p.At); err != nil {
		return fmt.Errorf("record connection health: %w", err)
	}
	at := encTime(p.At)
	var err error
	if p.Success {
		roles := []byte(nil)
		if p.Roles != nil {
			if roles, err = json.Marshal(p.Roles); err != nil {
				return fmt.Errorf("record connection health: %w", err)
			}
		}
		_, err = s.w.ExecContext(ctx, `INSERT INTO connection_health (org_id, connection, last_success_at, roles)
			VALUES (?, ?, ?, coalesce(?, '[]'))
			ON CONFLICT (org_id, connection) DO UPDATE SET
				roles = CASE WHEN excluded.last_success_at >= coalesce(last_success_at, '') AND ? IS NOT NULL THEN excluded.roles ELSE roles END,
				last_success_at = max(coalesce(last_success_at, ''), excluded.last_success_at)`,
			string(p.Org), p.Connection, at, nullBytes(roles), nullBytes(roles))
	} else {
		msg := codec.TruncateUTF8(p.Message, codec.MaxHealthMessage)
		_, err = s.w.ExecContext(ctx, `INSERT INTO connection_health (org_id, connection, last_failure_at, failure, aadsts)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (org_id, connection) DO UPDATE SET
				failure = CASE WHEN excluded.last_failure_at >= coalesce(last_failure_at, '') THEN excluded.failure ELSE failure END,
				aadsts = CASE WHEN excluded.last_failure_at >= coalesce(last_failure_at, '') THEN excluded.aadsts ELSE aadsts END,
				last_failure_at = max(coalesce(last_failure_at, ''), excluded.last_failure_at)`,
			string(p.Org), p.Connection, at, msg, p.AADSTS)
	}
	if isForeignKeyViolation(err) {
		return fmt.Errorf("record connection health of %s: org %s: %w", p.Connection, p.Org, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("record connection health of %s: %w", p.Connection, err)
	}
	return nil
}

// ListConnectionHealth lists an org's recorded outcomes by connection name.
func (s *Store) ListConnectionHealth(ctx context.Context, org domain.OrgID) ([]store.ConnectionHealth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT connection, last_success_at, last_failure_at, failure, aadsts, roles
		FROM connection_health WHERE org_id = ? ORDER BY connection`, string(org))
	if err != nil {
		return nil, fmt.Errorf("list connection health: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []store.ConnectionHealth{}
	for rows.Next() {
		h := store.ConnectionHealth{Org: org}
		var ok, failed sql.NullString
		var roles string
		if err := rows.Scan(&h.Connection, &ok, &failed, &h.Message, &h.AADSTS, &roles); err != nil {
			return nil, fmt.Errorf("list connection health: %w", err)
		}
		if h.LastSuccess, err = decTime(ok); err != nil {
			return nil, fmt.Errorf("list connection health: %w", err)
		}
		if h.LastFailure, err = decTime(failed); err != nil {
			return nil, fmt.Errorf("list connection health: %w", err)
		}
		if err := json.Unmarshal([]byte(roles), &h.Roles); err != nil {
			return nil, fmt.Errorf("list connection health: roles of %s: %w", h.Connection, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
