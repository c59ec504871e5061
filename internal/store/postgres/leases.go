package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Leases are judged by the database's clock: a row's expires_at is the
// database's now() (its transaction's start) plus the TTL, and a lease is
// live while expires_at > now() there. Replicas whose clocks disagree
// therefore agree on who holds a run.
//
// The expiry returned to the caller is in the caller's clock instead (the
// injected one): the clock's reading taken before the transaction began,
// plus the TTL. The database's now() is later than that reading, so the
// lease in the database ends no earlier than the returned time in real
// time, and the caller, which measures spans against its own clock (the
// engine's fence deadline is expiry − now − TTL/3), never believes it holds
// a run longer than it does, however far its clock is from the database's.

// RenewLease upserts the holder's row with expires_at = now() + TTL.
func (s *Store) RenewLease(ctx context.Context, p store.RenewLeaseParams) (time.Time, error) {
	if p.Holder == "" || p.TTL <= 0 {
		return time.Time{}, errors.New("renew lease: holder and a positive TTL must be set")
	}
	start := s.clock.Now()
	err := s.tx(ctx, "", pgx.TxOptions{}, func(tx pgx.Tx) error { return renewLease(ctx, tx, p.Holder, p.Description, p.TTL) })
	if err != nil {
		return time.Time{}, fmt.Errorf("renew lease %s: %w", p.Holder, err)
	}
	return start.Add(p.TTL), nil
}

func renewLease(ctx context.Context, tx pgx.Tx, holder, desc string, ttl time.Duration) error {
	_, err := tx.Exec(ctx, `INSERT INTO leases (holder, description, started_at, renewed_at, expires_at)
		VALUES ($1, $2, now(), now(), now() + $3 * interval '1 microsecond')
		ON CONFLICT (holder) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at,
			description = CASE WHEN excluded.description <> '' THEN excluded.description ELSE leases.description END`,
		holder, desc, ttl.Microseconds())
	return err
}

// ReleaseLease deletes the holder's row; its runs' lease_holder then names
// a holder with no live lease, which is what ClaimRun takes over.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	err := s.tx(ctx, "", pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM leases WHERE holder = $1`, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", holder, err)
	}
	return nil
}

// CountLiveLeases implements store.Store, by the database's clock.
func (s *Store) CountLiveLeases(ctx context.Context) (int, error) {
	var n int
	err := s.tx(ctx, "", pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM leases WHERE expires_at > now()`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count live leases: %w", err)
	}
	return n, nil
}

// ClaimRun locks the run's row, checks that nobody live holds it, renews
// the claimant's lease and moves the run to it, in one transaction. The
// row lock serialises it with FenceRun and with other claims: a fence that
// committed first has renewed its holder's lease, which this claim then
// sees live; one that waits for this claim then sees the new holder.
func (s *Store) ClaimRun(ctx context.Context, p store.ClaimRunParams) (string, error) {
	if p.Org == "" || p.RunID == "" || p.Holder == "" || p.TTL <= 0 {
		return "", errors.New("claim run: org, run id, holder and a positive TTL must be set")
	}
	var previous string
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		var cur, state string
		switch err := tx.QueryRow(ctx, `SELECT lease_holder, state FROM runs WHERE org_id = $1 AND id = $2 FOR UPDATE`,
			string(p.Org), p.RunID).Scan(&cur, &state); {
		case errors.Is(err, pgx.ErrNoRows):
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
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM leases WHERE holder = $1 AND expires_at > now())`, cur).Scan(&live); err != nil {
				return err
			}
			if live {
				return store.ErrLeaseHeld
			}
		}
		if err := renewLease(ctx, tx, p.Holder, "", p.TTL); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE runs SET lease_holder = $1 WHERE org_id = $2 AND id = $3 AND lease_holder = $4 AND state = $5`,
			p.Holder, string(p.Org), p.RunID, cur, state)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return store.ErrConflict // cannot happen under the row lock; kept as the compare-and-set it is
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

// FenceRun locks the run's row, checks it is still Holder's and renews
// Holder's lease, in one transaction, so the expiry returned is a promise:
// nobody can claim the run before it. The run's lease_holder is the
// fencing token: a holder whose lease lapsed while nobody claimed its run
// still owns it and may renew.
func (s *Store) FenceRun(ctx context.Context, p store.FenceRunParams) (time.Time, error) {
	if p.Org == "" || p.RunID == "" || p.Holder == "" || p.TTL <= 0 {
		return time.Time{}, errors.New("fence run: org, run id, holder and a positive TTL must be set")
	}
	start := s.clock.Now()
	err := s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		var cur string
		switch err := tx.QueryRow(ctx, `SELECT lease_holder FROM runs WHERE org_id = $1 AND id = $2 FOR UPDATE`,
			string(p.Org), p.RunID).Scan(&cur); {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		if cur != p.Holder {
			return store.ErrLeaseLost
		}
		return renewLease(ctx, tx, p.Holder, "", p.TTL)
	})
	switch {
	case err == nil:
		return start.Add(p.TTL), nil
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
	err := s.inOrg(ctx, org, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE runs SET lease_holder = '' WHERE org_id = $1 AND id = $2 AND lease_holder = $3`,
			string(org), runID, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release run %s: %w", runID, err)
	}
	return nil
}
