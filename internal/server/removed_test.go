package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestRemovedRotorSecretIsReplacedAtOnce is issue 7's first judgement:
// a rotor secret removed in Entra behind rotor's back — the one the vault
// holds, so its consumer is now refused — is replaced as soon as a sync
// sees it gone, not after the planner's jitter (an hour here), and the
// consumer works again (azsecrets as the consumer identity, azidentity
// with the value it reads).
func TestRemovedRotorSecretIsReplacedAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h,replication=0s"})
	simSrv, info := st.Server, st.Info
	tn := info.Tenants[0]
	simFile := filepath.Join(filepath.Dir(info.CAFile), simfile.FileName)
	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Rotation: config.SimulatorRotation{Jitter: "1h", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	srv, err := Open(ctx, cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get})
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.openJobs(ctx, 0))
	require.NoError(t, srv.Sync(ctx, nil))
	org := srv.Config().Organization
	apps, err := srv.Store().ListApplications(ctx, storeListOwned(org))
	require.NoError(t, err)
	require.Len(t, apps, 1)
	app := apps[0]
	first, err := srv.Engine().Rotate(ctx, org, app, *srv.PolicyFor(app), domain.TriggerManual)
	require.NoError(t, err)

	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	require.NoError(t, err)
	consumer, err := simtest.NewConsumerCredential(info, tn.ID)
	require.NoError(t, err)
	kv, err := azure.NewSecretsClient(tn.KeyVaults[0].URL, consumer, ep)
	require.NoError(t, err)
	consumerSignsIn := func() error {
		resp, err := kv.GetSecret(ctx, app.DisplayName+"-secret", "", nil)
		if err != nil {
			return err
		}
		cred, err := azure.NewCredential(azure.Connection{Name: "consumer", TenantID: tn.ID, Cloud: azure.Sim, SimFile: simFile,
			Identity: azure.Identity{Method: azure.ClientSecret, ClientID: app.AppID, ClientSecret: secret.New(*resp.Value)}}, ep)
		if err != nil {
			return err
		}
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.GraphAudience + "/.default"}})
		return err
	}
	require.NoError(t, consumerSignsIn())

	// Someone removes rotor's secret in Entra: the consumer is refused.
	simApp := simSrv.World().Tenant(tn.ID).AppByObjectID(app.ObjectID)
	simSrv.World().Update(func() {
		simApp.Passwords = slices.DeleteFunc(simApp.Passwords, func(p *sim.Password) bool { return p.KeyID == first.NewKeyID })
	})
	require.Error(t, consumerSignsIn())

	// serve's first sync sees it; the planner rotates at once.
	removedAt := time.Now()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, nil) }()
	deadline := time.Now().Add(time.Minute)
	for consumerSignsIn() != nil {
		require.True(t, time.Now().Before(deadline), "the consumer still fails a minute after rotor saw its secret removed")
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("replaced %s after serve started", time.Since(removedAt).Round(time.Millisecond))
	runs, err := srv.Store().ListRuns(ctx, storeRunsOf(org, app.ObjectID))
	require.NoError(t, err)
	var triggers []domain.Trigger
	for _, r := range runs {
		triggers = append(triggers, r.Trigger)
	}
	require.Contains(t, triggers, domain.TriggerRemoved)
	cancel()
	<-served
}

// TestRemovedSecretIsNotSwallowedByAQueuedRenewal: the application was
// already due for renewal, so a rotation sits in the queue for up to the
// jitter (an hour); then its secret is removed in Entra. The urgent
// rotation is its own job (the queued one cannot swallow it as a
// duplicate), and the consumer works again within the minute.
func TestRemovedSecretIsNotSwallowedByAQueuedRenewal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h,replication=0s"})
	simSrv, info := st.Server, st.Info
	tn := info.Tenants[0]
	simFile := filepath.Join(filepath.Dir(info.CAFile), simfile.FileName)
	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Rotation: config.SimulatorRotation{Jitter: "1h", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	srv, err := Open(ctx, cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get})
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.openJobs(ctx, 0))
	require.NoError(t, srv.Sync(ctx, nil))
	org := srv.Config().Organization
	apps, err := srv.Store().ListApplications(ctx, storeListOwned(org))
	require.NoError(t, err)
	require.Len(t, apps, 1)
	app := apps[0]
	first, err := srv.Engine().Rotate(ctx, org, app, *srv.PolicyFor(app), domain.TriggerManual)
	require.NoError(t, err)
	// Its secret now ends in a day, well inside renew_before: due.
	simApp := simSrv.World().Tenant(tn.ID).AppByObjectID(app.ObjectID)
	simSrv.World().Update(func() {
		for _, p := range simApp.Passwords {
			if p.KeyID == first.NewKeyID {
				p.End = time.Now().Add(24 * time.Hour)
			}
		}
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, nil) }()
	// Serve's first sync sees it due; the planner queues the renewal an
	// hour out at most. Wait for the plan to have run.
	require.Eventually(t, func() bool {
		d, err := srv.Engine().Due(ctx, org, srv)
		return err == nil && len(d) == 1 && d[0].Decision.Trigger == domain.TriggerDue
	}, 20*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second) // a plan (every second) queued it

	simSrv.World().Update(func() {
		simApp.Passwords = slices.DeleteFunc(simApp.Passwords, func(p *sim.Password) bool { return p.KeyID == first.NewKeyID })
	})
	require.NoError(t, srv.Sync(ctx, nil))
	require.Eventually(t, func() bool {
		runs, err := srv.Store().ListRuns(ctx, storeRunsOf(org, app.ObjectID))
		require.NoError(t, err)
		for _, r := range runs {
			if r.Trigger == domain.TriggerRemoved && r.State == domain.RunRetiring {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the removed secret's rotation waited behind the queued renewal")
	cancel()
	<-served
}

func storeRunsOf(org domain.OrgID, objectID string) store.ListRunsParams {
	return store.ListRunsParams{Org: org, AppObjectID: objectID}
}
