// Package jobs wires rotor's background work onto River: the periodic
// planner and inventory sync, one rotate job per due application, and the
// retire job each rotation schedules at the end of its overlap. River keeps
// the jobs durable (on SQLite by default, on PostgreSQL for several
// replicas); the rotation journal in the store stays the truth about runs,
// and Start reconciles it first.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/store"
)

// Config builds the job system.
type Config struct {
	// River is the database River keeps its jobs in (SQLite or
	// Postgres), its schema migrated beforehand (Driver.Migrate: on
	// PostgreSQL as the owner role, while River then runs as the
	// application role).
	River    Driver
	Engine   *rotation.Engine
	Store    store.Store
	Policies rotation.PolicySource
	// Sync syncs the inventory of every connection of one organization;
	// nil disables the sync job.
	Sync func(ctx context.Context, org domain.OrgID) error
	// Orgs lists the organizations to plan, sync and recover for; nil
	// means every organization in Store (ListOrgs), read afresh at every
	// periodic job, so an organization created later is served without a
	// restart.
	Orgs func(ctx context.Context) ([]domain.OrgID, error)
	// PlanInterval (default 1m) and SyncInterval (default 1m) space the
	// periodic jobs; both also run at start.
	PlanInterval, SyncInterval time.Duration
	// Jitter spreads planned rotations uniformly over [0, Jitter); zero or
	// negative means none (the configuration's default is 30s).
	Jitter time.Duration
	// Workers is how many jobs run at once (default 10); the engine's
	// per-tenant limit still applies inside.
	Workers int
	Logger  *slog.Logger
	Clock   clock.Clock
	// OnEvent, if set, is called after every job and start-up step with its
	// kind ("recover", "plan", "sync", "rotate", "retire") and error: a
	// test signal, so tests wait on events rather than sleeps.
	OnEvent func(kind string, err error)
	// RecoverInterval spaces the periodic recovery that takes over the
	// runs of processes whose lease expired (default: the engine's lease
	// TTL).
	RecoverInterval time.Duration
	// SweepSessions deletes one organization's expired UI sessions
	// (session.Manager.Sweep) and says how many; nil (sign-in not
	// configured) disables the sweep job.
	SweepSessions func(ctx context.Context, org domain.OrgID) (int, error)
	// SweepInterval spaces the sweep (default 1h). An expired session is
	// refused whether or not it was swept: the sweep only keeps the table
	// small.
	SweepInterval time.Duration
}

// riverClient is what rotor uses of a River client, whichever driver (and
// so transaction type) it runs on.
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

var (
	_ riverClient = (*river.Client[*sql.Tx])(nil)
	_ riverClient = (*river.Client[pgx.Tx])(nil)
)

// Jobs is rotor's job system.
type Jobs struct {
	cfg    Config
	client riverClient
	log    *slog.Logger
	clock  clock.Clock
	// instance identifies this process's jobs in their unique keys (see
	// uniqueness in args.go).
	instance string
}

// QueueControl holds the planner and the inventory sync, apart from the
// rotations: a wave of rotations filling every worker must not delay the
// plan that finds the next ones (or the sync that finds new applications).
const QueueControl = "control"

// Kinds of job.
const (
	KindRotate = "rotate"
	KindRetire = "retire"
	KindPlan   = "plan"
	KindSync   = "sync"
	// KindRecover takes over the runs of dead processes: at start-up and
	// periodically.
	KindRecover = "recover"
	// KindSweepSessions deletes expired UI sessions, periodically.
	KindSweepSessions = "sweep-sessions"
)

// New builds the client on cfg.River, whose schema must be up to date
// (Driver.Migrate); it does not start working until Start. It wires the
// engine's ScheduleRetire to insert retire jobs, so a client that is never
// started still schedules retirements (e.g. `rotor rotate`).
func New(ctx context.Context, cfg Config) (*Jobs, error) {
	if cfg.River.client == nil || cfg.Engine == nil || cfg.Store == nil || cfg.Policies == nil {
		return nil, errors.New("jobs: River, Engine, Store and Policies are required")
	}
	if cfg.Orgs == nil {
		st := cfg.Store
		cfg.Orgs = func(ctx context.Context) ([]domain.OrgID, error) {
			orgs, err := st.ListOrgs(ctx)
			if err != nil {
				return nil, err
			}
			ids := make([]domain.OrgID, len(orgs))
			for i, o := range orgs {
				ids[i] = o.ID
			}
			return ids, nil
		}
	}
	cfg.PlanInterval = cmp.Or(cfg.PlanInterval, time.Minute)
	cfg.SyncInterval = cmp.Or(cfg.SyncInterval, 15*time.Minute)
	cfg.Workers = cmp.Or(cfg.Workers, 10)
	cfg.RecoverInterval = cmp.Or(cfg.RecoverInterval, cfg.Engine.Lease().TTL())
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, time.Hour)
	if cfg.Workers < 0 {
		cfg.Workers = 10
	}
	j := &Jobs{cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default()), clock: cfg.Clock}
	if j.clock == nil {
		j.clock = clock.Real{}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	j.instance = id.String()

	workers := river.NewWorkers()
	river.AddWorker(workers, &rotateWorker{j: j})
	river.AddWorker(workers, &retireWorker{j: j})
	river.AddWorker(workers, &planWorker{j: j})
	river.AddWorker(workers, &syncWorker{j: j})
	river.AddWorker(workers, &recoverWorker{j: j})
	river.AddWorker(workers, &sweepWorker{j: j})

	periodic := []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(cfg.PlanInterval), func() (river.JobArgs, *river.InsertOpts) {
			return PlanArgs{Instance: j.instance}, nil
		}, &river.PeriodicJobOpts{ID: KindPlan, RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(cfg.RecoverInterval), func() (river.JobArgs, *river.InsertOpts) {
			return RecoverArgs{Instance: j.instance}, nil
		}, &river.PeriodicJobOpts{ID: KindRecover}),
	}
	if cfg.Sync != nil {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.SyncInterval), func() (river.JobArgs, *river.InsertOpts) {
			return SyncArgs{Instance: j.instance}, nil
		}, &river.PeriodicJobOpts{ID: KindSync, RunOnStart: true}))
	}
	if cfg.SweepSessions != nil {
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepInterval), func() (river.JobArgs, *river.InsertOpts) {
			return SweepSessionsArgs{}, nil
		}, &river.PeriodicJobOpts{ID: KindSweepSessions}))
	}

	rc := &river.Config{
		Logger: quiet(j.log),
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cfg.Workers},
			QueueControl:       {MaxWorkers: 2},
		},
		Workers:      workers,
		PeriodicJobs: periodic,
	}
	if _, real := j.clock.(clock.Real); !real {
		// River schedules by its own clock; make it rotor's, so retire
		// jobs fire at RetireAt as rotor measures it (the demo's offset
		// clock jumps forward).
		rc.Test.Time = riverTime{j.clock}
	}
	if j.client, err = cfg.River.client(rc); err != nil {
		return nil, fmt.Errorf("jobs: river client: %w", err)
	}
	cfg.Engine.SetScheduleRetire(j.ScheduleRetire)
	return j, nil
}

// Driver is the database River keeps its jobs in: SQLite or PostgreSQL
// (SQLite and Postgres make one). The rest of the package does not know
// which; River's drivers differ in their transaction type only, which
// rotor never handles.
type Driver struct {
	name     string
	client   func(*river.Config) (riverClient, error)
	migrator func(*slog.Logger) (migrator, error)
}

// migrator is what rotor uses of a River migrator, whichever driver it
// runs on.
type migrator interface {
	Migrate(ctx context.Context, direction rivermigrate.Direction, opts *rivermigrate.MigrateOpts) (*rivermigrate.MigrateResult, error)
	ExistingVersions(ctx context.Context) ([]rivermigrate.Migration, error)
	AllVersions() []rivermigrate.Migration
}

var (
	_ migrator = (*rivermigrate.Migrator[*sql.Tx])(nil)
	_ migrator = (*rivermigrate.Migrator[pgx.Tx])(nil)
)

// SQLite is River on db: a single-connection pool (SetMaxOpenConns(1))
// on the store's SQLite file or another.
func SQLite(db *sql.DB) Driver { return newDriver("sqlite", riversqlite.New(db)) }

// Postgres is River on pool, in the first schema of its search_path,
// beside rotor's: the store's pool (postgres.Store.Pool), as the
// application role, to run jobs; the owner role's to migrate.
func Postgres(pool *pgxpool.Pool) Driver { return newDriver("postgres", riverpgxv5.New(pool)) }

func newDriver[TTx any](name string, d riverdriver.Driver[TTx]) Driver {
	return Driver{
		name: name,
		client: func(rc *river.Config) (riverClient, error) {
			c, err := river.NewClient(d, rc)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return c, nil
		},
		migrator: func(log *slog.Logger) (migrator, error) {
			m, err := rivermigrate.New(d, &rivermigrate.Config{Logger: quiet(cmp.Or(log, slog.Default()))})
			if err != nil {
				return nil, fmt.Errorf("jobs: river migrator: %w", err)
			}
			return m, nil
		},
	}
}

// Name is "sqlite" or "postgres".
func (d Driver) Name() string { return d.name }

// Migrate brings River's schema up to date and returns the versions it
// applied (none when it was up to date). River's migrator does not guard
// against a concurrent one, so run it under the store's migration lock
// when several processes may start at once: sqlite.Store.WithMigrationLock,
// or on PostgreSQL as a postgres.MigrateFunc (postgres.WithMigrations),
// as the owner role, which then grants the application role River's
// tables.
func (d Driver) Migrate(ctx context.Context, log *slog.Logger) ([]int, error) {
	m, err := d.migrator(log)
	if err != nil {
		return nil, err
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("jobs: migrate river schema: %w", err)
	}
	var out []int
	for _, v := range res.Versions {
		out = append(out, v.Version)
	}
	return out, nil
}

// Versions reads the River schema version the database has (0 when none)
// and the newest this rotor knows, changing nothing.
func (d Driver) Versions(ctx context.Context) (have, latest int, err error) {
	m, err := d.migrator(nil)
	if err != nil {
		return 0, 0, err
	}
	existing, err := m.ExistingVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("jobs: read river schema version: %w", err)
	}
	if len(existing) > 0 {
		have = existing[len(existing)-1].Version
	}
	if all := m.AllVersions(); len(all) > 0 {
		latest = all[len(all)-1].Version
	}
	return have, latest, nil
}

// RiverLatest is the newest River schema version this rotor knows.
func RiverLatest() int {
	m, err := SQLite(nil).migrator(nil)
	if err != nil {
		return 0
	}
	all := m.AllVersions()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

// Start takes over what dead processes left (recoverAndEnqueue), then
// starts working. Cancelling ctx stops hard; use Stop for a clean
// shutdown.
func (j *Jobs) Start(ctx context.Context) error {
	j.emit(KindRecover, j.recoverAll(ctx, ""))
	// Sync (which plans when it is done) or plan at once: River's periodic
	// jobs first wait for a leader to be elected, which takes seconds, and
	// a restart should pick the wave up where it stopped without that.
	var first river.JobArgs = PlanArgs{Instance: j.instance}
	if j.cfg.Sync != nil {
		first = SyncArgs{Instance: j.instance}
	}
	if _, err := j.client.Insert(ctx, first, nil); err != nil {
		j.log.Error("enqueueing the first sync or plan failed; the periodic one will run", "error", err)
	}
	if err := j.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start river: %w", err)
	}
	return nil
}

// orgs is the organizations a job works for: the one its arguments name,
// or every organization (Config.Orgs) when they name none.
func (j *Jobs) orgs(ctx context.Context, org domain.OrgID) ([]domain.OrgID, error) {
	if org != "" {
		return []domain.OrgID{org}, nil
	}
	orgs, err := j.cfg.Orgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return orgs, nil
}

// eachOrg runs fn for each organization of the job, carrying on past an
// organization that fails: one organization's broken connection must not
// stop the others' rotations.
func (j *Jobs) eachOrg(ctx context.Context, org domain.OrgID, what string, fn func(org domain.OrgID) error) error {
	orgs, err := j.orgs(ctx, org)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range orgs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := fn(o); err != nil {
			j.log.Error(what+" failed for an organization", "org", o, "error", err)
			errs = append(errs, fmt.Errorf("organization %s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// recoverAll recovers every organization of the job (recoverAndEnqueue).
func (j *Jobs) recoverAll(ctx context.Context, org domain.OrgID) error {
	return j.eachOrg(ctx, org, "recovery", func(o domain.OrgID) error { return j.recoverAndEnqueue(ctx, o) })
}

// recoverAndEnqueue takes over the runs of processes whose lease expired
// (rotation.Engine.Recover) in org and enqueues a fresh rotation at once
// for every run it abandoned.
func (j *Jobs) recoverAndEnqueue(ctx context.Context, org domain.OrgID) error {
	abandoned, err := j.cfg.Engine.Recover(ctx, org)
	if err != nil {
		// Keep going: what was recovered is recovered, the rest is logged.
		j.log.Error("recovery was incomplete", "error", err)
	}
	var errs []error
	for _, run := range abandoned {
		_, ierr := j.client.Insert(ctx, RotateArgs{
			Org: org, TenantID: run.TenantID, AppObjectID: run.AppObjectID,
			Trigger: domain.TriggerRecovery, Replaces: run.ID, Instance: j.instance,
		}, nil)
		if ierr != nil {
			errs = append(errs, fmt.Errorf("enqueue recovery of run %s: %w", run.ID, ierr))
			continue
		}
		j.log.Info("fresh rotation enqueued for abandoned run", "org", org, "run", run.ID, "app", run.AppObjectID)
	}
	if len(errs) > 0 {
		// The planner still sees those applications (an abandoned run's
		// secret never counts as current), so carry on.
		j.log.Error("enqueueing recovery rotations failed", "error", errors.Join(errs...))
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// Stop shuts down cleanly: no new jobs are fetched and running ones may
// finish until ctx is done; then their contexts are cancelled (a rotation
// cancelled mid-way journals its failure) and Stop waits a few seconds
// more for them to return.
func (j *Jobs) Stop(ctx context.Context) error {
	err := j.client.Stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	j.log.Warn("jobs did not finish before the shutdown deadline; cancelling them")
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return j.client.StopAndCancel(hard)
}

// RotateNow enqueues an immediate manual rotation of app. When a manual
// rotation of the application is already queued or running it does
// nothing: that one will rotate (or is rotating) it. A planned one queued
// for later does not stop it (RotateArgs.Manual). Whether app may be rotated is
// the application layer's to check (app.Service.Enqueue); the worker asks
// the engine again when it runs.
func (j *Jobs) RotateNow(ctx context.Context, org domain.OrgID, app domain.Application) error {
	res, err := j.client.Insert(ctx, RotateArgs{
		Org: org, TenantID: app.TenantID, AppObjectID: app.ObjectID, Trigger: domain.TriggerManual, Manual: true, Instance: j.instance,
	}, nil)
	if err != nil {
		return fmt.Errorf("enqueue rotation of %s: %w", app.DisplayName, err)
	}
	if res.UniqueSkippedAsDuplicate {
		j.log.Info("a rotation of the application is already queued", "app", app.ObjectID)
	}
	return nil
}

// ScheduleRetire inserts the retire job of a run at at; it is what the
// engine's ScheduleRetire calls. Scheduling a run twice is a no-op.
func (j *Jobs) ScheduleRetire(ctx context.Context, org domain.OrgID, runID string, at time.Time) error {
	_, err := j.client.Insert(ctx, RetireArgs{Org: org, RunID: runID, Instance: j.instance}, &river.InsertOpts{ScheduledAt: at})
	if err != nil {
		return fmt.Errorf("schedule retirement of run %s: %w", runID, err)
	}
	return nil
}

func (j *Jobs) emit(kind string, err error) {
	if j.cfg.OnEvent != nil {
		j.cfg.OnEvent(kind, err)
	}
}

func (j *Jobs) jitter() time.Duration {
	if j.cfg.Jitter <= 0 {
		return 0
	}
	return rand.N(j.cfg.Jitter)
}

// riverTime lends rotor's clock to River.
type riverTime struct{ c clock.Clock }

func (t riverTime) Now() time.Time { return t.c.Now() }
func (t riverTime) NowOrNil() *time.Time {
	now := t.c.Now()
	return &now
}

var _ rivertype.TimeGenerator = riverTime{}

// quiet hands River a logger that only speaks up for warnings: its
// informational lines (leader elections, maintenance) are noise in rotor's
// log.
func quiet(l *slog.Logger) *slog.Logger {
	return slog.New(levelFilter{l.Handler(), slog.LevelWarn})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(n), f.min}
}
