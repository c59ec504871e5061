package rotation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Request is a rotation someone asked for — the planner, a person through
// the API, or recovery replacing an abandoned run — carried by the job
// system until a worker picks it up.
type Request struct {
	Org         domain.OrgID
	TenantID    string
	AppObjectID string
	Trigger     domain.Trigger
	// Replaces is the abandoned run a recovery request replaces.
	Replaces string
	// RequestedAt is when the request was made: a manual or recovery
	// request honoured long after (a job rescued after a crash) only
	// rotates if the application is due by then.
	RequestedAt time.Time
}

// Outcome says what handling a Request came to.
type Outcome string

// Outcomes.
const (
	OutcomeRotated    Outcome = "rotated"
	OutcomeGone       Outcome = "gone"        // the application left the inventory
	OutcomeNoPolicy   Outcome = "no-policy"   // no enabled policy selects it any more
	OutcomeSuperseded Outcome = "superseded"  // a newer run succeeded after the abandoned one
	OutcomeNotDue     Outcome = "not-due"     // asked again, it is not due
	OutcomeBusy       Outcome = "busy"        // another run holds the application
	OutcomeHandedOver Outcome = "handed-over" // another process took the run over
	OutcomeFailed     Outcome = "failed"      // the run failed; its journal says why
)

// requestFreshFor is how long a manual or recovery request is honoured as
// such.
const requestFreshFor = 15 * time.Minute

// Handle carries out a Request: it finds the application and its policy
// afresh, decides whether to rotate (a recovery whose abandoned run a newer
// run superseded does nothing; one whose secret may be in a consumer's
// hands rotates at once; anything else rotates only if Decide still says
// due, since the request may be minutes old, and still says so on the
// credentials Entra lists now), and rotates. A failed run is
// an outcome, not an error: its journal says why, and the planner's
// failure back-off decides when to try again. The error is for what
// should be retried (the store, a cancelled context).
func (e *Engine) Handle(ctx context.Context, req Request, policies PolicySource) (Outcome, *domain.Run, error) {
	app, err := e.store.GetApplication(ctx, req.Org, req.AppObjectID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && app.TenantID != req.TenantID) {
		return OutcomeGone, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	pol := policies.PolicyFor(*app)
	if pol == nil || !pol.Enabled {
		return OutcomeNoPolicy, nil, nil
	}
	trigger := req.Trigger
	var opts []RotateOption
	fresh := e.now().Sub(req.RequestedAt) < requestFreshFor
	force := false
	if trigger == domain.TriggerRecovery && fresh {
		superseded, held, err := e.recoveryState(ctx, req)
		if err != nil {
			return "", nil, err
		}
		if superseded {
			// The newer run's retirement removes the abandoned run's
			// secret too.
			return OutcomeSuperseded, nil, nil
		}
		// A consumer may hold the abandoned run's secret while another
		// holds the older one: rotate now, due or not. If no sink ever
		// received it (recovery removed it), rotate only if due.
		force = held
		opts = append(opts, Replacing(req.Replaces))
	}
	switch {
	case force:
	case trigger == domain.TriggerManual && fresh:
	default:
		d, err := e.Decide(ctx, req.Org, *app, pol)
		if err != nil {
			return "", nil, err
		}
		if !d.Due {
			return OutcomeNotDue, nil, nil
		}
		// The inventory may be older than Entra in a way the journal
		// cannot correct: a database restored from a backup knows nothing
		// of the rotations made since, and the planner may run before the
		// first sync after the restore. Entra is the truth: ask it, and
		// rotate only if its credentials still make the application due.
		//
		// The read takes the tenant's slot, so that when Graph is
		// throttled the application whose credential ends first is the
		// first to be read (slots are earliest deadline first); Rotate
		// takes it again, with the same deadline, to write. A person's
		// Rotate now reads nothing here and waits for no slot before its
		// run exists.
		//
		// Unless a sync read the application from Entra moments ago, in
		// this engine's life (so after any restore): asking again would
		// tell nothing a read a second later could not contradict, and
		// under throttling those reads held the slots for seconds each
		// while the application whose secret ends first, planned right
		// after the first sync, waited behind them for its turn to read
		// (TestThrottlingStormAtRenewalTime).
		var cur []domain.Credential
		ok := false
		if !app.SyncedAt.After(e.started) || e.now().Sub(app.SyncedAt) > justSynced {
			release, err := e.acquire(ctx, app.TenantID, deadlineOf(*app, cmp.Or(pol.Kind, domain.KindSecret), e.now()))
			if err != nil {
				return "", nil, err
			}
			cur, ok = e.entraCredentials(ctx, req.Org, pol.Connection, app.ObjectID)
			release()
		}
		if ok && !sameCredentials(app.Credentials, cur) {
			fresher := *app
			fresher.Credentials = cur
			e.refreshInventory(ctx, req.Org, app.TenantID, app.ObjectID, cur, e.log.With("org", string(req.Org), "app", app.ObjectID))
			if d, err = e.Decide(ctx, req.Org, fresher, pol); err != nil {
				return "", nil, err
			}
			if !d.Due {
				e.log.Info("not rotated: Entra's credentials, newer than the inventory's, make the application not due", "org", string(req.Org),
					"tenant", app.TenantID, "app", app.ObjectID, "app_name", app.DisplayName, "reason", d.Reason, "detail", d.Message)
				return OutcomeNotDue, nil, nil
			}
			app = &fresher
		}
		trigger = d.Trigger
	}
	run, err := e.Rotate(ctx, req.Org, *app, *pol, trigger, opts...)
	var re *RunError
	switch {
	case errors.Is(err, ErrBusy):
		return OutcomeBusy, nil, nil
	case errors.As(err, &re) && re.LeaseLost:
		return OutcomeHandedOver, run, nil
	case errors.As(err, &re):
		return OutcomeFailed, run, nil
	case err != nil:
		return "", run, err
	}
	return OutcomeRotated, run, nil
}

// recoveryState looks at the run a recovery request replaces: whether a
// run started after it has since succeeded (superseded), and whether a
// consumer may hold its secret (held). Recover removed the secret unless a
// sink held it or could not say, so held is whether Entra still has it;
// when Entra cannot be asked, whether its journal shows a sink write.
func (e *Engine) recoveryState(ctx context.Context, req Request) (superseded, held bool, err error) {
	old, err := e.store.GetRun(ctx, req.Org, req.Replaces)
	if errors.Is(err, store.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	held, known := e.inEntra(ctx, old)
	if !known {
		for _, ev := range old.Events {
			if ev.Step.IsSinkWrite() {
				held = true
				break
			}
		}
	}
	good, err := e.store.ListRuns(ctx, store.ListRunsParams{Org: req.Org, AppObjectID: req.AppObjectID, States: []domain.RunState{domain.RunRetiring, domain.RunDone}, Limit: 1})
	if err != nil {
		return false, false, err
	}
	superseded = len(good) > 0 && good[0].CreatedAt.After(old.CreatedAt)
	return superseded, held, nil
}

// entraCredentials reads an application's credentials from Entra, or
// reports that it could not (the rotation that follows then finds out
// what is wrong).
func (e *Engine) entraCredentials(ctx context.Context, org domain.OrgID, connection, objectID string) ([]domain.Credential, bool) {
	dir, err := e.conns.Directory(org, connection)
	if err != nil {
		return nil, false
	}
	creds, err := dir.Credentials(ctx, objectID)
	if err != nil {
		e.log.Debug("reading the application's credentials before rotating failed", "org", string(org), "app", objectID, "error", err)
		return nil, false
	}
	return creds, true
}

// sameCredentials reports whether a and b hold the same credentials (key
// ids and ends), in any order.
func sameCredentials(a, b []domain.Credential) bool {
	if len(a) != len(b) {
		return false
	}
	ends := make(map[string]time.Time, len(a))
	for _, c := range a {
		ends[c.KeyID] = c.End
	}
	for _, c := range b {
		if end, ok := ends[c.KeyID]; !ok || !end.Equal(c.End) {
			return false
		}
	}
	return true
}

// inEntra reports whether Entra still lists a secret of run (by its key
// id, or by its display name when it has none), and whether it could ask.
func (e *Engine) inEntra(ctx context.Context, run *domain.Run) (present, known bool) {
	dir, err := e.conns.Directory(run.Org, run.Connection)
	if err != nil {
		return false, false
	}
	creds, err := dir.Credentials(ctx, run.AppObjectID)
	if err != nil {
		return false, false
	}
	for _, c := range creds {
		if (run.NewKeyID != "" && c.KeyID == run.NewKeyID) || c.DisplayName == domain.DisplayNameFor(run.ID) {
			return true, true
		}
	}
	return false, true
}

// RetireRun is Retire under the current policy of the run's application
// (it decides whether credentials rotor did not create go too); with none,
// only older rotor-made ones go. A store that cannot say is an error to
// retry, never a retirement under the wrong policy.
func (e *Engine) RetireRun(ctx context.Context, org domain.OrgID, runID string, policies PolicySource) error {
	run, err := e.store.GetRun(ctx, org, runID)
	if err != nil {
		return fmt.Errorf("rotation: load run %s: %w", runID, err)
	}
	var pol domain.Policy
	app, err := e.store.GetApplication(ctx, org, run.AppObjectID)
	switch {
	case err == nil:
		if p := policies.PolicyFor(*app); p != nil {
			pol = *p
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("rotation: look up the application of run %s: %w", runID, err)
	}
	return e.Retire(ctx, org, runID, pol)
}

// justSynced is how recent an inventory row read from Entra in this
// engine's life must be for Handle to trust it without asking again.
const justSynced = time.Minute
