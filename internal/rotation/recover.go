package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/rotor-dev/rotor/internal/sink"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Recover takes over the runs of processes that died mid-rotation. Any
// number of rotor processes may share the store, so it touches only runs
// whose holder's lease has expired (docs/adr/0009): call it at start-up
// and then periodically; a run of a live process is never touched.
//
// Each such run is claimed (store.ClaimRun, a compare-and-set on its
// lease), journaled as taken over, and marked abandoned. If no sink write
// had started, the secret it may have created (found by its key id or, when
// the crash came between addPassword and the journal write, by its display
// name rotor:<run id>) is removed first: nobody can hold it. If a sink
// write had started, a consumer may hold it, so it stays until the fresh
// run's retirement removes it.
//
// A verified run (every sink written, Entra accepted the secret, but
// retirement not yet journaled) is abandoned too rather than finished:
// Recover does not know the run's policy (its overlap), and a fresh run
// costs one extra secret for one overlap, which the design accepts.
//
// Recover returns the runs it abandoned; the caller starts a fresh run
// (TriggerRecovery, Replacing(run.ID)) for each at once. Retiring runs are
// left as they are, but their retirement is scheduled again (the scheduler
// dedupes by run id), covering a crash between the retiring journal write
// and the scheduling.
func (e *Engine) Recover(ctx context.Context, org domain.OrgID) ([]domain.Run, error) {
	defer e.track()()
	if err := e.lease.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	runs, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: org, States: activeStates, Orphaned: true})
	if err != nil {
		return nil, fmt.Errorf("rotation: list orphaned runs: %w", err)
	}
	var out []domain.Run
	var errs []error
	for i := range runs {
		run := &runs[i]
		log := e.log.With("run", run.ID, "org", string(org), "tenant", run.TenantID, "app", run.AppObjectID, "app_name", run.AppName)
		prev, err := e.store.ClaimRun(ctx, store.ClaimRunParams{Org: org, RunID: run.ID, Holder: e.lease.Holder(), TTL: e.lease.TTL(), States: activeStates})
		if errors.Is(err, store.ErrLeaseHeld) || errors.Is(err, store.ErrConflict) {
			// Another process got there first, its holder came back and
			// moved it on, or it ended since the list was read.
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Only what is read after the claim is the run this process
		// holds: the list above may be seconds old.
		fresh, err := e.store.GetRun(ctx, org, run.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh.Events = nil
		run = fresh
		from := run.State
		who := "a process whose lease expired"
		if prev != "" {
			who = "process " + prev + ", whose lease expired,"
		}
		if err := e.event(ctx, run, domain.StepTakenOver.Step(), fmt.Sprintf("taken over from %s", who)); err != nil {
			errs = append(errs, err)
			continue
		}
		msg := fmt.Sprintf("the rotor process running it stopped while this run was %s; a fresh run replaces it", from)
		held, why := run.SinksStarted, ""
		if held {
			held, why = e.mayBeHeld(ctx, org, run, log)
		}
		if held {
			msg += fmt.Sprintf("; its secret %s may have reached a consumer (%s), so it stays until the fresh run retires it after the overlap", run.NewKeyID, why)
		} else {
			dir, err := e.conns.Directory(run.Org, run.Connection)
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
			Event: domain.RunEvent{Step: domain.StepAbandoned.Step(), Message: msg},
		}); err != nil {
			if errors.Is(err, store.ErrConflict) || leaseLost(err) {
				continue // moved on by someone else meanwhile
			}
			errs = append(errs, err)
			continue
		}
		log.Warn("run abandoned", "state", string(from), "sinks_started", run.SinksStarted, "previous_holder", prev)
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
// ever attempted, or when every target the run wrote to (journaled with
// each sink step) can answer (sink.Holder) and none holds it: a target is
// written only by runs of this application, one at a time, so one that
// does not hold it now never did. Anything unknown counts as held: keeping
// a credential through the overlap is always safe.
func (e *Engine) mayBeHeld(ctx context.Context, org domain.OrgID, run *domain.Run, log *slog.Logger) (bool, string) {
	full, err := e.store.GetRun(ctx, org, run.ID)
	if err != nil {
		return true, "its journal could not be read"
	}
	wrote := false
	written := map[string]int{} // target the run wrote to → sink index
	for _, ev := range full.Events {
		if ev.Step.IsSinkWrite() {
			wrote = true
			if ev.Step.Phase == domain.PhaseWriting {
				if ev.Target == "" {
					return true, fmt.Sprintf("sink #%d's target was not journaled", ev.Step.Index+1)
				}
				written[ev.Target] = ev.Step.Index
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
	pol := e.policies.PolicyFor(*app)
	if pol == nil {
		return true, "its sinks are no longer configured"
	}
	for _, target := range sortedKeysOf(written) {
		i := written[target]
		t, err := sink.ParseTargetID(target)
		if err != nil || i >= len(pol.Sinks) || pol.Sinks[i].Type != t.Kind() {
			return true, fmt.Sprintf("sink #%d (%s) is no longer configured as it was", i+1, target)
		}
		sk, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: pol.Sinks[i], Connection: run.Connection, App: *app, Pinned: t})
		if err != nil {
			return true, fmt.Sprintf("sink #%d could not be built for %s", i+1, target)
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

func sortedKeysOf(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
