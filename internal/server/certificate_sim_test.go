package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
)

// certConns hands out the server's connections with proofs dated by the
// test's clock (the simulator's, which the test moves forward).
type certConns struct {
	*Conns
	clock clock.Clock
}

func (c certConns) Directory(org domain.OrgID, name string) (rotation.Directory, error) {
	cn, err := c.get(org, name)
	if err != nil {
		return nil, err
	}
	return graphDirectory{g: cn.graph, clock: c.clock}, nil
}

// TestSimCertificateRotation: a policy of kind certificate rotates an owned
// application on the simulator: the certificate is registered by a
// keyCredentials update (the application has no certificate rotor holds
// the key of), verified by azidentity's ClientCertificateCredential, and
// a consumer holding only the delivered PEM gets a token with it. A second
// rotation proves possession with a bootstrap certificate (addKey) and its
// retirement removes the first rotor certificate (removeKey); the
// certificate a human added, and every secret, are never touched.
func TestSimCertificateRotation(t *testing.T) {
	t.Parallel()
	off := &clock.Offset{}
	simLog := &syncBuffer{}
	r := newSimRig(t, simtest.Options{Seed: "apps=2,tenants=1,expiring=1h,replication=2s", Clock: off,
		Logger: slog.New(slog.NewTextHandler(simLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}, config.SimulatorRotation{})
	app := r.owned()[0]
	pol := *r.srv.PolicyFor(app)
	pol.Kind = domain.KindCertificate
	pol.Certificate = domain.CertificateSpec{Subject: "CN=" + app.DisplayName + ", O=Contoso", DNSNames: []string{"payroll.example.com"}}
	pol.Sinks = []domain.SinkSpec{{Type: certRecorderType}}
	g, err := r.srv.conns.Graph(r.org, pol.Connection)
	require.NoError(t, err)

	// A human's certificate: rotor must keep it, and later proves
	// possession with it (the bootstrap certificate).
	humanKey, human := humanCert(t, off.Now())
	require.NoError(t, g.UpdateKeyCredentials(r.ctx, app.ObjectID, []graph.KeyCredential{{Type: "AsymmetricX509Cert", Usage: "Verify", Key: human.Raw, DisplayName: "added by ops"}}))
	secretsBefore := passwordIDs(t, g, app.ObjectID)

	held := newCertStore()
	factory, err := sink.NewRegistry(certRecorderKind{held}).Bind(sink.Deps{})
	require.NoError(t, err)
	e := rotation.New(rotation.Config{
		Store: r.srv.store, Conns: certConns{r.srv.conns, off}, Sinks: factory, Clock: off, Logger: slog.New(slog.DiscardHandler),
		VerifyTimeout: 30 * time.Second, IsPending: azure.IsReplicationPending, IsPermanent: isPermanent,
		ScheduleRetire: func(context.Context, domain.OrgID, string, time.Time) error { return nil },
		Secrets:        &secretResolver{getenv: os.Getenv, baseDir: t.TempDir()},
	})

	run1, err := e.Rotate(r.ctx, r.org, app, pol, domain.TriggerManual)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run1.State)
	keys := keyNames(t, g, app.ObjectID)
	require.ElementsMatch(t, []string{"added by ops", domain.DisplayNameFor(run1.ID)}, keys)
	require.Equal(t, 2, strings.Count(simLog.String(), "graph: keyCredentials replaced"), "the human's PATCH, then rotor's")
	require.NotContains(t, simLog.String(), "graph: key added")

	// The consumer: only the PEM, azidentity's own parser and credential.
	consumerSignsInWithPEM(t, r, app.AppID, held.pem[app.ObjectID])
	certs, _, err := azidentity.ParseCertificates([]byte(held.pem[app.ObjectID]), nil)
	require.NoError(t, err)
	require.Equal(t, "CN="+app.DisplayName+",O=Contoso", certs[0].Subject.String())
	require.Equal(t, []string{"payroll.example.com"}, certs[0].DNSNames)

	// No private key at rest: not in the journal.
	body := strings.Split(held.pem[app.ObjectID][strings.Index(held.pem[app.ObjectID], "-----BEGIN PRIVATE KEY"):], "\n")[1]
	full, err := r.srv.store.GetRun(r.ctx, r.org, run1.ID)
	require.NoError(t, err)
	for _, ev := range full.Events {
		require.NotContains(t, ev.Message, body)
	}

	// Second rotation, with the human's certificate as bootstrap.
	path := filepath.Join(t.TempDir(), "bootstrap.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(humanKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: human.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), 0o600))
	pol.Certificate.Bootstrap = map[string]any{"file": path}
	app.Credentials = nil // the inventory is a sync behind; Entra is the truth
	require.NoError(t, r.srv.Sync(r.ctx, nil))
	run2, err := e.Rotate(r.ctx, r.org, app, pol, domain.TriggerManual)
	require.NoError(t, err)
	consumerSignsInWithPEM(t, r, app.AppID, held.pem[app.ObjectID])
	require.Contains(t, simLog.String(), "graph: key added", "proved possession of the bootstrap certificate: addKey")

	off.Advance(pol.Overlap + time.Minute)
	require.NoError(t, e.Retire(r.ctx, r.org, run2.ID, pol))
	require.ElementsMatch(t, []string{"added by ops", domain.DisplayNameFor(run2.ID)}, keyNames(t, g, app.ObjectID),
		"the first rotor certificate is retired; the human's stays")
	require.Equal(t, secretsBefore, passwordIDs(t, g, app.ObjectID), "a certificate policy touches no secret")
	require.Contains(t, simLog.String(), "graph: key removed", "retired with removeKey, proving possession of the bootstrap")
	require.Equal(t, 2, strings.Count(simLog.String(), "graph: keyCredentials replaced"), "no further PATCH")
	done, err := r.srv.store.GetRun(r.ctx, r.org, run2.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunDone, done.State)
}

func consumerSignsInWithPEM(t *testing.T, r *simRig, appID, pemData string) {
	t.Helper()
	certs, key, err := azidentity.ParseCertificates([]byte(pemData), nil)
	require.NoError(t, err)
	ep, err := azure.ResolveEndpoints(azure.Sim, r.simFile)
	require.NoError(t, err)
	cred, err := azidentity.NewClientCertificateCredential(r.tn.ID, appID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: azure.ClientOptions(ep), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	_, err = cred.GetToken(r.ctx, policy.TokenRequestOptions{Scopes: []string{r.info.GraphAudience + "/.default"}})
	require.NoError(t, err, "the consumer gets a token with the delivered certificate")
}

func humanCert(t *testing.T, now time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ops"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, c
}

func keyNames(t *testing.T, g *graph.Client, objectID string) []string {
	t.Helper()
	a, err := g.GetApplication(t.Context(), objectID, []string{"id", "keyCredentials"})
	require.NoError(t, err)
	var out []string
	for _, k := range a.KeyCredentials {
		out = append(out, k.DisplayName)
	}
	return out
}

func passwordIDs(t *testing.T, g *graph.Client, objectID string) []string {
	t.Helper()
	a, err := g.GetApplication(t.Context(), objectID, []string{"id", "passwordCredentials"})
	require.NoError(t, err)
	var out []string
	for _, p := range a.PasswordCredentials {
		out = append(out, p.KeyID)
	}
	return out
}

// TestCertificatePolicyThroughKeyVault is issue 11's judgement on the
// server as configured: a rotor.yaml policy of kind certificate over every
// owned application with the Key Vault sink. A client elsewhere reads only
// the PEM secret from the vault (azsecrets, as the consumer identity) and
// gets a token as each application with azidentity's
// ClientCertificateCredential; a certificate a person added, and every
// client secret, are untouched.
func TestCertificatePolicyThroughKeyVault(t *testing.T) {
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h,replication=2s"}, config.SimulatorRotation{VerifyTimeout: "1m"},
		func(c *config.SimulatorConfig) {
			c.Policies = []config.SimulatorPolicy{{Name: "certs", Kind: "certificate", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}}
		})
	apps := r.owned()
	require.Len(t, apps, 3)
	g, err := r.srv.conns.Graph(r.org, r.tn.Name)
	require.NoError(t, err)
	_, human := humanCert(t, time.Now())
	require.NoError(t, g.UpdateKeyCredentials(r.ctx, apps[0].ObjectID, []graph.KeyCredential{{Type: "AsymmetricX509Cert", Usage: "Verify", Key: human.Raw, DisplayName: "added by ops"}}))
	secrets := map[string][]string{}
	for _, a := range apps {
		secrets[a.ObjectID] = passwordIDs(t, g, a.ObjectID)
	}
	require.NoError(t, r.srv.Sync(r.ctx, nil))
	apps = r.owned()

	kv := r.vault()
	for _, a := range apps {
		pol := r.srv.PolicyFor(a)
		require.NotNil(t, pol)
		require.Equal(t, domain.KindCertificate, pol.Kind)
		run, err := r.srv.Engine().Rotate(r.ctx, r.org, a, *pol, domain.TriggerManual)
		require.NoError(t, err)
		require.Equal(t, domain.RunRetiring, run.State, run.Error)

		got, err := kv.GetSecret(r.ctx, a.DisplayName+"-secret", "", nil)
		require.NoError(t, err)
		require.NotNil(t, got.ContentType)
		require.Equal(t, "application/x-pem-file", *got.ContentType, "stored as Key Vault stores its certificates' secrets")
		consumerSignsInWithPEM(t, r, a.AppID, *got.Value)
		require.Equal(t, secrets[a.ObjectID], passwordIDs(t, g, a.ObjectID), "%s: a certificate policy touches no secret", a.DisplayName)
		keys := keyNames(t, g, a.ObjectID)
		require.Contains(t, keys, domain.DisplayNameFor(run.ID))
		if a.ObjectID == apps[0].ObjectID {
			require.Contains(t, keys, "added by ops", "the person's certificate stays")
		}
	}
}

// TestCertificateBeyondTheTenantsKeyLifetimeCap: a tenant whose app
// management policy caps certificate lifetimes (asymmetricKeyLifetime)
// below the policy's lifetime refuses the new certificate; the run fails
// with Graph's reason and leaves no rotor certificate on the application.
func TestCertificateBeyondTheTenantsKeyLifetimeCap(t *testing.T) {
	t.Parallel()
	r := newSimRig(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h"}, config.SimulatorRotation{VerifyTimeout: "30s"},
		func(c *config.SimulatorConfig) {
			c.Policies = []config.SimulatorPolicy{{Name: "certs", Kind: "certificate", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}}
		})
	tenant := r.st.Server.World().Tenant(r.tn.ID)
	r.st.Server.World().Update(func() {
		tenant.Policy = &sim.AppManagementPolicy{ID: "p-keys", DisplayName: "certificates live a week", MaxKeyLifetime: 7 * 24 * time.Hour}
	})
	app := r.owned()[0]
	pol := r.srv.PolicyFor(app)
	require.NotNil(t, pol)
	run, err := r.srv.Engine().Rotate(r.ctx, r.org, app, *pol, domain.TriggerManual)
	require.Error(t, err)
	require.Equal(t, domain.RunFailed, run.State)
	require.Contains(t, run.Error, "CredentialInvalidLifetimeAsPerAppPolicy")
	require.Contains(t, run.Error, "make the policy's lifetime (30d) shorter", "the reason says what to change")
	g, err := r.srv.conns.Graph(r.org, r.tn.Name)
	require.NoError(t, err)
	for _, k := range keyNames(t, g, app.ObjectID) {
		require.NotContains(t, k, domain.RotorPrefix, "no rotor certificate is left on the application")
	}
}
