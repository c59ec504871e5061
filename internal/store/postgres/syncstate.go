package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// This file holds what an incremental inventory sync needs beyond a full
// one's SyncApplications and FinishSync (ADR 17), with the SQLite store's
// semantics: removing the views of applications change tracking reported
// gone, reconciling who may change what with the identity's ownership,
// and the per-connection sync state. Every write holds the org's
// inventory lock, as the other inventory writes do.

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
	n := 0
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		n = 0
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM app_access
			WHERE org_id = $1 AND connection = $2 AND synced_at <= $3 AND object_id = ANY($4::text[])
			RETURNING tenant_id, object_id`,
			string(p.Org), p.Connection, tz(p.SyncStarted), p.ObjectIDs)
		if err != nil {
			return err
		}
		var tenants, objects []string
		var tenant, object string
		if _, err := pgx.ForEachRow(rows, []any{&tenant, &object}, func() error {
			tenants, objects = append(tenants, tenant), append(objects, object)
			return nil
		}); err != nil {
			return err
		}
		n = len(objects)
		if n == 0 {
			return nil
		}
		// A second statement: a data-modifying CTE's deletions are not
		// visible to the rest of its statement.
		// The applications and their credentials (no foreign key
		// cascades: migration 0004).
		_, err = tx.Exec(ctx, `WITH gone AS (
				DELETE FROM applications a
				USING unnest($2::text[], $3::text[]) AS g (tenant_id, object_id)
				WHERE a.org_id = $1 AND a.tenant_id = g.tenant_id AND a.object_id = g.object_id
					AND NOT EXISTS (SELECT 1 FROM app_access x
						WHERE x.org_id = $1 AND x.tenant_id = a.tenant_id AND x.object_id = a.object_id)
				RETURNING a.tenant_id, a.object_id)
			DELETE FROM credentials c USING gone g
				WHERE c.org_id = $1 AND c.tenant_id = g.tenant_id AND c.app_object_id = g.object_id`,
			string(p.Org), tenants, objects)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove applications of %s/%s: %w", p.Org, p.Connection, err)
	}
	return n, nil
}

// Reconciling ownership reads the connection's views from the index on
// (org_id, connection, object_id, can_change), in object id order (byte
// order: the columns are COLLATE "C", as Go compares strings).
const (
	// sqlManageableIDs is the sorted ids of the views the connection may
	// change: one row however many there are, so that the usual case
	// (ownership unchanged since the last sync) costs one index scan and
	// a comparison.
	sqlManageableIDs = `SELECT coalesce(array_agg(object_id ORDER BY object_id), '{}') FROM app_access
		WHERE org_id = $1 AND connection = $2 AND can_change`
	// sqlViews is every view of the connection, for the merge with the
	// owned set when the two differ.
	sqlViews = `SELECT object_id, can_change FROM app_access
		WHERE org_id = $1 AND connection = $2 ORDER BY object_id`
	// sqlFlip sets can_change to $1 on views that have the other value;
	// a view stamped by a later sync is that sync's to decide.
	sqlFlip = `UPDATE app_access SET can_change = $1
		WHERE org_id = $2 AND connection = $3 AND can_change = NOT $1::boolean AND synced_at <= $4
			AND object_id = ANY($5::text[])`
)

// ReconcileManageable first compares the sorted owned ids with the sorted
// ids of the views the connection may change, in one read-only query;
// when they are equal nothing differs (every owned application is seen
// and changeable, and nothing else is). Otherwise, under the org's
// inventory lock, it merges the owned ids with all the connection's
// views, both in object id order, and writes only the views whose
// CanChange differs.
func (s *Store) ReconcileManageable(ctx context.Context, p store.ReconcileManageableParams) (store.ReconcileManageableResult, error) {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return store.ReconcileManageableResult{}, errors.New("reconcile manageable: org, connection and SyncStarted must be set")
	}
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
		return store.ReconcileManageableResult{}, fmt.Errorf("reconcile manageable: %w", err)
	}
	fail := func(err error) (store.ReconcileManageableResult, error) {
		return store.ReconcileManageableResult{}, fmt.Errorf("reconcile manageable of %s/%s: %w", p.Org, p.Connection, err)
	}
	owned := slices.Clone(p.Owned)
	slices.Sort(owned)
	owned = slices.Compact(owned)

	var manageable []string
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sqlManageableIDs, string(p.Org), p.Connection).Scan(&manageable)
	})
	if err != nil {
		return fail(err)
	}
	if slices.Equal(manageable, owned) {
		return store.ReconcileManageableResult{Manageable: len(owned)}, nil
	}

	var res store.ReconcileManageableResult
	err = s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		res = store.ReconcileManageableResult{}
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sqlViews, string(p.Org), p.Connection)
		if err != nil {
			return err
		}
		var gained []string
		seen, i := 0, 0
		var id string
		var can bool
		if _, err := pgx.ForEachRow(rows, []any{&id, &can}, func() error {
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
			return nil
		}); err != nil {
			return err
		}
		res.Missing = append(res.Missing, owned[i:]...)
		res.Manageable = seen
		if len(gained) > 0 {
			tag, err := tx.Exec(ctx, sqlFlip, true, string(p.Org), p.Connection, tz(p.SyncStarted), gained)
			if err != nil {
				return err
			}
			res.Gained = int(tag.RowsAffected())
		}
		if len(res.Lost) > 0 {
			if _, err := tx.Exec(ctx, sqlFlip, false, string(p.Org), p.Connection, tz(p.SyncStarted), res.Lost); err != nil {
				return err
			}
		}
		res.Manageable -= len(gained) - res.Gained // views a later sync holds keep theirs
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// GetSyncState reads the connection's sync state.
func (s *Store) GetSyncState(ctx context.Context, org domain.OrgID, connection string) (*store.SyncState, error) {
	st := store.SyncState{Org: org, Connection: connection}
	var synced, full pgtype.Timestamptz
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT scope, delta_link, synced_at, full_at FROM inventory_syncs
			WHERE org_id = $1 AND connection = $2`, string(org), connection).Scan(&st.Scope, &st.DeltaLink, &synced, &full)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sync state of %s/%s: %w", org, connection, err)
	}
	st.SyncedAt, st.FullAt = fromTZ(synced), fromTZ(full)
	return &st, nil
}

// SaveSyncState upserts the connection's one row, unless a sync that
// started later already wrote it. It holds the org's inventory lock:
// the row says when every view of the connection was last seen (an
// application's SyncedAt), so it is written in turn with the views.
func (s *Store) SaveSyncState(ctx context.Context, p store.SaveSyncStateParams) error {
	if p.Org == "" || p.Connection == "" || p.SyncStarted.IsZero() {
		return errors.New("save sync state: org, connection and SyncStarted must be set")
	}
	if err := codec.CheckTime("SyncStarted", p.SyncStarted); err != nil {
		return fmt.Errorf("save sync state: %w", err)
	}
	var full pgtype.Timestamptz
	if p.Full {
		full = tz(p.SyncStarted)
	}
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockInventory, string(p.Org)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO inventory_syncs (org_id, connection, scope, delta_link, synced_at, full_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (org_id, connection) DO UPDATE SET
				scope = excluded.scope, delta_link = excluded.delta_link, synced_at = excluded.synced_at,
				full_at = coalesce(excluded.full_at, inventory_syncs.full_at)
			WHERE inventory_syncs.synced_at <= excluded.synced_at`,
			string(p.Org), p.Connection, p.Scope, p.DeltaLink, tz(p.SyncStarted), full)
		return err
	})
	switch {
	case err == nil:
		return nil
	case isOrgMissing(err):
		return fmt.Errorf("save sync state: organization %q: %w (call EnsureOrg first)", p.Org, store.ErrNotFound)
	default:
		return fmt.Errorf("save sync state of %s/%s: %w", p.Org, p.Connection, err)
	}
}
