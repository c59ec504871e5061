package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

const runColumns = `id, connection, tenant_id, app_object_id, app_id, app_name, policy, kind, "trigger",
	state, new_key_id, new_end, sinks_started, retire_at, error, attempts, replaces, created_at, updated_at, ended_at,
	lease_holder, failure, app_seq`

// CreateRun inserts the run in state planned, with its events if any.
// The partial unique index runs_one_active_per_app turns a second active
// run for the same application into ErrConflict; the sequence number is
// read and written under a lock per application (and a unique index
// backs it).
func (s *Store) CreateRun(ctx context.Context, run *domain.Run) error {
	if err := codec.PrepareRun(run, s.clock.Now()); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	org := string(run.Org)
	err := s.inOrg(ctx, run.Org, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, lockAppSeq, org+"\x1f"+run.TenantID+"\x1f"+run.AppObjectID); err != nil {
			return err
		}
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(app_seq), 0) + 1 FROM runs WHERE org_id = $1 AND tenant_id = $2 AND app_object_id = $3`,
			org, run.TenantID, run.AppObjectID).Scan(&seq); err != nil {
			return err
		}
		run.Seq = seq
		if _, err := tx.Exec(ctx, `INSERT INTO runs (org_id, `+runColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)`,
			org, run.ID, run.Connection, run.TenantID, run.AppObjectID, run.AppID, run.AppName,
			run.Policy, string(run.Kind), string(run.Trigger), string(run.State), run.NewKeyID, tz(run.NewEnd),
			run.SinksStarted, tz(run.RetireAt), run.Error, run.Attempts, run.Replaces,
			tz(run.CreatedAt), tz(run.UpdatedAt), tz(run.EndedAt), run.Holder, string(run.Failure), run.Seq); err != nil {
			return err
		}
		for i, ev := range run.Events {
			if _, err := tx.Exec(ctx, `INSERT INTO run_events (org_id, run_id, seq, at, state, step, target, message)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, org, run.ID, i+1, tz(ev.At), string(ev.State), ev.Step.String(), ev.Target, ev.Message); err != nil {
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
	case isOrgMissing(err):
		return fmt.Errorf("create run: organization %q: %w (call EnsureOrg first)", run.Org, store.ErrNotFound)
	default:
		return fmt.Errorf("create run %s: %w", run.ID, err)
	}
}

// activeRun names the active run holding run's application, for error
// messages; "" when none (or on error).
func (s *Store) activeRun(ctx context.Context, run *domain.Run) string {
	var id string
	_ = s.readOrg(ctx, run.Org, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT id FROM runs WHERE org_id = $1 AND tenant_id = $2 AND app_object_id = $3
			AND state IN ('planned', 'created', 'propagated', 'verified')`,
			string(run.Org), run.TenantID, run.AppObjectID).Scan(&id)
	})
	return id
}

// TransitionRun is one guarded UPDATE plus the event, in one transaction.
func (s *Store) TransitionRun(ctx context.Context, p store.TransitionRunParams) error {
	ev, err := codec.PrepareTransition(&p, s.clock.Now())
	if err != nil {
		return err
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	at := tz(ev.At)
	set := []string{"state = " + arg(string(p.To)), "updated_at = " + arg(at)}
	if p.To.Terminal() {
		set = append(set, "ended_at = "+arg(at))
	} else {
		set = append(set, "ended_at = NULL")
	}
	if p.NewKeyID != "" {
		set = append(set, "new_key_id = "+arg(p.NewKeyID))
	}
	if !p.NewEnd.IsZero() {
		set = append(set, "new_end = "+arg(tz(p.NewEnd)))
	}
	if p.SinksStarted {
		set = append(set, "sinks_started = true")
	}
	if !p.RetireAt.IsZero() {
		set = append(set, "retire_at = "+arg(tz(p.RetireAt)))
	}
	if p.Error != "" {
		set = append(set, "error = "+arg(p.Error))
	}
	if p.Release {
		set = append(set, "lease_holder = ''")
	}
	if p.Failure != "" {
		set = append(set, "failure = "+arg(string(p.Failure)))
	}
	from := make([]string, len(p.From))
	for i, f := range p.From {
		from[i] = string(f)
	}
	q := `UPDATE runs SET ` + strings.Join(set, ", ") + ` WHERE org_id = ` + arg(string(p.Org)) +
		` AND id = ` + arg(p.RunID) + ` AND state = ANY(` + arg(from) + `::text[])`
	if p.Holder != "" {
		q += ` AND lease_holder = ` + arg(p.Holder)
	}

	var current string
	err = s.inOrg(ctx, p.Org, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var holder string
			switch err := tx.QueryRow(ctx, `SELECT state, lease_holder FROM runs WHERE org_id = $1 AND id = $2`,
				string(p.Org), p.RunID).Scan(&current, &holder); {
			case errors.Is(err, pgx.ErrNoRows):
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

// appendEvent adds ev after the run's last event. The caller has updated
// the run's row in the same transaction, which serialises appends.
func appendEvent(ctx context.Context, tx pgx.Tx, org domain.OrgID, runID string, ev domain.RunEvent) error {
	_, err := tx.Exec(ctx, `INSERT INTO run_events (org_id, run_id, seq, at, state, step, target, message)
		VALUES ($1, $2, (SELECT coalesce(max(seq), 0) + 1 FROM run_events WHERE org_id = $1 AND run_id = $2), $3, $4, $5, $6, $7)`,
		string(org), runID, tz(ev.At), string(ev.State), ev.Step.String(), ev.Target, ev.Message)
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
	err = s.inOrg(ctx, org, func(tx pgx.Tx) error {
		ev := ev
		var state, holder string
		switch err := tx.QueryRow(ctx, `UPDATE runs SET updated_at = greatest(updated_at, $1)
			WHERE org_id = $2 AND id = $3 RETURNING state, lease_holder`, tz(ev.At), string(org), runID).Scan(&state, &holder); {
		case errors.Is(err, pgx.ErrNoRows):
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
	var run *domain.Run
	err := s.readOrg(ctx, org, func(tx pgx.Tx) error {
		run = nil
		rows, err := tx.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE org_id = $1 AND id = $2`, string(org), id)
		if err != nil {
			return err
		}
		runs, err := scanRuns(rows)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return store.ErrNotFound
		}
		run = &runs[0]
		run.Org = org
		rows, err = tx.Query(ctx, `SELECT at, state, step, target, message FROM run_events
			WHERE org_id = $1 AND run_id = $2 ORDER BY seq`, string(org), id)
		if err != nil {
			return err
		}
		var at pgtype.Timestamptz
		var state, step, target, message string
		_, err = pgx.ForEachRow(rows, []any{&at, &state, &step, &target, &message}, func() error {
			st, err := domain.ParseStep(step)
			if err != nil {
				return err
			}
			run.Events = append(run.Events, domain.RunEvent{At: fromTZ(at), State: domain.RunState(state), Step: st, Target: target, Message: message})
			return nil
		})
		return err
	})
	switch {
	case err == nil:
		return run, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("run %s in org %s: %w", id, org, store.ErrNotFound)
	default:
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
}

// liveLease is the SQL condition "the run's holder has a lease that has
// not expired by the database's clock".
const liveLease = `EXISTS (SELECT 1 FROM leases l WHERE l.holder = runs.lease_holder AND l.expires_at > now())`

// ListRuns lists runs newest first (by CreatedAt, then id).
func (s *Store) ListRuns(ctx context.Context, p store.ListRunsParams) ([]domain.Run, error) {
	q := `SELECT ` + runColumns + ` FROM runs WHERE org_id = $1`
	args := []any{string(p.Org)}
	if p.AppObjectID != "" {
		args = append(args, p.AppObjectID)
		q += ` AND app_object_id = $` + strconv.Itoa(len(args))
	}
	if len(p.States) > 0 {
		states := make([]string, len(p.States))
		for i, st := range p.States {
			states[i] = string(st)
		}
		args = append(args, states)
		q += ` AND state = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	if len(p.Triggers) > 0 {
		triggers := make([]string, len(p.Triggers))
		for i, tr := range p.Triggers {
			triggers[i] = string(tr)
		}
		args = append(args, triggers)
		q += ` AND "trigger" = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	if p.AppObjectIDs != nil {
		args = append(args, nonNil(p.AppObjectIDs))
		q += ` AND app_object_id = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	if p.Orphaned {
		q += ` AND NOT ` + liveLease
	}
	if !p.BeforeCreatedAt.IsZero() || p.BeforeID != "" {
		args = append(args, tz(p.BeforeCreatedAt), p.BeforeID)
		q += ` AND (created_at, id) < ($` + strconv.Itoa(len(args)-1) + `, $` + strconv.Itoa(len(args)) + `)`
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if p.Limit > 0 {
		args = append(args, p.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	var runs []domain.Run
	err := s.readOrg(ctx, p.Org, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		runs, err = scanRuns(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", p.Org, err)
	}
	for i := range runs {
		runs[i].Org = p.Org
	}
	return runs, nil
}

func scanRuns(rows pgx.Rows) ([]domain.Run, error) {
	var out []domain.Run
	var r domain.Run
	var kind, trigger, state, failure string
	var newEnd, retireAt, createdAt, updatedAt, endedAt pgtype.Timestamptz
	_, err := pgx.ForEachRow(rows, []any{&r.ID, &r.Connection, &r.TenantID, &r.AppObjectID, &r.AppID, &r.AppName, &r.Policy,
		&kind, &trigger, &state, &r.NewKeyID, &newEnd, &r.SinksStarted, &retireAt, &r.Error, &r.Attempts,
		&r.Replaces, &createdAt, &updatedAt, &endedAt, &r.Holder, &failure, &r.Seq}, func() error {
		run := r
		run.Kind, run.Trigger, run.State, run.Failure = domain.CredentialKind(kind), domain.Trigger(trigger), domain.RunState(state), domain.FailureClass(failure)
		run.NewEnd, run.RetireAt = fromTZ(newEnd), fromTZ(retireAt)
		run.CreatedAt, run.UpdatedAt, run.EndedAt = fromTZ(createdAt), fromTZ(updatedAt), fromTZ(endedAt)
		out = append(out, run)
		return nil
	})
	return out, err
}
