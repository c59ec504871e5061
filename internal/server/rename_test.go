package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestRenamedApplicationKeepsItsConsumer: the policy names the vault
// secret after the application ("{{ .App.DisplayName }}-secret"). The
// application is renamed in Entra; the next rotation still writes the
// secret its consumer reads (the pinned target), says so in the journal
// and in Targets, and after that rotation's overlap the consumer's secret
// still gets a token while the credential it held before was retired.
func TestRenamedApplicationKeepsItsConsumer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=0s"})
	simSrv, info := st.Server, st.Info
	tn := info.Tenants[0]

	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	clk := clock.NewFake(time.Now())
	srv, err := Open(ctx, cfgPath, Options{
		Logger: slog.New(slog.DiscardHandler), Clock: clk,
		Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get,
	})
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.openJobs(ctx, 0))
	require.NoError(t, srv.Sync(ctx, nil))
	org := srv.Config().Organization

	owned := func() (*domain.Application, *domain.Policy) {
		t.Helper()
		apps, err := srv.Store().ListApplications(ctx, storeListOwned(org))
		require.NoError(t, err)
		for i := range apps {
			if p := srv.PolicyFor(apps[i]); p != nil && len(p.Sinks) > 0 {
				return &apps[i], p
			}
		}
		t.Fatal("no owned application under a policy with a sink")
		return nil, nil
	}
	app, pol := owned()
	oldName := app.DisplayName
	first, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)

	// Renamed in Entra behind rotor's back; the next sync sees the new name.
	simApp := simSrv.World().Tenant(tn.ID).AppByObjectID(app.ObjectID)
	simSrv.World().Update(func() { simApp.DisplayName = "renamed-" + oldName })
	require.NoError(t, srv.Sync(ctx, nil))
	app, err = srv.Store().GetApplication(ctx, org, app.ObjectID)
	require.NoError(t, err)
	require.Equal(t, "renamed-"+oldName, app.DisplayName)
	pol = srv.PolicyFor(*app)
	require.NotNil(t, pol)

	views, err := srv.Engine().Targets(ctx, org, *app, *pol)
	require.NoError(t, err)
	require.Len(t, views, 1)
	require.True(t, views[0].Pinned && views[0].Moved, "%+v", views[0])
	_, pinnedName, err := keyvault.ParseTarget(views[0].Target)
	require.NoError(t, err)
	require.Equal(t, oldName+"-secret", pinnedName, "the consumer's secret, named at first delivery")
	_, todayName, err := keyvault.ParseTarget(views[0].Today)
	require.NoError(t, err)
	require.Equal(t, "renamed-"+oldName+"-secret", todayName)

	second, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	full, err := srv.Store().GetRun(ctx, org, second.ID)
	require.NoError(t, err)
	var moved bool
	for _, ev := range full.Events {
		moved = moved || ev.Step.Kind == domain.StepTargetMoved
	}
	require.True(t, moved, "the run reports the rename")

	// The overlap passes and the second run retires the first's secret.
	clk.Advance(pol.Overlap + time.Minute)
	require.NoError(t, srv.Engine().Retire(ctx, org, second.ID, *pol))
	creds, err := srv.conns.byKey[connKey{app.Org, pol.Connection}].graph.GetApplication(ctx, app.ObjectID, []string{"passwordCredentials"})
	require.NoError(t, err)
	for _, c := range creds.PasswordCredentials {
		require.NotEqual(t, first.NewKeyID, c.KeyID, "the first run's secret was retired")
	}

	// The consumer reads the old name and its secret still works.
	kv := st.SecretsClient(t, tn.KeyVaults[0].URL, st.ConsumerCredential(t, tn.ID))
	got, err := kv.GetSecret(ctx, oldName+"-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, second.NewKeyID, *got.Tags[keyvault.TagKeyID])
	require.NoError(t, azure.VerifySecret(ctx, srv.conns.byKey[connKey{app.Org, pol.Connection}].ep, tn.ID, app.AppID, secret.New(*got.Value)))
	_, err = kv.GetSecret(ctx, "renamed-"+oldName+"-secret", "", nil)
	require.Error(t, err, "nothing was written under the new name")

	// Moving is explicit: the new name becomes the target, the old one is
	// kept updated for one overlap.
	mv, err := srv.Engine().MoveTarget(ctx, org, *app, *pol, 0)
	require.NoError(t, err)
	require.Equal(t, views[0].Today, mv.Target)
	require.Equal(t, views[0].Target, mv.Previous)
	third, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	for _, name := range []string{oldName + "-secret", "renamed-" + oldName + "-secret"} {
		got, err := kv.GetSecret(ctx, name, "", nil)
		require.NoError(t, err, name)
		require.Equal(t, third.NewKeyID, *got.Tags[keyvault.TagKeyID], "%s holds the newest secret during the move", name)
	}
	// That rotation settled the move: the old target is updated until its
	// overlap has passed, and no longer after.
	views, err = srv.Engine().Targets(ctx, org, *app, *pol)
	require.NoError(t, err)
	require.Equal(t, mv.Previous, views[0].Previous)
	require.True(t, third.RetireAt.Equal(views[0].RetireOldAt), "old target kept until %s, want the rotation's retire time %s", views[0].RetireOldAt, third.RetireAt)
	clk.Advance(pol.Overlap + time.Minute)
	require.NoError(t, srv.Engine().Retire(ctx, org, third.ID, *pol))
	fourth, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	got, err = kv.GetSecret(ctx, "renamed-"+oldName+"-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, fourth.NewKeyID, *got.Tags[keyvault.TagKeyID])
	got, err = kv.GetSecret(ctx, oldName+"-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, third.NewKeyID, *got.Tags[keyvault.TagKeyID], "after the move settled, the old target is left alone")
}

func storeListOwned(org domain.OrgID) store.ListApplicationsParams {
	return store.ListApplicationsParams{Org: org, ManageableOnly: true}
}
