package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Retire finishes a retiring run once its overlap has passed: it removes
// every credential domain.ToRetire picks beside the one the run created
// (older rotor-made ones; foreign ones only when policy.RetireUnmanaged),
// journaling each removal before making it, then marks the run done.
//
// It is idempotent: run again after a crash it removes what is left. A run
// already done, failed or abandoned is a no-op. Before RetireAt it returns
// *ErrTooEarly. If the run's own credential is gone from Entra, it removes
// nothing and fails the run: something outside rotor changed the
// application, and a human must look — unless a later run of the
// application reached retiring, whose retirement removes this run's
// secret anyway, or Entra has a newer rotor secret of a run the journal
// does not know (a database restored from a backup taken before it); then
// the run is done.
func (e *Engine) Retire(ctx context.Context, org domain.OrgID, runID string, policy domain.Policy) error {
	defer e.track()()
	run, err := e.store.GetRun(ctx, org, runID)
	if err != nil {
		return fmt.Errorf("rotation: load run %s: %w", runID, err)
	}
	log := e.log.With("run", run.ID, "org", string(org), "tenant", run.TenantID, "app", run.AppObjectID, "app_name", run.AppName)
	switch run.State {
	case domain.RunRetiring:
	case domain.RunDone:
		return nil
	case domain.RunFailed, domain.RunAbandoned:
		log.Info("nothing to retire", "state", string(run.State))
		return nil
	default:
		return fmt.Errorf("rotation: run %s is %s, not retiring", run.ID, run.State)
	}
	if now := e.now(); now.Before(run.RetireAt) {
		return &ErrTooEarly{RetireAt: run.RetireAt}
	}
	dir, err := e.conns.Directory(run.Org, run.Connection)
	if err != nil {
		return fmt.Errorf("rotation: connection %q: %w", run.Connection, err)
	}
	if !e.beginRetire(run.ID) {
		// Another of this process's retire jobs for the run is under way;
		// if it stops short, its own job is retried.
		log.Info("retirement already under way in this process", "state", string(run.State))
		return nil
	}
	defer e.endRetire(run.ID)
	// Retirement belongs to one process at a time, like the rest of the
	// run: claim it (a retiring run belongs to nobody until then).
	if err := e.lease.Acquire(ctx); err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	if _, err := e.store.ClaimRun(ctx, store.ClaimRunParams{Org: org, RunID: run.ID, Holder: e.lease.Holder(), TTL: e.lease.TTL(),
		States: []domain.RunState{domain.RunRetiring}}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // another process finished (or failed) it meanwhile
		}
		return fmt.Errorf("rotation: claim run %s for retirement: %w", run.ID, err)
	}
	// A retirement that stops without ending the run (a transient error)
	// gives the run back, so any process's next retire job may finish it.
	defer func() {
		if cur, gerr := e.store.GetRun(context.WithoutCancel(ctx), org, runID); gerr == nil && cur.State == domain.RunRetiring {
			if rerr := e.store.ReleaseRun(context.WithoutCancel(ctx), org, runID, e.lease.Holder()); rerr != nil {
				log.Warn("releasing the run after an unfinished retirement failed; it is taken over once this process's lease expires", "error", rerr)
			}
		}
	}()
	// Read it again: only what is read after the claim is what this
	// process holds.
	if run, err = e.store.GetRun(ctx, org, runID); err != nil {
		return fmt.Errorf("rotation: load run %s: %w", runID, err)
	}
	run.Events = nil
	// A retirement is never urgent for consumers (they hold the new
	// credential): it waits behind rotations whose consumers' credential
	// ends sooner — but not for ever: an hour after it fell due it counts
	// as due then, so a long throttled wave cannot keep superseded
	// credentials valid far past their overlap.
	deadline := run.NewEnd
	if !run.RetireAt.IsZero() && run.RetireAt.Add(time.Hour).Before(deadline) {
		deadline = run.RetireAt.Add(time.Hour)
	}
	release, err := e.acquire(ctx, run.TenantID, deadline)
	if err != nil {
		return err
	}
	defer release()

	creds, err := dir.Credentials(ctx, run.AppObjectID)
	if err != nil {
		if e.permanent(err) {
			// The application is gone or rotor may no longer read it:
			// retrying for weeks would change nothing.
			msg := fmt.Sprintf("the application's credentials cannot be read (%v), so rotor removed nothing", err)
			log.Error("retirement refused", "state", string(run.State), "error", msg)
			if terr := e.transition(ctx, run, store.TransitionRunParams{
				To: domain.RunFailed, Error: msg, Failure: domain.FailurePermanent, Event: domain.RunEvent{Step: domain.StepFailed.Step(), Message: msg},
			}); terr != nil {
				return terr
			}
			return &RunError{RunID: run.ID, Message: msg, Permanent: true, Err: err}
		}
		return fmt.Errorf("rotation: list credentials of %s: %w", run.AppObjectID, err)
	}
	var keep domain.Credential
	found := false
	for _, c := range creds {
		if c.KeyID == run.NewKeyID {
			keep, found = c, true
		}
	}
	if !found {
		later, err := e.supersededBy(ctx, run)
		if err != nil {
			return err
		}
		if later != nil {
			// A later run got as far as retiring (every sink holds its
			// secret, and Entra accepts it), and its own retirement may
			// have removed this run's secret, as it should: nothing of
			// this run is left to retire, and nobody outside rotor is to
			// blame.
			msg := fmt.Sprintf("the secret this run created (%s) is no longer on the application: run %s, which began after this one and whose secret every sink holds, superseded it (its retirement removes older secrets); nothing is left to retire", run.NewKeyID, later.ID)
			if err := e.transition(ctx, run, store.TransitionRunParams{
				To: domain.RunDone, Event: domain.RunEvent{Step: domain.StepDone.Step(), Message: msg},
			}); err != nil {
				return err
			}
			log.Info("retirement superseded by a later run", "state", string(run.State), "later_run", later.ID)
			return nil
		}
		if newer, ok, err := e.unjournaled(ctx, run, creds); err != nil {
			return err
		} else if ok {
			// The journal lost the run that superseded this one: the
			// database was restored from a backup taken before it. Entra
			// shows what it did; rotating again would be for nothing.
			msg := fmt.Sprintf("the secret this run created (%s) is no longer on the application, and Entra has a newer rotor secret, %s (%q), of a run this database's journal does not know — it was restored from a backup taken before that run, whose retirement removed this secret; nothing is left to retire", run.NewKeyID, newer.KeyID, newer.DisplayName)
			if err := e.transition(ctx, run, store.TransitionRunParams{
				To: domain.RunDone, Event: domain.RunEvent{Step: domain.StepDone.Step(), Message: msg},
			}); err != nil {
				return err
			}
			log.Warn("retirement superseded by a run the journal does not know (restored database?)", "state", string(run.State), "newer_key_id", newer.KeyID, "newer_display_name", newer.DisplayName)
			return nil
		}
		msg := fmt.Sprintf("the secret this run created (%s) is no longer on the application, so rotor removed nothing and rotates the application again; find out who deleted it", run.NewKeyID)
		log.Error("retirement refused", "state", string(run.State), "error", msg)
		// Its consumers hold a secret Entra refuses: the planner rotates
		// the application again at once (FailureRemoved), not after a
		// back-off.
		if err := e.transition(ctx, run, store.TransitionRunParams{
			To: domain.RunFailed, Error: msg, Failure: domain.FailureRemoved, Event: domain.RunEvent{Step: domain.StepFailed.Step(), Message: msg},
		}); err != nil {
			return err
		}
		return &RunError{RunID: run.ID, Message: msg, Permanent: true}
	}

	later, err := e.laterRuns(ctx, run)
	if err != nil {
		return err
	}
	// A certificate goes by removeKey when the policy's bootstrap
	// certificate, or for a Key Vault key source the vault's key of the
	// current certificate, can sign the proof, else by a keyCredentials
	// update that keeps every other key (a key made in memory died with its
	// Rotate call).
	prover, err := e.proverFor(ctx, dir, run.Org, run.Connection, policy, runApp(run))
	if err != nil {
		log.Warn("no certificate can prove possession (bootstrap or Key Vault key); certificates are retired by a keyCredentials update instead", "error", err)
		prover = nil
	}
	removed := 0
	gone := map[string]bool{}
	for _, c := range domain.ToRetire(creds, keep, policy.RetireUnmanaged, later) {
		if !c.RotorCreated() && !policy.RetireUnmanaged {
			// ToRetire already leaves these out; the one rule rotor never
			// breaks is checked again where the removal happens.
			continue
		}
		owner := "made by rotor"
		if !c.RotorCreated() {
			owner = "not made by rotor; the policy retires unmanaged credentials"
		}
		if err := e.event(ctx, run, domain.RetireStep(c.KeyID, domain.PhaseRemoving), fmt.Sprintf("removing %s %s %q (%s), ending %s", c.Kind, c.KeyID, c.DisplayName, owner, c.End.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		if err := e.removeCredential(ctx, dir, run, c.Kind, c.KeyID, prover); err != nil {
			if e.permanent(err) {
				msg := fmt.Sprintf("removing %s was refused: %v", c.KeyID, err)
				if terr := e.transition(ctx, run, store.TransitionRunParams{
					To: domain.RunFailed, Error: msg, Failure: domain.FailurePermanent, Event: domain.RunEvent{Step: domain.StepFailed.Step(), Message: msg},
				}); terr != nil {
					return errors.Join(err, terr)
				}
				return &RunError{RunID: run.ID, Message: msg, Permanent: true, Err: err}
			}
			return fmt.Errorf("rotation: remove %s: %w", c.KeyID, err)
		}
		removed++
		gone[c.KeyID] = true
		log.Info("retired credential", "state", string(run.State), "key_id", c.KeyID, "display_name", c.DisplayName)
		if err := e.event(ctx, run, domain.RetireStep(c.KeyID, domain.PhaseRemoved), "removed "+c.KeyID); err != nil {
			return err
		}
	}
	if err := e.transition(ctx, run, store.TransitionRunParams{
		To:    domain.RunDone,
		Event: domain.RunEvent{Step: domain.StepDone.Step(), Message: fmt.Sprintf("removed %d older credential(s); %s is the application's current %s", removed, keep.KeyID, kindWord(run.Kind))},
	}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// A second retire job for the run (one per process start may
			// exist) finished first.
			if cur, gerr := e.store.GetRun(ctx, org, runID); gerr == nil && cur.State == domain.RunDone {
				return nil
			}
		}
		return err
	}
	log.Info("rotation done", "state", string(run.State), "removed", removed)
	left := slices.DeleteFunc(slices.Clone(creds), func(c domain.Credential) bool { return gone[c.KeyID] })
	e.refreshInventory(ctx, org, run.TenantID, run.AppObjectID, left, log)
	return nil
}

// laterRuns orders a rotor credential against run by the journal: later
// when its run has a higher sequence (or holds the application now, so
// began after run did), unknown when the journal has no such run or
// either run has no sequence (0: written by a rotor from before migration
// 0006 still running beside this one, whose runs the store cannot number;
// start times order those, as before). A retirement must never remove the
// secret of a run that began after its own — that secret is the one
// consumers are switching to.
func (e *Engine) laterRuns(ctx context.Context, run *domain.Run) (func(domain.Credential) (bool, bool), error) {
	runs, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: run.Org, AppObjectID: run.AppObjectID})
	if err != nil {
		return nil, fmt.Errorf("rotation: list the runs of %s: %w", run.AppObjectID, err)
	}
	byID := make(map[string]domain.Run, len(runs))
	for _, r := range runs {
		if r.TenantID == run.TenantID {
			byID[r.ID] = r
		}
	}
	return func(c domain.Credential) (bool, bool) {
		r, ok := byID[c.RunID()]
		switch {
		case !ok:
			return false, false
		case slices.Contains(activeStates, r.State):
			return true, true
		case r.Seq == 0 || run.Seq == 0:
			return false, false
		}
		return r.Seq > run.Seq, true
	}, nil
}

// supersededBy returns a run of run's application that began after it
// (by the journal's order, as laterRuns) and reached retiring or done, or
// nil when there is none.
func (e *Engine) supersededBy(ctx context.Context, run *domain.Run) (*domain.Run, error) {
	runs, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: run.Org, AppObjectID: run.AppObjectID, States: []domain.RunState{domain.RunRetiring, domain.RunDone}})
	if err != nil {
		return nil, fmt.Errorf("rotation: list the runs of %s: %w", run.AppObjectID, err)
	}
	for i := range runs {
		r := &runs[i]
		if r.TenantID != run.TenantID || r.ID == run.ID || r.NewKeyID == "" {
			continue
		}
		later := r.Seq > run.Seq
		if r.Seq == 0 || run.Seq == 0 {
			later = r.CreatedAt.After(run.CreatedAt)
		}
		if later {
			return r, nil
		}
	}
	return nil, nil
}

// unjournaled returns the newest rotor credential in creds that started
// after run and whose run the journal does not know
// (domain.UnjournaledRotorCredential).
func (e *Engine) unjournaled(ctx context.Context, run *domain.Run, creds []domain.Credential) (domain.Credential, bool, error) {
	runs, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: run.Org, AppObjectID: run.AppObjectID})
	if err != nil {
		return domain.Credential{}, false, fmt.Errorf("rotation: list the runs of %s: %w", run.AppObjectID, err)
	}
	known := make(map[string]bool, len(runs))
	for _, r := range runs {
		known[r.ID] = true
	}
	c, ok := domain.UnjournaledRotorCredential(creds, run.Kind, run.CreatedAt, func(id string) bool { return known[id] })
	return c, ok, nil
}

// refreshInventory writes an application's credentials, as a run just left
// them, into the inventory, so `rotor apps list`, `explain` and the UI show
// them before the next sync. It is best effort: the next sync writes the
// same from Entra anyway.
func (e *Engine) refreshInventory(ctx context.Context, org domain.OrgID, tenantID, objectID string, creds []domain.Credential, log *slog.Logger) {
	if err := e.store.SetCredentials(ctx, store.SetCredentialsParams{Org: org, TenantID: tenantID, ObjectID: objectID, Credentials: creds}); err != nil {
		log.Warn("refreshing the inventory after the run failed; the next sync will", "error", err)
	}
}
