package server

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
	"github.com/rotor-dev/rotor/internal/sink/kubernetes"
	"github.com/rotor-dev/rotor/internal/store"
)

func TestSinkKindsBindToConnections(t *testing.T) {
	t.Parallel()
	r := sink.NewRegistry(sinkKinds()...)
	require.Contains(t, r.Types(), keyvault.Type)
	require.Contains(t, r.Types(), kubernetes.Type)
	conns, err := NewConns(nil)
	require.NoError(t, err)
	_, err = r.Bind(newSinkDeps(sinkDepsParams{conns: conns}))
	require.NoError(t, err, "every kind finds what it needs in the one Deps")

	_, err = conns.TokenCredential(domain.DefaultOrg, "nope")
	require.ErrorContains(t, err, `organization default has no connection "nope"`)
}

func TestSinkSecretResolver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pat"), []byte("  pat-from-file\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	r := &secretResolver{baseDir: dir, getenv: envMap{"ADO_PAT": "pat-from-env"}.get}
	ctx := context.Background()

	v, err := r.Resolve(ctx, sink.SecretRef{Env: "ADO_PAT"})
	require.NoError(t, err)
	require.Equal(t, "pat-from-env", v.Reveal())
	v, err = r.Resolve(ctx, sink.SecretRef{File: "pat"})
	require.NoError(t, err)
	require.Equal(t, "pat-from-file", v.Reveal(), "relative to rotor.yaml, trimmed")

	for _, tc := range []struct {
		ref       sink.SecretRef
		want      string
		permanent bool
	}{
		{sink.SecretRef{Env: "MISSING"}, "environment variable MISSING is not set", true},
		{sink.SecretRef{File: "empty"}, "is empty", true},
		{sink.SecretRef{File: "absent"}, "no such file", false},
		{sink.SecretRef{KeyVault: &sink.KeyVaultRef{VaultURL: "https://kv/", Secret: "x"}}, "set host_identity", true},
		{sink.SecretRef{}, "empty secret reference", true},
	} {
		_, err := r.Resolve(ctx, tc.ref)
		require.ErrorContains(t, err, tc.want)
		require.Equal(t, tc.permanent, sink.IsPermanent(err), "%v", err)
	}
}

type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

func TestSinkHTTPClient(t *testing.T) {
	t.Parallel()
	simClient := &http.Client{}
	sim := azure.Endpoints{Cloud: azure.Sim, HTTPClient: simClient}
	public := azure.Endpoints{Cloud: azure.Public}
	require.Same(t, simClient, sinkHTTPClient([]azure.Endpoints{sim, sim}), "all on the simulator: its CA, no proxy")
	require.NotSame(t, simClient, sinkHTTPClient([]azure.Endpoints{sim, public}), "mixed: the system's roots")
	require.NotSame(t, simClient, sinkHTTPClient([]azure.Endpoints{public, sim}))
	require.NotNil(t, sinkHTTPClient(nil))
}

// TestRotateDeliversThroughTheRegistry: rotor opened on a simulator's
// rotor.yaml builds its Key Vault sink from sinks.go alone, and a rotation
// puts the new secret into the vault over HTTPS.
func TestRotateDeliversThroughTheRegistry(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=0s"})
	info := st.Info
	tn := info.Tenants[0]

	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	srv, err := Open(ctx, cfgPath, Options{
		Logger: slog.New(slog.DiscardHandler),
		Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get,
	})
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.openJobs(ctx, 0))
	require.NoError(t, srv.Sync(ctx, nil))

	apps, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: srv.Config().Organization, ManageableOnly: true})
	require.NoError(t, err)
	var app *domain.Application
	var pol *domain.Policy
	for i := range apps {
		if p := srv.PolicyFor(apps[i]); p != nil && p.Enabled && len(p.Sinks) > 0 {
			app, pol = &apps[i], p
			break
		}
	}
	require.NotNil(t, app, "the simulator's policy selects an application with a Key Vault sink")
	run, err := srv.Engine().Rotate(ctx, srv.Config().Organization, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)

	full, err := srv.Store().GetRun(ctx, srv.Config().Organization, run.ID)
	require.NoError(t, err)
	var target sink.TargetID
	for _, ev := range full.Events {
		if ev.Step == domain.SinkStep(0, domain.PhaseWriting) {
			target, err = sink.ParseTargetID(ev.Target)
			require.NoError(t, err, "the journal names the sink's target id")
		}
	}
	vaultURL, name, err := keyvault.ParseTarget(target)
	require.NoError(t, err)
	require.Equal(t, strings.ToLower(tn.KeyVaults[0].URL), vaultURL)

	// Read it back as the consumer (rotor's identity may only list and
	// set: the sink never reads a value).
	id, err := srv.Conns().TokenCredential(app.Org, pol.Connection)
	require.NoError(t, err)
	require.True(t, id.Simulator)
	kv := st.SecretsClient(t, tn.KeyVaults[0].URL, st.ConsumerCredential(t, tn.ID))
	got, err := kv.GetSecret(ctx, name, "", nil)
	require.NoError(t, err)
	require.Equal(t, run.NewKeyID, *got.Tags[keyvault.TagKeyID])
	require.NoError(t, azure.VerifySecret(ctx, srv.conns.byKey[connKey{app.Org, pol.Connection}].ep, tn.ID, app.AppID, secret.New(*got.Value)),
		"the vault holds a secret Entra accepts")
}
