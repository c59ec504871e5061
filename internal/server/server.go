// Package server wires rotor together: configuration, the store, Azure
// connections, sinks, the rotation engine, the job system, and the HTTP
// endpoint. It is the one place that knows every concrete type; everything
// it assembles depends only on interfaces.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/jobs"
	"github.com/rotor-dev/rotor/internal/metrics"
	"github.com/rotor-dev/rotor/internal/policyset"
	"github.com/rotor-dev/rotor/internal/provision"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
	"github.com/rotor-dev/rotor/internal/web/session"
)

// Options tune how a Server is assembled.
type Options struct {
	// Logger receives rotor's logs. Nil builds one from the configuration's
	// log settings, writing to LogOutput (default stderr).
	Logger    *slog.Logger
	LogOutput io.Writer
	Clock     clock.Clock
	// JobEvents, if set, is told the kind ("recover", "plan", "sync",
	// "rotate", "retire", "sweep-sessions") and error of every job the job system ran: a
	// test signal (jobs.Config.OnEvent).
	JobEvents func(kind string, err error)
	// Hooks observe the rotation journal from the moment rotor is
	// assembled. Commands observe it through the application layer
	// instead (App().Observe, app.RotateObserver); these are for tests
	// and benchmarks that drive the engine directly.
	Hooks rotation.Hooks
	// Getenv resolves {env: NAME} references (default os.Getenv).
	Getenv func(string) string
	// Process names the command this rotor runs as ("serve", "rotate", …),
	// recorded with its lease for people reading who holds what.
	Process string
	// Authorizer is the application layer's (nil: auth.Authorizer, which
	// lets rotor's own actors do everything and an API caller what its
	// role in the organization permits).
	Authorizer app.Authorizer
	// Auditor, when set, is told every event of the application layer
	// (and every sign-in and sign-out) too. The audit trail in the store
	// records them whatever it is: nothing a caller passes here can turn
	// the trail off.
	Auditor app.Auditor
	// Console receives what is for the operator's eyes only and must not
	// reach the log: the break-glass admin's password, printed once
	// (default stderr).
	Console io.Writer
}

// Server is an assembled rotor.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	clock clock.Clock
	store store.Store
	// river is what River runs on: on SQLite the store's write pool, on
	// PostgreSQL the store's pool, as the application role.
	river jobs.Driver
	// trail appends to the store's hash-chained audit trail: every
	// mutating call of the application layer, every rotation step.
	trail *audit.Writer
	conns *Conns
	// policies are every organization's, from the store.
	policies *policyset.Set
	// health is every connection's, for /readyz and the logs.
	health *health
	// secrets resolves connections' and sinks' secret references.
	secrets *secrets
	// kinds checks sink specs while the configuration loads; sinks builds
	// them once the connections exist (see sinks.go).
	kinds *sink.Registry
	sinks *sink.Factory
	// pacers hold every Graph identity's throttling budget (nil when
	// graph.budget.enabled is false).
	pacers *pacer.Registry
	engine *rotation.Engine
	syncer *inventory.Syncer
	// metrics is what /metrics serves; nil when metrics.enabled is false.
	metrics *metrics.Metrics
	jobsMu  sync.Mutex
	jobs    *jobs.Jobs
	app     *app.Service
	// sessions are the UI's people's sessions; nil without sign_in.
	sessions *session.Manager
	opts     Options
}

// Open loads the configuration and assembles rotor. Nothing runs yet.
func Open(ctx context.Context, configPath string, opts Options) (*Server, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	s := &Server{log: opts.Logger, clock: opts.Clock, opts: opts}

	// Specs are checked while the configuration loads, before any
	// connection exists; the builders are bound to the connections after.
	s.kinds = sink.NewRegistry(sinkKinds()...)
	cfg, err := config.Load(configPath, config.LoadOptions{Sinks: s.kinds, Getenv: opts.Getenv})
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	if s.log == nil {
		s.log = newLogger(cfg.Log, opts.LogOutput)
	}
	for _, n := range cfg.Notes {
		s.log.Info("configuration note", "note", n)
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	if err := s.assemble(ctx, configPath); err != nil {
		s.store.Close()
		return nil, err
	}
	return s, nil
}

// openStore opens the store database.url names, with River's schema
// migrated beside rotor's.
func (s *Server) openStore(ctx context.Context) error {
	db := s.cfg.Database
	if db.Driver == "postgres" {
		// Passwords leave their references here, for pgx only; the URLs
		// carry none (the configuration refuses one that does).
		opts := []postgres.Option{postgres.WithClock(s.clock)}
		if db.Password != nil {
			opts = append(opts, postgres.WithPassword(db.Password.Value().Reveal()))
		}
		if db.MigrateURL != "" {
			opts = append(opts, postgres.WithMigrations(db.MigrateURL, db.MigratePassword.Value().Reveal(),
				func(ctx context.Context, owner *pgxpool.Pool) error {
					_, err := jobs.Postgres(owner).Migrate(ctx, s.log)
					return err
				}))
		}
		st, err := postgres.Open(ctx, db.URL, opts...)
		if err != nil {
			return fmt.Errorf("database.url: %w", err)
		}
		s.store, s.river = st, jobs.Postgres(st.Pool())
		return nil
	}
	st, err := sqlite.Open(ctx, db.Path, sqlite.WithClock(s.clock))
	if err != nil {
		return fmt.Errorf("open store %s: %w", db.Path, err)
	}
	river := jobs.SQLite(st.DB())
	if err := st.WithMigrationLock(func() error { _, err := river.Migrate(ctx, s.log); return err }); err != nil {
		st.Close()
		return err
	}
	s.store, s.river = st, river
	return nil
}

// assemble provisions the file's organization into the store, then builds
// every organization's connections from the store, the sinks and the
// engine.
func (s *Server) assemble(ctx context.Context, configPath string) error {
	cfg := s.cfg
	s.trail = audit.NewWriter(s.store, s.log, s.clock)
	s.health = newHealth(s.log, s.clock, s.recordHealth)
	getenv := s.opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var vault config.SecretResolver
	if h := cfg.HostIdentity; h != nil {
		r, err := azure.NewKeyVaultReader(h.AzureConnection())
		if err != nil {
			return fmt.Errorf("host_identity: %w", err)
		}
		vault = r
	}
	s.secrets = newSecrets(cfg, getenv, vault, s.clock)
	if b := cfg.Graph.Budget; b.Enabled {
		s.pacers = pacer.NewRegistry(pacer.Options{Clock: s.clock, Budgets: b.Budgets, TenantSizes: b.TenantSizes})
	}
	s.log.Info("graph budget", "pacer", cfg.Graph.Budget.String())
	// Build the file's own connections before provisioning them: a file
	// whose connection cannot be built (an unreadable secret) stops rotor
	// without having changed what the other replicas read from the store.
	for i := range cfg.Connections {
		sc := provision.Connection(cfg.Organization, &cfg.Connections[i])
		sc.Provisioned, sc.Source = true, cfg.Source
		spec, err := s.secrets.connSpec(ctx, sc)
		if err == nil {
			_, err = build(spec, nil)
		}
		if err != nil {
			return fmt.Errorf("organization %s: %w", cfg.Organization, err)
		}
	}
	rep, err := provision.Provision(ctx, s.store, cfg)
	if err != nil {
		return err
	}
	s.log.Info("configuration provisioned", "source", rep.Source, "changes", rep.String())
	// Before the connections: their clients report to it.
	s.metrics = s.newMetrics()
	if _, err = s.loadConns(ctx); err != nil {
		return err
	}
	s.sinks, err = s.kinds.Bind(newSinkDeps(sinkDepsParams{
		conns: s.conns, endpoints: s.conns.endpoints(), baseDir: filepath.Dir(configPath),
		getenv: getenv, clock: s.clock, log: s.log, keyVault: s.secrets,
	}))
	if err != nil {
		return err
	}
	s.policies = policyset.New(s.store, s.clock, s.log, 0)
	s.syncer = inventory.NewSyncer(s.store, s.clock, syncerOptions(cfg.Rotation))
	lease := rotation.NewLease(s.store, s.clock, s.log, cfg.Rotation.LeaseTTL, cmp.Or(s.opts.Process, "rotor"))
	if s.pacers != nil {
		// Replicas on one database share each identity's Graph budget:
		// each keeps to its share of the live processes.
		lease.OnLiveLeases(func(n int) {
			if prev := s.pacers.Share(); prev != n {
				s.pacers.SetShare(n)
				s.log.Info("graph budget shared", "processes", n, "was", prev)
			}
		})
	}

	s.engine = rotation.New(rotation.Config{
		Store:                s.store,
		Conns:                s.conns,
		Sinks:                s.sinks,
		Clock:                s.clock,
		Logger:               s.log,
		VerifyTimeout:        cfg.Rotation.VerifyTimeout,
		ConcurrencyPerTenant: cfg.Rotation.ConcurrencyPerTenant,
		RetryTransientAfter:  cfg.Rotation.RetryAfter,
		RetryFailedAfter:     cfg.Rotation.RetryPermanentAfter,
		IsPending:            azure.IsReplicationPending,
		IsPermanent:          isPermanent,
		Hooks:                rotation.Hooks{AfterJournal: s.afterJournal},
		Policies:             s,
		ScheduleRetire:       s.scheduleRetire,
		Lease:                lease,
		Observer:             s.runObserver(),
		SinkChecks:           s.health,
		// A certificate policy's bootstrap reference resolves as a sink's
		// own credential does: at use, relative to rotor.yaml.
		Secrets: &secretResolver{getenv: getenv, baseDir: filepath.Dir(configPath), keyVault: s.secrets},
	})
	s.app = s.newApp(s.opts)
	if s.sessions, err = s.newSessions(); err != nil {
		return err
	}
	return nil
}

// loadConns builds the connections of every organization in the store,
// resolving their secrets once now. A connection of the file's own
// organization that cannot be built stops rotor (as a bad rotor.yaml
// does); one of another organization is logged and left out, so one
// organization's broken connection does not stop the others.
func (s *Server) loadConns(ctx context.Context) (*Conns, error) {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	s.conns = newConns()
	s.conns.pacers = s.pacers
	s.conns.clock = s.clock
	for _, o := range orgs {
		err := s.refreshConns(ctx, o.ID)
		if err != nil && o.ID == s.cfg.Organization {
			return nil, fmt.Errorf("organization %s: %w", o.ID, err)
		}
	}
	return s.conns, nil
}

// refreshConns brings an organization's connections in line with the
// store: new ones are built, changed ones (a newer UpdatedAt) rebuilt,
// deleted ones dropped. The sync job calls it before each sync, so a
// connection made or edited in the UI is used without a restart. A
// connection that cannot be built is left out and logged; the error
// joins every such connection's.
func (s *Server) refreshConns(ctx context.Context, org domain.OrgID) error {
	list, err := s.store.ListConnections(ctx, org)
	if err != nil {
		return err
	}
	var errs []error
	keep := map[string]bool{}
	for _, c := range list {
		keep[c.Name] = true
		if at, ok := s.conns.stamp(org, c.Name); ok && at.Equal(c.UpdatedAt) {
			continue
		}
		spec, err := s.secrets.connSpec(ctx, c)
		var built *conn
		if err == nil {
			spec.Stamp, spec.Observer = c.UpdatedAt, s.connObserver()
			built, err = build(spec, s.conns.pacers)
		}
		if err != nil {
			s.conns.remove(org, c.Name)
			if !s.health.isFailing(connKey{org, c.Name}) {
				// Once, not at every sync: health.failed below logs its own
				// line only when the connection starts failing, too.
				s.log.Error("connection left out: it cannot be built", "org", org, "connection", c.Name, "error", err)
			}
			// It is not probed or synced, so nothing else would say it
			// fails: /readyz and `rotor connections list` must.
			s.health.failed(connKey{org, c.Name}, err)
			errs = append(errs, err)
			continue
		}
		s.conns.put(built)
		if s.metrics != nil {
			s.metrics.AddConnection(org, c.Name)
		}
	}
	for _, c := range s.conns.of(org) {
		if !keep[c.cfg.Name] {
			s.conns.remove(org, c.cfg.Name)
			s.health.forget(connKey{org, c.cfg.Name})
			if s.metrics != nil {
				s.metrics.ForgetConnection(org, c.cfg.Name)
			}
			s.log.Info("connection removed: it is no longer in the store", "org", org, "connection", c.cfg.Name)
		}
	}
	// A deleted connection that could not be built was never in s.conns:
	// its failing health goes too.
	for _, h := range s.health.snapshot() {
		if h.Org == org && !keep[h.Name] {
			s.health.forget(connKey{org, h.Name})
		}
	}
	return errors.Join(errs...)
}

// afterJournal is the engine's journal hook: the step's audit record
// first (the step is committed: a hook that stops the process must not
// lose its record), then the caller's hooks, then the application layer's
// observers.
func (s *Server) afterJournal(run domain.Run, step domain.Step) {
	rec := audit.StepRecord(run, step)
	rec.Actor.Name = s.engine.Lease().Holder()
	s.trail.Write(context.Background(), rec)
	if h := s.opts.Hooks.AfterJournal; h != nil {
		h(run, step)
	}
	s.app.AfterJournal(run, step)
}

// App returns the application layer: the use cases the CLI, the API and
// the UI call.
func (s *Server) App() *app.Service { return s.app }

// Config returns the loaded configuration.
func (s *Server) Config() *config.Config { return s.cfg }

// Clock returns the clock every decision of this rotor is made with.
func (s *Server) Clock() clock.Clock { return s.clock }

// SinkTypes are the sink kinds this rotor delivers to (its registry's),
// sorted: the UI's Sinks page lists them.
func (s *Server) SinkTypes() []string { return s.kinds.Types() }

// Store returns the store.
func (s *Server) Store() store.Store { return s.store }

// Pacers returns the Graph pacers of this process (nil when
// graph.budget.enabled is false): what a metrics exporter reads each
// identity's remaining budget from (Pacer.Remaining).
func (s *Server) Pacers() *pacer.Registry { return s.pacers }

// Engine returns the rotation engine.
func (s *Server) Engine() *rotation.Engine { return s.engine }

// Conns returns the Azure connections.
func (s *Server) Conns() *Conns { return s.conns }

// PolicyFor implements rotation.PolicySource: the policy of the
// application's organization that governs it, from the store.
func (s *Server) PolicyFor(app domain.Application) *domain.Policy {
	return s.policies.PolicyFor(app)
}

// Refresh implements jobs.PolicyRefresher: the planner reads an
// organization's policies afresh at the start of each plan.
func (s *Server) Refresh(ctx context.Context, org domain.OrgID) error {
	return s.policies.Refresh(ctx, org)
}

// Sync runs an inventory sync of every connection of every organization
// that reads applications (purposes rotation and read), one after the
// other.
func (s *Server) Sync(ctx context.Context, progress func(inventory.Progress)) error {
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range orgs {
		errs = append(errs, s.SyncOrg(ctx, o.ID, progress))
	}
	return errors.Join(errs...)
}

// SyncOrg syncs the inventory of one organization's connections. It first
// brings the connections in line with the store (refreshConns), so one
// made or changed in the UI since the last sync is used now; one that
// cannot be built is reported and the others still sync.
func (s *Server) SyncOrg(ctx context.Context, org domain.OrgID, progress func(inventory.Progress)) error {
	var errs []error
	if err := s.refreshConns(ctx, org); err != nil {
		errs = append(errs, err)
	}
	for _, c := range s.conns.of(org) {
		if c.purpose != string(config.PurposeRotation) && c.purpose != string(config.PurposeRead) {
			continue
		}
		k := connKey{org, c.cfg.Name}
		dir, err := s.directory(ctx, c)
		if err != nil {
			s.health.failed(k, err)
			errs = append(errs, err)
			continue
		}
		res, err := s.syncer.Sync(ctx, org, c.cfg.Name, dir, progress)
		if err != nil {
			if ctx.Err() == nil {
				s.health.failed(k, err)
			}
			errs = append(errs, fmt.Errorf("sync %s: %w", c.cfg.Name, err))
			continue
		}
		s.health.ok(k, nil)
		s.log.Info("inventory synced", "org", org, "connection", c.cfg.Name, "incremental", res.Incremental, "full_reason", string(res.FullReason),
			"seen", res.Seen, "changed", res.Changed, "removed", res.Removed, "manageable", res.Manageable)
	}
	return errors.Join(errs...)
}

// syncerOptions maps the configuration onto the syncer's: a
// full_sync_interval of 0s turns incremental syncs off, an
// ownership_interval of 0s reads the ownership at every sync.
func syncerOptions(r config.RotationSettings) inventory.Options {
	o := inventory.Options{FullSyncInterval: r.FullSyncInterval, OwnershipInterval: r.OwnershipInterval}
	if r.FullSyncInterval <= 0 {
		o.FullSyncInterval = -1
	}
	if r.OwnershipInterval <= 0 {
		o.OwnershipInterval = -1
	}
	return o
}

// directory is the inventory's view of a connection: a rotation connection
// learns which applications its identity owns (may change); a read
// connection sees every application and may change none.
func (s *Server) directory(ctx context.Context, c *conn) (inventory.Directory, error) {
	name := c.cfg.Name
	if c.purpose == string(config.PurposeRead) {
		return inventory.ReadOnly(inventory.NewGraphDirectory(c.graph, c.cfg.TenantID, "")), nil
	}
	sp, err := s.conns.RotationSPObjectID(ctx, c.org, name)
	if err != nil {
		return nil, err
	}
	return inventory.NewGraphDirectory(c.graph, c.cfg.TenantID, sp), nil
}

// openJobs creates the job system on the store's database: on SQLite the
// store's write pool (River on SQLite wants a single connection, and
// sharing it makes River's writes and the journal's queue behind each
// other instead of fighting over SQLite's write lock); on PostgreSQL the
// store's pool.
func (s *Server) openJobs(ctx context.Context, workers int) error {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if s.jobs != nil {
		return nil
	}
	j, err := jobs.New(ctx, jobs.Config{
		River:         s.river,
		Engine:        s.engine,
		Store:         s.store,
		Policies:      s,
		Sync:          func(ctx context.Context, org domain.OrgID) error { return s.SyncOrg(ctx, org, nil) },
		PlanInterval:  s.cfg.Rotation.PlanInterval,
		SyncInterval:  s.cfg.Rotation.SyncInterval,
		Jitter:        s.cfg.Rotation.Jitter,
		Workers:       workers,
		Logger:        s.log,
		Clock:         s.clock,
		OnEvent:       s.opts.JobEvents,
		SweepSessions: s.sweepSessions(),
	})
	if err != nil {
		return err
	}
	s.jobs = j
	return nil
}

// sweepSessions is the job system's sweep of expired sessions (nil
// without sign_in: no sweep job).
func (s *Server) sweepSessions() func(context.Context, domain.OrgID) (int, error) {
	if s.sessions == nil {
		return nil
	}
	return s.sessions.Sweep
}

func (s *Server) scheduleRetire(ctx context.Context, org domain.OrgID, runID string, at time.Time) error {
	if err := s.openJobs(ctx, 0); err != nil {
		return err
	}
	return s.jobs.ScheduleRetire(ctx, org, runID, at)
}

// Serve runs the job system and the HTTP endpoint until ctx is cancelled,
// then shuts both down cleanly. ready, if not nil, is called with the
// HTTP address once listening.
func (s *Server) Serve(ctx context.Context, ready func(addr string)) error {
	if err := s.openJobs(ctx, s.workers()); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	loopback := false
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		loopback = tcp.IP.IsLoopback()
	}
	if !loopback {
		s.log.Warn("listening beyond loopback: /healthz, /readyz, /metrics, the REST API (bearer tokens and API keys only) and, with sign_in, the sign-in routes and /ui/ are served; the status page stays on loopback listeners", "addr", ln.Addr().String())
	}
	h, err := s.HTTPHandler(ctx, loopback)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	// River runs on a context the signal does not cancel: on SIGTERM, Stop
	// lets running rotations finish (up to the grace period) instead of
	// cutting them off mid-way.
	// Sign every connection in now: a wrong secret is an ERROR line and a
	// 503 from /readyz within seconds, not at the end of the first sync.
	go s.probe(ctx)
	if err := s.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		srv.Close()
		return err
	}
	s.log.Info("rotor is serving", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir)
	if ready != nil {
		ready(ln.Addr().String())
	}
	<-ctx.Done()
	s.log.Info("shutting down: letting running rotations finish", "grace", shutdownGrace)
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = srv.Shutdown(stopCtx)
	return s.jobs.Stop(stopCtx)
}

// workers is how many rotate and retire jobs run at once:
// rotation.max_in_flight. A rotation waiting for Entra's replication (or
// verification) holds a worker but no tenant slot, so workers are many
// and the engine's per-tenant semaphore is what limits Graph writes.
func (s *Server) workers() int {
	return s.cfg.Rotation.MaxInFlight
}

// shutdownGrace is how long a SIGTERM waits for running rotations before
// cancelling them (they are then recovered at the next start). It fits in
// Kubernetes' default 30 s termination grace period.
const shutdownGrace = 20 * time.Second

// Close releases the process lease, the store and the job database.
func (s *Server) Close() error {
	var errs []error
	if s.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, s.engine.Close(ctx))
		cancel()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// DataDir returns the absolute data directory.
func (s *Server) DataDir() string {
	abs, err := filepath.Abs(s.cfg.DataDir)
	if err != nil {
		return s.cfg.DataDir
	}
	return abs
}

// isPermanent tells the rotation which failures no retry will mend: a
// refusal (403), a policy violation, an application that is gone (Graph
// classifies its own), or a sink error that says so (sink.Classified).
func isPermanent(err error) bool {
	return graph.IsForbidden(err) || graph.IsPolicyViolation(err) || graph.IsNotFound(err) || sink.IsPermanent(err)
}

// newLogger builds the logger the configuration's log section asks for.
func newLogger(l config.LogSettings, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	o := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
