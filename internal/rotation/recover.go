package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/rotor-dev/rotor/internal/sink"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Recover cleans up after a process that died mid-rotation. Call it once at
// start-up, before any worker runs: every run still in an active state
// (planned, created, propagated or verified) then belongs to a dead
// process.
//
// Each such run is marked abandoned. If no sink write had started, the
// secret it may have created (found by its key id or, when the crash came
// between addPassword and the journal write, by its display name
// rotor:<run id>) is removed first: nobody can hold it. If a sink write had
// started, a consumer may hold it, so it stays until the fresh run's
// retirement removes it.
//
// A verified run (every sink written, Entra accepted the secret, but
// retirement not yet journaled) is abandoned too rather than finished:
// Recover does not know the run's policy (its overlap), and a fresh run
// costs one extra secret for one overlap, which the design accepts.
//
// Recover returns the abandoned runs; the caller starts a fresh run
// (TriggerRecovery, Replacing(run.ID)) for each at once. Retiring runs are
// left as they are, but their retirement is scheduled again (the scheduler
// dedupes by run id), covering a crash between the retiring journal write
// and the scheduling.
func (e *Engine) Recover(ctx context.Context, org domain.OrgID) ([]domain.Run, error) {
	runs, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: org, States: activeStates})
	if err != nil {
		return nil, fmt.Errorf("rotation: list active runs: %w", err)
	}
	var out []domain.Run
	var errs []error
	for i := range runs {
		run := &runs[i]
		log := e.log.With("run", run.ID, "org", string(org), "tenant", run.TenantID, "app", run.AppObjectID, "app_name", run.AppName)
		from := run.State
		msg := fmt.Sprintf("rotor stopped while this run was %s; a fresh run replaces it", from)
		held, why := run.SinksStarted, ""
		if held {
			held, why = e.mayBeHeld(ctx, org, run, log)
		}
		if held {
			msg += fmt.Sprintf("; its secret %s may have reached a consumer (%s), so it stays until the fresh run retires it after the overlap", run.NewKeyID, why)
		} else {
			dir, err := e.conns.Directory(run.Connection)
			note := ""
			if err != nil {
				note = fmt.Sprintf("a secret named %q may exist and connection %q is unavailable (%v); the fresh run's retirement removes it", domain.DisplayNameFor(run.ID), run.Connection, err)
			} else {
				note = e.removeUnheld(ctx, dir, run, "", log)
			}
			if note != "" {
				msg += "; " + note
			} else {
				msg += "; no sink holds its secret, so any it created was removed"
			}
		}
		if err := e.transition(ctx, run, store.TransitionRunParams{
			From: []domain.RunState{from}, To: domain.RunAbandoned, Error: msg,
			Event: domain.RunEvent{Step: StepAbandoned, Message: msg},
		}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue // moved on by someone else meanwhile
			}
			errs = append(errs, err)
			continue
		}
		log.Warn("run abandoned", "state", string(from), "sinks_started", run.SinksStarted)
		out = append(out, *run)
	}

	if fn := e.scheduler(); fn != nil {
		retiring, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: org, States: []domain.RunState{domain.RunRetiring}})
		if err != nil {
			errs = append(errs, fmt.Errorf("rotation: list retiring runs: %w", err))
		}
		for _, run := range retiring {
			if err := fn(ctx, org, run.ID, run.RetireAt); err != nil {
				errs = append(errs, fmt.Errorf("rotation: reschedule retirement of %s: %w", run.ID, err))
			}
		}
	}
	return out, errors.Join(errs...)
}

// mayBeHeld decides whether a crashed run's credential may be in a
// consumer's hands. It may not when the journal shows no sink write was
// ever attempted, or when every sink can answer (sink.Holder) and none
// holds it: sinks are written only by runs of this application, one at a
// time, so a sink that does not hold it now never did. Anything unknown
// counts as held: keeping a credential through the overlap is always safe.
func (e *Engine) mayBeHeld(ctx context.Context, org domain.OrgID, run *domain.Run, log *slog.Logger) (bool, string) {
	full, err := e.store.GetRun(ctx, org, run.ID)
	if err != nil {
		return true, "its journal could not be read"
	}
	wrote := false
	described := map[int]string{} // sink index → what it was when written
	for _, ev := range full.Events {
		if strings.HasPrefix(ev.Step, "sink:") {
			wrote = true
			var i int
			if _, err := fmt.Sscanf(ev.Step, "sink:%d:writing", &i); err == nil {
				described[i] = ev.Message
			}
		}
	}
	if !wrote {
		return false, ""
	}
	if run.NewKeyID == "" || e.policies == nil {
		return true, "a sink write had started"
	}
	app, err := e.store.GetApplication(ctx, org, run.AppObjectID)
	if err != nil {
		return true, "its application could not be read"
	}
	pol := e.policies.PolicyFor(run.Connection, *app)
	if pol == nil || len(pol.Sinks) == 0 {
		return true, "its sinks are no longer configured"
	}
	for i, spec := range pol.Sinks {
		sk, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: spec, Connection: run.Connection, App: *app})
		if err != nil {
			return true, fmt.Sprintf("sink #%d could not be built", i+1)
		}
		if d, ok := described[i]; ok && !sameTarget(d, sk.Target()) {
			// The sink was configured differently (or the app renamed)
			// when the run wrote to it: asking today's target would be
			// asking the wrong place.
			return true, fmt.Sprintf("sink #%d was %s when the run wrote to it", i+1, d)
		}
		h, ok := sk.(sink.Holder)
		if !ok {
			return true, fmt.Sprintf("sink #%d (%s) cannot say what it holds", i+1, sk.Describe())
		}
		holds, err := h.Holds(ctx, run.NewKeyID)
		if err != nil {
			log.Warn("asking a sink what it holds failed", "sink", sk.Describe(), "error", err)
			return true, fmt.Sprintf("sink #%d (%s) did not answer", i+1, sk.Describe())
		}
		if holds {
			return true, fmt.Sprintf("%s holds it", sk.Describe())
		}
	}
	return false, ""
}

// sameTarget reports whether a sink:<i>:writing message (the target id the
// run wrote to) names target.
func sameTarget(written string, target sink.TargetID) bool {
	t, err := sink.ParseTargetID(written)
	return err == nil && !t.IsZero() && t == target
}
