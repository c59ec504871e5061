package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"

	"github.com/rotor-dev/rotor/internal/store"
)

// liveLease is the SQL condition "holder %s has a live lease at time %s".
const liveLease = `EXISTS (SELECT 1 FROM leases l WHERE l.holder = %s AND l.expires_at > %s)`

// RenewLease upserts the holder's row with expires_at = now + TTL.
func (s *Store) RenewLease(ctx context.Context, p store.RenewLeaseParams) (time.Time, error) {
	if p.Holder == "" || p.TTL <= 0 {
		return time.Time{}, errors.New("renew lease: holder and a positive TTL must be set")
	}
	now := s.clock.Now()
	exp := now.Add(p.TTL)
	var err error
	err = s.inTx(ctx, func(tx *sql.Tx) error { return renewLease(ctx, tx, p.Holder, p.Description, now, exp) })
	if err != nil {
		return time.Time{}, fmt.Errorf("renew lease %s: %w", p.Holder, err)
	}
	return exp, nil
}

func renewLease(ctx context.Context, tx *sql.Tx, holder, desc string, now, exp time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO leases (holder, description, started_at, renewed_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (holder) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at,
			description = CASE WHEN excluded.description <> '' THEN excluded.description ELSE leases.description END`,
		holder, desc, encTime(now), encTime(now), encTime(exp))
	return err
}

// ReleaseLease deletes the holder's row; its runs' lease_holder then names
// a holder with no live lease, which is what ClaimRun takes over.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE holder = ?`, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", holder, err)
	}
	return nil
}

// CountLiveLeases implements store.Store.
func (s *Store) CountLiveLeases(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM leases WHERE expires_at > ?`, encTime(s.clock.Now())).Scan(&n); err != nil {
		return 0, fmt.Errorf("count live leases: %w", err)
	}
	return n, nil
}

// ClaimRun is one guarded UPDATE in a transaction that also renews the
// claimant's lease: the run moves to Holder only if nobody live holds it.
func (s *Store) ClaimRun(ctx context.Context, p store.ClaimRunParams) (string, error) {
	if p.Org == "" || p.RunID == "" || p.Holder == "" || p.TTL <= 0 {
		return "", errors.New("claim run: org, run id, holder and a positive TTL must be set")
	}
	now := s.clock.Now()
	var previous string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur, state string
		switch err := tx.QueryRowContext(ctx, `SELECT lease_holder, state FROM runs WHERE org_id = ? AND id = ?`,
			string(p.Org), p.RunID).Scan(&cur, &state); {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		previous = cur
		if len(p.States) > 0 && !slices.Contains(p.States, domain.RunState(state)) {
			return store.ErrConflict
		}
		if cur != "" && cur != p.Holder {
			var live bool
			if err := tx.QueryRowContext(ctx, `SELECT `+fmt.Sprintf(liveLease, "?", "?"), cur, encTime(now)).Scan(&live); err != nil {
				return err
			}
			if live {
				return store.ErrLeaseHeld
			}
		}
		if err := renewLease(ctx, tx, p.Holder, "", now, now.Add(p.TTL)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE runs SET lease_holder = ? WHERE org_id = ? AND id = ? AND lease_holder = ? AND state = ?`,
			p.Holder, string(p.Org), p.RunID, cur, state)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return err
			}
			return store.ErrConflict // moved between the read and the write
		}
		return nil
	})
	switch {
	case err == nil:
		return previous, nil
	case errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("claim run %s in org %s: %w", p.RunID, p.Org, store.ErrNotFound)
	case errors.Is(err, store.ErrLeaseHeld):
		return previous, fmt.Errorf("claim run %s: %s holds it: %w", p.RunID, previous, store.ErrLeaseHeld)
	case errors.Is(err, store.ErrConflict):
		return previous, fmt.Errorf("claim run %s: it is no longer %v: %w", p.RunID, p.States, store.ErrConflict)
	default:
		return "", fmt.Errorf("claim run %s: %w", p.RunID, err)
	}
}

// FenceRun checks the run is still Holder's and renews Holder's lease, in
// one transaction, so the expiry returned is a promise: nobody can claim
// the run before it. The run's lease_holder is the fencing token: a holder
// whose lease lapsed while nobody claimed its run still owns it and may
// renew (a claim is a compare-and-set on the same column, serialised with
// this transaction).
func (s *Store) FenceRun(ctx context.Context, p store.FenceRunParams) (time.Time, error) {
	if p.Org == "" || p.RunID == "" || p.Holder == "" || p.TTL <= 0 {
		return time.Time{}, errors.New("fence run: org, run id, holder and a positive TTL must be set")
	}
	now := s.clock.Now()
	exp := now.Add(p.TTL)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		switch err := tx.QueryRowContext(ctx, `SELECT lease_holder FROM runs WHERE org_id = ? AND id = ?`,
			string(p.Org), p.RunID).Scan(&cur); {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		if cur != p.Holder {
			return store.ErrLeaseLost
		}
		return renewLease(ctx, tx, p.Holder, "", now, exp)
	})
	switch {
	case err == nil:
		return exp, nil
	case errors.Is(err, store.ErrNotFound):
		return time.Time{}, fmt.Errorf("fence run %s in org %s: %w", p.RunID, p.Org, store.ErrNotFound)
	case errors.Is(err, store.ErrLeaseLost):
		return time.Time{}, fmt.Errorf("fence run %s: %s does not hold it: %w", p.RunID, p.Holder, store.ErrLeaseLost)
	default:
		return time.Time{}, fmt.Errorf("fence run %s: %w", p.RunID, err)
	}
}

// ReleaseRun clears the run's holder if it is holder.
func (s *Store) ReleaseRun(ctx context.Context, org domain.OrgID, runID, holder string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE runs SET lease_holder = '' WHERE org_id = ? AND id = ? AND lease_holder = ?`,
		string(org), runID, holder); err != nil {
		return fmt.Errorf("release run %s: %w", runID, err)
	}
	return nil
}
