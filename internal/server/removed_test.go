package server

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store"
)

// removedRig is one owned application rotated once by hand, on a rotor
// whose planner spreads renewals over an hour (jitter) and looks every
// second.
func removedRig(t *testing.T) (*simRig, domain.Application, *domain.Run) {
	t.Helper()
	r := newSimRig(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h,replication=0s"},
		config.SimulatorRotation{Jitter: "1h", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"})
	apps := r.owned()
	require.Len(t, apps, 1)
	first, err := r.srv.Engine().Rotate(r.ctx, r.org, apps[0], *r.srv.PolicyFor(apps[0]), domain.TriggerManual)
	require.NoError(t, err)
	return r, apps[0], first
}

// removeInEntra removes keyID from the application behind rotor's back.
func (r *simRig) removeInEntra(objectID, keyID string) {
	a := r.st.Server.World().Tenant(r.tn.ID).AppByObjectID(objectID)
	r.st.Server.World().Update(func() {
		a.Passwords = slices.DeleteFunc(a.Passwords, func(p *sim.Password) bool { return p.KeyID == keyID })
	})
}

// serve runs rotor serve until the test ends.
func (r *simRig) serve() {
	served := make(chan error, 1)
	go func() { served <- r.srv.Serve(r.ctx, nil) }()
	r.t.Cleanup(func() {
		r.cancel()
		<-served
	})
}

// TestRemovedRotorSecretIsReplacedAtOnce is issue 7's first judgement:
// a rotor secret removed in Entra behind rotor's back — the one the vault
// holds, so its consumer is now refused — is replaced as soon as a sync
// sees it gone, not after the planner's jitter (an hour here), and the
// consumer works again (azsecrets as the consumer identity, azidentity
// with the value it reads).
func TestRemovedRotorSecretIsReplacedAtOnce(t *testing.T) {
	t.Parallel()
	r, app, first := removedRig(t)
	kv := r.vault()
	require.NoError(t, r.consumerSignsIn(kv, app.DisplayName, app.AppID))

	r.removeInEntra(app.ObjectID, first.NewKeyID)
	require.Error(t, r.consumerSignsIn(kv, app.DisplayName, app.AppID))

	// serve's first sync sees it; the planner rotates at once.
	removedAt := time.Now()
	r.serve()
	deadline := time.Now().Add(time.Minute)
	for r.consumerSignsIn(kv, app.DisplayName, app.AppID) != nil {
		require.True(t, time.Now().Before(deadline), "the consumer still fails a minute after rotor saw its secret removed")
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("replaced %s after serve started", time.Since(removedAt).Round(time.Millisecond))
	// The consumer can sign in once the vault holds the new value
	// (propagated); the run journals verified and retiring just after.
	require.Eventually(t, func() bool { return r.hasRun(app.ObjectID, domain.TriggerRemoved, domain.RunRetiring) },
		20*time.Second, 50*time.Millisecond, "the replacing run never reached retiring")
}

// TestRemovedSecretIsNotSwallowedByAQueuedRenewal: the application was
// already due for renewal, so a rotation sits in the queue for up to the
// jitter (an hour); then its secret is removed in Entra. The urgent
// rotation is its own job (the queued one cannot swallow it as a
// duplicate), and it is verified within the minute.
func TestRemovedSecretIsNotSwallowedByAQueuedRenewal(t *testing.T) {
	t.Parallel()
	r, app, first := removedRig(t)
	// Its secret now ends in a day, well inside renew_before: due.
	simApp := r.st.Server.World().Tenant(r.tn.ID).AppByObjectID(app.ObjectID)
	r.st.Server.World().Update(func() {
		for _, p := range simApp.Passwords {
			if p.KeyID == first.NewKeyID {
				p.End = time.Now().Add(24 * time.Hour)
			}
		}
	})
	r.serve()
	// Serve's first sync sees it due; the planner queues the renewal an
	// hour out at most. Wait for the plan to have run.
	require.Eventually(t, func() bool {
		d, err := r.srv.Engine().Due(r.ctx, r.org, r.srv)
		return err == nil && len(d) == 1 && d[0].Decision.Trigger == domain.TriggerDue
	}, 20*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second) // a plan (every second) queued it

	r.removeInEntra(app.ObjectID, first.NewKeyID)
	require.NoError(t, r.srv.Sync(r.ctx, nil))
	require.Eventually(t, func() bool { return r.hasRun(app.ObjectID, domain.TriggerRemoved, domain.RunRetiring) },
		time.Minute, 200*time.Millisecond, "the removed secret's rotation waited behind the queued renewal")
}

// hasRun reports whether the application has a run of trigger in state.
func (r *simRig) hasRun(objectID string, trigger domain.Trigger, state domain.RunState) bool {
	runs, err := r.srv.Store().ListRuns(r.ctx, store.ListRunsParams{Org: r.org, AppObjectID: objectID})
	require.NoError(r.t, err)
	for _, run := range runs {
		if run.Trigger == trigger && run.State == state {
			return true
		}
	}
	return false
}
