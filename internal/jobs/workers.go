package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/store"
)

// Uniqueness. River refuses a unique job while an equal one is pending or
// running; a job a killed process was running stays "running" until
// River's rescuer frees it (an hour later by default). So every unique key
// also holds Instance, an id drawn at each process start: a dead
// process's stuck jobs never block the new process, and the duplicates
// this allows (at most one per restart) are harmless, because the store
// lets only one run hold an application, the rotate worker asks Decide
// again, and Retire is idempotent.

// pendingStates are the states that make a rotate job a duplicate: not
// completed, so the next rotation can be enqueued once this one is done.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// RotateArgs asks for one rotation of an application. There is at most one
// pending rotate job per application (and recovered run), and one more
// when a person asked for it (Manual).
type RotateArgs struct {
	Org         domain.OrgID   `json:"org" river:"unique"`
	TenantID    string         `json:"tenant_id" river:"unique"`
	AppObjectID string         `json:"app_object_id" river:"unique"`
	Trigger     domain.Trigger `json:"trigger"`
	// Replaces is the abandoned run this rotation recovers. It is part of
	// the unique key so that recovery is never swallowed by a job the dead
	// process left behind.
	Replaces string `json:"replaces,omitempty" river:"unique"`
	// Urgent marks a rotation that must not wait (a removed rotor secret:
	// consumers hold a dead one). It is part of the unique key, so a
	// renewal already queued for later (jitter) cannot swallow it; that
	// one finds the application not due when its time comes.
	Urgent bool `json:"urgent,omitempty" river:"unique"`
	// Manual marks a person's Rotate now. It is part of the unique key
	// for the same reason: a planned rotation queued for later (jitter),
	// or one still waiting for its tenant's slot to read Entra before its
	// run exists, must not swallow it, since the person waits for a run
	// now. Whichever of the two starts second finds the application held
	// by the other's run, or no longer due, and does nothing.
	Manual   bool   `json:"manual,omitempty" river:"unique"`
	Instance string `json:"instance" river:"unique"`
}

// Kind implements river.JobArgs.
func (RotateArgs) Kind() string { return KindRotate }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RotateArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

// RetireArgs asks for the retirement of a run, scheduled at its RetireAt.
type RetireArgs struct {
	Org      domain.OrgID `json:"org" river:"unique"`
	RunID    string       `json:"run_id" river:"unique"`
	Instance string       `json:"instance" river:"unique"`
}

// Kind implements river.JobArgs.
func (RetireArgs) Kind() string { return KindRetire }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per run in
// every state but discarded/cancelled, many attempts (retiring is safe and
// must eventually happen).
func (RetireArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PlanArgs runs the planner once, for Org or, when it is empty, for every
// organization.
type PlanArgs struct {
	Org      domain.OrgID `json:"org" river:"unique"`
	Instance string       `json:"instance" river:"unique"`
}

// Kind implements river.JobArgs.
func (PlanArgs) Kind() string { return KindPlan }

// InsertOpts implements river.JobArgsWithInsertOpts: one pending plan at a
// time, no retries (the next period is the retry).
func (PlanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

// SyncArgs runs an inventory sync of every connection once, of Org or,
// when it is empty, of every organization.
type SyncArgs struct {
	Org      domain.OrgID `json:"org" river:"unique"`
	Instance string       `json:"instance" river:"unique"`
}

// Kind implements river.JobArgs.
func (SyncArgs) Kind() string { return KindSync }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type rotateWorker struct {
	river.WorkerDefaults[RotateArgs]
	j *Jobs
}

// Timeout leaves room for the verification deadline and the sinks.
func (w *rotateWorker) Timeout(*river.Job[RotateArgs]) time.Duration {
	return w.j.cfg.Engine.VerifyTimeout() + 10*time.Minute
}

// Work hands the request to the engine (rotation.Engine.Handle decides
// whether and how to rotate) and tells River what to do with the job.
func (w *rotateWorker) Work(ctx context.Context, job *river.Job[RotateArgs]) (err error) {
	defer func() { w.j.emit(KindRotate, err) }()
	a := job.Args
	log := w.j.log.With("job", job.ID, "app", a.AppObjectID, "tenant", a.TenantID, "trigger", string(a.Trigger))
	// A person asked for this rotation, perhaps a moment after changing
	// the application's settings on another replica: decide with the
	// policies and settings as they are now, not as cached (a plan's jobs
	// use the set their plan read).
	if r, ok := w.j.cfg.Policies.(PolicyRefresher); ok && a.Trigger == domain.TriggerManual {
		if err := r.Refresh(ctx, a.Org); err != nil {
			return fmt.Errorf("read policies: %w", err)
		}
	}
	out, run, err := w.j.cfg.Engine.Handle(ctx, rotation.Request{
		Org: a.Org, TenantID: a.TenantID, AppObjectID: a.AppObjectID, Trigger: a.Trigger, Replaces: a.Replaces, RequestedAt: job.CreatedAt,
	}, w.j.cfg.Policies)
	if err != nil {
		return err
	}
	switch out {
	case rotation.OutcomeGone:
		log.Info("application is gone from the inventory; nothing to rotate")
		return river.JobCancel(fmt.Errorf("application %s/%s is not in the inventory", a.TenantID, a.AppObjectID))
	case rotation.OutcomeRotated:
		log.Info("rotation verified; retirement scheduled", "run", run.ID, "retire_at", run.RetireAt)
	case rotation.OutcomeFailed, rotation.OutcomeHandedOver:
		// A failed run is an answer, journaled with its reason; the
		// planner tries again after its failure back-off, so River must
		// not retry it a minute later.
		log.Warn("rotation "+string(out), "run", run.ID)
	default:
		log.Info("nothing to rotate", "outcome", string(out), "replaces", a.Replaces)
	}
	return nil
}

type retireWorker struct {
	river.WorkerDefaults[RetireArgs]
	j *Jobs
}

func (w *retireWorker) Timeout(*river.Job[RetireArgs]) time.Duration { return 5 * time.Minute }

func (w *retireWorker) Work(ctx context.Context, job *river.Job[RetireArgs]) (err error) {
	defer func() { w.j.emit(KindRetire, err) }()
	j := w.j
	err = j.cfg.Engine.RetireRun(ctx, job.Args.Org, job.Args.RunID, j.cfg.Policies)
	if errors.Is(err, store.ErrNotFound) {
		return river.JobCancel(err)
	}
	var early *rotation.ErrTooEarly
	switch {
	case errors.As(err, &early):
		return river.JobSnooze(max(early.RetireAt.Sub(j.clock.Now()), time.Second))
	case rotation.IsPermanentFailure(err):
		return river.JobCancel(err)
	}
	return err
}

// RecoverArgs takes over the runs of processes whose lease expired, in Org
// or, when it is empty, in every organization.
type RecoverArgs struct {
	Org      domain.OrgID `json:"org" river:"unique"`
	Instance string       `json:"instance" river:"unique"`
}

// Kind implements river.JobArgs.
func (RecoverArgs) Kind() string { return KindRecover }

// InsertOpts implements river.JobArgsWithInsertOpts: one pending at a
// time, no retries (the next period is the retry).
func (RecoverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type recoverWorker struct {
	river.WorkerDefaults[RecoverArgs]
	j *Jobs
}

func (w *recoverWorker) Timeout(*river.Job[RecoverArgs]) time.Duration { return 10 * time.Minute }

func (w *recoverWorker) Work(ctx context.Context, job *river.Job[RecoverArgs]) (err error) {
	defer func() { w.j.emit(KindRecover, err) }()
	return w.j.recoverAll(ctx, job.Args.Org)
}

// SweepSessionsArgs deletes the expired UI sessions of every
// organization. It has no instance: any replica's sweep serves all.
type SweepSessionsArgs struct{}

// Kind implements river.JobArgs.
func (SweepSessionsArgs) Kind() string { return KindSweepSessions }

// InsertOpts implements river.JobArgsWithInsertOpts: one pending at a
// time, no retries (the next period is the retry).
func (SweepSessionsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueControl, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type sweepWorker struct {
	river.WorkerDefaults[SweepSessionsArgs]
	j *Jobs
}

func (w *sweepWorker) Timeout(*river.Job[SweepSessionsArgs]) time.Duration { return 5 * time.Minute }

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepSessionsArgs]) (err error) {
	defer func() { w.j.emit(KindSweepSessions, err) }()
	j := w.j
	if j.cfg.SweepSessions == nil {
		return nil
	}
	return j.eachOrg(ctx, "", "session sweep", func(org domain.OrgID) error {
		n, err := j.cfg.SweepSessions(ctx, org)
		if n > 0 {
			j.log.Info("expired sessions deleted", "org", org, "sessions", n)
		}
		return err
	})
}

// SweepSessions runs the session sweep now, in this process, outside
// River: for tests and tools.
func (j *Jobs) SweepSessions(ctx context.Context) error {
	return (&sweepWorker{j: j}).Work(ctx, nil)
}

type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	j *Jobs
}

func (w *planWorker) Timeout(*river.Job[PlanArgs]) time.Duration { return 10 * time.Minute }

// planBatch is how many rotate jobs one InsertMany carries.
const planBatch = 500

func (w *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) (err error) {
	defer func() { w.j.emit(KindPlan, err) }()
	return w.j.eachOrg(ctx, job.Args.Org, "planning", func(org domain.OrgID) error { return w.j.plan(ctx, org) })
}

// PolicyRefresher is a PolicySource that caches; the planner asks it to
// read an organization's policies afresh at the start of each plan, so a
// plan sees one consistent set.
type PolicyRefresher interface {
	Refresh(ctx context.Context, org domain.OrgID) error
}

// plan enqueues a rotation for every due application of org.
func (j *Jobs) plan(ctx context.Context, org domain.OrgID) error {
	if r, ok := j.cfg.Policies.(PolicyRefresher); ok {
		if err := r.Refresh(ctx, org); err != nil {
			return fmt.Errorf("read policies: %w", err)
		}
	}
	// The due applications come a page at a time and only what their jobs
	// need is kept (~100 bytes each): an organization being adopted has every
	// application due, and holding them all (each with its credentials
	// and its decision) cost more memory than the rest of rotor together.
	// The arguments are then enqueued earliest deadline first, as Due
	// orders them: the job queue hands them out in that order, so under
	// throttling the consumers who lose their credential soonest come
	// first.
	type pending struct {
		deadline int64 // Unix nanoseconds
		tenant   string
		objectID string
		trigger  domain.Trigger
	}
	var todo []pending
	tenants := map[string]string{} // one copy of each tenant id
	err := j.cfg.Engine.EachDue(ctx, org, j.cfg.Policies, func(page []rotation.DueApp) error {
		for _, d := range page {
			tn, ok := tenants[d.App.TenantID]
			if !ok {
				tn = d.App.TenantID
				tenants[tn] = tn
			}
			todo = append(todo, pending{d.Deadline.UnixNano(), tn, d.App.ObjectID, d.Decision.Trigger})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(todo, func(a, b pending) int { return cmp.Compare(a.deadline, b.deadline) })
	now := j.clock.Now()
	due, inserted := len(todo), 0
	for start := 0; start < len(todo); start += planBatch {
		batch := todo[start:min(start+planBatch, len(todo))]
		params := make([]river.InsertManyParams, 0, len(batch))
		for _, p := range batch {
			opts := RotateArgs{}.InsertOpts()
			// A rotor secret removed in Entra outside rotor means its
			// consumers hold a dead secret now: no spreading out.
			urgent := p.trigger == domain.TriggerRemoved
			if jit := j.jitter(); jit > 0 && !urgent {
				opts.ScheduledAt = now.Add(jit)
			}
			params = append(params, river.InsertManyParams{
				Args: RotateArgs{
					Org: org, TenantID: p.tenant, AppObjectID: p.objectID,
					Trigger: p.trigger, Urgent: urgent, Instance: j.instance,
				},
				InsertOpts: &opts,
			})
		}
		res, err := j.client.InsertMany(ctx, params)
		if err != nil {
			return fmt.Errorf("enqueue rotations: %w", err)
		}
		for _, r := range res {
			if !r.UniqueSkippedAsDuplicate {
				inserted++
			}
		}
	}
	if due > 0 {
		j.log.Info("planned rotations", "org", org, "due", due, "enqueued", inserted)
	}
	if due >= bigPlan {
		// A plan this size read and enqueued tens of thousands of rows;
		// the garbage is collected, but Go returns the pages to the
		// system only slowly, so rotor would stay tens of MiB larger for
		// minutes (BenchmarkServeRSS100k: 127–141 MiB settled instead of
		// ~90). Give them back now; a full GC of a heap this size costs
		// milliseconds, once a plan.
		debug.FreeOSMemory()
	}
	return nil
}

// bigPlan is the number of due applications from which a plan gives its
// memory back to the system at once.
const bigPlan = 10000

type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	j *Jobs
}

func (w *syncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return 30 * time.Minute }

func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) (err error) {
	defer func() { w.j.emit(KindSync, err) }()
	j := w.j
	if j.cfg.Sync == nil {
		return nil
	}
	syncErr := j.eachOrg(ctx, job.Args.Org, "inventory sync", func(org domain.OrgID) error { return j.cfg.Sync(ctx, org) })
	// Plan right away, so new applications do not wait for the next
	// period; an organization whose sync failed still plans on what it
	// knew.
	if _, err := j.client.Insert(ctx, PlanArgs{Org: job.Args.Org, Instance: j.instance}, nil); err != nil {
		return errors.Join(syncErr, fmt.Errorf("enqueue plan after sync: %w", err))
	}
	return syncErr
}
