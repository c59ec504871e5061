package rotation

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// RotateOption adjusts one Rotate call.
type RotateOption func(*rotateOptions)

type rotateOptions struct {
	replaces string
}

// Replacing records that the new run replaces an abandoned one (Run.Replaces).
func Replacing(runID string) RotateOption {
	return func(o *rotateOptions) { o.replaces = runID }
}

// addPasswordAttempts bounds retries of a transient addPassword failure. A
// retry after a lost answer may leave an extra credential named after the
// run; it is older than the one the run keeps, so the run's own retirement
// removes it (or the failure clean-up does, by display name).
const addPasswordAttempts = 5

// pendingPollAttempts is how many token attempts, while Entra says a new
// secret has not replicated, wait at most pendingPoll (about the first
// 20 s); later ones wait the normal back-off (up to 10 s).
const pendingPollAttempts = 20

// Rotate runs one rotation of app under policy up to the retiring state and
// schedules its retirement:
//
//	planned → created → (sinks, in order) → propagated → verified → retiring
//
// Each step is journaled before the side effect that follows it. The run
// is returned in its last state; a run that failed comes with a *RunError.
// ErrBusy means another active run holds the application.
func (e *Engine) Rotate(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy, trigger domain.Trigger, opts ...RotateOption) (*domain.Run, error) {
	var o rotateOptions
	for _, opt := range opts {
		opt(&o)
	}
	defer e.track()()
	if err := e.lease.Acquire(ctx); err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("rotation: run id: %w", err)
	}
	now := e.now()
	run := &domain.Run{
		Org:         org,
		ID:          id.String(),
		Holder:      e.lease.Holder(),
		Connection:  policy.Connection,
		TenantID:    app.TenantID,
		AppObjectID: app.ObjectID,
		AppID:       app.AppID,
		AppName:     app.DisplayName,
		Policy:      policy.Name,
		Kind:        cmp.Or(policy.Kind, domain.KindSecret),
		Trigger:     trigger,
		State:       domain.RunPlanned,
		CreatedAt:   now,
		UpdatedAt:   now,
		Replaces:    o.replaces,
		Events: []domain.RunEvent{{
			At: now, State: domain.RunPlanned, Step: domain.StepPlanned.Step(),
			Message: plannedMessage(trigger, policy, o.replaces),
		}},
	}
	if err := e.store.CreateRun(ctx, run); err != nil {
		if errors.Is(err, store.ErrConflict) {
			e.observer.Observe(org, policy.Connection, RunOutcomeBusy)
			return nil, fmt.Errorf("%w (application %s)", ErrBusy, app.ObjectID)
		}
		return nil, fmt.Errorf("rotation: journal new run: %w", err)
	}
	r := &runner{
		e: e, run: run, app: app, policy: policy,
		log: e.log.With("run", run.ID, "org", string(org), "tenant", app.TenantID, "app", app.ObjectID, "app_name", app.DisplayName),
	}
	r.log.Info("rotation planned", "trigger", string(trigger), "policy", policy.Name, "replaces", o.replaces)
	e.hook(run, domain.StepPlanned.Step())
	return r.rotate(ctx)
}

func plannedMessage(trigger domain.Trigger, policy domain.Policy, replaces string) string {
	msg := fmt.Sprintf("rotation planned (trigger %s, policy %q)", trigger, policy.Name)
	if replaces != "" {
		msg += ", replacing abandoned run " + replaces
	}
	return msg
}

// runner is one Rotate call. value is the new secret, cert the new
// certificate with its private key: they live here, and nowhere else,
// until Rotate returns.
type runner struct {
	e      *Engine
	run    *domain.Run
	app    domain.Application
	policy domain.Policy
	log    *slog.Logger

	// release gives back the tenant's concurrency slot rotate takes; it
	// may be called more than once.
	release func()

	dir Directory
	// addCalled is true once AddPassword was called: a credential named
	// after the run may exist even if no key id was journaled.
	addCalled bool
	keyID     string
	value     secret.Value
	cert      *sink.Certificate
	// vaultKID is the Key Vault key version of the run's certificate when
	// its key lives in Key Vault (cert.Key is then that key's signer, and
	// the sinks get the chain only); "" otherwise.
	vaultKID string
	// prover is what signs Graph's proofs of possession (kind
	// certificate): the policy's bootstrap certificate, or for a Key Vault
	// key source the vault's key of the current certificate; nil for none.
	prover *Prover
	start  time.Time
	// sinkTouched is true once a sink write was journaled: from then on a
	// consumer may hold the value, so a failure removes it only when every
	// sink says it does not hold it.
	sinkTouched bool
	// sinks are the run's sinks, once built.
	sinks []runSink
	// skipped counts sinks left out before creation, and failedSinks names
	// those that failed during delivery, both under on_failure: continue.
	skipped     int
	failedSinks []string
}

func (r *runner) rotate(ctx context.Context) (*domain.Run, error) {
	e, run, policy := r.e, r.run, r.policy

	if run.Kind != domain.KindSecret && run.Kind != domain.KindCertificate {
		return r.fail(ctx, nil, fmt.Sprintf("policy %q asks for kind %s, which rotor does not know; set kind: secret or kind: certificate", policy.Name, run.Kind), true)
	}
	what := r.what()
	// Build every sink, at its pinned target, before touching Azure: a
	// configuration mistake fails the run with nothing created.
	sinks, permanent, err := r.planSinks(ctx)
	if err != nil {
		return r.fail(ctx, err, err.Error(), permanent)
	}
	r.sinks = sinks
	dir, err := e.conns.Directory(run.Org, run.Connection)
	if err != nil {
		return r.fail(ctx, err, fmt.Sprintf("connection %q cannot change applications: %v", run.Connection, err), true)
	}
	r.dir = dir
	var ver Verifier
	if policy.Verify {
		if ver, err = e.conns.Verifier(run.Org, run.Connection); err != nil {
			return r.fail(ctx, err, fmt.Sprintf("connection %q cannot verify credentials: %v", run.Connection, err), true)
		}
	}
	if run.Kind == domain.KindCertificate {
		if _, err := certDirectory(dir); err != nil {
			return r.fail(ctx, err, fmt.Sprintf("connection %q cannot rotate certificates: %v", run.Connection, err), true)
		}
		if _, ok := ver.(CertificateVerifier); policy.Verify && !ok {
			return r.fail(ctx, nil, fmt.Sprintf("connection %q cannot verify certificates", run.Connection), true)
		}
		if r.prover, err = e.proverFor(ctx, dir, run.Org, run.Connection, policy, r.app); err != nil {
			_, permanent := errors.AsType[*errNoCertificates](err)
			what := "reading the bootstrap certificate"
			if policy.Certificate.KeySource.InVault() {
				what = "finding the Key Vault key of the application's current certificate"
				permanent = permanent || e.permanent(err)
			}
			return r.fail(ctx, err, what+" failed: "+err.Error(), permanent)
		}
	}

	// Ask every sink that can tell whether the write would work, before
	// anything is created: a sink rotor may not write (a foreign Key Vault
	// secret, no permission) then fails the run with nothing left behind
	// in Entra, instead of after a new secret exists.
	kept := sinks[:0:0]
	for _, rs := range sinks {
		v, ok := rs.sink.(sink.Validator)
		if !ok {
			kept = append(kept, rs)
			continue
		}
		val := v.Validate(ctx)
		if e.sinkChecks != nil && ctx.Err() == nil {
			e.sinkChecks.SinkChecked(run.Org, policy.Name, rs.index, run.AppObjectID, rs.sink.Describe(), val.Status != sink.StatusFailed, r.scrub(val.Reason))
		}
		if val.Status != sink.StatusFailed {
			kept = append(kept, rs)
			continue
		}
		if rs.onFailure != sink.OnFailureContinue {
			return r.fail(ctx, val.Err, fmt.Sprintf("sink %d (%s) cannot take the new secret: %s", rs.index, rs.sink.Describe(), val.Reason), true)
		}
		// on_failure: continue — this consumer is left out of the run,
		// said in the journal and in an ERROR line a team can alert on.
		msg := fmt.Sprintf("%s cannot take the new secret, so this run leaves it out (on_failure: continue); it keeps the credential it holds: %s", rs.sink.Describe(), r.scrub(val.Reason))
		if err := e.eventAt(ctx, run, domain.SinkStep(rs.index, domain.PhaseSkipped), rs.sink.Target().String(), msg); err != nil {
			return r.fail(ctx, err, "journaling a skipped sink failed: "+err.Error(), false)
		}
		r.log.Error("sink left out of the rotation: it cannot take the new secret (on_failure: continue)", "sink", rs.index, "target", rs.sink.Target().String(), "reason", r.scrub(val.Reason))
		r.skipped++
	}
	sinks = kept
	r.sinks = sinks

	release, err := e.acquire(ctx, run.TenantID, deadlineOf(r.app, run.Kind, e.now()))
	if err != nil {
		return r.fail(ctx, err, "stopped while waiting for the tenant's concurrency slot: "+err.Error(), false)
	}
	r.release = release
	defer r.release()

	if done, err := r.makeRoom(ctx); done != nil || err != nil {
		return done, err
	}

	// Create.
	lifetime := cmp.Or(policy.Lifetime, domain.DefaultLifetime)
	np, err := r.create(ctx, lifetime)
	if err != nil {
		if _, ok := errors.AsType[*errNoCertificates](err); ok || e.permanent(err) {
			return r.fail(ctx, err, fmt.Sprintf("Entra refused to create the new %s: %v. If the tenant's app management policy limits %s lifetimes, make the policy's lifetime (%s) shorter; if access is denied, make rotor's rotation identity an owner of the application", what, err, what, domain.FormatDuration(lifetime)), true)
		}
		return r.fail(ctx, err, fmt.Sprintf("creating the new %s failed: %v", what, err), false)
	}
	r.keyID, r.value, r.start = np.KeyID, np.Value, np.Start
	// SinksStarted is journaled with the key id, before the first sink
	// write: from then on a consumer may hold the value. (The store refuses
	// a created → created transition, so it cannot wait for the first
	// sink's own journal line; the cost is that a crash in the one journal
	// write between here and that line leaves the secret for the next
	// retirement instead of removing it at once.)
	if err := e.transition(ctx, run, store.TransitionRunParams{
		To: domain.RunCreated, NewKeyID: np.KeyID, NewEnd: np.End, SinksStarted: len(sinks) > 0,
		Event: domain.RunEvent{Step: domain.StepCreated.Step(), Message: fmt.Sprintf("created %s %s (%q)%s valid until %s",
			what, np.KeyID, domain.DisplayNameFor(run.ID), r.createdNote(), np.End.UTC().Format(time.RFC3339))},
	}); err != nil {
		return r.fail(ctx, err, "journaling the new "+what+" failed: "+err.Error(), false)
	}
	r.log.Info(what+" created", "state", string(run.State), "key_id", np.KeyID, "end", np.End)
	// The tenant's concurrency slot guards Graph; nothing below writes to
	// Graph, so give it back before waiting on Entra's replication.
	r.release()

	// Wait until Entra accepts the new secret before any sink, and so any
	// consumer, can see it: a consumer that picked up a secret Entra still
	// refuses would fail for the length of the replication delay. It also
	// keeps the moment a crash leaves a delivered but unverified secret
	// behind down to the sink writes themselves. Step 4 (verified) still
	// runs after delivery, as the protocol says; it then passes at once.
	if policy.Verify && len(sinks) > 0 {
		if err := e.event(ctx, run, domain.StepReplicating.Step(), fmt.Sprintf("waiting until Entra accepts the new %s, for up to %s, before any sink receives it", what, e.verifyTimeout)); err != nil {
			return r.fail(ctx, err, "journaling the replication wait failed: "+err.Error(), false)
		}
		started := e.now()
		attempts, err := r.verify(ctx, ver)
		if err != nil {
			if ctx.Err() != nil {
				return r.fail(ctx, err, "stopped while waiting for Entra to accept the new "+what+": "+err.Error(), false)
			}
			return r.fail(ctx, err, fmt.Sprintf("Entra did not accept the new %s within %s (%d attempts): %v; no sink received it, so it was removed", what, e.verifyTimeout, attempts, err), e.permanent(err))
		}
		r.log.Info(what+" replicated", "attempts", attempts, "after", e.now().Sub(started))
	}

	// Deliver, in order, journaling each write before making it.
	delivery := sink.Delivery{
		Org: run.Org, RunID: run.ID, App: r.app, TenantID: run.TenantID, ClientID: run.AppID,
		KeyID: np.KeyID, Kind: run.Kind, Material: r.material(), Start: np.Start, End: np.End,
	}
	for k := range sinks {
		rs := &sinks[k]
		i, s := rs.index, rs.sink
		r.sinkTouched = true
		what := s.Describe()
		if rs.old {
			what += " (the target it moved from, kept updated until the overlap has passed)"
		}
		// The target is journaled with the step: recovery asks the place
		// the run wrote to.
		if err := e.eventAt(ctx, run, domain.SinkStep(i, domain.PhaseWriting), s.Target().String(), what); err != nil {
			return r.fail(ctx, err, "journaling a sink write failed: "+err.Error(), false)
		}
		r.noteDrift(ctx, rs)
		r.claim(ctx, rs)
		res, err := r.deliver(ctx, i, s, delivery)
		if err != nil {
			if leaseLost(err) || ctx.Err() != nil || rs.onFailure != sink.OnFailureContinue {
				return r.fail(ctx, err, fmt.Sprintf("sink %d (%s) failed: %v", i, s.Describe(), err), e.permanent(err))
			}
			// on_failure: continue — record the failure and go on; the
			// consumer keeps its older credential.
			rs.failed = true
			r.failedSinks = append(r.failedSinks, fmt.Sprintf("#%d (%s)", i+1, s.Describe()))
			msg := r.scrub(fmt.Sprintf("%s failed and the run goes on without it (on_failure: continue): %v", s.Describe(), err))
			if jerr := e.eventAt(ctx, run, domain.SinkStep(i, domain.PhaseFailed), s.Target().String(), msg); jerr != nil {
				return r.fail(ctx, jerr, "journaling a sink failure failed: "+jerr.Error(), false)
			}
			r.log.Error("sink failed; the rotation goes on without it (on_failure: continue)", "sink", i, "target", s.Target().String(), "error", r.scrub(err.Error()))
			continue
		}
		r.recordDelivery(ctx, rs, res.Version)
		outcome := domain.PhaseWritten
		if !res.Changed {
			outcome = domain.PhaseUnchanged
		}
		// The journal says what the sink did beside the write (a Key Vault
		// secret recovered from soft delete first), so it stays a true
		// account of every change rotor made.
		msg := cmp.Or(res.Location, s.Describe())
		logArgs := []any{"state", string(run.State), "sink", i, "outcome", outcome, "location", r.scrub(res.Location)}
		if res.Note != "" {
			msg += "; " + res.Note
			logArgs = append(logArgs, "note", r.scrub(res.Note))
		}
		if err := e.eventAt(ctx, run, domain.SinkStep(i, outcome), s.Target().String(), r.scrub(msg)); err != nil {
			return r.fail(ctx, err, "journaling a sink write failed: "+err.Error(), false)
		}
		r.log.Info("sink delivered", logArgs...)
	}
	// Every sink holds the new secret: now the sinks' after-all steps (a
	// rolling restart) may make consumers pick it up.
	for _, rs := range sinks {
		i, s := rs.index, rs.sink
		f, ok := s.(sink.Finisher)
		if !ok || rs.failed {
			continue
		}
		if err := e.eventAt(ctx, run, domain.FinishStep(i, domain.PhaseWriting), s.Target().String(), s.Describe()); err != nil {
			return r.fail(ctx, err, "journaling a sink's after-all step failed: "+err.Error(), false)
		}
		err := e.fenced(ctx, run, func(ctx context.Context) error { return f.AfterAll(ctx, delivery) })
		if err != nil {
			if !leaseLost(err) {
				err = r.classify(err)
			}
			return r.fail(ctx, err, fmt.Sprintf("sink %d (%s) failed after every sink held the new secret: %v", i, s.Describe(), err), e.permanent(err))
		}
		if err := e.eventAt(ctx, run, domain.FinishStep(i, domain.PhaseWritten), s.Target().String(), s.Describe()+": done"); err != nil {
			return r.fail(ctx, err, "journaling a sink's after-all step failed: "+err.Error(), false)
		}
	}
	if err := e.transition(ctx, run, store.TransitionRunParams{
		To:    domain.RunPropagated,
		Event: domain.RunEvent{Step: domain.StepPropagated.Step(), Message: r.propagatedMessage(sinks)},
	}); err != nil {
		return r.fail(ctx, err, "journaling propagation failed: "+err.Error(), false)
	}

	// Verify.
	verifiedMsg := "verification is off in the policy"
	if policy.Verify {
		if err := e.event(ctx, run, domain.StepVerifying.Step(), fmt.Sprintf("getting a token with the new %s, for up to %s", what, e.verifyTimeout)); err != nil {
			return r.fail(ctx, err, "journaling verification failed: "+err.Error(), false)
		}
		started := e.now()
		attempts, err := r.verify(ctx, ver)
		if err != nil {
			if ctx.Err() != nil {
				return r.fail(ctx, err, "stopped while verifying the new "+what+": "+err.Error(), false)
			}
			if e.permanent(err) {
				return r.fail(ctx, err, "verifying the new "+what+" failed: "+err.Error(), true)
			}
			return r.fail(ctx, err, fmt.Sprintf("the new %s was not accepted by Entra within %s (%d attempts): %v", what, e.verifyTimeout, attempts, err), false)
		}
		verifiedMsg = fmt.Sprintf("Entra issued a token for the new %s after %d attempt(s) in %s", what, attempts, e.now().Sub(started).Round(time.Millisecond))
	}
	if err := e.transition(ctx, run, store.TransitionRunParams{
		To: domain.RunVerified, Event: domain.RunEvent{Step: domain.StepVerified.Step(), Message: verifiedMsg},
	}); err != nil {
		return r.fail(ctx, err, "journaling verification failed: "+err.Error(), false)
	}
	r.release()
	// Entra's own hint (the first three characters) is all the inventory
	// may keep of the value; take it before the value goes.
	hint, thumb := r.value.Hint(), r.thumbprint()
	r.forget()

	// Schedule retirement. From here the run no longer fails: the new
	// secret is everywhere and works.
	retireAt := e.now().Add(max(policy.Overlap, 0))
	if err := e.transition(ctx, run, store.TransitionRunParams{
		To: domain.RunRetiring, RetireAt: retireAt,
		Event: domain.RunEvent{Step: domain.StepRetiring.Step(), Message: fmt.Sprintf("older credentials are removed after the overlap (%s), at %s",
			domain.FormatDuration(policy.Overlap), retireAt.UTC().Format(time.RFC3339))},
	}); err != nil {
		// Still verified: start-up recovery treats it as abandoned.
		return r.fail(ctx, err, "journaling retirement failed: "+err.Error(), false)
	}
	r.log.Info("rotation verified; retirement scheduled", "state", string(run.State), "retire_at", retireAt)
	e.settleMoves(ctx, run, policy, sinks)
	// The inventory learns of the new secret now, not at the next sync.
	// Its hint (first three characters) is what Entra itself shows.
	creds := append(slices.Clone(r.app.Credentials), domain.Credential{
		KeyID: r.keyID, Kind: run.Kind, DisplayName: domain.DisplayNameFor(run.ID), Hint: hint, Thumbprint: thumb,
		Start: r.start, End: run.NewEnd,
	})
	e.refreshInventory(ctx, run.Org, run.TenantID, run.AppObjectID, creds, r.log)
	if err := e.scheduleRetirement(ctx, run); err != nil {
		// The run is retiring; Recover reschedules retiring runs at start-up.
		r.log.Error("scheduling retirement failed; it is rescheduled at the next start-up", "error", err)
		// The run belongs to no process once retiring, so this line is
		// not fenced.
		if e.store.AppendRunEvent(context.WithoutCancel(ctx), store.AppendRunEventParams{Org: run.Org, RunID: run.ID,
			Event: domain.RunEvent{At: e.now(), Step: domain.StepRetireScheduleFailed.Step(), Message: "scheduling retirement failed; rotor reschedules it at its next start: " + err.Error()}}) == nil {
			e.hook(run, domain.StepRetireScheduleFailed.Step())
		}
	}
	return run, nil
}

func (e *Engine) scheduleRetirement(ctx context.Context, run *domain.Run) error {
	fn := e.scheduler()
	if fn == nil {
		return errors.New("no retirement scheduler is configured")
	}
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			if serr := sleep(ctx, e.backoff(attempt-1)); serr != nil {
				return errors.Join(err, serr)
			}
		}
		if err = fn(ctx, run.Org, run.ID, run.RetireAt); err == nil {
			return nil
		}
	}
	return err
}

func (r *runner) addPassword(ctx context.Context, end time.Time) (NewPassword, error) {
	e := r.e
	var err error
	for attempt := range addPasswordAttempts {
		if attempt > 0 {
			if serr := sleep(ctx, e.retryWait(err, attempt-1)); serr != nil {
				return NewPassword{}, errors.Join(err, serr)
			}
		}
		var np NewPassword
		err = e.fenced(ctx, r.run, func(ctx context.Context) error {
			r.addCalled = true
			var err error
			np, err = r.dir.AddPassword(ctx, r.run.AppObjectID, domain.DisplayNameFor(r.run.ID), end)
			return err
		})
		if err == nil {
			if np.KeyID == "" || np.Value.IsZero() {
				return NewPassword{}, errors.New("Entra answered without a key id or secret")
			}
			return np, nil
		}
		if leaseLost(err) || e.permanent(err) || ctx.Err() != nil {
			return NewPassword{}, err
		}
		// INFO, not WARN: a retry is routine (429, a 409 concurrency
		// violation); the exhausted retry is the run's failure, logged
		// once at ERROR.
		r.log.Info("creating the secret failed; retrying", "attempt", attempt+1, "error", err)
	}
	return NewPassword{}, err
}

func (r *runner) deliver(ctx context.Context, i int, s sink.Sink, d sink.Delivery) (sink.Result, error) {
	e := r.e
	var err error
	for attempt := range e.sinkAttempts {
		if attempt > 0 {
			// A target that said how long to wait (429/503 Retry-After,
			// RetryAfterHint on the error) is waited for, capped.
			if serr := sleep(ctx, e.retryWait(err, attempt-1)); serr != nil {
				return sink.Result{}, errors.Join(err, serr)
			}
		}
		var res sink.Result
		err = e.fenced(ctx, r.run, func(ctx context.Context) error {
			var err error
			res, err = s.Deliver(ctx, d)
			return err
		})
		if err == nil {
			return res, nil
		}
		if leaseLost(err) {
			return sink.Result{}, err
		}
		err = r.classify(err)
		if e.permanent(err) || ctx.Err() != nil {
			return sink.Result{}, err
		}
		r.log.Info("sink write failed; retrying", "sink", i, "attempt", attempt+1, "error", err)
	}
	return sink.Result{}, err
}

// verify asks for tokens with the new secret until Entra accepts it, the
// error is permanent, or VerifyTimeout passes. It returns the attempts made
// and, on failure, the last answer that was not a deadline.
func (r *runner) verify(ctx context.Context, ver Verifier) (int, error) {
	e := r.e
	vctx, cancel := context.WithTimeout(ctx, e.verifyTimeout)
	defer cancel()
	var last error
	n := 0
	for {
		err := r.verifyOnce(vctx, ver)
		n++
		if err == nil {
			return n, nil
		}
		err = r.classify(err)
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if vctx.Err() == nil || last == nil {
			last = err
		}
		if e.permanent(err) {
			return n, err
		}
		if !e.pending(err) {
			r.log.Warn("verification failed with an unexpected answer; retrying until the deadline", "attempt", n, "error", err)
		}
		wait := e.backoff(n - 1)
		if e.pending(err) && n <= pendingPollAttempts {
			// Entra has not replicated the secret yet: it will, typically
			// within 4–18 s, and a token request costs Graph nothing, so
			// poll at least every pendingPoll instead of letting the
			// back-off grow past the moment it does. Only for the first
			// attempts: many identical token requests in a short time are
			// what Entra's loop detection (AADSTS50196) refuses, so a slow
			// replication falls back to the growing back-off.
			wait = min(wait, e.pendingPoll)
		}
		if vctx.Err() != nil || sleep(vctx, wait) != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, last
		}
	}
}

// fail ends the run in failed. If a credential may exist that no sink
// received, nobody can hold it, so it is removed first; once a sink write
// started it stays, and the next run's retirement removes it.
//
// A run stopped because ctx was cancelled (shutdown, job timeout) did not
// fail: it ends abandoned, like a run of a process that died, so the
// planner's failure back-off does not hold the application.
func (r *runner) fail(ctx context.Context, cause error, msg string, permanent bool) (*domain.Run, error) {
	e, run := r.e, r.run
	msg = r.scrub(msg)
	// Finish the journal even when ctx was cancelled (shutdown).
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if !leaseLost(cause) {
		// Still this process's run? (A process that was frozen past its
		// lease may have been replaced while it waited.)
		_, err := e.store.FenceRun(cctx, store.FenceRunParams{Org: run.Org, RunID: run.ID, Holder: e.lease.Holder(), TTL: e.lease.TTL()})
		if leaseLost(err) {
			cause = errors.Join(cause, err)
		}
	}
	if leaseLost(cause) {
		return r.handedOver(cause, msg)
	}
	to, step := domain.RunFailed, domain.StepFailed
	if ctx.Err() != nil {
		to, step, permanent = domain.RunAbandoned, domain.StepAbandoned, false
	}
	switch {
	case r.addCalled && !r.sinkTouched && r.dir != nil:
		if note := e.removeUnheld(cctx, r.dir, run, r.keyID, r.ownProver(), r.log); note != "" {
			msg += "; " + note
		}
	case r.sinkTouched && r.dir != nil:
		// A sink write started, so a consumer may hold the secret; ask
		// every sink, as recovery does. One that nobody holds is removed
		// now rather than left alive for weeks with no consumer.
		if held, why := r.heldBySinks(cctx); held {
			msg += "; its secret stays until the next rotation retires it after the overlap (" + why + ")"
		} else if note := e.removeUnheld(cctx, r.dir, run, r.keyID, r.ownProver(), r.log); note != "" {
			msg += "; " + note
		} else {
			msg += "; no sink holds its secret (each was asked), so it was removed"
		}
	}
	r.forget()
	r.log.Error("rotation "+string(to), "state", string(run.State), "permanent", permanent, "error", msg)
	class := domain.FailureTransient
	if permanent {
		class = domain.FailurePermanent
	}
	if to != domain.RunFailed {
		class = ""
	}
	if err := e.transition(cctx, run, store.TransitionRunParams{
		To: to, Error: msg, Failure: class,
		Event: domain.RunEvent{Step: step.Step(), Message: msg},
	}); err != nil {
		if leaseLost(err) {
			return r.handedOver(errors.Join(cause, err), msg)
		}
		r.log.Error("journaling the failure failed; recovery abandons the run once this process's lease expires", "error", err)
		return run, &RunError{RunID: run.ID, Message: msg, Permanent: permanent, Err: errors.Join(cause, err)}
	}
	return run, &RunError{RunID: run.ID, Message: msg, Permanent: permanent, Err: cause}
}

// heldBySinks asks every sink of the run whether it holds the run's new
// credential. Anything unknown (a sink that cannot say, or does not
// answer) counts as held: keeping a credential through the overlap is
// always safe.
func (r *runner) heldBySinks(ctx context.Context) (bool, string) {
	keyID := cmp.Or(r.keyID, r.run.NewKeyID)
	if keyID == "" {
		return true, "its key id is unknown"
	}
	for _, rs := range r.sinks {
		h, ok := rs.sink.(sink.Holder)
		if !ok {
			return true, fmt.Sprintf("sink #%d (%s) cannot say what it holds", rs.index+1, rs.sink.Describe())
		}
		holds, err := h.Holds(ctx, keyID)
		if err != nil {
			r.log.Warn("asking a sink what it holds failed", "sink", rs.sink.Describe(), "error", err)
			return true, fmt.Sprintf("sink #%d (%s) did not answer", rs.index+1, rs.sink.Describe())
		}
		if holds {
			return true, fmt.Sprintf("%s holds it", rs.sink.Describe())
		}
	}
	return false, ""
}

// handedOver ends a Rotate call whose run another process took over (this
// one lost its lease): touching the run again (a clean-up, a journal line)
// would race the new holder, which carries on.
func (r *runner) handedOver(cause error, msg string) (*domain.Run, error) {
	r.forget()
	r.e.observer.Observe(r.run.Org, r.run.Connection, RunOutcomeLeaseLost)
	r.log.Error("this process lost the run's lease (it could not renew it in time); another rotor process has taken the run over, so this one stopped without touching it again",
		"state", string(r.run.State), "error", msg)
	return r.run, &RunError{RunID: r.run.ID, Message: msg, LeaseLost: true, Err: cause}
}

// removeUnheld removes the credential(s) run created, found by key id or by
// the run's display name, when no sink ever received them. It returns a
// note for the journal when something could not be removed.
//
// A certificate is removed with removeKey when prover (the run's own new
// certificate while the run holds its key, or the policy's bootstrap) can
// sign the proof, else by a keyCredentials update that keeps every other
// key.
func (e *Engine) removeUnheld(ctx context.Context, dir Directory, run *domain.Run, knownKeyID string, prover *Prover, log *slog.Logger) string {
	name := domain.DisplayNameFor(run.ID)
	what := kindWord(run.Kind)
	keys := map[string]bool{}
	kinds := map[string]domain.CredentialKind{}
	if knownKeyID != "" {
		keys[knownKeyID] = true
	}
	if run.NewKeyID != "" {
		keys[run.NewKeyID] = true
	}
	creds, err := dir.Credentials(ctx, run.AppObjectID)
	if err != nil {
		log.Warn("listing credentials for clean-up failed", "error", err)
		if len(keys) == 0 {
			return fmt.Sprintf("a %s named %q may exist and could not be looked up (%v); the next rotation's retirement removes it", what, name, err)
		}
	} else {
		present := map[string]bool{}
		for _, c := range creds {
			if c.DisplayName == name {
				keys[c.KeyID] = true
			}
			present[c.KeyID] = true
			kinds[c.KeyID] = c.Kind
		}
		for k := range keys {
			if !present[k] {
				delete(keys, k) // already gone
			}
		}
	}
	var notes []string
	for _, k := range sortedKeys(keys) {
		kind := cmp.Or(kinds[k], run.Kind, domain.KindSecret)
		what := kindWord(kind)
		if err := e.event(ctx, run, domain.CleanupStep(k, domain.PhaseRemoving), fmt.Sprintf("removing %s %s: no sink received it, so nobody can hold it", what, k)); err != nil {
			notes = append(notes, err.Error())
			continue
		}
		if err := e.fenced(ctx, run, func(ctx context.Context) error { return e.removeKind(ctx, dir, run, kind, k, prover) }); err != nil {
			log.Warn("removing an unheld "+what+" failed", "key_id", k, "error", err)
			notes = append(notes, fmt.Sprintf("%s %s could not be removed (%v); the next rotation's retirement removes it", what, k, err))
			continue
		}
		log.Info("removed unheld "+what, "key_id", k)
		_ = e.event(ctx, run, domain.CleanupStep(k, domain.PhaseRemoved), fmt.Sprintf("removed %s %s", what, k))
	}
	return strings.Join(notes, "; ")
}

func (r *runner) scrub(s string) string {
	if !r.value.IsZero() {
		s = strings.ReplaceAll(s, r.value.Reveal(), "[REDACTED]")
	}
	return scrubKeyMaterial(s, r.cert)
}

// scrubKeyMaterial removes from s what of a certificate credential's
// private material a target might have echoed: any PEM private key block,
// the key's own base64 lines one by one (a fragment without its header),
// and the PKCS#12 blob's base64. The certificate itself is public.
func scrubKeyMaterial(s string, cert *sink.Certificate) string {
	s = sink.RedactPrivateKeys(s)
	if cert == nil {
		return s
	}
	if kp, err := cert.KeyPEM(); err == nil {
		for _, line := range strings.Split(kp.Reveal(), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				s = strings.ReplaceAll(s, line, "[REDACTED]")
			}
		}
	}
	if !cert.PKCS12.IsZero() {
		s = strings.ReplaceAll(s, base64.StdEncoding.EncodeToString([]byte(cert.PKCS12.Reveal())), "[REDACTED]")
	}
	return s
}

// classify turns an error from a call that held the secret value (a
// sink's delivery, a verification) into an opaque one: it is classified
// first (permanent, replication pending), then replaced by an error whose
// text has been scrubbed of the value and whose chain ends there, so no
// errors.Unwrap, %+v or errors.As can reach the value through it.
func (r *runner) classify(err error) error {
	if err == nil {
		return nil
	}
	var oe *opaqueError
	if errors.As(err, &oe) {
		return oe
	}
	return &opaqueError{msg: r.scrub(err.Error()), permanent: r.e.permanent(err), pending: r.e.pending(err)}
}

// opaqueError is a classified error with nothing behind it.
type opaqueError struct {
	msg                string
	permanent, pending bool
}

func (e *opaqueError) Error() string { return e.msg }

// Permanent reports whether retrying cannot help.
func (e *opaqueError) Permanent() bool { return e.permanent }

// permanent classifies with the engine's predicate, or reads an opaque
// error's classification.
func (e *Engine) permanent(err error) bool {
	if oe, ok := errors.AsType[*opaqueError](err); ok {
		return oe.permanent
	}
	return e.isPermanent(err)
}

// pending is permanent's twin for "Entra has not replicated it yet".
func (e *Engine) pending(err error) bool {
	if oe, ok := errors.AsType[*opaqueError](err); ok {
		return oe.pending
	}
	return e.isPending(err)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
