package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestRotationAndASoftDeletedVaultSecret: someone soft-deletes the vault
// secret rotor delivers to. The next rotation recovers it (it is rotor's
// own), writes the new version, and the consumer reads a value Entra
// accepts; the journal says the secret was recovered. Without the recover
// permission the run fails naming it, and the credential it created is
// removed, since no sink holds it. When the deleted secret under the name
// is someone else's, the run fails before anything is created in Entra,
// with the fix.
func TestRotationAndASoftDeletedVaultSecret(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=0s"})
	info := st.Info
	tn := info.Tenants[0]
	kvName := tn.KeyVaults[0].Name

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
	org := srv.Config().Organization

	apps, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: org, ManageableOnly: true})
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
	graph := srv.conns.byKey[connKey{app.Org, pol.Connection}]
	passwords := func() []string {
		t.Helper()
		a, err := graph.graph.GetApplication(ctx, app.ObjectID, []string{"passwordCredentials"})
		require.NoError(t, err)
		var ids []string
		for _, c := range a.PasswordCredentials {
			ids = append(ids, c.KeyID)
		}
		return ids
	}
	// The consumer identity, granted every permission, plays the vault's
	// administrator as well as the application reading its secret.
	st.GrantSecrets(t, tn.ID, kvName, tn.Consumer.PrincipalID, sim.AllSecretPermissions...)
	kv := st.SecretsClient(t, tn.KeyVaults[0].URL, st.ConsumerCredential(t, tn.ID))

	first, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	name := sinkSecretName(t, srv, org, first.ID)

	// rotor's own secret is soft-deleted: the next rotation recovers it.
	_, err = kv.DeleteSecret(ctx, name, nil)
	require.NoError(t, err)
	second, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, second.State)
	full, err := srv.Store().GetRun(ctx, org, second.ID)
	require.NoError(t, err)
	var written string
	for _, ev := range full.Events {
		if ev.Step == domain.SinkStep(0, domain.PhaseWritten) {
			written = ev.Message
		}
	}
	require.Contains(t, written, "recovered rotor's soft-deleted secret first", "the journal says what the sink did")
	got, err := kv.GetSecret(ctx, name, "", nil)
	require.NoError(t, err)
	require.Equal(t, second.NewKeyID, *got.Tags[keyvault.TagKeyID])
	require.NoError(t, azure.VerifySecret(ctx, graph.ep, tn.ID, app.AppID, secret.New(*got.Value)),
		"the recovered secret's new version is one Entra accepts")

	// Without the recover permission, the run fails naming it, and the
	// secret it created is removed: no sink holds it.
	_, err = kv.DeleteSecret(ctx, name, nil)
	require.NoError(t, err)
	st.GrantSecrets(t, tn.ID, kvName, tn.Rotation.ObjectID, sim.SecretList, sim.SecretSet)
	before := passwords()
	norecover, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, norecover.State)
	require.Contains(t, norecover.Error, "does not have secrets recover permission")
	require.Contains(t, norecover.Error, "needs the recover permission")
	require.Contains(t, norecover.Error, "no sink holds its secret")
	require.NotEmpty(t, norecover.NewKeyID, "a secret was created before the delivery failed")
	require.ElementsMatch(t, before, passwords(), "and it was removed again")
	st.GrantSecrets(t, tn.ID, kvName, tn.Rotation.ObjectID, sim.SecretList, sim.SecretSet, sim.SecretRecover)

	// Someone else's deleted secret holds the name: the run fails before
	// anything is created.
	_, err = kv.PurgeDeletedSecret(ctx, name, nil)
	require.NoError(t, err)
	_, err = kv.SetSecret(ctx, name, azsecrets.SetSecretParameters{
		Value: to.Ptr("their-value"), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
	require.NoError(t, err)
	_, err = kv.DeleteSecret(ctx, name, nil)
	require.NoError(t, err)
	before = passwords()
	refused, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, refused.State)
	require.Contains(t, refused.Error, "the secret "+name+" in "+strings.ToLower(tn.KeyVaults[0].URL)+
		" is soft-deleted and was not made by rotor: recover or purge it, or point the policy at another name")
	require.Empty(t, refused.NewKeyID, "nothing was created in Entra")
	require.ElementsMatch(t, before, passwords(), "no credential was added")
	del, err := kv.GetDeletedSecret(ctx, name, nil)
	require.NoError(t, err, "their secret is still soft-deleted")
	require.Equal(t, "team-x", *del.Tags["owner"])
}

// sinkSecretName is the secret name run runID journaled for sink 0.
func sinkSecretName(t *testing.T, srv *Server, org domain.OrgID, runID string) string {
	t.Helper()
	full, err := srv.Store().GetRun(context.Background(), org, runID)
	require.NoError(t, err)
	for _, ev := range full.Events {
		if ev.Step == domain.SinkStep(0, domain.PhaseWriting) {
			target, err := sink.ParseTargetID(ev.Target)
			require.NoError(t, err)
			_, name, err := keyvault.ParseTarget(target)
			require.NoError(t, err)
			return name
		}
	}
	t.Fatalf("run %s journaled no write of sink 0", runID)
	return ""
}
