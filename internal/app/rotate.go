package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// RotateObserver narrates a Rotate call: the CLI prints it, the API may
// stream it. Every method is called from the goroutine rotating that
// application, so calls for different applications interleave.
type RotateObserver interface {
	// Starting is called before an application's run is journaled.
	Starting(app ApplicationRef, policy string)
	// Step is called after each journal write of the application's run,
	// before the side effect that follows it.
	Step(run domain.Run, step domain.Step)
	// Finished is called with each application's result.
	Finished(r RotateResult)
}

// RotateResult is what one application's rotation came to.
type RotateResult struct {
	Application ApplicationRef  `json:"application"`
	Policy      string          `json:"policy"`
	RunID       string          `json:"run_id,omitempty"`
	State       domain.RunState `json:"state,omitempty"`
	RetireAt    time.Time       `json:"retire_at,omitzero"`
	// Error says why it failed (rotor's own words, never a secret); Err
	// is the error itself for errors.As.
	Error string `json:"error,omitempty"`
	Err   error  `json:"-"`
}

// Rotate rotates each application refs names, now, in this process, under
// the policy that selects it. Every reference is looked up and checked
// first (it exists in the organization, names one application, a policy
// selects it, the policy's connection may change it), so a typo fails the
// call before anything is rotated. The rotations then run concurrently,
// within the engine's per-tenant limit.
//
// It returns one result per reference, in order, and the failures joined,
// each wrapped with the application's name. obs may be nil.
func (s *Service) Rotate(ctx context.Context, scope Scope, refs []string, obs RotateObserver) (results []RotateResult, err error) {
	object := ApplicationObject(strings.Join(refs, ","))
	var runs []string
	defer func() { s.record(ctx, scope, ActionRotate, object, err, runs) }()
	objects := make([]string, len(refs))
	for i, r := range refs {
		objects[i] = ApplicationObject(r)
	}
	if err := s.begin(ctx, scope, ActionRotate, objects...); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, &InvalidError{Field: "applications", Message: "name at least one application"}
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	type job struct {
		app *domain.Application
		pol *domain.Policy
	}
	jobs := make([]job, len(refs))
	for i, ref := range refs {
		a, pol, err := s.lookup(ctx, scope, pols, ref)
		if err != nil {
			return nil, err
		}
		jobs[i] = job{a, pol}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	results = make([]RotateResult, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			ref := refOf(j.app)
			obs.Starting(ref, j.pol.Name)
			stop := s.relay.watchApp(scope.Org, j.app.TenantID, j.app.ObjectID, obs.Step)
			run, err := s.engine.Rotate(ctx, scope.Org, *j.app, *j.pol, domain.TriggerManual)
			stop()
			res := RotateResult{Application: ref, Policy: j.pol.Name, Err: err}
			if run != nil {
				res.RunID, res.State, res.RetireAt = run.ID, run.State, run.RetireAt
			}
			if err != nil {
				res.Error = err.Error()
				errs[i] = fmt.Errorf("%s: %w", j.app.DisplayName, err)
			}
			results[i] = res
			obs.Finished(res)
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.RunID != "" {
			runs = append(runs, r.RunID)
		}
	}
	return results, errors.Join(errs...)
}

type nopObserver struct{}

func (nopObserver) Starting(ApplicationRef, string) {}
func (nopObserver) Step(domain.Run, domain.Step)    {}
func (nopObserver) Finished(RotateResult)           {}

// EnqueueResult is a rotation handed to the job system.
type EnqueueResult struct {
	Application ApplicationRef `json:"application"`
	Policy      string         `json:"policy"`
}

// Enqueue checks ref like Rotate does, then hands its rotation to the job
// system, for a running server to carry out: the "rotate now" of the API
// and UI, which must not hold a request open for a rotation's minutes.
// When a rotation of the application is already queued, that one stands.
func (s *Service) Enqueue(ctx context.Context, scope Scope, ref string) (res EnqueueResult, err error) {
	object := ApplicationObject(ref)
	defer func() { s.record(ctx, scope, ActionRotate, object, err, nil) }()
	if err := s.begin(ctx, scope, ActionRotate, object); err != nil {
		return res, err
	}
	if s.jobs == nil {
		return res, &UnavailableError{What: "the job system"}
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return res, fmt.Errorf("load policies: %w", err)
	}
	a, pol, err := s.lookup(ctx, scope, pols, ref)
	if err != nil {
		return res, err
	}
	if err := s.jobs.EnqueueRotation(ctx, scope.Org, *a); err != nil {
		return res, fmt.Errorf("enqueue rotation of %s: %w", a.DisplayName, err)
	}
	return EnqueueResult{Application: refOf(a), Policy: pol.Name}, nil
}

// Retire finishes a retiring run now, if its overlap has passed: it
// removes the older credentials the run replaced, under the current policy
// of its application (with none, only older rotor-made ones go). Before
// the run's retirement time it fails with *rotation.ErrTooEarly; a run
// already finished is left as it is.
func (s *Service) Retire(ctx context.Context, scope Scope, runID string) (err error) {
	object := RunObject(runID)
	defer func() { s.record(ctx, scope, ActionRetire, object, err, []string{runID}) }()
	if err := s.begin(ctx, scope, ActionRetire, object); err != nil {
		return err
	}
	run, err := s.store.GetRun(ctx, scope.Org, runID)
	if err != nil {
		return lookupError("run", runID, err)
	}
	if err := visibleRun(scope, run, runID); err != nil {
		return err
	}
	var pol domain.Policy
	a, err := s.store.GetApplication(ctx, scope.Org, run.AppObjectID)
	switch {
	case err == nil:
		pols, err := s.policies.OrgPolicies(ctx, scope.Org)
		if err != nil {
			return fmt.Errorf("load policies: %w", err)
		}
		if p := pols.PolicyFor(*a); p != nil {
			pol = *p
		}
	case !errors.Is(err, store.ErrNotFound):
		// A store hiccup: fail rather than retire under the wrong policy.
		return fmt.Errorf("look up the application of run %s: %w", run.ID, err)
	}
	if err := s.engine.Retire(ctx, scope.Org, run.ID, pol); err != nil {
		return fmt.Errorf("retire run %s: %w", run.ID, err)
	}
	return nil
}

// Observe calls fn after every journal write of every run, of every
// organization, in this process, until stop is called (a caller serving
// one organization must filter on run.Org): the demo narrates with it, a
// live view of the UI will stream it. fn runs on the rotating goroutine
// and must be quick.
func (s *Service) Observe(fn func(run domain.Run, step domain.Step)) (stop func()) {
	return s.relay.watchAll(fn)
}

// AfterJournal is the engine's journal hook (rotation.Hooks.AfterJournal):
// the composition root wires it so Observe and Rotate's observers see each
// step.
func (s *Service) AfterJournal(run domain.Run, step domain.Step) { s.relay.publish(run, step) }

// relay fans the engine's journal hook out to observers: those of every
// run, and those of a Rotate call, keyed by application (the call knows
// the application before the engine names the run; another run of the
// same application cannot start meanwhile, the store allows one active
// run per application).
type relay struct {
	mu    sync.RWMutex
	next  int
	all   map[int]func(domain.Run, domain.Step)
	byApp map[string]map[int]func(domain.Run, domain.Step)
}

func (r *relay) watchAll(fn func(domain.Run, domain.Step)) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all = map[int]func(domain.Run, domain.Step){}
	}
	id := r.next
	r.next++
	r.all[id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.all, id)
	}
}

// watchApp calls fn with the journal steps of one organization's
// application: two organizations may connect the same tenant, and one
// must never see the other's runs.
func (r *relay) watchApp(org domain.OrgID, tenantID, objectID string, fn func(domain.Run, domain.Step)) func() {
	k := relayKey(org, tenantID, objectID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byApp == nil {
		r.byApp = map[string]map[int]func(domain.Run, domain.Step){}
	}
	if r.byApp[k] == nil {
		r.byApp[k] = map[int]func(domain.Run, domain.Step){}
	}
	id := r.next
	r.next++
	r.byApp[k][id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.byApp[k], id)
		if len(r.byApp[k]) == 0 {
			delete(r.byApp, k)
		}
	}
}

func relayKey(org domain.OrgID, tenantID, objectID string) string {
	return string(org) + "/" + tenantID + "/" + objectID
}

func (r *relay) publish(run domain.Run, step domain.Step) {
	r.mu.RLock()
	fns := make([]func(domain.Run, domain.Step), 0, len(r.all)+1)
	for _, fn := range r.all {
		fns = append(fns, fn)
	}
	for _, fn := range r.byApp[relayKey(run.Org, run.TenantID, run.AppObjectID)] {
		fns = append(fns, fn)
	}
	r.mu.RUnlock()
	for _, fn := range fns {
		fn(run, step)
	}
}
