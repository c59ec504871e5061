package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const runColumns = `id, connection, tenant_id, app_object_id, app_id, app_name, policy, kind, "trigger",
	state, new_key_id, new_end, sinks_started, retire_at, error, attempts, replaces, created_at, updated_at, ended_at,
	lease_holder, failure, app_seq`

// CreateRun inserts the run in state planned, with its events if any.
// The partial unique index runs_one_active_per_app turns a second active
// run for the same application into ErrConflict.
func (s *Store) CreateRun(ctx context.Context, run *domain.Run) error {
	if err := codec.PrepareRun(run, s.clock.Now()); err != nil {
		return fmt.Errorf("create run: %w", err)
	}

	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The sequence is read and written in one write transaction, so
		// two processes creating runs for one application get two.
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(app_seq), 0) + 1 FROM runs WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?`,
			string(run.Org), run.TenantID, run.AppObjectID).Scan(&seq); err != nil {
			return err
		}
		run.Seq = seq
		if _, err := tx.ExecContext(ctx, `INSERT INTO runs (org_id, `+runColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(run.Org), run.ID, run.Connection, run.TenantID, run.AppObjectID, run.AppID, run.AppName,
			run.Policy, string(run.Kind), string(run.Trigger), string(run.State), run.NewKeyID, encTime(run.NewEnd),
			run.SinksStarted, encTime(run.RetireAt), run.Error, run.Attempts, run.Replaces,
			encTime(run.CreatedAt), encTime(run.UpdatedAt), encTime(run.EndedAt), run.Holder, string(run.Failure), run.Seq); err != nil {
			return err
		}
		for i, ev := range run.Events {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_events (org_id, run_id, seq, at, state, step, target, message)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, string(run.Org), run.ID, i+1, encTime(ev.At), string(ev.State), ev.Step.String(), ev.Target, ev.Message); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case isUniqueViolation(err):
		if holder := s.activeRun(ctx, run); holder != "" {
			return fmt.Errorf("create run for application %s: run %s is active: %w", run.AppObjectID, holder, store.ErrConflict)
		}
		return fmt.Errorf("create run %s: id taken or another run is active: %w", run.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create run: organization %q: %w (call EnsureOrg first)", run.Org, store.ErrNotFound)
	default:
		return fmt.Errorf("create run %s: %w", run.ID, err)
	}
}

// activeRun names the active run holding run's application, for error
// messages; "" when none (or on error).
func (s *Store) activeRun(ctx context.Context, run *domain.Run) string {
	var id string
	_ = s.r.QueryRowContext(ctx, `SELECT id FROM runs WHERE org_id = ? AND tenant_id = ? AND app_object_id = ?
		AND state IN ('planned', 'created', 'propagated', 'verified')`,
		string(run.Org), run.TenantID, run.AppObjectID).Scan(&id)
	return id
}

// TransitionRun is one guarded UPDATE plus the event, in one transaction.
func (s *Store) TransitionRun(ctx context.Context, p store.TransitionRunParams) error {
	ev, err := codec.PrepareTransition(&p, s.clock.Now())
	if err != nil {
		return err
	}
	at := encTime(ev.At)

	set := []string{"state = ?", "updated_at = ?"}
	args := []any{string(p.To), at}
	if p.To.Terminal() {
		set = append(set, "ended_at = ?")
		args = append(args, at)
	} else {
		set = append(set, "ended_at = NULL")
	}
	if p.NewKeyID != "" {
		set = append(set, "new_key_id = ?")
		args = append(args, p.NewKeyID)
	}
	if !p.NewEnd.IsZero() {
		set = append(set, "new_end = ?")
		args = append(args, encTime(p.NewEnd))
	}
	if p.SinksStarted {
		set = append(set, "sinks_started = 1")
	}
	if !p.RetireAt.IsZero() {
		set = append(set, "retire_at = ?")
		args = append(args, encTime(p.RetireAt))
	}
	if p.Error != "" {
		set = append(set, "error = ?")
		args = append(args, p.Error)
	}
	if p.Release {
		set = append(set, "lease_holder = ''")
	}
	if p.Failure != "" {
		set = append(set, "failure = ?")
		args = append(args, string(p.Failure))
	}
	args = append(args, string(p.Org), p.RunID)
	for _, f := range p.From {
		args = append(args, string(f))
	}
	q := `UPDATE runs SET ` + strings.Join(set, ", ") + ` WHERE org_id = ? AND id = ? AND state IN (?` +
		strings.Repeat(", ?", len(p.From)-1) + `)`
	if p.Holder != "" {
		q += ` AND lease_holder = ?`
		args = append(args, p.Holder)
	}

	var current string
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var holder string
			switch err := tx.QueryRowContext(ctx, `SELECT state, lease_holder FROM runs WHERE org_id = ? AND id = ?`,
				string(p.Org), p.RunID).Scan(&current, &holder); {
			case errors.Is(err, sql.ErrNoRows):
				return store.ErrNotFound
			case err != nil:
				return err
			}
			if p.Holder != "" && holder != p.Holder {
				return store.ErrLeaseLost
			}
			return store.ErrConflict
		}
		return appendEvent(ctx, tx, p.Org, p.RunID, ev)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("transition run %s in org %s: %w", p.RunID, p.Org, store.ErrNotFound)
	case errors.Is(err, store.ErrLeaseLost):
		return fmt.Errorf("transition run %s to %s: %s does not hold its lease: %w", p.RunID, p.To, p.Holder, store.ErrLeaseLost)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("transition run %s to %s: it is %s, not %s: %w", p.RunID, p.To, current, codec.JoinStates(p.From), store.ErrConflict)
	case isUniqueViolation(err):
		return fmt.Errorf("transition run %s to %s: another run is active for its application: %w", p.RunID, p.To, store.ErrConflict)
	default:
		return fmt.Errorf("transition run %s to %s: %w", p.RunID, p.To, err)
	}
}

// appendEvent adds ev after the run's last event.
func appendEvent(ctx context.Context, tx *sql.Tx, org domain.OrgID, runID string, ev domain.RunEvent) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO run_events (org_id, run_id, seq, at, state, step, target, message)
		VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM run_events WHERE org_id = ?1 AND run_id = ?2), ?3, ?4, ?5, ?6, ?7)`,
		string(org), runID, encTime(ev.At), string(ev.State), ev.Step.String(), ev.Target, ev.Message)
	return err
}

// AppendRunEvent adds a journal line and moves the run's UpdatedAt
// forward to the event's time (never back), so a live run shows progress.
func (s *Store) AppendRunEvent(ctx context.Context, p store.AppendRunEventParams) error {
	org, runID := p.Org, p.RunID
	ev, err := codec.PrepareAppend(&p, s.clock.Now())
	if err != nil {
		return err
	}
	at := encTime(ev.At)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var state, holder string
		switch err := tx.QueryRowContext(ctx, `UPDATE runs SET updated_at = max(updated_at, ?)
			WHERE org_id = ? AND id = ? RETURNING state, lease_holder`, at, string(org), runID).Scan(&state, &holder); {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		if p.Holder != "" && holder != p.Holder {
			return store.ErrLeaseLost
		}
		if ev.State == "" {
			ev.State = domain.RunState(state)
		}
		return appendEvent(ctx, tx, org, runID, ev)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("append run event: run %s in org %s: %w", runID, org, store.ErrNotFound)
	case errors.Is(err, store.ErrLeaseLost):
		return fmt.Errorf("append run event to %s: %s does not hold its lease: %w", runID, p.Holder, store.ErrLeaseLost)
	default:
		return fmt.Errorf("append run event to %s: %w", runID, err)
	}
}

// GetRun reads the run and its events from one snapshot.
func (s *Store) GetRun(ctx context.Context, org domain.OrgID, id string) (*domain.Run, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()
	runs, err := scanRuns(tx.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE org_id = ? AND id = ?`, string(org), id))
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("run %s in org %s: %w", id, org, store.ErrNotFound)
	}
	run := &runs[0]
	run.Org = org
	rows, err := tx.QueryContext(ctx, `SELECT at, state, step, target, message FROM run_events
		WHERE org_id = ? AND run_id = ? ORDER BY seq`, string(org), id)
	if err != nil {
		return nil, fmt.Errorf("get run %s events: %w", id, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var ev domain.RunEvent
		var at sql.NullString
		var step string
		if err := rows.Scan(&at, &ev.State, &step, &ev.Target, &ev.Message); err != nil {
			return nil, fmt.Errorf("get run %s events: %w", id, err)
		}
		if ev.Step, err = domain.ParseStep(step); err != nil {
			return nil, fmt.Errorf("get run %s events: %w", id, err)
		}
		if ev.At, err = decTime(at); err != nil {
			return nil, fmt.Errorf("get run %s events: %w", id, err)
		}
		run.Events = append(run.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get run %s events: %w", id, err)
	}
	return run, nil
}

// ListRuns lists runs newest first (by CreatedAt, then id).
func (s *Store) ListRuns(ctx context.Context, p store.ListRunsParams) ([]domain.Run, error) {
	q := `SELECT ` + runColumns + ` FROM runs WHERE org_id = ?`
	args := []any{string(p.Org)}
	if p.AppObjectID != "" {
		q += ` AND app_object_id = ?`
		args = append(args, p.AppObjectID)
	}
	if len(p.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(", ?", len(p.States)-1) + `)`
		for _, st := range p.States {
			args = append(args, string(st))
		}
	}
	if len(p.Triggers) > 0 {
		q += ` AND "trigger" IN (?` + strings.Repeat(", ?", len(p.Triggers)-1) + `)`
		for _, tr := range p.Triggers {
			args = append(args, string(tr))
		}
	}
	if p.AppObjectIDs != nil {
		ids, err := idsJSON(p.AppObjectIDs)
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", p.Org, err)
		}
		q += ` AND app_object_id IN (SELECT value FROM json_each(?))`
		args = append(args, ids)
	}
	if p.Orphaned {
		q += ` AND NOT ` + fmt.Sprintf(liveLease, "runs.lease_holder", "?")
		args = append(args, encTime(s.clock.Now()))
	}
	if !p.BeforeCreatedAt.IsZero() || p.BeforeID != "" {
		if err := codec.CheckTime("BeforeCreatedAt", p.BeforeCreatedAt); err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", p.Org, err)
		}
		q += ` AND (created_at, id) < (?, ?)`
		args = append(args, encTime(p.BeforeCreatedAt), p.BeforeID)
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	runs, err := scanRuns(s.r.QueryContext(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", p.Org, err)
	}
	for i := range runs {
		runs[i].Org = p.Org
	}
	return runs, nil
}

func scanRuns(rows *sql.Rows, err error) ([]domain.Run, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []domain.Run
	for rows.Next() {
		var r domain.Run
		var kind, trigger, state, failure string
		var newEnd, retireAt, createdAt, updatedAt, endedAt sql.NullString
		if err := rows.Scan(&r.ID, &r.Connection, &r.TenantID, &r.AppObjectID, &r.AppID, &r.AppName, &r.Policy,
			&kind, &trigger, &state, &r.NewKeyID, &newEnd, &r.SinksStarted, &retireAt, &r.Error, &r.Attempts,
			&r.Replaces, &createdAt, &updatedAt, &endedAt, &r.Holder, &failure, &r.Seq); err != nil {
			return nil, err
		}
		r.Kind, r.Trigger, r.State, r.Failure = domain.CredentialKind(kind), domain.Trigger(trigger), domain.RunState(state), domain.FailureClass(failure)
		for _, f := range []struct {
			dst *time.Time
			src sql.NullString
		}{{&r.NewEnd, newEnd}, {&r.RetireAt, retireAt}, {&r.CreatedAt, createdAt}, {&r.UpdatedAt, updatedAt}, {&r.EndedAt, endedAt}} {
			if *f.dst, err = decTime(f.src); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
