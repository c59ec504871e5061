package server

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestAuditTrailRecordsCallsAndEveryRotationStep (issue 9): a rotation
// through the application layer leaves, in the store's trail, the call
// (by its actor) and one record per journal step of its run (by rotor, on
// the application, naming the run and the step, in journal order); a
// rotation that fails says so, classified. The trail verifies intact, and
// no secret value the simulator issued, nor the connection's own, is in
// any of its rows.
func TestAuditTrailRecordsCallsAndEveryRotationStep(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var issued []string
	r := newSimRig(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=0s",
		OnSecretIssued: func(_, _, _, value string) {
			mu.Lock()
			issued = append(issued, value)
			mu.Unlock()
		}}, config.SimulatorRotation{Jitter: "1h", PlanInterval: "1h", SyncInterval: "10m", VerifyTimeout: "1m"})
	ctx, srv, org := r.ctx, r.srv, r.org
	apps := r.owned()
	require.Len(t, apps, 2)
	good, bad := apps[0], apps[1]

	// The second application's vault secret is someone else's: its
	// rotation fails, permanently, before anything is created.
	vault := r.tn.KeyVaults[0]
	r.st.GrantSecrets(t, r.tn.ID, vault.Name, r.tn.Consumer.PrincipalID, sim.SecretGet, sim.SecretList, sim.SecretSet)
	foreign := "a value someone else keeps here"
	_, err := r.vault().SetSecret(ctx, bad.DisplayName+"-secret", azsecrets.SetSecretParameters{Value: &foreign}, nil)
	require.NoError(t, err)

	scope := app.Scope{Org: org, Actor: app.CLI, RequestID: "req-9"}
	results, err := srv.App().Rotate(ctx, scope, []string{good.ObjectID}, nil)
	require.NoError(t, err)
	require.Len(t, results, 1)
	_, err = srv.App().Rotate(ctx, scope, []string{bad.ObjectID}, nil)
	require.Error(t, err)

	recs, err := srv.App().AuditList(ctx, scope, app.AuditFilter{Limit: app.MaxAuditLimit})
	require.NoError(t, err)
	for i, rec := range recs {
		require.EqualValues(t, i+1, rec.Seq)
		require.Equal(t, org, rec.Org)
	}

	// The good run: each journal line has its record, in order.
	run, err := srv.Store().GetRun(ctx, org, results[0].RunID)
	require.NoError(t, err)
	steps, err := srv.App().AuditList(ctx, scope, app.AuditFilter{Run: run.ID, Action: audit.ActionRotationStep, Limit: 1000})
	require.NoError(t, err)
	var want, got []string
	for _, ev := range run.Events {
		want = append(want, ev.Step.String())
	}
	for _, s := range steps {
		got = append(got, s.Step)
		require.Equal(t, audit.Rotor.Kind, s.Actor.Kind)
		require.Equal(t, audit.Rotor.ID, s.Actor.ID)
		require.Equal(t, srv.Engine().Lease().Holder(), s.Actor.Name, "the process that wrote the step")
		require.Equal(t, "application:"+good.ObjectID, s.Object)
		require.Equal(t, run.ID, s.RunID)
		require.Equal(t, audit.OutcomeOK, s.Outcome)
	}
	require.Equal(t, want, got, "one record per journal step, in journal order")
	require.Contains(t, got, "sink:0:written")

	// The call itself, by its actor, naming its run, after its steps.
	calls, err := srv.App().AuditList(ctx, scope, app.AuditFilter{Action: string(app.ActionRotate)})
	require.NoError(t, err)
	require.Len(t, calls, 2)
	require.Equal(t, audit.Actor{Kind: "system", ID: "cli"}, calls[0].Actor)
	require.Equal(t, "application:"+good.ObjectID, calls[0].Object)
	require.Equal(t, audit.OutcomeOK, calls[0].Outcome)
	require.Equal(t, "req-9", calls[0].RequestID)
	require.Equal(t, []string{run.ID}, calls[0].Runs)
	require.Greater(t, calls[0].Seq, steps[len(steps)-1].Seq)
	require.Equal(t, audit.OutcomeFailed, calls[1].Outcome)
	require.Equal(t, string(app.ClassRunFailed), calls[1].Error)

	// The failed run ends with a failed step, classified.
	badRuns, err := srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org, AppObjectID: bad.ObjectID})
	require.NoError(t, err)
	require.Len(t, badRuns, 1)
	badSteps, err := srv.App().AuditList(ctx, scope, app.AuditFilter{Run: badRuns[0].ID, Newest: true, Limit: 2})
	require.NoError(t, err)
	require.Len(t, badSteps, 2)
	require.Equal(t, calls[1].Seq, badSteps[0].Seq, "newest first: the call that named the run, then the run's last step")
	require.Equal(t, "failed", badSteps[1].Step)
	require.Equal(t, audit.OutcomeFailed, badSteps[1].Outcome)
	require.Equal(t, "permanent", badSteps[1].Error)

	res, err := srv.App().AuditVerify(ctx, scope, app.AuditVerifyOptions{})
	require.NoError(t, err)
	require.True(t, res.Intact, "%+v", res.Problem)
	require.Equal(t, int64(len(recs)), res.Records)

	// No secret value in any row of the trail.
	mu.Lock()
	secrets := append([]string{r.tn.Rotation.ClientSecret}, issued...)
	mu.Unlock()
	require.NotEmpty(t, issued, "the rotation issued a secret")
	all, err := srv.Store().ListAudit(ctx, store.ListAuditParams{Org: org})
	require.NoError(t, err)
	text, err := json.Marshal(all)
	require.NoError(t, err)
	text = fmt.Appendf(text, "%+v", all)
	for _, sv := range secrets {
		require.NotEmpty(t, sv)
		require.NotContains(t, string(text), sv, "a secret value reached the audit trail")
	}
}
