package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// Real River on a real store (SQLite, and PostgreSQL: stores_test.go) and
// the real engine; Entra and the sink are in-test maps.

var (
	_ rotation.Connections = (*entra)(nil)
	_ sink.Sink            = (*vault)(nil)
)

type entra struct {
	mu     sync.Mutex
	apps   map[string][]domain.Credential
	values map[string]string // key id → value
	// block makes Verify wait for its context (a slow Entra).
	block bool
}

func (e *entra) Directory(domain.OrgID, string) (rotation.Directory, error) { return e, nil }
func (e *entra) Verifier(domain.OrgID, string) (rotation.Verifier, error)   { return e, nil }

func (e *entra) Credentials(_ context.Context, oid string) ([]domain.Credential, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.apps[oid]), nil
}

func (e *entra) AddPassword(_ context.Context, oid, name string, end time.Time) (rotation.NewPassword, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	c := domain.Credential{KeyID: uuid.NewString(), Kind: domain.KindSecret, DisplayName: name, Start: time.Now().UTC(), End: end}
	e.apps[oid] = append(e.apps[oid], c)
	e.values[c.KeyID] = hex.EncodeToString(b)
	return rotation.NewPassword{KeyID: c.KeyID, Start: c.Start, End: c.End, Value: secret.New(e.values[c.KeyID])}, nil
}

func (e *entra) RemovePassword(_ context.Context, oid, keyID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[oid] = slices.DeleteFunc(e.apps[oid], func(c domain.Credential) bool { return c.KeyID == keyID })
	return nil
}

func (e *entra) Verify(ctx context.Context, _, _ string, v secret.Value) error {
	e.mu.Lock()
	block := e.block
	e.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, val := range e.values {
		if val == v.Reveal() {
			for _, cs := range e.apps {
				for _, c := range cs {
					if c.KeyID == k {
						return nil
					}
				}
			}
		}
	}
	return errors.New("invalid secret")
}

type vault struct {
	mu     sync.Mutex
	values map[string]string // object id → key id
}

func (v *vault) Type() string                               { return "memory" }
func (v *vault) CheckSpec(domain.SinkSpec) error            { return nil }
func (v *vault) NewBuilder(sink.Deps) (sink.Builder, error) { return v, nil }
func (v *vault) Resolve(sink.BuildRequest) (sink.TargetID, error) {
	return sink.NewTargetID("memory", "vault")
}
func (v *vault) Build(context.Context, sink.BuildRequest) (sink.Sink, error) {
	return v, nil
}
func (v *vault) Target() sink.TargetID {
	t, _ := v.Resolve(sink.BuildRequest{})
	return t
}
func (v *vault) Describe() string { return "memory vault" }
func (v *vault) Deliver(_ context.Context, d sink.Delivery) (sink.Result, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.values[d.App.ObjectID] = d.KeyID
	return sink.Result{Changed: true, Location: "memory/" + d.App.ObjectID}, nil
}

type policies struct{ p domain.Policy }

func (p policies) PolicyFor(domain.Application) *domain.Policy { return &p.p }

type bundle struct {
	ctx    context.Context
	store  store.Store
	rig    storeRig
	entra  *entra
	vault  *vault
	engine *rotation.Engine
	jobs   *Jobs
	events chan event
	org    domain.OrgID
	apps   []domain.Application
	pol    domain.Policy
}

type event struct {
	kind string
	err  error
}

const tenant = "22222222-2222-2222-2222-222222222222"

func setup(t *testing.T, kind storeKind, napps int) *bundle {
	t.Helper()
	ctx := context.Background()
	rig := openStore(t, kind)
	st := rig.store
	org := domain.OrgID("acme")
	require.NoError(t, st.EnsureOrg(ctx, org, "Acme"))
	b := &bundle{
		ctx: ctx, store: st, rig: rig, org: org, events: make(chan event, 1000),
		entra: &entra{apps: map[string][]domain.Credential{}, values: map[string]string{}},
		vault: &vault{values: map[string]string{}},
	}
	now := time.Now().UTC()
	for i := range napps {
		foreign := domain.Credential{KeyID: fmt.Sprintf("foreign-%d", i), Kind: domain.KindSecret, DisplayName: "ops", Start: now.Add(-time.Hour), End: now.Add(24 * time.Hour)}
		app := domain.Application{Org: org, Access: []domain.Access{{Connection: "main", CanChange: true}}, TenantID: tenant, ObjectID: fmt.Sprintf("app-%d", i), AppID: fmt.Sprintf("client-%d", i),
			DisplayName: fmt.Sprintf("app-%d", i), Manageable: true, Credentials: []domain.Credential{foreign}}
		b.apps = append(b.apps, app)
		b.entra.apps[app.ObjectID] = []domain.Credential{foreign}
	}
	_, err := st.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "main", SyncStarted: now, Applications: b.apps})
	require.NoError(t, err)

	pol := domain.Policy{Name: "all", Connection: "main", Selector: domain.Selector{AllOwned: true}, Enabled: true, Kind: domain.KindSecret,
		Lifetime: 30 * 24 * time.Hour, RenewBefore: 10 * 24 * time.Hour, Overlap: 500 * time.Millisecond, Verify: true,
		Sinks: []domain.SinkSpec{{Type: "memory"}}}
	b.pol = pol
	sinks, err := sink.NewRegistry(b.vault).Bind(sink.Deps{})
	require.NoError(t, err)
	b.engine = rotation.New(rotation.Config{Store: st, Conns: b.entra, Sinks: sinks, Clock: clock.Real{}, VerifyTimeout: 5 * time.Second})

	b.jobs, err = New(ctx, Config{
		River: rig.river, Engine: b.engine, Store: st, Policies: policies{pol},
		PlanInterval: time.Hour, Jitter: 50 * time.Millisecond,
		OnEvent: func(kind string, err error) { b.events <- event{kind, err} },
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.jobs.Stop(ctx)
	})
	return b
}

// waitFor consumes events until n of kind succeeded.
func (b *bundle) waitFor(t *testing.T, kind string, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for n > 0 {
		select {
		case ev := <-b.events:
			if ev.kind == kind {
				require.NoError(t, ev.err, kind)
				n--
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %d more %s events", n, kind)
		}
	}
}

func TestPlanRotateRetire(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 3)
		require.NoError(t, b.jobs.Start(b.ctx))
		b.waitFor(t, KindPlan, 1)
		b.waitFor(t, KindRetire, 3)

		runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
		require.NoError(t, err)
		require.Len(t, runs, 3)
		for _, r := range runs {
			require.Equal(t, domain.RunDone, r.State, r.Error)
			require.Equal(t, domain.TriggerAdoption, r.Trigger)
			creds, _ := b.entra.Credentials(b.ctx, r.AppObjectID)
			require.Len(t, creds, 2, "the new secret and the foreign one")
			require.Contains(t, creds, domain.Credential{KeyID: "foreign-" + r.AppObjectID[len("app-"):], Kind: domain.KindSecret, DisplayName: "ops", Start: creds[0].Start, End: creds[0].End})
			require.Equal(t, r.NewKeyID, b.vault.values[r.AppObjectID])
		}

		// Nothing is due any more, although the inventory was not synced.
		due, err := b.engine.Due(b.ctx, b.org, b.jobs.cfg.Policies)
		require.NoError(t, err)
		require.Empty(t, due)
	})
}

func TestOneRotateJobPerApplication(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 2)
		// Before Start: jobs are only queued.
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[0]))
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[0]))
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[1]))
		res, err := b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindRotate).First(100))
		require.NoError(t, err)
		require.Len(t, res.Jobs, 2, "a second Rotate now of app-0 is the first one")
		// The planner finds both due: one planned job each beside the
		// people's, and planning again adds none.
		w := &planWorker{j: b.jobs}
		for range 2 {
			require.NoError(t, w.Work(b.ctx, &river.Job[PlanArgs]{Args: PlanArgs{Org: b.org}}))
		}
		res, err = b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindRotate).First(100))
		require.NoError(t, err)
		require.Len(t, res.Jobs, 4)

		// A retirement scheduled twice is one job.
		at := time.Now().Add(time.Hour)
		require.NoError(t, b.jobs.ScheduleRetire(b.ctx, b.org, "run-1", at))
		require.NoError(t, b.jobs.ScheduleRetire(b.ctx, b.org, "run-1", at))
		res, err = b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindRetire).States(rivertype.JobStateScheduled))
		require.NoError(t, err)
		require.Len(t, res.Jobs, 1)
	})
}

// TestRotateNowIsNotSwallowedByAPlannedRotation: the planner queued the
// application's rotation for later (its jitter); a person's Rotate now
// rotates it now, by hand, and the planned job finds nothing left to do
// when its time comes.
func TestRotateNowIsNotSwallowedByAPlannedRotation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 1)
		b.jobs.cfg.Jitter = time.Hour
		w := &planWorker{j: b.jobs}
		require.NoError(t, w.Work(b.ctx, &river.Job[PlanArgs]{Args: PlanArgs{Org: b.org}}))
		planned, err := b.jobs.client.JobList(b.ctx, river.NewJobListParams().Kinds(KindRotate).States(rivertype.JobStateScheduled))
		require.NoError(t, err)
		require.Len(t, planned.Jobs, 1, "the planner's job waits for its jitter")

		require.NoError(t, b.jobs.Start(b.ctx))
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[0]))
		b.waitFor(t, KindRotate, 1)
		runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, domain.TriggerManual, runs[0].Trigger)
		require.Contains(t, []domain.RunState{domain.RunRetiring, domain.RunDone}, runs[0].State, runs[0].Error)

		// When the planned job's time comes, the application is not due.
		var args RotateArgs
		require.NoError(t, json.Unmarshal(planned.Jobs[0].EncodedArgs, &args))
		require.False(t, args.Manual)
		rw := &rotateWorker{j: b.jobs}
		require.NoError(t, rw.Work(b.ctx, &river.Job[RotateArgs]{JobRow: planned.Jobs[0], Args: args}))
		runs, err = b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
		require.NoError(t, err)
		require.Len(t, runs, 1, "the planned job found the application rotated")
	})
}

func TestStopCancelsStuckRotationAndJournalsIt(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 1)
		b.entra.block = true // Entra never answers: the run waits for replication
		require.NoError(t, b.jobs.Start(b.ctx))
		require.Eventually(t, func() bool {
			runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: []domain.RunState{domain.RunCreated}})
			return err == nil && len(runs) == 1
		}, 20*time.Second, 20*time.Millisecond)

		ctx, cancel := context.WithTimeout(b.ctx, 200*time.Millisecond)
		defer cancel()
		// Stop must return although the rotation never finishes by itself: its
		// context is cancelled once ctx ends. (A hang fails the test by its
		// guard; how fast Stop is belongs in a benchmark, not here.)
		stopped := make(chan struct{})
		go func() {
			_ = b.jobs.Stop(ctx)
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(time.Minute):
			t.Fatal("Stop did not return after its deadline: the stuck rotation was not cancelled")
		}

		runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, domain.RunAbandoned, runs[0].State, "a cancelled run is journaled, not left active")
	})
}

func TestStartRecoversAbandonedRuns(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 1)
		// A dead process left a run that had created a secret and written a sink.
		dead := &domain.Run{Org: b.org, ID: uuid.Must(uuid.NewV7()).String(), Connection: "main", TenantID: tenant, AppObjectID: b.apps[0].ObjectID,
			AppID: b.apps[0].AppID, Kind: domain.KindSecret, Trigger: domain.TriggerDue}
		require.NoError(t, b.store.CreateRun(b.ctx, dead))
		np, err := b.entra.AddPassword(b.ctx, dead.AppObjectID, domain.DisplayNameFor(dead.ID), time.Now().Add(24*time.Hour))
		require.NoError(t, err)
		require.NoError(t, b.store.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: dead.ID, From: []domain.RunState{domain.RunPlanned},
			To: domain.RunCreated, NewKeyID: np.KeyID, SinksStarted: true, Event: domain.RunEvent{Step: domain.StepCreated.Step()}}))
		require.NoError(t, b.store.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: dead.ID, Event: domain.RunEvent{Step: domain.SinkStep(0, domain.PhaseWriting), Target: "memory sink", Message: "memory sink"}}))

		require.NoError(t, b.jobs.Start(b.ctx))
		b.waitFor(t, KindRecover, 1)
		b.waitFor(t, KindRetire, 1)

		old, err := b.store.GetRun(b.ctx, b.org, dead.ID)
		require.NoError(t, err)
		require.Equal(t, domain.RunAbandoned, old.State)
		runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: []domain.RunState{domain.RunDone}})
		require.NoError(t, err)
		require.Len(t, runs, 1)
		require.Equal(t, dead.ID, runs[0].Replaces)
		require.Equal(t, domain.TriggerRecovery, runs[0].Trigger)
		creds, _ := b.entra.Credentials(b.ctx, dead.AppObjectID)
		require.Len(t, creds, 2, "the abandoned run's secret is retired by the fresh run: %v", creds)
		for _, c := range creds {
			require.NotEqual(t, np.KeyID, c.KeyID)
		}
	})
}

// TestRecoverySupersededByNewerRun: when a run started after the abandoned
// one has already succeeded, the recovery job does not rotate again (the
// newer run's retirement removes the abandoned secret).
func TestRecoverySupersededByNewerRun(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 1)
		app := b.apps[0]
		dead := &domain.Run{Org: b.org, ID: uuid.Must(uuid.NewV7()).String(), Connection: "main", TenantID: tenant, AppObjectID: app.ObjectID,
			AppID: app.AppID, Kind: domain.KindSecret, Trigger: domain.TriggerDue}
		require.NoError(t, b.store.CreateRun(b.ctx, dead))
		require.NoError(t, b.store.AppendRunEvent(b.ctx, store.AppendRunEventParams{Org: b.org, RunID: dead.ID, Event: domain.RunEvent{Step: domain.SinkStep(0, domain.PhaseWriting)}}))
		require.NoError(t, b.store.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: dead.ID, From: []domain.RunState{domain.RunPlanned},
			To: domain.RunAbandoned, Event: domain.RunEvent{Step: domain.StepAbandoned.Step()}}))
		newer := &domain.Run{Org: b.org, ID: uuid.Must(uuid.NewV7()).String(), Connection: "main", TenantID: tenant, AppObjectID: app.ObjectID,
			AppID: app.AppID, Kind: domain.KindSecret, Trigger: domain.TriggerDue, CreatedAt: time.Now().Add(time.Second)}
		require.NoError(t, b.store.CreateRun(b.ctx, newer))
		require.NoError(t, b.store.TransitionRun(b.ctx, store.TransitionRunParams{Org: b.org, RunID: newer.ID, From: []domain.RunState{domain.RunPlanned},
			To: domain.RunRetiring, NewKeyID: "k", RetireAt: time.Now().Add(time.Hour), Event: domain.RunEvent{Step: domain.StepRetiring.Step()}}))

		out, run, err := b.engine.Handle(b.ctx, rotation.Request{Org: b.org, TenantID: tenant, AppObjectID: app.ObjectID, Trigger: domain.TriggerRecovery,
			Replaces: dead.ID, RequestedAt: time.Now()}, policies{b.pol})
		require.NoError(t, err)
		require.Equal(t, rotation.OutcomeSuperseded, out, "the newer run's retirement removes the abandoned secret")
		require.Nil(t, run)

		out, _, err = b.engine.Handle(b.ctx, rotation.Request{Org: b.org, TenantID: tenant, AppObjectID: app.ObjectID, Trigger: domain.TriggerRecovery,
			Replaces: newer.ID, RequestedAt: time.Now()}, policies{b.pol})
		require.NoError(t, err)
		require.NotEqual(t, rotation.OutcomeSuperseded, out, "nothing newer than the newest run")
	})
}

// TestSweepSessionsIsPeriodic: with SweepSessions set, River runs the
// sweep periodically for every organization, and it deletes the expired
// sessions only.
func TestSweepSessionsIsPeriodic(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 0)
		now := time.Now().UTC()
		for i, exp := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour)} {
			require.NoError(t, b.store.CreateSession(b.ctx, store.Session{
				Org: b.org, IDHash: []byte(fmt.Sprintf("%032d", i)), Method: "entra", Subject: "someone", Role: "viewer",
				CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: exp,
			}))
		}
		swept := make(chan int, 10)
		j, err := New(b.ctx, Config{
			River: b.rig.river, Engine: b.engine, Store: b.store, Policies: policies{b.pol}, PlanInterval: time.Hour,
			OnEvent: func(kind string, err error) { b.events <- event{kind, err} },
			SweepSessions: func(ctx context.Context, org domain.OrgID) (int, error) {
				n, err := b.store.DeleteExpiredSessions(ctx, org, time.Now())
				swept <- n
				return n, err
			},
			SweepInterval: time.Second,
		})
		require.NoError(t, err)
		require.NoError(t, j.Start(b.ctx))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = j.Stop(ctx)
		})
		b.waitFor(t, KindSweepSessions, 1)
		require.Equal(t, 1, <-swept, "the expired session, not the live one")
		_, err = b.store.GetSession(b.ctx, b.org, []byte(fmt.Sprintf("%032d", 1)))
		require.NoError(t, err, "the live session stays")
	})
}
