package rotation

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// DueApp is an application the planner should rotate now, with the policy
// that governs it and the decision that says why.
type DueApp struct {
	App      domain.Application
	Policy   domain.Policy
	Decision domain.Decision
	// Deadline is when the application's consumers lose their credential
	// if rotor does nothing (deadlineOf): what Due orders by, and what a
	// caller of EachDue orders by to enqueue the most urgent first.
	Deadline time.Time
}

const (
	// duePageSize is how many applications Due reads per store call.
	duePageSize = 1000
	// recentRunsLimit bounds the finished runs Due reads to correct the
	// inventory between syncs (see overlay).
	recentRunsLimit = 5000
)

// Due lists the applications of org that are due for rotation now: those
// the policies govern, that no run holds, and whose domain.Decide says
// due. Applications whose last run failed less than RetryFailedAfter ago
// are left out, so a permanent problem makes one failed run an hour, not
// one a minute.
//
// The list is earliest deadline first (sortByDeadline): under throttling
// the application whose consumers lose their credential soonest is
// rotated first.
//
// It reads the inventory a page at a time and the runs in three queries,
// whatever the number of applications; the answer is all of them at once
// (EachDue gives it a page at a time).
func (e *Engine) Due(ctx context.Context, org domain.OrgID, policies PolicySource) ([]DueApp, error) {
	now := e.now()
	var out []DueApp
	err := e.eachDue(ctx, org, policies, now, DueCursor{}, func(page []DueApp) error {
		out = append(out, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortByDeadline(out, now)
	return out, nil
}

// EachDue is Due a page at a time: it calls fn with the due applications
// of each page of (at most duePageSize) applications it reads, in name
// order (not Due's deadline order: each DueApp carries its Deadline for
// a caller to order by), and stops at fn's first error, returning it.
// The planner uses it so that what it holds is one page, not every due
// application: an organization of 100,000 applications all due (a tenant
// being adopted) made Due's answer ~150 MiB, each application with its
// credentials and its decision's chain of checks, for job arguments of
// ~100 bytes each. fn must not keep the slice; its elements are fn's to
// keep.
func (e *Engine) EachDue(ctx context.Context, org domain.OrgID, policies PolicySource, fn func([]DueApp) error) error {
	return e.eachDue(ctx, org, policies, e.now(), DueCursor{}, fn)
}

// DueCursor is a position in EachDue's name order: after the application
// of this display name and object id. The zero DueCursor is the start.
type DueCursor struct{ Name, ObjectID string }

// EachDueAfter is EachDue starting after c: a paged plan listing reads
// one page of due applications per request, not the whole plan.
func (e *Engine) EachDueAfter(ctx context.Context, org domain.OrgID, policies PolicySource, c DueCursor, fn func([]DueApp) error) error {
	return e.eachDue(ctx, org, policies, e.now(), c, fn)
}

func (e *Engine) eachDue(ctx context.Context, org domain.OrgID, policies PolicySource, now time.Time, c DueCursor, fn func([]DueApp) error) error {
	rs, err := e.loadRunState(ctx, store.ListRunsParams{Org: org})
	if err != nil {
		return err
	}
	var out []DueApp
	p := store.ListApplicationsParams{Org: org, ManageableOnly: true, Limit: duePageSize, AfterName: c.Name, AfterObjectID: c.ObjectID}
	for {
		apps, err := e.store.ListApplications(ctx, p)
		if err != nil {
			return fmt.Errorf("rotation: list applications: %w", err)
		}
		out = out[:0]
		for _, app := range apps {
			pol := policies.PolicyFor(app)
			if pol == nil || !pol.Enabled {
				continue
			}
			d, ok := rs.decide(app, pol, now, e.backoffs())
			e.notePasswordLimit(org, app, d)
			if !ok {
				continue
			}
			if d.Trigger == domain.TriggerRemoved {
				e.log.Warn("a rotor credential was removed in Entra outside rotor; its consumers hold a dead secret, so the application is rotated now",
					"org", string(org), "tenant", app.TenantID, "app", app.ObjectID, "app_name", app.DisplayName, "detail", d.Message)
			}
			out = append(out, DueApp{App: app, Policy: *pol, Decision: d, Deadline: deadlineOf(app, pol.Kind, now)})
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
		if len(apps) < duePageSize {
			return nil
		}
		last := apps[len(apps)-1]
		p.AfterName, p.AfterObjectID = last.DisplayName, last.ObjectID
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// notePasswordLimit logs, once per application while it lasts, that a due
// application cannot be rotated because Entra would refuse a third secret:
// a human must act, and explain alone would not tell the team. The planner
// looks every plan_interval, so it remembers what it said.
func (e *Engine) notePasswordLimit(org domain.OrgID, app domain.Application, d domain.Decision) {
	k := string(org) + "/" + appKey(app.TenantID, app.ObjectID)
	blocked := d.Reason == "PasswordLimit"
	e.mu.Lock()
	was := e.limited[k]
	switch {
	case blocked && !was:
		if e.limited == nil {
			e.limited = map[string]bool{}
		}
		e.limited[k] = true
	case !blocked && was:
		delete(e.limited, k)
	}
	e.mu.Unlock()
	if blocked && !was {
		e.log.Warn("an application is due but cannot be rotated: Entra lets it hold only two secrets and neither may go yet; a human must remove one",
			"org", string(org), "tenant", app.TenantID, "app", app.ObjectID, "app_name", app.DisplayName, "detail", d.Message)
	}
}

// Decide answers "is app due now, and why?" for one application, with the
// runs rotor journaled since the last inventory sync taken into account.
// The rotate worker asks it again just before rotating, so a job planned a
// few seconds before a manual rotation does not rotate twice.
func (e *Engine) Decide(ctx context.Context, org domain.OrgID, app domain.Application, policy *domain.Policy) (domain.Decision, error) {
	rs, err := e.loadRunState(ctx, store.ListRunsParams{Org: org, AppObjectID: app.ObjectID})
	if err != nil {
		return domain.Decision{}, err
	}
	return rs.decideOne(app, policy, e.now()), nil
}

// runState is what the planner knows about runs: the active one of each
// application, and the newest finished and newest successful ones.
type runState struct {
	active     map[string]*domain.Run
	newest     map[string]*domain.Run // retiring, done or failed
	failStreak map[string]int         // failed runs in a row, newest first
	newestGood map[string]*domain.Run // retiring or done
	// unfinished holds the ids of failed and abandoned runs: their secrets
	// (left in place when a sink may hold them) never count as the
	// application's current one.
	unfinished map[string]bool
	// known holds the id of every run read.
	known map[string]bool
}

func appKey(tenantID, objectID string) string { return tenantID + "/" + objectID }

func (e *Engine) loadRunState(ctx context.Context, base store.ListRunsParams) (*runState, error) {
	rs := &runState{active: map[string]*domain.Run{}, newest: map[string]*domain.Run{}, newestGood: map[string]*domain.Run{}, unfinished: map[string]bool{}, failStreak: map[string]int{}, known: map[string]bool{}}
	p := base
	p.States = activeStates
	active, err := e.store.ListRuns(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("rotation: list active runs: %w", err)
	}
	for i := range active {
		rs.active[appKey(active[i].TenantID, active[i].AppObjectID)] = &active[i]
		rs.known[active[i].ID] = true
	}
	p = base
	p.States = []domain.RunState{domain.RunRetiring, domain.RunDone, domain.RunFailed, domain.RunAbandoned}
	p.Limit = recentRunsLimit
	finished, err := e.store.ListRuns(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("rotation: list recent runs: %w", err)
	}
	// Newest first, but do not rely on the store's tie-breaking. Newest
	// is the journal's order (Seq) within an application: a run started
	// on a host whose clock is behind carries an earlier timestamp though
	// it came later. Runs without a sequence (a rotor from before
	// migration 0006) are ordered by their timestamps.
	sort.SliceStable(finished, func(i, j int) bool {
		a, b := &finished[i], &finished[j]
		if ka, kb := appKey(a.TenantID, a.AppObjectID), appKey(b.TenantID, b.AppObjectID); ka != kb {
			return ka < kb
		}
		if a.Seq != 0 && b.Seq != 0 {
			return a.Seq > b.Seq
		}
		return a.CreatedAt.After(b.CreatedAt)
	})
	closed := map[string]bool{} // a success ends the failure streak
	for i := range finished {
		r := &finished[i]
		k := appKey(r.TenantID, r.AppObjectID)
		rs.known[r.ID] = true
		if r.State == domain.RunAbandoned {
			rs.unfinished[r.ID] = true
			continue
		}
		if _, ok := rs.newest[k]; !ok {
			rs.newest[k] = r
		}
		if !closed[k] {
			if r.State == domain.RunFailed {
				rs.failStreak[k]++
			} else {
				closed[k] = true
			}
		}
		if r.State == domain.RunFailed {
			rs.unfinished[r.ID] = true
			continue
		}
		if r.NewKeyID == "" {
			continue
		}
		if _, ok := rs.newestGood[k]; !ok {
			rs.newestGood[k] = r
		}
	}
	return rs, nil
}

// decideOne is domain.Decide on the inventory corrected by the journal,
// with a removed rotor credential (overlay) making the application due.
func (rs *runState) decideOne(app domain.Application, pol *domain.Policy, now time.Time) domain.Decision {
	k := appKey(app.TenantID, app.ObjectID)
	corrected, removed := rs.overlay(app)
	d := domain.Decide(domain.DecideInput{App: corrected, Policy: pol, Now: now, ActiveRun: rs.active[k], Held: held(app.Credentials, corrected.Credentials)})
	var why string
	switch last := rs.newest[k]; {
	case removed != nil:
		why = fmt.Sprintf("the sync at %s did not list it", app.SyncedAt.UTC().Format(time.RFC3339))
	case last != nil && last.State == domain.RunFailed && last.Failure == domain.FailureRemoved:
		// Its retirement found it gone.
		removed, why = last, "its retirement found it gone"
	default:
		return d
	}
	// Only where the chain got as far as the credentials (a policy, an
	// owner, no run in progress) does a removed credential matter.
	switch d.Reason {
	case "Adoption", "NotYetDue", "RenewalTimeReached":
		return removedCheck(d, removed, why, now)
	}
	return d
}

// held is what Entra holds for an application as best rotor knows: the
// inventory's credentials (failed runs' secrets included — they count
// against a password limit) and what the journal added since the sync.
func held(inventory, corrected []domain.Credential) []domain.Credential {
	out := slices.Clone(inventory)
	for _, c := range corrected {
		if !slices.ContainsFunc(out, func(o domain.Credential) bool { return o.KeyID == c.KeyID }) {
			out = append(out, c)
		}
	}
	if out == nil {
		out = []domain.Credential{}
	}
	return out
}

// backoff is how the planner waits after failed runs.
type backoff struct {
	// permanent is the first wait after a failure a human must mend;
	// transient the first after one a retry may mend.
	permanent, transient time.Duration
	// finish is how long a rotation may take once started (the
	// verification deadline and a margin): a transient retry is due that
	// long before the current secret ends.
	finish time.Duration
}

func (e *Engine) backoffs() backoff {
	return backoff{permanent: e.retryFailedAfter, transient: e.retryTransient, finish: e.verifyTimeout + time.Minute}
}

// decide runs domain.Decide for one application (inventory corrected by
// the journal) and applies the failure back-off: an application due now but
// held back after a failed run comes back not due, with a FailureBackoff
// check saying until when and why. A permanent failure (permission, policy,
// ownership, a foreign target) waits long — a human must act; a transient
// one (throttling, 5xx, network) retries soon, doubling, and never later
// than the current secret's end allows. It reports whether the planner
// should rotate.
func (rs *runState) decide(app domain.Application, pol *domain.Policy, now time.Time, bo backoff) (domain.Decision, bool) {
	k := appKey(app.TenantID, app.ObjectID)
	d := rs.decideOne(app, pol, now)
	if !d.Due {
		return d, false
	}
	last := rs.newest[k]
	if last == nil || last.State != domain.RunFailed || last.Failure == domain.FailureRemoved {
		return d, true
	}
	ended := last.EndedAt
	if ended.IsZero() {
		ended = last.UpdatedAt
	}
	var retry time.Time
	var why string
	if last.Failure == domain.FailureTransient {
		retry = ended.Add(transientBackoff(bo.transient, rs.failStreak[k]))
		why = "a retry may mend it"
		if end, ok := currentEnd(app, pol, now); ok {
			if latest := end.Add(-bo.finish); retry.After(latest) {
				retry = latest
				why = fmt.Sprintf("retried early so it can finish before the current secret ends at %s", end.UTC().Format(time.RFC3339))
			}
		}
	} else {
		retry = ended.Add(failureBackoff(bo.permanent, rs.failStreak[k]))
		why = "a human must act first; see the error"
	}
	if !now.Before(retry) {
		return d, true
	}
	msg := fmt.Sprintf("run %s failed (%s: %s); rotor tries again after %s (%s)", last.ID, cmp.Or(string(last.Failure), string(domain.FailurePermanent)), last.Error, retry.Format(time.RFC3339), why)
	d.Due, d.DueAt, d.Reason, d.Message = false, retry, "FailureBackoff", msg
	d.Checks = append(d.Checks, domain.Check{Name: "FailureBackoff", Result: domain.CheckStop, Reason: "FailureBackoff", Message: msg})
	return d, false
}

// transientBackoff is the wait after the last of n transient failures in
// a row: base, doubling, at most an hour.
func transientBackoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, max(base, time.Hour))
}

// currentEnd is when the secret consumers use now ends: the newest rotor
// credential of the policy's kind, else the latest-ending credential of
// that kind that still works.
func currentEnd(app domain.Application, pol *domain.Policy, now time.Time) (time.Time, bool) {
	if pol == nil {
		return time.Time{}, false
	}
	if c, ok := domain.NewestRotorCredential(app.Credentials, pol.Kind); ok {
		return c.End, true
	}
	var end time.Time
	for _, c := range app.Credentials {
		if c.Kind == pol.Kind && c.End.After(now) && c.End.After(end) {
			end = c.End
		}
	}
	return end, !end.IsZero()
}

// failureBackoff is how long the planner waits after the last of n failed
// runs in a row: base, doubling with each further failure, at most a day
// (each failed run may leave a secret that a sink received, which only the
// next successful run retires).
func failureBackoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < 24*time.Hour; i++ {
		d *= 2
	}
	return min(d, max(base, 24*time.Hour))
}

// overlay corrects the inventory with the journal before a decision. It
// adds the secret of the application's newest successful run when the
// inventory does not show it yet: the inventory is only as fresh as the
// last sync, and without this the planner would rotate again every minute
// until the next one. It never keeps what Entra no longer has: once a sync
// that started after the run had certainly created its secret (the run's
// last update) still does not list it, the secret was removed outside
// rotor, and the overlay reports it (removed) instead of adding it —
// unless Entra lists a newer rotor secret of a run the journal does not
// know, which is what a database restored from an older backup sees (see
// domain.UnjournaledRotorCredential). And it
// hides the secrets of failed and abandoned runs: one that never verified
// must not pass for the application's current secret and push its renewal
// months away.
func (rs *runState) overlay(app domain.Application) (_ domain.Application, removed *domain.Run) {
	if slices.ContainsFunc(app.Credentials, func(c domain.Credential) bool { return rs.unfinished[c.RunID()] }) {
		app.Credentials = slices.DeleteFunc(slices.Clone(app.Credentials), func(c domain.Credential) bool { return rs.unfinished[c.RunID()] })
	}
	r := rs.newestGood[appKey(app.TenantID, app.ObjectID)]
	if r == nil {
		return app, nil
	}
	if slices.ContainsFunc(app.Credentials, func(c domain.Credential) bool { return c.KeyID == r.NewKeyID }) {
		return app, nil
	}
	if app.SyncedAt.After(r.UpdatedAt) {
		if _, ok := domain.UnjournaledRotorCredential(app.Credentials, r.Kind, r.CreatedAt, func(id string) bool { return rs.known[id] }); ok {
			// Entra has a newer rotor secret than the journal knows of: a
			// run the journal lost (the database was restored from a
			// backup taken before it) made it, and its retirement removed
			// this one. Nobody removed it outside rotor; the newer secret
			// is the application's current one.
			return app, nil
		}
		return app, r
	}
	app.Credentials = append(slices.Clone(app.Credentials), domain.Credential{
		KeyID:       r.NewKeyID,
		Kind:        r.Kind,
		DisplayName: domain.DisplayNameFor(r.ID),
		Start:       r.CreatedAt,
		End:         r.NewEnd,
	})
	return app, nil
}

// removedCheck turns a decision about an application whose newest rotor
// credential Entra no longer has into "due now, because it was removed":
// its consumers hold a secret Entra refuses.
func removedCheck(d domain.Decision, r *domain.Run, why string, now time.Time) domain.Decision {
	msg := fmt.Sprintf("the secret run %s created (%s) is no longer in Entra (%s): it was removed outside rotor, so its consumers hold a dead secret; rotating now",
		r.ID, r.NewKeyID, why)
	d.Checks = append(d.Checks[:len(d.Checks)-1], domain.Check{Name: "RotorCredentialRemoved", Result: domain.CheckStop, Reason: "RotorCredentialRemoved", Message: msg})
	d.Due, d.DueAt, d.Trigger, d.Reason, d.Message = true, now, domain.TriggerRemoved, "RotorCredentialRemoved", msg
	return d
}
