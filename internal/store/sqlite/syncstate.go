package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// This file holds what an incremental inventory sync needs beyond a full
// one's SyncApplications and FinishSync (ADR 14): removing the views of
// applications change tracking reported gone, reconciling who may change
// what with the identity's ownership, and the per-connection sync state.

// RemoveApplications deletes the connection's views of the applications
// (unless a later sync stamped them) and then, by primary key, those of
// the applications that no connection sees any more; their credentials go
// with them.
func (s *Store) RemoveApplications(ctx context.Context, p store.RemoveApplicationsParams) (int, error) {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return 0, errors.New("remove applications: org, connection and SyncStarted must be set")
	}
	if err := checkTime("SyncStarted", p.SyncStarted); err != nil {
		return 0, fmt.Errorf("remove applications: %w", err)
	}
	if len(p.ObjectIDs) == 0 {
		return 0, nil
	}
	ids, err := json.Marshal(p.ObjectIDs)
	if err != nil {
		return 0, fmt.Errorf("remove applications: %w", err)
	}
	n := 0
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `DELETE FROM app_access
			WHERE org_id = ? AND connection = ? AND synced_at <= ?
				AND object_id IN (SELECT value FROM json_each(?))
			RETURNING tenant_id, object_id`,
			string(p.Org), p.Connection, encTime(p.SyncStarted), string(ids))
		if err != nil {
			return err
		}
		var views [][2]string
		for rows.Next() {
			var v [2]string
			if err := rows.Scan(&v[0], &v[1]); err != nil {
				_ = rows.Close()
				return err
			}
			views = append(views, v)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		n = len(views)
		for _, v := range views {
			if _, err := tx.ExecContext(ctx, `DELETE FROM applications
				WHERE org_id = ?1 AND tenant_id = ?2 AND object_id = ?3
					AND NOT EXISTS (SELECT 1 FROM app_access x
						WHERE x.org_id = ?1 AND x.tenant_id = ?2 AND x.object_id = ?3)`,
				string(p.Org), v[0], v[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("remove applications of %s/%s: %w", p.Org, p.Connection, err)
	}
	return n, nil
}

// sqlReconcileViews returns, per owned id (deduplicated), its view's
// can_change (NULL when the connection has none), then the views the
// connection may change whose application it no longer owns.
const sqlReconcileViews = `
	WITH owned(id) AS (SELECT DISTINCT value FROM json_each(?3))
	SELECT 'owned', o.id, (SELECT max(x.can_change) FROM app_access x
			WHERE x.org_id = ?1 AND x.connection = ?2 AND x.object_id = o.id)
		FROM owned o
	UNION ALL
	SELECT 'lost', x.object_id, 1 FROM app_access x
		WHERE x.org_id = ?1 AND x.connection = ?2 AND x.can_change = 1
			AND x.object_id NOT IN (SELECT id FROM owned)`

// ReconcileManageable lets SQLite compare the views with the owned set
// (passed as one JSON array) and return only the differences: each owned
// application is looked up in the connection's index, and the views it
// may change are walked in it, so nothing crosses into Go per view and a
// sync in which ownership did not change reads two index ranges and writes
// nothing.
func (s *Store) ReconcileManageable(ctx context.Context, p store.ReconcileManageableParams) (store.ReconcileManageableResult, error) {
	var res store.ReconcileManageableResult
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return res, errors.New("reconcile manageable: org, connection and SyncStarted must be set")
	}
	if err := checkTime("SyncStarted", p.SyncStarted); err != nil {
		return res, fmt.Errorf("reconcile manageable: %w", err)
	}
	fail := func(err error) (store.ReconcileManageableResult, error) {
		return store.ReconcileManageableResult{}, fmt.Errorf("reconcile manageable of %s/%s: %w", p.Org, p.Connection, err)
	}
	owned := p.Owned
	if owned == nil {
		owned = []string{}
	}
	ids, err := json.Marshal(owned)
	if err != nil {
		return fail(err)
	}
	rows, err := s.r.QueryContext(ctx, sqlReconcileViews, string(p.Org), p.Connection, string(ids))
	if err != nil {
		return fail(err)
	}
	var gained []string
	seen := 0
	for rows.Next() {
		var kind, id string
		var can sql.NullBool
		if err := rows.Scan(&kind, &id, &can); err != nil {
			_ = rows.Close()
			return fail(err)
		}
		switch {
		case kind == "lost":
			res.Lost = append(res.Lost, id)
		case !can.Valid:
			res.Missing = append(res.Missing, id)
		case !can.Bool:
			gained = append(gained, id)
			seen++
		default:
			seen++
		}
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	res.Manageable = seen
	if len(gained) == 0 && len(res.Lost) == 0 {
		return res, nil
	}
	// A view stamped by a later sync is that sync's to decide.
	const flip = `UPDATE app_access SET can_change = ?
		WHERE org_id = ? AND connection = ? AND can_change = ? AND synced_at <= ?
			AND object_id IN (SELECT value FROM json_each(?))`
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, f := range []struct {
			to  bool
			ids []string
		}{{true, gained}, {false, res.Lost}} {
			if len(f.ids) == 0 {
				continue
			}
			b, err := json.Marshal(f.ids)
			if err != nil {
				return err
			}
			r, err := tx.ExecContext(ctx, flip, f.to, string(p.Org), p.Connection, !f.to, encTime(p.SyncStarted), string(b))
			if err != nil {
				return err
			}
			if f.to {
				n, err := r.RowsAffected()
				if err != nil {
					return err
				}
				res.Gained = int(n)
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	res.Manageable -= len(gained) - res.Gained // views a later sync holds keep theirs
	return res, nil
}

// GetSyncState reads the connection's sync state.
func (s *Store) GetSyncState(ctx context.Context, org domain.OrgID, connection string) (*store.SyncState, error) {
	st := store.SyncState{Org: org, Connection: connection}
	var synced, full sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT scope, delta_link, synced_at, full_at FROM inventory_syncs
		WHERE org_id = ? AND connection = ?`, string(org), connection).Scan(&st.Scope, &st.DeltaLink, &synced, &full)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, err)
	}
	if st.SyncedAt, err = decTime(synced); err != nil {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, err)
	}
	if st.FullAt, err = decTime(full); err != nil {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, err)
	}
	return &st, nil
}

// SaveSyncState upserts the connection's one row, unless a sync that
// started later already wrote it.
func (s *Store) SaveSyncState(ctx context.Context, p store.SaveSyncStateParams) error {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return errors.New("save sync state: org, connection and SyncStarted must be set")
	}
	if err := checkTime("SyncStarted", p.SyncStarted); err != nil {
		return fmt.Errorf("save sync state: %w", err)
	}
	var full any
	if p.Full {
		full = encTime(p.SyncStarted)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO inventory_syncs (org_id, connection, scope, delta_link, synced_at, full_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org_id, connection) DO UPDATE SET
			scope = excluded.scope, delta_link = excluded.delta_link, synced_at = excluded.synced_at,
			full_at = coalesce(excluded.full_at, inventory_syncs.full_at)
		WHERE inventory_syncs.synced_at <= excluded.synced_at`,
		string(p.Org), p.Connection, p.Scope, p.DeltaLink, encTime(p.SyncStarted), full)
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return fmt.Errorf("save sync state: organization %q: %w (call EnsureOrg first)", p.Org, store.ErrNotFound)
	default:
		return fmt.Errorf("save sync state of %s/%s: %w", p.Org, p.Connection, err)
	}
}

// RowsWritten is the number of rows inserted, updated or deleted through
// the store's write connection since Open (SQLite's total_changes(); the
// job system's writes count too when it shares the pool). Tests and
// benchmarks use it to show that a sync which found nothing new wrote
// nothing but its sync state.
func (s *Store) RowsWritten(ctx context.Context) (int64, error) {
	var n int64
	if err := s.w.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&n); err != nil {
		return 0, fmt.Errorf("rows written: %w", err)
	}
	return n, nil
}
