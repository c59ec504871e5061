package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// simRig is rotor opened on a simulator of one tenant, with one policy
// ("all": 30 d secrets renewed 10 d before they end, an hour of overlap)
// delivering to the tenant's vault — the scene of the server's end-to-end
// tests. Serve is the test's to start.
type simRig struct {
	t       *testing.T
	ctx     context.Context
	cancel  context.CancelFunc
	st      *simtest.Sim
	info    *simfile.Info
	tn      simfile.Tenant
	simFile string
	srv     *Server
	org     domain.OrgID
	// onJournal, when set, is called after every journal write of the
	// rotation (rotation.Hooks.AfterJournal): a test's way to act
	// between two steps of a run.
	onJournal atomic.Pointer[func(domain.Run, domain.Step)]
}

func newSimRig(t *testing.T, opts simtest.Options, rot config.SimulatorRotation, tweaks ...func(*config.SimulatorConfig)) *simRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	st := simtest.Start(t, opts)
	r := &simRig{t: t, ctx: ctx, cancel: cancel, st: st, info: st.Info, tn: st.Info.Tenants[0]}
	r.simFile = filepath.Join(filepath.Dir(r.info.CAFile), simfile.FileName)
	sc := config.SimulatorConfig{
		SimFile: r.simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Rotation: rot,
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	}
	for _, tw := range tweaks {
		tw(&sc)
	}
	yaml, err := config.SimulatorYAML(r.info, sc)
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	srvOpts := Options{Logger: rigLogger(), Getenv: envMap{"ROTATION_SECRET": r.tn.Rotation.ClientSecret}.get,
		Hooks: rotation.Hooks{AfterJournal: func(run domain.Run, step domain.Step) {
			if f := r.onJournal.Load(); f != nil {
				(*f)(run, step)
			}
		}}}
	if opts.Clock != nil {
		// A test that moves the simulator's clock moves rotor's with it.
		srvOpts.Clock = opts.Clock
	}
	r.srv, err = Open(ctx, cfgPath, srvOpts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.srv.Close() })
	// The job system opens with the first retirement a rotation schedules,
	// or with Serve (then with rotation.max_in_flight workers).
	r.org = r.srv.Config().Organization
	return r
}

// owned syncs and returns the applications rotor's identity owns.
func (r *simRig) owned() []domain.Application {
	r.t.Helper()
	require.NoError(r.t, r.srv.Sync(r.ctx, nil))
	apps, err := r.srv.Store().ListApplications(r.ctx, storeListOwned(r.org))
	require.NoError(r.t, err)
	return apps
}

// vault is the tenant's vault as the consumer identity reads it.
func (r *simRig) vault() *azsecrets.Client {
	r.t.Helper()
	ep, err := azure.ResolveEndpoints(azure.Sim, r.simFile)
	require.NoError(r.t, err)
	consumer, err := simtest.NewConsumerCredential(r.info, r.tn.ID)
	require.NoError(r.t, err)
	kv, err := azure.NewSecretsClient(r.tn.KeyVaults[0].URL, consumer, ep)
	require.NoError(r.t, err)
	return kv
}

// consumerSignsIn reads the application's vault secret as its consumer
// would (azsecrets) and gets a token with it (azidentity).
func (r *simRig) consumerSignsIn(kv *azsecrets.Client, appName, appID string) error {
	return consumerSignsIn(r.ctx, r.info, r.simFile, r.tn.ID, kv, appName, appID)
}

// consumerSignsIn is simRig.consumerSignsIn for scenes without a rig (the
// benchmarks): the "<app>-secret" the policy writes, read from kv, gets a
// Graph token for appID in tenantID.
func consumerSignsIn(ctx context.Context, info *simfile.Info, simFile, tenantID string, kv *azsecrets.Client, appName, appID string) error {
	resp, err := kv.GetSecret(ctx, appName+"-secret", "", nil)
	if err != nil {
		return err
	}
	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	if err != nil {
		return err
	}
	cred, err := azure.NewCredential(azure.Connection{Name: "consumer", TenantID: tenantID, Cloud: azure.Sim, SimFile: simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: appID, ClientSecret: secret.New(*resp.Value)}}, ep)
	if err != nil {
		return err
	}
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.GraphAudience + "/.default"}})
	return err
}

// rigLogger discards rotor's log unless ROTOR_TEST_LOG names a file.
func rigLogger() *slog.Logger {
	if p := os.Getenv("ROTOR_TEST_LOG"); p != "" {
		if f, err := os.Create(p); err == nil {
			return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	return slog.New(slog.DiscardHandler)
}
