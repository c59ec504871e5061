// Package rotation owns the crash-safe rotation state machine: it creates a
// new client secret or certificate, delivers it to every sink, verifies
// Entra accepts it, and only then retires older credentials; it recovers
// the runs a dead process left behind and tells the planner which
// applications are due.
//
// Every step is journaled in the store before the side effect that follows
// it (docs/adr/0003). The secret value, or the certificate's private key,
// lives only in memory for the length of one Rotate call: it is never
// stored, logged, journaled or put in an error (docs/adr/0033 for
// certificates).
package rotation

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// NewPassword is a client secret Entra just created. Value is the only
// copy of the secret rotor ever has.
type NewPassword struct {
	KeyID      string
	Start, End time.Time
	Value      secret.Value
}

// Directory is the part of Entra the rotation changes: one application's
// password credentials.
type Directory interface {
	// Credentials returns the application's current credentials as Entra
	// has them now.
	Credentials(ctx context.Context, objectID string) ([]domain.Credential, error)
	// AddPassword creates a client secret ending at end.
	AddPassword(ctx context.Context, objectID, displayName string, end time.Time) (NewPassword, error)
	// RemovePassword removes a credential; one already gone is success.
	RemovePassword(ctx context.Context, objectID, keyID string) error
}

// Verifier proves a client secret works by getting a token with it.
type Verifier interface {
	Verify(ctx context.Context, tenantID, clientID string, v secret.Value) error
}

// NewKey is a certificate Entra just registered on an application.
type NewKey struct {
	KeyID      string
	Start, End time.Time
}

// Prover is a certificate registered on an application together with its
// private key, held in memory: what signs Graph's proof of possession, so
// that addKey and removeKey (atomic on Graph's side) can be used instead
// of a read-modify-write of the whole keyCredentials collection.
type Prover struct {
	Cert *x509.Certificate
	Key  sink.PrivateKey
}

// CertificateDirectory is what a Directory that can also change an
// application's certificates offers (an optional interface: a Directory
// without it fails runs of kind certificate, permanently).
type CertificateDirectory interface {
	// AddCertificate registers cert (its public part only) on the
	// application under displayName. With a prover that is a currently
	// valid certificate of the application it uses addKey; otherwise a
	// keyCredentials update that keeps every existing key. A certificate
	// already registered is returned as it is.
	AddCertificate(ctx context.Context, objectID, displayName string, cert *x509.Certificate, prover *Prover) (NewKey, error)
	// RemoveCertificate removes a certificate, by removeKey when prover
	// can sign a proof, else by a keyCredentials update that keeps every
	// other key; one already gone is success.
	RemoveCertificate(ctx context.Context, objectID, keyID string, prover *Prover) error
}

// CertificateVerifier proves a certificate works by getting a token with
// it through the client-assertion flow, the way MSAL signs one (an
// optional interface of a Verifier).
type CertificateVerifier interface {
	VerifyCertificate(ctx context.Context, tenantID, clientID string, cert *sink.Certificate) error
}

// Connections hands out the Directory and Verifier of a connection, by
// organization and name: connection names are an organization's own, and
// two organizations may each have one of the same name.
type Connections interface {
	Directory(org domain.OrgID, connection string) (Directory, error)
	Verifier(org domain.OrgID, connection string) (Verifier, error)
}

// PolicySource finds the policy that governs an application, nil when none.
type PolicySource interface {
	PolicyFor(app domain.Application) *domain.Policy
}

// Hooks let tests observe (and kill the process at) every journal write.
type Hooks struct {
	// AfterJournal is called right after a journal write committed and
	// before the side effect that follows it, with the step written.
	AfterJournal func(run domain.Run, step domain.Step)
}

// RunOutcome is what one run came to, as the engine's Observer is told.
// It is a short, fixed set, fit to count by. (Outcome is what handling a
// Request came to, a different question.)
type RunOutcome string

// Run outcomes.
const (
	// RunOutcomeDone: retirement finished; the run's secret is the
	// application's current one.
	RunOutcomeDone RunOutcome = "done"
	// RunOutcomeFailedTransient: the run failed for a reason a retry may
	// mend (throttling, 5xx, network, Entra slower than verify_timeout).
	RunOutcomeFailedTransient RunOutcome = "failed_transient"
	// RunOutcomeFailedPermanent: the run failed for a reason only a human
	// can mend (permission, policy, ownership, a foreign sink target).
	RunOutcomeFailedPermanent RunOutcome = "failed_permanent"
	// RunOutcomeFailedRemoved: the run's own secret was removed from Entra
	// before its retirement (domain.FailureRemoved).
	RunOutcomeFailedRemoved RunOutcome = "failed_removed"
	// RunOutcomeAbandoned: the run was stopped (shutdown, a job timeout) or
	// its process died; a fresh run replaces it.
	RunOutcomeAbandoned RunOutcome = "abandoned"
	// RunOutcomeBusy: Rotate started no run, because another run holds the
	// application.
	RunOutcomeBusy RunOutcome = "busy"
	// RunOutcomeLeaseLost: this process lost the run to another one (its
	// lease expired) and stopped; the new holder carries on, and counts
	// how the run ends.
	RunOutcomeLeaseLost RunOutcome = "lease_lost"
)

// RunOutcomes lists every RunOutcome, so a counter of them can start each
// at zero (an alert on the first failure needs a series that was there
// before it).
func RunOutcomes() []RunOutcome {
	return []RunOutcome{
		RunOutcomeDone, RunOutcomeFailedTransient, RunOutcomeFailedPermanent, RunOutcomeFailedRemoved,
		RunOutcomeAbandoned, RunOutcomeBusy, RunOutcomeLeaseLost,
	}
}

// Observer is told what runs come to, for rotor's metrics: which outcome,
// and how long a rotation took to be safe. It is given only what is fit to
// count by (the organization, the connection, the outcome), never an
// application's name or id, let alone a secret, so nothing it does can put
// one in a time series. Each outcome is reported once, by the process
// that journaled it. Calls are made on the run's goroutine and must be
// quick.
type Observer interface {
	// Observe is called when a run ends (done, failed, abandoned), when
	// Rotate finds the application busy, and when this process loses a
	// run to another.
	Observe(org domain.OrgID, connection string, outcome RunOutcome)
	// Rotated is called when a run reaches retiring: the new secret is in
	// every sink and Entra accepts it. d is the time from planned.
	Rotated(org domain.OrgID, connection string, d time.Duration)
}

// SinkChecker learns each sink's verdict before a rotation writes to it.
type SinkChecker interface {
	// SinkChecked reports sink index of policy for the application
	// appObjectID, at target (its description, never a secret), as
	// Validate found it; ok is false with reason when the sink cannot
	// take the new secret.
	SinkChecked(org domain.OrgID, policy string, index int, appObjectID, target string, ok bool, reason string)
}

// noObserver is the Observer of an engine configured without one.
type noObserver struct{}

func (noObserver) Observe(domain.OrgID, string, RunOutcome)    {}
func (noObserver) Rotated(domain.OrgID, string, time.Duration) {}

// outcomeOf names the outcome of a run that reached a terminal state.
func outcomeOf(to domain.RunState, failure domain.FailureClass) RunOutcome {
	switch {
	case to == domain.RunDone:
		return RunOutcomeDone
	case to == domain.RunAbandoned:
		return RunOutcomeAbandoned
	case failure == domain.FailurePermanent:
		return RunOutcomeFailedPermanent
	case failure == domain.FailureRemoved:
		return RunOutcomeFailedRemoved
	}
	return RunOutcomeFailedTransient
}

// Config builds an Engine.
type Config struct {
	Store  store.Store
	Conns  Connections
	Sinks  *sink.Factory
	Clock  clock.Clock
	Logger *slog.Logger
	// VerifyTimeout bounds how long Entra may take to accept a new secret
	// (replication); default 5m.
	VerifyTimeout time.Duration
	// ConcurrencyPerTenant caps the runs touching one tenant at once
	// (Graph throttles per tenant); default 4.
	ConcurrencyPerTenant int
	// IsPending reports "Entra has not replicated the secret yet" (e.g.
	// azure.IsReplicationPending); default never.
	IsPending func(error) bool
	// IsPermanent reports an error retrying cannot fix (e.g.
	// graph.IsPolicyViolation or graph.IsForbidden); default never.
	IsPermanent func(error) bool
	// RetryTransientAfter is the first wait after a run that failed for a
	// reason retrying may mend (throttling, 5xx, network); it doubles with
	// each further failure up to an hour, and is always cut short so that
	// a retry can finish before the application's current secret ends.
	// Default 30s.
	RetryTransientAfter time.Duration
	// RetryFailedAfter keeps the planner from starting a new run for an
	// application whose last run failed less than this long ago; default 1h.
	RetryFailedAfter time.Duration
	Hooks            Hooks
	// Policies, when set, lets Recover ask a crashed run's sinks whether
	// they hold its credential (sink.Holder), so one that reached nobody is
	// removed at once instead of after the overlap.
	Policies PolicySource
	// ScheduleRetire durably schedules Retire for a run at at (River's
	// retire job). It can also be set later with SetScheduleRetire.
	ScheduleRetire func(ctx context.Context, org domain.OrgID, runID string, at time.Time) error
	// Lease is this process's lease, under which every run is held; nil
	// makes one with DefaultLeaseTTL on Store.
	Lease *Lease
	// Observer is told what runs come to (rotor's metrics); nil: nobody.
	Observer Observer
	// SinkChecks, if set, learns every sink's Validate verdict as runs
	// reach it (for /readyz: a sink rotor cannot write to is a failing
	// part until a later run's check passes).
	SinkChecks SinkChecker
	// Secrets resolves a certificate policy's bootstrap certificate
	// reference ({env}, {file}, {keyvault}) when a run needs it; nil: a
	// policy that names one fails its runs.
	Secrets sink.SecretResolver
}

// ScheduleRetireFunc durably schedules Retire of a run at a time.
type ScheduleRetireFunc = func(ctx context.Context, org domain.OrgID, runID string, at time.Time) error

// Engine runs rotations. It is safe for concurrent use.
type Engine struct {
	// started is when the engine was made: an inventory row synced after
	// it was read from Entra after any restore of the database (a
	// restore replaces the file under a stopped rotor).
	started          time.Time
	store            store.Store
	conns            Connections
	sinks            *sink.Factory
	clock            clock.Clock
	log              *slog.Logger
	verifyTimeout    time.Duration
	perTenant        int
	policies         PolicySource
	isPending        func(error) bool
	isPermanent      func(error) bool
	retryFailedAfter time.Duration
	retryTransient   time.Duration
	hooks            Hooks
	observer         Observer
	sinkChecks       SinkChecker
	secrets          sink.SecretResolver
	scheduleRetire   atomic.Pointer[ScheduleRetireFunc]
	lease            *Lease

	// backoffBase and backoffCap shape every retry loop; tests shrink them.
	backoffBase, backoffCap time.Duration
	// pendingPoll caps the wait between token attempts while Entra
	// answers that a new secret has not replicated yet.
	pendingPoll time.Duration
	// sinkAttempts bounds one sink write's tries after transient errors
	// (8: about half a minute of back-off): by then a credential exists
	// and earlier sinks hold it, so a consumer's brief outage (a deploy,
	// a burst of 503s) should not fail the run.
	sinkAttempts int

	mu   sync.Mutex
	sems map[string]*slots
	// driftBudget bounds one Drifts call (defaultDriftBudget).
	driftBudget time.Duration
	// retiring holds the runs this process is retiring now: the lease is
	// the process's, so a claim cannot keep two retire jobs of one run
	// (the run's own and one Recover scheduled) in this process apart.
	retiring map[string]bool
	// limited holds the applications the planner found blocked by their
	// two-secret limit, so it warns once each (notePasswordLimit).
	limited map[string]bool

	// inflight counts Rotate, Retire and Recover calls under way, so that
	// Close releases the lease only once none can still write.
	inflight sync.WaitGroup
}

// New builds an Engine, filling defaults. Store and Conns are required; a
// missing one is a wiring mistake and panics.
func New(cfg Config) *Engine {
	if cfg.Store == nil || cfg.Conns == nil {
		panic("rotation.New: Store and Conns are required")
	}
	never := func(error) bool { return false }
	e := &Engine{
		store:            cfg.Store,
		conns:            cfg.Conns,
		sinks:            cfg.Sinks,
		clock:            cfg.Clock,
		log:              cmp.Or(cfg.Logger, slog.Default()),
		verifyTimeout:    cmp.Or(cfg.VerifyTimeout, 5*time.Minute),
		perTenant:        cmp.Or(cfg.ConcurrencyPerTenant, 4),
		policies:         cfg.Policies,
		isPending:        cfg.IsPending,
		isPermanent:      cfg.IsPermanent,
		retryFailedAfter: cmp.Or(cfg.RetryFailedAfter, time.Hour),
		retryTransient:   cmp.Or(cfg.RetryTransientAfter, 30*time.Second),
		hooks:            cfg.Hooks,
		observer:         cfg.Observer,
		sinkChecks:       cfg.SinkChecks,
		secrets:          cfg.Secrets,
		backoffBase:      500 * time.Millisecond,
		backoffCap:       10 * time.Second,
		pendingPoll:      time.Second,
		sinkAttempts:     8,
		sems:             map[string]*slots{},
		driftBudget:      defaultDriftBudget,
	}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	e.started = e.now()
	e.lease = cfg.Lease
	if e.lease == nil {
		e.lease = NewLease(cfg.Store, e.clock, e.log, DefaultLeaseTTL, "engine")
	}
	if e.isPending == nil {
		e.isPending = never
	}
	if e.observer == nil {
		e.observer = noObserver{}
	}
	if e.isPermanent == nil {
		e.isPermanent = never
	}
	if cfg.ScheduleRetire != nil {
		e.SetScheduleRetire(cfg.ScheduleRetire)
	}
	return e
}

// Lease returns the process lease the engine holds its runs under.
func (e *Engine) Lease() *Lease { return e.lease }

// Close releases the process lease, so another process may take over
// what this one leaves without waiting for it to expire. It first waits,
// until ctx is done, for every Rotate, Retire and Recover under way: a
// lease released under a side effect still in flight would let another
// process take the run over while this one writes. If they do not return
// in time, the lease is left to expire instead of released.
func (e *Engine) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return e.lease.Close(ctx)
	case <-ctx.Done():
		e.lease.abandon()
		e.log.Warn("rotations still running at shutdown: the process lease is left to expire, and another rotor process takes them over after it", "ttl", e.lease.TTL())
		return nil
	}
}

// track counts one call that may write under the lease; the returned
// function ends it.
func (e *Engine) track() func() {
	e.inflight.Add(1)
	return e.inflight.Done
}

// VerifyTimeout is how long a run waits for Entra to accept a new secret;
// the job system sizes its rotate job timeout from it.
func (e *Engine) VerifyTimeout() time.Duration { return e.verifyTimeout }

// SetScheduleRetire wires the durable retire scheduler (the jobs package
// does this, since it is built after the Engine).
func (e *Engine) SetScheduleRetire(fn ScheduleRetireFunc) {
	if fn == nil {
		e.scheduleRetire.Store(nil)
		return
	}
	e.scheduleRetire.Store(&fn)
}

func (e *Engine) scheduler() ScheduleRetireFunc {
	if p := e.scheduleRetire.Load(); p != nil {
		return *p
	}
	return nil
}

// ErrBusy is returned by Rotate when another active run holds the
// application; the caller has nothing to do.
var ErrBusy = errors.New("rotation: another run holds the application")

// ErrTooEarly is returned by Retire before the run's RetireAt; the caller
// should try again at RetryAt.
type ErrTooEarly struct{ RetireAt time.Time }

func (e *ErrTooEarly) Error() string {
	return fmt.Sprintf("rotation: retirement is not due before %s", e.RetireAt.UTC().Format(time.RFC3339))
}

// RunError is a run that ended in failed (or abandoned, when its context
// was cancelled). Permanent says retrying with a
// fresh run will not help until a human changes something (a policy, an
// ownership, a sink's configuration). LeaseLost says this process lost the
// run to another one (its lease expired): it stopped without touching the
// run again, and the new holder carries on.
type RunError struct {
	RunID     string
	Message   string
	Permanent bool
	LeaseLost bool
	Err       error
}

func (e *RunError) Error() string { return fmt.Sprintf("run %s failed: %s", e.RunID, e.Message) }

// Unwrap returns the cause.
func (e *RunError) Unwrap() error { return e.Err }

// IsPermanentFailure reports whether err is a failed run retrying will not
// fix.
func IsPermanentFailure(err error) bool {
	var re *RunError
	return errors.As(err, &re) && re.Permanent
}

// beginRetire marks runID as being retired by this process; false when it
// already is.
func (e *Engine) beginRetire(runID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retiring == nil {
		e.retiring = map[string]bool{}
	}
	if e.retiring[runID] {
		return false
	}
	e.retiring[runID] = true
	return true
}

func (e *Engine) endRetire(runID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.retiring, runID)
}

// activeStates are the states in which a run holds its application.
var activeStates = domain.ActiveStates

func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

func (e *Engine) hook(run *domain.Run, step domain.Step) {
	if e.hooks.AfterJournal != nil {
		r := *run
		r.Events = nil
		e.hooks.AfterJournal(r, step)
	}
}

// acquire takes a slot of the tenant's concurrency limit, ahead of every
// waiter whose deadline is later (see slots).
func (e *Engine) acquire(ctx context.Context, tenantID string, deadline time.Time) (release func(), err error) {
	e.mu.Lock()
	sem, ok := e.sems[tenantID]
	if !ok {
		sem = newSlots(e.perTenant)
		e.sems[tenantID] = sem
	}
	e.mu.Unlock()
	return sem.acquire(ctx, deadline)
}

// transition journals a state change and updates run to match. It is
// fenced by the process lease: it fails with store.ErrLeaseLost once the
// run is not this process's any more. A transition to retiring or to an
// end releases the run.
func (e *Engine) transition(ctx context.Context, run *domain.Run, p store.TransitionRunParams) error {
	now := e.now()
	p.Org, p.RunID, p.Holder = run.Org, run.ID, e.lease.Holder()
	if p.To == domain.RunRetiring || p.To.Terminal() {
		p.Release = true
	}
	if len(p.From) == 0 {
		p.From = []domain.RunState{run.State}
	}
	p.Event.At, p.Event.State = now, p.To
	if err := e.store.TransitionRun(ctx, p); err != nil {
		return fmt.Errorf("journal %s → %s (%s): %w", run.State, p.To, p.Event.Step, err)
	}
	run.State = p.To
	run.UpdatedAt = now
	if p.NewKeyID != "" {
		run.NewKeyID = p.NewKeyID
	}
	if !p.NewEnd.IsZero() {
		run.NewEnd = p.NewEnd
	}
	if p.SinksStarted {
		run.SinksStarted = true
	}
	if !p.RetireAt.IsZero() {
		run.RetireAt = p.RetireAt
	}
	if p.Error != "" {
		run.Error = p.Error
	}
	if p.Failure != "" {
		run.Failure = p.Failure
	}
	if p.To.Terminal() {
		run.EndedAt = now
	}
	if p.Release {
		run.Holder = ""
	}
	run.Events = append(run.Events, p.Event)
	switch {
	case p.To.Terminal():
		e.observer.Observe(run.Org, run.Connection, outcomeOf(p.To, p.Failure))
	case p.To == domain.RunRetiring:
		e.observer.Rotated(run.Org, run.Connection, now.Sub(run.CreatedAt))
	}
	e.hook(run, p.Event.Step)
	return nil
}

// event journals a step without changing state, fenced like transition.
func (e *Engine) event(ctx context.Context, run *domain.Run, step domain.Step, msg string) error {
	return e.eventAt(ctx, run, step, "", msg)
}

// eventAt journals a step that concerns a sink target.
func (e *Engine) eventAt(ctx context.Context, run *domain.Run, step domain.Step, target, msg string) error {
	ev := domain.RunEvent{At: e.now(), State: run.State, Step: step, Target: target, Message: msg}
	if err := e.store.AppendRunEvent(ctx, store.AppendRunEventParams{Org: run.Org, RunID: run.ID, Holder: e.lease.Holder(), Event: ev}); err != nil {
		return fmt.Errorf("journal %s: %w", step, err)
	}
	run.Events = append(run.Events, ev)
	e.hook(run, step)
	return nil
}

// fenced runs one side effect of run (a Graph write, a sink write, a
// sink's rollout or job it waits for) only while this process holds the
// run, and ends it before anyone else could take the run over: it renews
// the lease and checks the run is still this process's (store.FenceRun),
// then runs fn, fencing again each third of the lease's TTL for as long as
// fn runs. When a renewal finds the run taken over, or cannot be made
// before a third of the TTL is left, fn's context is cancelled (the
// margin covers a request still in flight when that happens) and the
// error says why (store.ErrLeaseLost when the run was taken over).
//
// A single bound for the whole call would cut short what legitimately
// takes longer than a lease: a Kubernetes rollout, an Automation job, a
// Vercel redeploy wait for minutes.
func (e *Engine) fenced(ctx context.Context, run *domain.Run, fn func(ctx context.Context) error) error {
	p := store.FenceRunParams{Org: run.Org, RunID: run.ID, Holder: e.lease.Holder(), TTL: e.lease.TTL()}
	until, err := e.store.FenceRun(ctx, p)
	if err != nil {
		return err
	}
	// Spans, not deadlines: the store's and the engine's clock (the same
	// one) may be a fake or an offset clock, so an absolute time from it
	// means nothing to a timer or a context.
	margin := e.lease.TTL() / 3
	left := until.Sub(e.now())
	if left <= margin {
		return fmt.Errorf("the run's lease is about to expire (%s left): %w", left, errFenceExpired)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The hard stop: fn's context ends a margin before the lease would,
	// unless a renewal moved it on — whether or not a renewal call ever
	// returns (a store that stopped answering).
	expiry := time.Now().Add(left)
	stop := time.AfterFunc(left-margin, func() {
		cancel(fmt.Errorf("the run's lease could not be renewed in time: %w", errFenceExpired))
	})
	defer stop.Stop()
	renewCtx, stopRenewing := context.WithCancel(fctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			// Renew when two thirds of what is left have passed.
			t := time.NewTimer(max(time.Until(expiry)-2*margin, margin/4))
			select {
			case <-renewCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(renewCtx, max(time.Until(expiry)-margin, time.Millisecond))
			u, err := e.store.FenceRun(rctx, p)
			rcancel()
			switch {
			case err == nil:
				next := u.Sub(e.now())
				expiry = time.Now().Add(next)
				if !stop.Reset(next - margin) {
					return // the hard stop fired meanwhile: fn's context is over
				}
			case leaseLost(err):
				cancel(fmt.Errorf("the run was taken over while this side effect ran: %w", err))
				return
			}
			// Any other failure: try again; the hard stop ends fn in time.
		}
	}()
	err = fn(fctx)
	stopRenewing()
	<-renewed
	if err == nil {
		// Done before any stop: the side effect happened, and the journal
		// write that follows is fenced on its own.
		return nil
	}
	if cause := context.Cause(fctx); cause != nil && ctx.Err() == nil && fctx.Err() != nil {
		return errors.Join(err, cause)
	}
	return err
}

// errFenceExpired says a fenced side effect was stopped (or not started)
// because this process could not renew the run's lease in time. Like a
// lost lease, retrying in this process would be unsafe until the lease is
// renewed.
var errFenceExpired = fmt.Errorf("%w: its lease was not renewed in time", store.ErrLeaseLost)

// leaseLost reports whether err says this process no longer holds a run.
func leaseLost(err error) bool { return errors.Is(err, store.ErrLeaseLost) }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the jittered exponential wait before retry n (0-based):
// uniformly in [d/2, d) with d = base·2ⁿ capped at max.
func (e *Engine) backoff(n int) time.Duration {
	d := e.backoffBase
	for i := 0; i < n && d < e.backoffCap; i++ {
		d *= 2
	}
	d = min(d, e.backoffCap)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + jitter(half)
}

func jitter(d time.Duration) time.Duration { return rand.N(d) }
