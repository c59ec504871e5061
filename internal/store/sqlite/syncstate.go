package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// This file holds what an incremental inventory sync needs beyond a full
// one's SyncApplications and FinishSync (ADR 17): removing the views of
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
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
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

// Reconciling ownership reads the connection's views from the index on
// (org_id, connection, object_id, can_change), in object id order, never
// the table.
const (
	// sqlManageableIDs is the views the connection may change, as one
	// sorted, comma-separated string: one row however many there are, so
	// that the usual case (ownership unchanged since the last sync) costs
	// one index scan inside SQLite and a string comparison.
	sqlManageableIDs = `SELECT coalesce(group_concat(object_id, ',' ORDER BY object_id), '') FROM app_access
		WHERE org_id = ? AND connection = ? AND can_change = 1`
	// sqlViews is every view of the connection, for the merge with the
	// owned set when the two differ.
	sqlViews = `SELECT object_id, can_change FROM app_access
		WHERE org_id = ? AND connection = ? ORDER BY object_id`
)

// ReconcileManageable first compares the sorted owned ids with the sorted
// ids of the views the connection may change, in one query; when they are
// equal nothing differs (every owned application is seen and changeable,
// and nothing else is). Otherwise it merges the owned ids with all the
// connection's views, both in object id order, and writes only the views
// whose CanChange differs.
func (s *Store) ReconcileManageable(ctx context.Context, p store.ReconcileManageableParams) (store.ReconcileManageableResult, error) {
	var res store.ReconcileManageableResult
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return res, errors.New("reconcile manageable: org, connection and SyncStarted must be set")
	}
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
		return res, fmt.Errorf("reconcile manageable: %w", err)
	}
	fail := func(err error) (store.ReconcileManageableResult, error) {
		return store.ReconcileManageableResult{}, fmt.Errorf("reconcile manageable of %s/%s: %w", p.Org, p.Connection, err)
	}
	owned := slices.Clone(p.Owned)
	slices.Sort(owned)
	owned = slices.Compact(owned)

	var manageable string
	if err := s.r.QueryRowContext(ctx, sqlManageableIDs, string(p.Org), p.Connection).Scan(&manageable); err != nil {
		return fail(err)
	}
	if manageable == strings.Join(owned, ",") {
		res.Manageable = len(owned)
		return res, nil
	}

	rows, err := s.r.QueryContext(ctx, sqlViews, string(p.Org), p.Connection)
	if err != nil {
		return fail(err)
	}
	var gained []string
	seen, i := 0, 0
	for rows.Next() {
		var id string
		var can bool
		if err := rows.Scan(&id, &can); err != nil {
			_ = rows.Close()
			return fail(err)
		}
		for i < len(owned) && owned[i] < id {
			res.Missing = append(res.Missing, owned[i])
			i++
		}
		isOwned := i < len(owned) && owned[i] == id
		switch {
		case isOwned && !can:
			gained = append(gained, id)
			seen++
		case isOwned:
			seen++
		case can:
			res.Lost = append(res.Lost, id)
		}
		if isOwned {
			i++
		}
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	res.Missing = append(res.Missing, owned[i:]...)
	res.Manageable = seen
	if len(gained) == 0 && len(res.Lost) == 0 {
		return res, nil
	}
	// A view stamped by a later sync is that sync's to decide. A thousand
	// views to a statement, and OR ROLLBACK: one UPDATE of a first sync's
	// 65,000 views made SQLite keep a statement journal of every page it
	// touched in memory (45 MiB for a moment; BenchmarkServeRSS100k).
	const flip = `UPDATE OR ROLLBACK app_access SET can_change = ?
		WHERE org_id = ? AND connection = ? AND can_change = ? AND synced_at <= ?
			AND object_id IN (SELECT value FROM json_each(?))`
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, flip)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, f := range []struct {
			to  bool
			ids []string
		}{{true, gained}, {false, res.Lost}} {
			for ids := range slices.Chunk(f.ids, flipChunk) {
				b, err := json.Marshal(ids)
				if err != nil {
					return err
				}
				r, err := st.ExecContext(ctx, f.to, string(p.Org), p.Connection, !f.to, encTime(p.SyncStarted), string(b))
				if err != nil {
					return err
				}
				if f.to {
					n, err := r.RowsAffected()
					if err != nil {
						return err
					}
					res.Gained += int(n)
				}
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

// flipChunk is how many views one statement of ReconcileManageable
// changes.
const flipChunk = 1000

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
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
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
