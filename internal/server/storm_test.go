package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
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

// TestThrottlingStormAtRenewalTime is issue 7's third judgement: every
// application's secret is due at once while Graph allows far fewer writes
// than rotor's pacer assumes (the tenant's write bucket is 15 per 150 s,
// as if other tools spent the rest; rotor learns it from 429s), one
// request in ten fails with 503, and Entra takes 2 s to accept a new
// secret. Every rotation still ends — each application's vault secret
// gets a token (azsecrets as the consumer, azidentity with the value) —
// before that application's old secret expires (the first at 60 s, one
// more every minute).
func TestThrottlingStormAtRenewalTime(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of throttling; run without -short")
	}
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	const apps = 20
	st := simtest.Start(t, simtest.Options{
		Seed:   "apps=20,tenants=1,expiring=20m,replication=2s",
		Faults: sim.FaultConfig{Throttle: true, ThrottleScale: 0.005, ErrorRate: 0.1},
	})
	info := st.Info
	tn := info.Tenants[0]
	simFile := filepath.Join(filepath.Dir(info.CAFile), simfile.FileName)
	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Rotation: config.SimulatorRotation{Jitter: "0s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	srv, err := Open(ctx, cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get})
	require.NoError(t, err)
	defer srv.Close()
	org := srv.Config().Organization

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, nil) }()
	deadline := time.Now().Add(3 * time.Minute)
	var runs []domain.Run
	for {
		runs, err = srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org, States: []domain.RunState{domain.RunRetiring}})
		require.NoError(t, err)
		if len(runs) >= apps {
			break
		}
		require.True(t, time.Now().Before(deadline), "after 3 minutes only %d of %d rotations were verified", len(runs), apps)
		time.Sleep(250 * time.Millisecond)
	}
	stats := st.Server.Stats()
	t.Logf("every rotation verified; Graph answered %d 429s and the simulator injected %d 503s", stats.Throttled, stats.InjectedErrors)
	require.Positive(t, stats.Throttled, "the storm must have throttled rotor")
	cancel()
	<-served
	// The consumer checks below would meet the injected 503s too.
	require.NoError(t, st.Server.SetFaults(sim.FaultConfig{}))

	// Each rotation was verified before the secret it replaced ended, and
	// each vault secret works.
	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	require.NoError(t, err)
	consumer, err := simtest.NewConsumerCredential(info, tn.ID)
	require.NoError(t, err)
	kv, err := azure.NewSecretsClient(tn.KeyVaults[0].URL, consumer, ep)
	require.NoError(t, err)
	world := st.Server.World().Tenant(tn.ID)
	for _, r := range runs {
		var oldEnd time.Time
		st.Server.World().Update(func() {
			for _, p := range world.AppByObjectID(r.AppObjectID).Passwords {
				if p.DisplayName == "bulk" {
					oldEnd = p.End
				}
			}
		})
		require.False(t, oldEnd.IsZero(), r.AppName)
		require.True(t, r.UpdatedAt.Before(oldEnd), "%s: verified at %s, after its old secret ended at %s", r.AppName, r.UpdatedAt, oldEnd)
		resp, err := kv.GetSecret(context.Background(), r.AppName+"-secret", "", nil)
		require.NoError(t, err, r.AppName)
		cred, err := azure.NewCredential(azure.Connection{Name: "consumer", TenantID: tn.ID, Cloud: azure.Sim, SimFile: simFile,
			Identity: azure.Identity{Method: azure.ClientSecret, ClientID: r.AppID, ClientSecret: secret.New(*resp.Value)}}, ep)
		require.NoError(t, err)
		_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{info.GraphAudience + "/.default"}})
		require.NoError(t, err, "%s: the vault's secret gets a token", r.AppName)
	}
}
