package postgres

import (
	"time"

	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const auditColumns = `seq, at, actor_kind, actor_id, actor_name, action, object, outcome, error_class, request_id, runs, run_id, step, hash`

// AppendAudit numbers, chains and inserts the record and moves the head
// in one transaction, under the organization's advisory lock (lockAudit).
func (s *Store) AppendAudit(ctx context.Context, r audit.Record) (audit.Record, error) {
	r, err := codec.PrepareAudit(r, s.clock.Now())
	if err != nil {
		return r, err
	}
	org := string(r.Org)
	var stored audit.Record
	err = s.inOrg(ctx, r.Org, func(tx pgx.Tx) error {
		rec := r // a retried attempt starts afresh
		if err := lock(ctx, tx, lockAudit, org); err != nil {
			return err
		}
		var prev audit.Head
		var hash []byte
		switch err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_heads WHERE org_id = $1`, org).Scan(&prev.Seq, &hash); {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if prev.Hash, err = audit.HashFromBytes(hash); err != nil {
				return fmt.Errorf("audit head: %w", err)
			}
		}
		rec.Seq = prev.Seq + 1
		rec.Hash = audit.Link(prev.Hash, rec)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_events (org_id, `+auditColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			org, rec.Seq, tz(rec.At), rec.Actor.Kind, rec.Actor.ID, rec.Actor.Name, rec.Action, rec.Object, rec.Outcome,
			rec.Error, rec.RequestID, nonNil(rec.Runs), rec.RunID, rec.Step, rec.Hash[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_heads (org_id, seq, hash, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at`,
			org, rec.Seq, rec.Hash[:], tz(rec.At)); err != nil {
			return err
		}
		stored = rec
		return nil
	})
	switch {
	case err == nil:
		return stored, nil
	case isOrgMissing(err):
		return audit.Record{}, fmt.Errorf("append audit record: organization %q: %w", r.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return audit.Record{}, fmt.Errorf("append audit record to organization %q: the seq past the head is taken: the head was moved back or deleted outside rotor (run 'rotor audit verify'): %w",
			r.Org, store.ErrConflict)
	}
	return audit.Record{}, fmt.Errorf("append audit record: %w", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ListAudit lists records by seq with the params' filters, in one read
// snapshot.
func (s *Store) ListAudit(ctx context.Context, p store.ListAuditParams) ([]audit.Record, error) {
	if err := codec.PrepareListAudit(&p); err != nil {
		return nil, err
	}
	where := []string{"org_id = $1"}
	args := []any{string(p.Org)}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	codec.AuditConditions(p, func(t time.Time) any { return tz(t) }, add)
	if p.Run != "" {
		add("(run_id = ? OR ? = ANY (runs))", p.Run)
	}
	if p.ActorMatch != "" {
		add(codec.ActorMatchCondition, codec.LikeContains(p.ActorMatch))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq`
	if p.Descending {
		q += ` DESC`
	}
	if p.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(p.Limit)
	}
	var out []audit.Record
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := audit.Record{Org: p.Org}
			var at pgtype.Timestamptz
			var hash []byte
			if err := rows.Scan(&r.Seq, &at, &r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &r.Action, &r.Object, &r.Outcome,
				&r.Error, &r.RequestID, &r.Runs, &r.RunID, &r.Step, &hash); err != nil {
				return err
			}
			r.At = fromTZ(at)
			if len(r.Runs) == 0 {
				r.Runs = nil
			}
			if r.Hash, err = audit.HashFromBytes(hash); err != nil {
				return fmt.Errorf("seq %d: %w", r.Seq, err)
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	return out, nil
}

// AuditHead reads the organization's head row.
func (s *Store) AuditHead(ctx context.Context, org domain.OrgID) (audit.Head, error) {
	var h audit.Head
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		var hash []byte
		var at pgtype.Timestamptz
		if err := tx.QueryRow(ctx, `SELECT seq, hash, at FROM audit_heads WHERE org_id = $1`, string(org)).Scan(&h.Seq, &hash, &at); err != nil {
			return err
		}
		h.At = fromTZ(at)
		var err error
		h.Hash, err = audit.HashFromBytes(hash)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Head{}, fmt.Errorf("audit head of organization %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return audit.Head{}, fmt.Errorf("audit head of organization %q: %w", org, err)
	}
	return h, nil
}
