package sqlite

import (
	"time"

	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const auditColumns = `seq, at, actor_kind, actor_id, actor_name, action, object, outcome, error_class, request_id, runs, run_id, step, hash`

// AppendAudit numbers, chains and inserts the record and moves the head,
// in one write transaction: SQLite's single writer (and IMMEDIATE
// transactions across processes) is the lock per organization.
func (s *Store) AppendAudit(ctx context.Context, r audit.Record) (audit.Record, error) {
	r, err := codec.PrepareAudit(r, s.clock.Now())
	if err != nil {
		return r, err
	}
	runs, err := json.Marshal(nonNil(r.Runs))
	if err != nil {
		return r, fmt.Errorf("append audit record: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var prev audit.Head
		var hash []byte
		switch err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_heads WHERE org_id = ?`, string(r.Org)).Scan(&prev.Seq, &hash); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if prev.Hash, err = audit.HashFromBytes(hash); err != nil {
				return fmt.Errorf("audit head: %w", err)
			}
		}
		r.Seq = prev.Seq + 1
		r.Hash = audit.Link(prev.Hash, r)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (org_id, `+auditColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(r.Org), r.Seq, encTime(r.At), r.Actor.Kind, r.Actor.ID, r.Actor.Name, r.Action, r.Object, r.Outcome,
			r.Error, r.RequestID, string(runs), r.RunID, r.Step, r.Hash[:]); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_heads (org_id, seq, hash, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at`,
			string(r.Org), r.Seq, r.Hash[:], encTime(r.At))
		return err
	})
	switch {
	case err == nil:
		return r, nil
	case isForeignKeyViolation(err):
		return audit.Record{}, fmt.Errorf("append audit record: organization %q: %w", r.Org, store.ErrNotFound)
	case isUniqueViolation(err):
		return audit.Record{}, fmt.Errorf("append audit record to organization %q: seq %d past the head is taken: the head was moved back or deleted outside rotor (run 'rotor audit verify'): %w",
			r.Org, r.Seq, store.ErrConflict)
	}
	return audit.Record{}, fmt.Errorf("append audit record: %w", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ListAudit lists records by seq with the params' filters.
func (s *Store) ListAudit(ctx context.Context, p store.ListAuditParams) ([]audit.Record, error) {
	if err := codec.PrepareListAudit(&p); err != nil {
		return nil, err
	}
	where := []string{"org_id = ?"}
	args := []any{string(p.Org)}
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	codec.AuditConditions(p, func(t time.Time) any { return encTime(t) }, add)
	if p.Run != "" {
		where = append(where, "(run_id = ? OR EXISTS (SELECT 1 FROM json_each(runs) WHERE value = ?))")
		args = append(args, p.Run, p.Run)
	}
	if p.ActorMatch != "" {
		pat := codec.LikeContains(p.ActorMatch)
		where = append(where, codec.ActorMatchCondition)
		args = append(args, pat, pat)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq`
	if p.Descending {
		q += ` DESC`
	}
	if p.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(p.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []audit.Record
	for rows.Next() {
		r := audit.Record{Org: p.Org}
		var at sql.NullString
		var runs string
		var hash []byte
		if err := rows.Scan(&r.Seq, &at, &r.Actor.Kind, &r.Actor.ID, &r.Actor.Name, &r.Action, &r.Object, &r.Outcome,
			&r.Error, &r.RequestID, &runs, &r.RunID, &r.Step, &hash); err != nil {
			return nil, fmt.Errorf("list audit records: %w", err)
		}
		if r.At, err = decTime(at); err != nil {
			return nil, fmt.Errorf("list audit records: seq %d: %w", r.Seq, err)
		}
		if err := json.Unmarshal([]byte(runs), &r.Runs); err != nil {
			return nil, fmt.Errorf("list audit records: seq %d: runs: %w", r.Seq, err)
		}
		if len(r.Runs) == 0 {
			r.Runs = nil
		}
		if r.Hash, err = audit.HashFromBytes(hash); err != nil {
			return nil, fmt.Errorf("list audit records: seq %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	return out, nil
}

// AuditHead reads the organization's head row.
func (s *Store) AuditHead(ctx context.Context, org domain.OrgID) (audit.Head, error) {
	var h audit.Head
	var hash []byte
	var at sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash, at FROM audit_heads WHERE org_id = ?`, string(org)).Scan(&h.Seq, &hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("audit head of organization %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("audit head of organization %q: %w", org, err)
	}
	if h.Hash, err = audit.HashFromBytes(hash); err != nil {
		return h, fmt.Errorf("audit head of organization %q: %w", org, err)
	}
	if h.At, err = decTime(at); err != nil {
		return h, fmt.Errorf("audit head of organization %q: %w", org, err)
	}
	return h, nil
}
