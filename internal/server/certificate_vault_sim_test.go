package server

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
)

// vaultRig is a rotation engine on the simulator whose certificates keep
// their keys in the tenant's vault.
type vaultRig struct {
	*simRig
	off    *clock.Offset
	simLog *syncBuffer
	held   *certStore
	e      *rotation.Engine
	keys   *azure.VaultKeys // the vault as the consumer reads it (keys get, list, sign)
	ep     azure.Endpoints
}

func newVaultRig(t *testing.T) *vaultRig {
	t.Helper()
	off := &clock.Offset{}
	simLog := &syncBuffer{}
	r := newSimRig(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=2s", Clock: off,
		Logger: slog.New(slog.NewTextHandler(simLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}, config.SimulatorRotation{})
	held := newCertStore()
	factory, err := sink.NewRegistry(certRecorderKind{held}).Bind(sink.Deps{})
	require.NoError(t, err)
	e := rotation.New(rotation.Config{
		Store: r.srv.store, Conns: certConns{r.srv.conns, off}, Sinks: factory, Clock: off, Logger: slog.New(slog.DiscardHandler),
		VerifyTimeout: 30 * time.Second, IsPending: azure.IsReplicationPending, IsPermanent: isPermanent,
		ScheduleRetire: func(context.Context, domain.OrgID, string, time.Time) error { return nil },
	})
	kv := r.tn.KeyVaults[0]
	require.NoError(t, r.st.Server.World().SetKeyPermissions(r.tn.ID, kv.Name, r.tn.Consumer.PrincipalID, sim.KeyGet, sim.KeyList, sim.KeySign))
	ep, err := azure.ResolveEndpoints(azure.Sim, r.simFile)
	require.NoError(t, err)
	consumer, err := simtest.NewConsumerCredential(r.info, r.tn.ID)
	require.NoError(t, err)
	keys, err := azure.NewVaultKeys(kv.URL, consumer, azure.ClientOptions(ep), true)
	require.NoError(t, err)
	return &vaultRig{simRig: r, off: off, simLog: simLog, held: held, e: e, keys: keys, ep: ep}
}

func (v *vaultRig) policy(app domain.Application, source domain.KeySource) domain.Policy {
	pol := *v.srv.PolicyFor(app)
	pol.Kind = domain.KindCertificate
	pol.Lifetime = 60 * 24 * time.Hour
	pol.Certificate = domain.CertificateSpec{KeySource: source, VaultURL: v.tn.KeyVaults[0].URL, Subject: "CN=" + app.DisplayName + ", O=Contoso"}
	pol.Sinks = []domain.SinkSpec{{Type: certRecorderType}}
	require.NoError(v.t, pol.Validate())
	return pol
}

// consumerSignsInThroughVault is a consumer that holds no key: it signs
// its client assertion with the vault's key (as the consumer identity,
// keys get and sign) and gets a token as the application.
func (v *vaultRig) consumerSignsInThroughVault(t *testing.T, appID, keyName string) {
	t.Helper()
	k, err := v.keys.Key(v.ctx, keyName, "")
	require.NoError(t, err)
	v.held.mu.Lock()
	der := v.held.leafDER
	v.held.mu.Unlock()
	var leaf []byte
	for _, d := range der {
		leaf = d
	}
	cert, err := x509.ParseCertificate(leaf)
	require.NoError(t, err)
	require.True(t, k.Public.Equal(cert.PublicKey.(*rsa.PublicKey)), "the delivered certificate is over the vault's latest key")
	require.NoError(t, azure.VerifyCertificateSigner(v.ctx, v.ep, v.tn.ID, appID, cert, v.keys.Signer(v.ctx, k), v.off.Now),
		"a consumer signing through Key Vault gets a token")
}

// TestSimCertificateKeyInVault: for each Key Vault key source, a policy
// of kind certificate rotates an owned application with no private key in
// rotor: the first certificate is registered by a keyCredentials update
// (no certificate rotor can prove yet) and verified by a Key
// Vault-signed client assertion; the sink gets the chain only; a consumer
// signing through the vault gets a token. The second rotation registers
// by addKey with a proof Key Vault signed, and its retirement removes the
// first certificate by removeKey, also proved through the vault. Every
// Key Vault version rotor made carries the run's id.
func TestSimCertificateKeyInVault(t *testing.T) {
	t.Parallel()
	for _, source := range []domain.KeySource{domain.KeySourceKeyVaultKey, domain.KeySourceKeyVaultCertificate} {
		t.Run(string(source), func(t *testing.T) {
			t.Parallel()
			v := newVaultRig(t)
			app := v.owned()[0]
			pol := v.policy(app, source)
			g, err := v.srv.conns.Graph(v.org, pol.Connection)
			require.NoError(t, err)
			secretsBefore := passwordIDs(t, g, app.ObjectID)
			keyName := strings.ToLower(strings.NewReplacer(" ", "-", "_", "-").Replace(app.DisplayName)) + "-cert"

			run1, err := v.e.Rotate(v.ctx, v.org, app, pol, domain.TriggerManual)
			require.NoError(t, err)
			require.Equal(t, domain.RunRetiring, run1.State, run1.Error)
			require.Contains(t, keyNames(t, g, app.ObjectID), domain.DisplayNameFor(run1.ID))
			require.Equal(t, 1, strings.Count(v.simLog.String(), "graph: keyCredentials replaced"), "the first certificate, by PATCH")
			require.NotContains(t, v.simLog.String(), "graph: key added")
			require.False(t, v.held.withKey[app.ObjectID], "the sink got no private key")
			v.consumerSignsInThroughVault(t, app.AppID, keyName)
			full, err := v.srv.store.GetRun(v.ctx, v.org, run1.ID)
			require.NoError(t, err)
			require.True(t, hasEvent(full, "private key in Key Vault"), "the journal says where the key is")

			app.Credentials = nil
			require.NoError(t, v.srv.Sync(v.ctx, nil))
			run2, err := v.e.Rotate(v.ctx, v.org, app, pol, domain.TriggerManual)
			require.NoError(t, err)
			require.Equal(t, domain.RunRetiring, run2.State, run2.Error)
			require.Contains(t, v.simLog.String(), "graph: key added", "addKey, proving possession with the vault's key of the first certificate")
			require.Equal(t, 1, strings.Count(v.simLog.String(), "graph: keyCredentials replaced"), "no second PATCH")
			v.consumerSignsInThroughVault(t, app.AppID, keyName)

			v.off.Advance(pol.Overlap + time.Minute)
			require.NoError(t, v.e.Retire(v.ctx, v.org, run2.ID, pol))
			require.Equal(t, []string{domain.DisplayNameFor(run2.ID)}, keyNames(t, g, app.ObjectID), "the first rotor certificate is retired")
			require.Contains(t, v.simLog.String(), "graph: key removed", "removeKey, proved through the vault")
			require.Equal(t, 1, strings.Count(v.simLog.String(), "graph: keyCredentials replaced"))
			require.Equal(t, secretsBefore, passwordIDs(t, g, app.ObjectID), "a certificate policy touches no secret")
			v.consumerSignsInThroughVault(t, app.AppID, keyName)

			if source == domain.KeySourceKeyVaultCertificate {
				sec, err := v.vault().GetSecret(v.ctx, keyName, "", nil)
				require.NoError(t, err)
				require.NotContains(t, *sec.Value, "PRIVATE KEY", "a non-exportable certificate's secret holds the chain only")
				require.Contains(t, *sec.Value, "BEGIN CERTIFICATE")
			}
			versions, err := v.keys.KeyVersions(v.ctx, keyName)
			require.NoError(t, err)
			require.Len(t, versions, 2)
			require.Equal(t, run2.ID, versions[0].Tags[rotation.TagRun], "newest first, tagged by run")
			require.Equal(t, run1.ID, versions[1].Tags[rotation.TagRun])
			require.Equal(t, app.AppID, versions[0].Tags[rotation.TagAppID])
		})
	}
}

// TestSimCertificateKeyInVaultRefusesAForeignKey: a key of the same name
// that rotor did not make is never given a version, and nothing is
// created in Entra.
func TestSimCertificateKeyInVaultRefusesAForeignKey(t *testing.T) {
	t.Parallel()
	v := newVaultRig(t)
	app := v.owned()[0]
	pol := v.policy(app, domain.KeySourceKeyVaultKey)
	pol.Certificate.VaultName = "shared-signing"
	cred := v.st.RotationCredential(t, v.tn.ID)
	rot, err := azure.NewVaultKeys(v.tn.KeyVaults[0].URL, cred, azure.ClientOptions(v.ep), true)
	require.NoError(t, err)
	_, err = rot.CreateKey(v.ctx, "shared-signing", azure.KeyRequest{Tags: map[string]string{"owner": "ops"}})
	require.NoError(t, err)
	g, err := v.srv.conns.Graph(v.org, pol.Connection)
	require.NoError(t, err)
	before := keyNames(t, g, app.ObjectID)

	run, err := v.e.Rotate(v.ctx, v.org, app, pol, domain.TriggerManual)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Contains(t, run.Error, `"shared-signing"`)
	require.Contains(t, run.Error, "not managed by rotor")
	require.Equal(t, before, keyNames(t, g, app.ObjectID), "nothing registered")
	versions, err := rot.KeyVersions(v.ctx, "shared-signing")
	require.NoError(t, err)
	require.Len(t, versions, 1, "no version added to a key rotor does not own")
}

func hasEvent(run *domain.Run, s string) bool {
	for _, ev := range run.Events {
		if strings.Contains(ev.Message, s) {
			return true
		}
	}
	return false
}

// TestSimCertificateKeyInVaultRefusedByAKeyVaultSecretSink: the
// configured server's own Key Vault sink, which stores a certificate with
// its private key, refuses a certificate whose key stays in Key Vault,
// saying why, and the run leaves no certificate behind in Entra.
func TestSimCertificateKeyInVaultRefusedByAKeyVaultSecretSink(t *testing.T) {
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h,replication=0s"}, config.SimulatorRotation{})
	app := r.owned()[0]
	pol := *r.srv.PolicyFor(app)
	require.Equal(t, "keyvault", pol.Sinks[0].Type)
	pol.Kind = domain.KindCertificate
	pol.Certificate = domain.CertificateSpec{KeySource: domain.KeySourceKeyVaultKey, VaultURL: r.tn.KeyVaults[0].URL}
	g, err := r.srv.conns.Graph(r.org, pol.Connection)
	require.NoError(t, err)
	before := keyNames(t, g, app.ObjectID)

	run, err := r.srv.Engine().Rotate(r.ctx, r.org, app, pol, domain.TriggerManual)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Contains(t, run.Error, "carries no private key: its key lives in the Key Vault of the policy's certificate.key_source")
	require.Equal(t, before, keyNames(t, g, app.ObjectID), "the certificate no sink took is removed")
}
