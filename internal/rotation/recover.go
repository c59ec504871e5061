package rotation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
// lease) and journaled as taken over. Then what it left behind is looked
// at in Entra and in its sinks, not only in its journal (assess), because
// the journal may be behind: a crash can fall between a step and its
// journal line, and a database restored from a backup holds the run as it
// stood when the backup was taken, though it may have finished since.
//
//   - If every sink holds the secret Entra has for it, the run delivered
//     everything (and its secret was verified before the first delivery,
//     ADR 8): it goes on to retiring, its retirement scheduled after a
//     whole overlap from now. No fresh run: it would only rotate again.
//   - Otherwise it is marked abandoned. If a sink holds its secret (or
//     cannot say), a consumer may hold it, so it stays until the fresh
//     run's retirement removes it; if none does, the secret it may have
//     created (found by its key id or, when the stop came between
//     addPassword and the journal write, by its display name
//     rotor:<run id>) is removed first: nobody can hold it.
//
// Recover returns the runs it abandoned; the caller starts a fresh run
// (TriggerRecovery, Replacing(run.ID)) for each at once. Retiring runs are
// left as they are, but their retirement is scheduled again (the scheduler
// dedupes by run id), covering a crash between the retiring journal write
// and the scheduling, and scheduling the runs resumed here.
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
		a := e.assess(ctx, org, run, log)
		if a.complete {
			if err := e.resume(ctx, run, a, prev, log); err != nil {
				if errors.Is(err, store.ErrConflict) || leaseLost(err) {
					continue
				}
				errs = append(errs, err)
			}
			continue
		}
		msg := fmt.Sprintf("the rotor process running it stopped while this run was %s; a fresh run replaces it", from)
		if a.held {
			msg += fmt.Sprintf("; its %s %s may have reached a consumer (%s), so it stays until the fresh run retires it after the overlap", kindWord(run.Kind), cmp.Or(a.key.KeyID, run.NewKeyID), a.why)
		} else {
			dir, err := e.conns.Directory(run.Org, run.Connection)
			note := ""
			if err != nil {
				note = fmt.Sprintf("a %s named %q may exist and connection %q is unavailable (%v); the fresh run's retirement removes it", kindWord(run.Kind), domain.DisplayNameFor(run.ID), run.Connection, err)
			} else {
				// No prover: the crashed run's key died with its process,
				// so a certificate goes by a keyCredentials update.
				note = e.removeUnheld(ctx, dir, run, "", nil, log)
			}
			if note != "" {
				msg += "; " + note
			} else {
				msg += "; no sink holds its " + kindWord(run.Kind) + ", so any it created was removed"
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

// assessment is what Recover found of an orphaned run in Entra and in
// its sinks.
type assessment struct {
	// key is the run's secret as Entra lists it (zero when not found or
	// Entra could not be asked).
	key domain.Credential
	// complete: Entra has key, every sink of the run's application holds
	// it, and every after-all step ran. The run delivered everything; only
	// its journal may be behind.
	complete bool
	// held: a consumer may hold the run's secret (anything unknown counts).
	held bool
	why  string
	// policy and sinks are what complete was decided on.
	policy *domain.Policy
	sinks  []runSink
}

// assess decides what an orphaned run left behind. The journal is not
// trusted to be complete: a database restored from a backup holds a run
// as it stood when the backup was taken, though it may have gone on to
// create its secret, deliver it and retire older ones since; and a crash
// can fall between a step and its journal line. So Recover asks Entra for
// the run's secret (by key id, or by its display name rotor:<run id>) and
// every sink that can answer (sink.Holder) whether it holds it, whatever
// the journal says about sink writes:
//
//   - complete when every sink holds the secret Entra has and every
//     after-all step is journaled: it was verified before the first
//     delivery (ADR 8), so the run can go on to retirement instead of
//     being replaced (a fresh run would rotate for nothing);
//   - held when any sink holds it or cannot say (a target the journal
//     names but the configuration no longer does, a sink that does not
//     answer): it stays until a fresh run retires it;
//   - neither when no sink holds it, or Entra no longer has it: nobody can
//     use it, and Recover removes whatever is left.
//
// When Entra or the application's policy cannot be read, it decides as
// before the journal could be behind: a journaled sink write makes the
// secret held.
func (e *Engine) assess(ctx context.Context, org domain.OrgID, run *domain.Run, log *slog.Logger) assessment {
	full, err := e.store.GetRun(ctx, org, run.ID)
	if err != nil {
		return assessment{held: true, why: "its journal could not be read"}
	}
	wrote := false
	written := map[string]int{} // target the run wrote to → sink index
	finished := map[int]bool{}  // sinks whose after-all step ran
	for _, ev := range full.Events {
		switch {
		case ev.Step.IsSinkWrite():
			wrote = true
			if ev.Step.Phase == domain.PhaseWriting {
				if ev.Target == "" {
					return assessment{held: true, why: fmt.Sprintf("sink #%d's target was not journaled", ev.Step.Index+1)}
				}
				written[ev.Target] = ev.Step.Index
			}
		case ev.Step.Kind == domain.StepFinish && ev.Step.Phase == domain.PhaseWritten:
			finished[ev.Step.Index] = true
		}
	}
	journalOnly := func(why string) assessment {
		if wrote {
			return assessment{held: true, why: why}
		}
		return assessment{}
	}

	// Entra: the run's secret, if it made one.
	var candidates []domain.Credential
	entra := false
	if dir, err := e.conns.Directory(run.Org, run.Connection); err == nil {
		if creds, err := dir.Credentials(ctx, run.AppObjectID); err == nil {
			entra = true
			for _, c := range creds {
				if (run.NewKeyID != "" && c.KeyID == run.NewKeyID) || (run.NewKeyID == "" && c.DisplayName == domain.DisplayNameFor(run.ID)) {
					candidates = append(candidates, c)
				}
			}
		} else {
			log.Warn("reading the application's credentials for recovery failed", "error", err)
		}
	}
	switch {
	case entra && len(candidates) == 0:
		return assessment{why: "Entra has no secret of it"}
	case !entra && run.NewKeyID == "":
		return journalOnly("a sink write had started and its secret could not be looked up")
	case !entra:
		candidates = []domain.Credential{{KeyID: run.NewKeyID, Kind: run.Kind, DisplayName: domain.DisplayNameFor(run.ID), End: run.NewEnd}}
	}

	// The sinks: where the policy delivers today, and where the journal
	// says the run wrote.
	if e.policies == nil {
		return journalOnly("a sink write had started")
	}
	app, err := e.store.GetApplication(ctx, org, run.AppObjectID)
	if err != nil {
		return journalOnly("its application could not be read")
	}
	pol := e.policies.PolicyFor(*app)
	if pol == nil {
		return journalOnly("its sinks are no longer configured")
	}
	unknown := func(why string) assessment {
		return assessment{key: candidates[0], held: true, why: why}
	}
	views, err := e.Targets(ctx, org, *app, *pol)
	if err != nil {
		return unknown(fmt.Sprintf("its sinks could not be built (%v)", err))
	}
	var sinks []runSink
	at := map[string]bool{}
	ds := e.deliveries(ctx, org, run.TenantID, run.AppObjectID)
	build := func(i int, target sink.TargetID, old bool) error {
		if at[target.String()] {
			return nil
		}
		sk, err := e.sinks.Build(ctx, sink.BuildRequest{Spec: pol.Sinks[i], Kind: run.Kind, Connection: run.Connection, App: *app, Pinned: target, Last: lastOf(ds, target)})
		if err != nil {
			return fmt.Errorf("sink #%d could not be built for %s", i+1, target)
		}
		at[target.String()] = true
		sinks = append(sinks, runSink{index: i, sink: sk, old: old})
		return nil
	}
	for _, v := range views {
		if err := build(v.Index, v.Target, false); err != nil {
			return unknown(err.Error())
		}
		if !v.Previous.IsZero() {
			if err := build(v.Index, v.Previous, true); err != nil {
				return unknown(err.Error())
			}
		}
	}
	for _, target := range sortedKeysOf(written) {
		i := written[target]
		t, err := sink.ParseTargetID(target)
		if err != nil || i >= len(pol.Sinks) || pol.Sinks[i].Type != t.Kind() {
			return unknown(fmt.Sprintf("sink #%d (%s) is no longer configured as it was", i+1, target))
		}
		if err := build(i, t, true); err != nil {
			return unknown(err.Error())
		}
	}

	held, why := false, ""
	for _, key := range candidates {
		all := len(sinks) > 0
		for _, rs := range sinks {
			h, ok := rs.sink.(sink.Holder)
			if !ok {
				all, held, why = false, true, fmt.Sprintf("sink #%d (%s) cannot say what it holds", rs.index+1, rs.sink.Describe())
				continue
			}
			holds, err := h.Holds(ctx, key.KeyID)
			if err != nil {
				log.Warn("asking a sink what it holds failed", "sink", rs.sink.Describe(), "error", err)
				all, held, why = false, true, fmt.Sprintf("sink #%d (%s) did not answer", rs.index+1, rs.sink.Describe())
				continue
			}
			if !holds {
				all = false
				continue
			}
			if !held {
				held, why = true, rs.sink.Describe()+" holds it"
			}
			if _, ok := rs.sink.(sink.Finisher); ok && !finished[rs.index] {
				all = false
			}
		}
		if all && entra {
			return assessment{key: key, complete: true, policy: pol, sinks: sinks}
		}
		if held {
			return assessment{key: key, held: true, why: why}
		}
	}
	return assessment{key: candidates[0]}
}

// resume takes a complete orphaned run (assess) on to retirement: every
// sink holds its secret and Entra accepted it before the first delivery,
// so what a fresh run would add is one more secret. Older credentials go
// after a whole overlap from now, since when the consumers switched is
// not known.
func (e *Engine) resume(ctx context.Context, run *domain.Run, a assessment, prev string, log *slog.Logger) error {
	from := run.State
	retireAt := e.now().Add(max(a.policy.Overlap, 0))
	noun := "secret"
	if run.Kind == domain.KindCertificate {
		noun = "certificate"
	}
	msg := fmt.Sprintf("the rotor process running it stopped while this run was %s, but it got further than its journal says "+
		"(a database restored from a backup taken mid-run, or a stop between a step and its journal line): its %s %s is in Entra and every sink holds it, "+
		"so the run goes on to retirement instead of being replaced; older credentials are removed after the overlap (%s), at %s",
		from, noun, a.key.KeyID, domain.FormatDuration(a.policy.Overlap), retireAt.UTC().Format(time.RFC3339))
	if err := e.transition(ctx, run, store.TransitionRunParams{
		From: []domain.RunState{from}, To: domain.RunRetiring, NewKeyID: a.key.KeyID, NewEnd: a.key.End, SinksStarted: true, RetireAt: retireAt,
		Event: domain.RunEvent{Step: domain.StepRetiring.Step(), Message: msg},
	}); err != nil {
		return err
	}
	log.Warn("run taken over and resumed: every sink holds its "+noun, "state", string(from), "key_id", a.key.KeyID, "retire_at", retireAt, "previous_holder", prev)
	e.settleMoves(ctx, run, *a.policy, a.sinks)
	return nil
}

func sortedKeysOf(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
