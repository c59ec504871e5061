package rotation

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

func steps(run *domain.Run) []string {
	var out []string
	for _, ev := range run.Events {
		out = append(out, ev.Step.String())
	}
	return out
}

func TestRotateAndRetire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dir.replication = 3 // Entra answers AADSTS7000215 three times first
	var hooked []string
	b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
		hooked = append(hooked, st.String())
	}
	e := b.engine(t)

	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)
	require.NotEmpty(t, run.NewKeyID)
	require.True(t, run.SinksStarted)
	require.Equal(t, t0.Add(time.Hour), run.RetireAt)
	require.Equal(t, []string{run.ID}, b.retires)

	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, stored.State)
	require.Equal(t, run.NewKeyID, stored.NewKeyID)
	require.Equal(t, []string{"planned", "created", "replicating", "sink:0:writing", "sink:0:written", "sink:1:writing", "sink:1:written",
		"propagated", "verifying", "verified", "retiring"}, steps(stored))
	require.Equal(t, steps(stored), hooked, "a hook after every journal write")

	// The new secret is everywhere; the old ones still work (overlap).
	v, keyID := b.vault.get("kv", b.app.ObjectID)
	require.Equal(t, run.NewKeyID, keyID)
	require.NoError(t, b.dir.Verify(b.ctx, tenant, b.app.AppID, v))
	require.Len(t, b.dir.creds(b.app.ObjectID), 3)

	// Not before the overlap.
	var early *ErrTooEarly
	require.ErrorAs(t, e.Retire(b.ctx, b.org, run.ID, b.policy), &early)
	require.Len(t, b.dir.creds(b.app.ObjectID), 3)

	b.clock.Advance(time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	stored, err = b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunDone, stored.State)
	require.Equal(t, []string{"old-rotor"}, b.dir.removed)
	b.assertConverged(t)
	b.assertNoSecretAtRest(t)

	// Idempotent.
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	require.Equal(t, []string{"old-rotor"}, b.dir.removed)
}

func TestRotateBusy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	require.NoError(t, b.store.CreateRun(b.ctx, &domain.Run{Org: b.org, ID: "0190aaaa-0000-7000-8000-00000000beef", TenantID: tenant, AppObjectID: b.app.ObjectID, Kind: domain.KindSecret, Trigger: domain.TriggerDue}))
	_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.ErrorIs(t, err, ErrBusy)
	require.Len(t, b.dir.creds(b.app.ObjectID), 2, "nothing touched")
}

func TestRotateFailures(t *testing.T) {
	t.Parallel()
	type outcome struct {
		permanent bool
		message   string
		// newCredLeft says whether the new credential stays in Entra.
		newCredLeft bool
	}
	cases := []struct {
		name  string
		tweak func(b *bundle, e *Engine)
		want  outcome
	}{
		{
			name:  "lifetime refused by the app management policy",
			tweak: func(b *bundle, _ *Engine) { b.dir.addErr = func(int) error { return errPolicy } },
			want:  outcome{permanent: true, message: "make the policy's lifetime (30d) shorter"},
		},
		{
			name: "Entra never accepts the secret: no sink receives it and it is removed",
			tweak: func(b *bundle, e *Engine) {
				b.dir.verifyErr = errPending
				e.verifyTimeout = 30 * time.Millisecond
			},
			want: outcome{message: "no sink received it, so it was removed"},
		},
		{
			name: "verification times out with no sink: nobody holds the secret",
			tweak: func(b *bundle, e *Engine) {
				b.policy.Sinks = nil
				b.dir.verifyErr = errPending
				e.verifyTimeout = 30 * time.Millisecond
			},
			want: outcome{message: "was not accepted by Entra within 30ms"},
		},
		{
			name: "second sink refuses",
			tweak: func(b *bundle, _ *Engine) {
				b.vault.failures = func(name string, _ int) error {
					if name == "ado" {
						return fmt.Errorf("ado: %w", errPolicy)
					}
					return nil
				}
			},
			want: outcome{permanent: true, message: "sink 1 (memory sink ado) failed", newCredLeft: true},
		},
		{
			name: "a sink that quotes the secret in its error is redacted",
			tweak: func(b *bundle, _ *Engine) {
				b.policy.Sinks[1].Settings = map[string]any{"name": "ado", "echo": true}
			},
			want: outcome{permanent: true, message: `rejected value "[REDACTED]"`, newCredLeft: true},
		},
		{
			name:  "unknown sink type fails before anything is created",
			tweak: func(b *bundle, _ *Engine) { b.policy.Sinks = append(b.policy.Sinks, domain.SinkSpec{Type: "nope"}) },
			want:  outcome{permanent: true, message: "sink 2 (nope) cannot be built"},
		},
		{
			name: "a certificate policy whose bootstrap reference is malformed fails before anything is created",
			tweak: func(b *bundle, _ *Engine) {
				b.policy.Kind = domain.KindCertificate
				b.policy.Certificate.Bootstrap = map[string]any{"bogus": "x"}
			},
			want: outcome{permanent: true, message: "reading the bootstrap certificate failed"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			e := b.engine(t)
			tc.tweak(b, e)
			run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			var re *RunError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.want.permanent, re.Permanent, re.Message)
			require.Equal(t, tc.want.permanent, IsPermanentFailure(err))
			require.Contains(t, re.Message, tc.want.message)
			require.Equal(t, domain.RunFailed, run.State)
			stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
			require.NoError(t, err)
			require.Equal(t, domain.RunFailed, stored.State)
			require.Contains(t, stored.Error, tc.want.message)

			var rotorCreds []string
			for _, c := range b.dir.creds(b.app.ObjectID) {
				if c.RunID() == run.ID {
					rotorCreds = append(rotorCreds, c.KeyID)
				}
			}
			if tc.want.newCredLeft {
				require.Len(t, rotorCreds, 1)
			} else {
				require.Empty(t, rotorCreds)
			}
			// Older credentials are never touched by a failed run.
			require.NotContains(t, b.dir.removed, "old-rotor")
			require.NotContains(t, b.dir.removed, "foreign")
			b.assertNoSecretAtRest(t)
		})
	}
}

func TestRotateRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dir.addErr = func(n int) error {
		if n < 3 {
			return errors.New("graph: 503 service unavailable")
		}
		return nil
	}
	b.vault.failures = func(_ string, n int) error {
		if n == 1 {
			return errors.New("vault: connection reset")
		}
		return nil
	}
	run, err := b.engine(t).Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)
}

func TestRetireRefusesWhenTheNewCredentialIsGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.NoError(t, b.dir.RemovePassword(b.ctx, b.app.ObjectID, run.NewKeyID)) // someone else
	b.clock.Advance(2 * time.Hour)
	err = e.Retire(b.ctx, b.org, run.ID, b.policy)
	require.True(t, IsPermanentFailure(err), "%v", err)
	require.Contains(t, err.Error(), "no longer on the application")
	require.Len(t, b.dir.creds(b.app.ObjectID), 2, "nothing removed")
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunFailed, stored.State)
}

// TestRetireNeverRemovesALaterRunsSecret: two runs of one application
// within the same second (a manual rotate right after a scheduled one, as
// the many-processes test does) create secrets with the same start time.
// The first run's retirement must leave the second's secret — the one the
// vault holds now — and the second's retirement removes the first's.
func TestRetireNeverRemovesALaterRunsSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	first, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	require.Greater(t, second.Seq, first.Seq)
	_, inVault := b.vault.get("kv", b.app.ObjectID)
	require.Equal(t, second.NewKeyID, inVault)

	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
	var left []string
	for _, c := range b.dir.creds(b.app.ObjectID) {
		left = append(left, c.KeyID)
	}
	require.Contains(t, left, second.NewKeyID, "the earlier run's retirement removed the later run's secret")
	require.NoError(t, e.Retire(b.ctx, b.org, second.ID, b.policy))
	left = nil
	for _, c := range b.dir.creds(b.app.ObjectID) {
		if c.RotorCreated() {
			left = append(left, c.KeyID)
		}
	}
	require.Equal(t, []string{second.NewKeyID}, left, "the later run's retirement removes the earlier one's")
	b.assertConverged(t)
}

// TestRetireKeepsALaterRunWithoutSequence: a rotor process started before
// migration 0006 keeps running beside an upgraded one (a rolling upgrade)
// and creates its runs with app_seq 0. Such a run is later than the one
// retiring here, and its secret is the one the vault holds: having no
// sequence must not make it look like the earliest run of all.
func TestRetireKeepsALaterRunWithoutSequence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	first, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	// As the older binary writes it: no app_seq column in its INSERT.
	_, err = b.store.DB().ExecContext(b.ctx, `UPDATE runs SET app_seq = 0 WHERE id = ?`, second.ID)
	require.NoError(t, err)
	_, inVault := b.vault.get("kv", b.app.ObjectID)
	require.Equal(t, second.NewKeyID, inVault)

	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
	var left []string
	for _, c := range b.dir.creds(b.app.ObjectID) {
		left = append(left, c.KeyID)
	}
	require.Contains(t, left, second.NewKeyID, "the earlier run's retirement removed the secret of a later run the store gave no sequence")
	require.NoError(t, e.Retire(b.ctx, b.org, second.ID, b.policy))
	b.assertConverged(t)
}

// TestRetireAfterALaterRunRetiredFirst: a later run's retirement may come
// first (the earlier run's retire job was retried after transient errors,
// or both jobs ran at once after a restart) and removes the earlier run's
// secret, as it should. The earlier run's retirement then finds its secret
// gone: rotor removed it, not someone outside, and the consumers hold the
// later run's. It must not fail as "removed" (an ERROR, a failed_removed
// alert and a rotation at once).
func TestRetireAfterALaterRunRetiredFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	first, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, second.ID, b.policy))
	require.NotContains(t, keyIDsOf(b.dir.creds(b.app.ObjectID)), first.NewKeyID, "the later run's retirement removes the earlier one's secret")

	require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
	stored, err := b.store.GetRun(b.ctx, b.org, first.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunDone, stored.State, stored.Error)
	require.Empty(t, stored.Failure)
	require.NotContains(t, b.logs.String(), "retirement refused")
	b.assertConverged(t)

	app := b.app
	app.Credentials = b.dir.creds(b.app.ObjectID)
	d, err := e.Decide(b.ctx, b.org, app, &b.policy)
	require.NoError(t, err)
	require.False(t, d.Due, d.Message)
}

func keyIDsOf(cs []domain.Credential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.KeyID)
	}
	return out
}

// TestRetireTwiceInOneProcess: a second retire job of the same run in the
// same process (the run's own and one Recover scheduled) while the first
// is removing does nothing; the lease cannot tell them apart.
func TestRetireTwiceInOneProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var e *Engine
	var nested error
	calls := 0
	b.hooks.AfterJournal = func(r domain.Run, st domain.Step) {
		if st.Kind == domain.StepRetire && st.Phase == domain.PhaseRemoving && calls == 0 {
			calls++
			nested = e.Retire(b.ctx, b.org, r.ID, b.policy)
		}
	}
	e = b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	require.NoError(t, nested)
	require.Equal(t, 1, calls, "the hook ran")
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunDone, stored.State)
	removing := 0
	for _, ev := range stored.Events {
		if ev.Step.Kind == domain.StepRetire && ev.Step.Phase == domain.PhaseRemoving {
			removing++
		}
	}
	require.Equal(t, 1, removing, "one removal journaled: %v", steps(stored))
	require.Equal(t, []string{"old-rotor"}, b.dir.removed)
}

func TestRetireUnmanaged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.policy.RetireUnmanaged = true
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	creds := b.dir.creds(b.app.ObjectID)
	require.Len(t, creds, 1)
	require.Equal(t, run.NewKeyID, creds[0].KeyID)
}

func TestConcurrencyPerTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dir.slowAdd = 20 * time.Millisecond
	e := New(Config{Store: b.store, Conns: b.dir, Sinks: nil, Clock: b.clock, ConcurrencyPerTenant: 1})
	b.policy.Sinks, b.policy.Verify = nil, false
	var wg sync.WaitGroup
	for i := range 4 {
		app := b.app
		app.ObjectID, app.AppID = fmt.Sprintf("app-c%d", i), fmt.Sprintf("client-c%d", i)
		b.dir.addApp(app.ObjectID, app.AppID)
		wg.Go(func() {
			_, err := e.Rotate(b.ctx, b.org, app, b.policy, domain.TriggerDue)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, 1, b.dir.maxInFlight)
}

// crash is what a hook panics with to simulate the process dying.
type crash struct{ step string }

// runUntilCrash runs fn and reports whether it "crashed".
func runUntilCrash(fn func()) (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	fn()
	return false
}

// TestCrashAtEveryStep kills the engine right after each journal write of
// a rotation and its retirement (and once inside addPassword, after Entra
// created the secret but before rotor heard back), then restarts: Recover,
// a fresh run for every abandoned one, retirement. Recovery runs as in
// rotor (knowing the policy, so it asks the sinks what they hold, and
// resumes a run every sink holds) and without the policy (the journal
// alone decides). Whatever the moment,
// the end state is the same: one rotor credential, the newest, in every
// sink and accepted by Entra; the foreign credential untouched; no secret
// value in the journal or the logs.
func TestCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	// Learn the steps from a clean run.
	type point struct {
		step string
		n    int
	}
	var points []point
	{
		b := setup(t)
		seen := map[string]int{}
		b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
			step := st.String()
			seen[step]++
			points = append(points, point{step, seen[step]})
		}
		e := b.engine(t)
		run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
		require.NoError(t, err)
		b.clock.Advance(b.policy.Overlap)
		require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	}
	require.Greater(t, len(points), 12)
	points = append(points, point{"inside-addPassword", 1})

	for _, knows := range []bool{true, false} {
		for _, sinks := range []int{2, 0} {
			for _, p := range points {
				t.Run(fmt.Sprintf("policy=%v/sinks=%d/%s#%d", knows, sinks, p.step, p.n), func(t *testing.T) {
					t.Parallel()
					b := setup(t)
					if sinks == 0 {
						b.policy.Sinks = nil
					}
					if knows {
						_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
						require.NoError(t, err)
					}
					seen := map[string]int{}
					var crashedRun domain.Run
					b.hooks.AfterJournal = func(r domain.Run, st domain.Step) {
						step := st.String()
						seen[step]++
						if step == p.step && seen[step] == p.n {
							crashedRun = r
							panic(crash{step})
						}
					}
					if p.step == "inside-addPassword" {
						b.dir.afterAdd = func() { panic(crash{p.step}) }
					}
					e := b.engine(t)
					crashed := runUntilCrash(func() {
						run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
						require.NoError(t, err)
						b.clock.Advance(b.policy.Overlap)
						require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
					})
					if p.step == "done" && sinks == 0 {
						require.True(t, crashed)
					}
					if !crashed {
						// The step does not happen in this variant (sink steps
						// without sinks).
						require.True(t, sinks == 0 && (strings.HasPrefix(p.step, "sink:") || p.step == domain.StepReplicating.Step().String()), "step %s never reached", p.step)
						return
					}

					// Restart: a new engine (new process) on the same store and
					// Entra, once the dead one's lease has expired.
					b.die(e)
					b.hooks = Hooks{}
					b.dir.afterAdd = nil
					e = b.engine(t)
					if knows {
						e.policies = onePolicy{&b.policy}
					}
					before := len(b.dir.removed)
					abandoned, err := e.Recover(b.ctx, b.org)
					require.NoError(t, err)
					if crashedRun.ID != "" && crashedRun.State.Active() {
						if len(abandoned) == 0 {
							// Resumed: every sink held its secret.
							require.True(t, knows && sinks > 0, "only a run whose sinks can be asked is resumed")
							got, err := b.store.GetRun(b.ctx, b.org, crashedRun.ID)
							require.NoError(t, err)
							require.Equal(t, domain.RunRetiring, got.State)
						} else {
							require.Len(t, abandoned, 1)
							require.Equal(t, domain.RunAbandoned, abandoned[0].State)
						}
					}
					if p.step == "inside-addPassword" || (sinks == 0 && p.step == "created") {
						require.Len(t, b.dir.removed, before+1, "the secret nobody received is removed at once")
					}
					for _, a := range abandoned {
						_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerRecovery, Replacing(a.ID))
						require.NoError(t, err)
					}
					// Every retiring run's retirement was (re)scheduled.
					retiring, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: []domain.RunState{domain.RunRetiring}})
					require.NoError(t, err)
					for _, r := range retiring {
						require.Contains(t, b.retires, r.ID)
					}
					b.clock.Advance(b.policy.Overlap)
					for _, r := range retiring {
						require.NoError(t, e.Retire(b.ctx, b.org, r.ID, b.policy))
					}
					if sinks == 0 {
						creds := b.dir.creds(b.app.ObjectID)
						require.Len(t, creds, 2, "%v", creds)
					} else {
						b.assertConverged(t)
					}
					b.assertNoSecretAtRest(t)
					runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org})
					require.NoError(t, err)
					for _, r := range runs {
						require.Contains(t, []domain.RunState{domain.RunDone, domain.RunAbandoned}, r.State, "run %s", r.ID)
						if r.Trigger == domain.TriggerRecovery {
							require.NotEmpty(t, r.Replaces)
						}
					}
				})
			}
		}
	}
}

type policyFunc func(app domain.Application) *domain.Policy

func (f policyFunc) PolicyFor(app domain.Application) *domain.Policy { return f(app) }

func TestDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	foreign := domain.Credential{KeyID: "f-1", Kind: domain.KindSecret, DisplayName: "ops", Start: t0.Add(-time.Hour), End: t0.Add(300 * 24 * time.Hour)}
	mk := func(id, name string, manageable bool, creds ...domain.Credential) domain.Application {
		return domain.Application{Org: b.org, Access: []domain.Access{{Connection: "main", CanChange: manageable}}, TenantID: tenant, ObjectID: id, AppID: "client-" + id, DisplayName: name, Manageable: manageable, Credentials: creds}
	}
	apps := []domain.Application{
		b.app, // old-rotor ends in 10 days, renew_before 10 days: due
		mk("adopt", "adopt-me", true, foreign),
		mk("fresh", "fresh", true, domain.Credential{KeyID: "r-1", Kind: domain.KindSecret, DisplayName: "rotor:x", Start: t0, End: t0.Add(25 * 24 * time.Hour)}),
		mk("unowned", "unowned", false),
		mk("busy", "busy", true),
		mk("nopolicy", "nopolicy", true),
	}
	// Enough applications to need several pages.
	for i := range 2100 {
		apps = append(apps, mk(fmt.Sprintf("bulk-%04d", i), fmt.Sprintf("bulk-%04d", i), true,
			domain.Credential{KeyID: fmt.Sprintf("k-%d", i), Kind: domain.KindSecret, DisplayName: "rotor:y", Start: t0, End: t0.Add(29 * 24 * time.Hour)}))
	}
	apps[2100+6-1].Credentials = nil // the last bulk app is due (adoption)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: apps})
	require.NoError(t, err)
	require.NoError(t, b.store.CreateRun(b.ctx, &domain.Run{Org: b.org, ID: "0190aaaa-0000-7000-8000-00000000beef", TenantID: tenant, AppObjectID: "busy", Kind: domain.KindSecret, Trigger: domain.TriggerDue}))
	policies := policyFunc(func(app domain.Application) *domain.Policy {
		if app.ObjectID == "nopolicy" {
			return nil
		}
		return &b.policy
	})
	due := func() map[string]domain.Trigger {
		t.Helper()
		list, err := e.Due(b.ctx, b.org, policies)
		require.NoError(t, err)
		out := map[string]domain.Trigger{}
		for _, d := range list {
			require.True(t, d.Decision.Due)
			out[d.App.ObjectID] = d.Decision.Trigger
		}
		return out
	}
	require.Equal(t, map[string]domain.Trigger{"app-1": domain.TriggerDue, "adopt": domain.TriggerAdoption, "bulk-2099": domain.TriggerAdoption}, due())

	// EachDue hands the same answer over a page at a time (the last bulk
	// application is in a later page of the inventory than the others),
	// and stops at the callback's first error.
	var pages [][]string
	require.NoError(t, e.EachDue(b.ctx, b.org, policies, func(page []DueApp) error {
		var ids []string
		for _, d := range page {
			ids = append(ids, d.App.ObjectID)
		}
		pages = append(pages, ids)
		return nil
	}))
	require.Equal(t, [][]string{{"adopt"}, {"bulk-2099", "app-1"}}, pages, "in name order, a page per inventory page with any due")
	// Each carries its deadline, which is the order Due gives: the bulk
	// application has no credential (now), app-1's rotor secret ends in
	// 10 days, adopt-me's foreign one in 300.
	list, err := e.Due(b.ctx, b.org, policies)
	require.NoError(t, err)
	var order []string
	for _, d := range list {
		require.False(t, d.Deadline.IsZero(), d.App.ObjectID)
		order = append(order, d.App.ObjectID)
	}
	require.True(t, slices.IsSortedFunc(list, func(a, b DueApp) int { return a.Deadline.Compare(b.Deadline) }), "%v", order)
	require.Equal(t, []string{"bulk-2099", "app-1", "adopt"}, order)
	stop := errors.New("enough")
	calls := 0
	err = e.EachDue(b.ctx, b.org, policies, func([]DueApp) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)

	// A rotation is seen at once, before the next inventory sync.
	_, err = e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	d, err := e.Decide(b.ctx, b.org, b.app, &b.policy)
	require.NoError(t, err)
	require.False(t, d.Due, d.Message)
	require.Equal(t, "NotYetDue", d.Reason)
	require.NotContains(t, due(), "app-1")

	// A failed run holds an application back for an hour, then two after
	// a second failure.
	b.dir.addErr = func(int) error { return errPolicy }
	adopt := apps[1]
	b.dir.addApp(adopt.ObjectID, adopt.AppID, foreign)
	_, err = e.Rotate(b.ctx, b.org, adopt, b.policy, domain.TriggerAdoption)
	require.True(t, IsPermanentFailure(err))
	require.NotContains(t, due(), "adopt")
	b.clock.Advance(61 * time.Minute)
	require.Contains(t, due(), "adopt")
	_, err = e.Rotate(b.ctx, b.org, adopt, b.policy, domain.TriggerAdoption)
	require.True(t, IsPermanentFailure(err))
	b.clock.Advance(90 * time.Minute)
	require.NotContains(t, due(), "adopt")
	b.clock.Advance(31 * time.Minute)
	require.Contains(t, due(), "adopt")
}

func TestFailedRunSecretDoesNotPassForCurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	// The first sink receives the secret, the second refuses: the run
	// fails with its secret left in Entra (a consumer may hold it).
	b.vault.failures = func(name string, _ int) error {
		if name == "ado" {
			return fmt.Errorf("ado: %w", errPolicy)
		}
		return nil
	}
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.Error(t, err)
	// The next inventory sync sees the failed run's secret (a sink got it).
	app := b.app
	app.Credentials = b.dir.creds(app.ObjectID)
	require.Len(t, app.Credentials, 3)
	b.clock.Advance(2 * time.Hour)
	d, err := e.Decide(b.ctx, b.org, app, &b.policy)
	require.NoError(t, err)
	require.True(t, d.Due, "the unverified secret of failed run %s must not postpone the renewal: %s", run.ID, d.Message)
}

// TestPasswordLimitCountsAFailedRunsSecret: the journal hides a failed
// run's secret from the decision (it never verified), but Entra still
// holds it — a sink may hold it too — so on an application limited to two
// secrets it takes a place: explain says PasswordLimit, as the run would
// find, rather than "due" and a run that fails.
func TestPasswordLimitCountsAFailedRunsSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	b.vault.failures = func(name string, _ int) error {
		if name == "ado" {
			return fmt.Errorf("ado: %w", errPolicy)
		}
		return nil
	}
	_, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.Error(t, err)
	app := b.app
	app.SignInAudience = "PersonalMicrosoftAccount"
	app.Credentials = b.dir.creds(app.ObjectID)
	// The failed run's secret and one working secret rotor did not make.
	var kept []domain.Credential
	for _, c := range app.Credentials {
		if c.KeyID != "old-rotor" {
			kept = append(kept, c)
		}
	}
	app.Credentials = kept
	require.Len(t, app.Credentials, 2, "%+v", app.Credentials)
	b.clock.Advance(2 * time.Hour)
	d, err := e.Decide(b.ctx, b.org, app, &b.policy)
	require.NoError(t, err)
	require.False(t, d.Due, d.Message)
	require.Equal(t, "PasswordLimit", d.Reason)

	// The planner says so once, at WARN, however often it looks.
	_, err = b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{app}})
	require.NoError(t, err)
	for range 3 {
		due, err := e.Due(b.ctx, b.org, onePolicy{&b.policy})
		require.NoError(t, err)
		require.Empty(t, due)
	}
	require.Equal(t, 1, strings.Count(b.logs.String(), "cannot be rotated: Entra lets it hold only two secrets"), b.logs.String())
}
