package azure_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
)

func (e *simEnv) vaultKeys(t *testing.T) *azure.VaultKeys {
	t.Helper()
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)
	v, err := azure.NewVaultKeys(e.tenant.KeyVaults[0].URL, cred, azure.ClientOptions(e.ep), true)
	require.NoError(t, err)
	return v
}

// TestSimVaultKeySignsCertificateProofAndAssertion: a key made in Key
// Vault (azkeys, non-exportable) signs a self-signed certificate over its
// public key through Key Vault's sign; the certificate, registered on an
// application, gets a token through a client assertion signed by Key Vault
// (azidentity's ClientAssertionCredential), and proves possession to Graph
// for the next certificate (addKey), also signed by Key Vault.
func TestSimVaultKeySignsCertificateProofAndAssertion(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	v := e.vaultKeys(t)
	k, err := v.CreateKey(ctx, "api-signing", azure.KeyRequest{Bits: 2048, Tags: map[string]string{"managed-by": "rotor"}})
	require.NoError(t, err)
	require.Equal(t, "api-signing", k.Name())
	require.NotEmpty(t, k.Version())
	signer := v.Signer(ctx, k)

	now := e.sim.Now()
	mk := func(serial int64) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "api"},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(30 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		require.NoError(t, c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature))
		return c
	}
	cert := mk(1)

	g := e.graphClient(t)
	app := e.ownedApp(t, g, nil)
	kc, err := g.AddCertificate(ctx, app.ID, graph.KeyCredential{DisplayName: "rotor:a", Key: cert.Raw, StartDateTime: cert.NotBefore, EndDateTime: cert.NotAfter}, nil, now)
	require.NoError(t, err)
	require.NotEmpty(t, kc.KeyID)
	e.sim.AdvancePastReplication(t, e.tenant.ID)

	require.NoError(t, azure.VerifyCertificateSigner(ctx, e.ep, e.tenant.ID, app.AppID, cert, signer, e.sim.Now), "a token through a Key Vault-signed assertion")
	err = azure.VerifyCertificateSigner(ctx, e.ep, e.tenant.ID, app.AppID, mk(2), signer, e.sim.Now)
	require.Error(t, err, "a certificate the application does not hold gets no token")

	// The next certificate, by addKey with a Key Vault-signed proof.
	second := mk(3)
	kc2, err := g.AddCertificate(ctx, app.ID, graph.KeyCredential{DisplayName: "rotor:b", Key: second.Raw, StartDateTime: second.NotBefore, EndDateTime: second.NotAfter},
		&graph.Prover{Cert: cert, Key: signer}, e.sim.Now())
	require.NoError(t, err)
	require.NoError(t, g.RemoveCertificate(ctx, app.ID, kc.KeyID, &graph.Prover{Cert: second, Key: signer}, e.sim.Now()))
	got, err := g.GetApplication(ctx, app.ID, []string{"id", "keyCredentials"})
	require.NoError(t, err)
	require.Len(t, got.KeyCredentials, 1)
	require.Equal(t, kc2.KeyID, got.KeyCredentials[0].KeyID)

	versions, err := v.KeyVersions(ctx, "api-signing")
	require.NoError(t, err)
	require.Len(t, versions, 1)
	require.Equal(t, k.KID, versions[0].KID)
	require.Equal(t, "rotor", versions[0].Tags["managed-by"])
	none, err := v.KeyVersions(ctx, "no-such-key")
	require.NoError(t, err)
	require.Empty(t, none)
}

// TestSimVaultSelfSignedCertificate: Key Vault issues a self-signed
// certificate from rotor's policy (subject, SANs, months, client auth);
// its key signs through the same Signer, and a standard vault refuses an
// HSM key with a permanent error.
func TestSimVaultSelfSignedCertificate(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	v := e.vaultKeys(t)
	vc, err := v.CreateSelfSignedCertificate(ctx, "api-cert", azure.CertificateRequest{Subject: "CN=api, O=Contoso", DNSNames: []string{"api.contoso.com"},
		ValidityMonths: 3, Tags: map[string]string{"managed-by": "rotor", "rotor-run": "r1"}})
	require.NoError(t, err)
	require.Equal(t, "CN=api,O=Contoso", vc.Cert.Subject.String())
	require.Equal(t, []string{"api.contoso.com"}, vc.Cert.DNSNames)
	require.Contains(t, vc.Cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	require.WithinDuration(t, e.sim.Now().AddDate(0, 3, 0), vc.Cert.NotAfter, 10*time.Minute)
	require.Equal(t, vc.Version, vc.Key.Version())
	tags, found, err := v.CertificateTags(ctx, "api-cert")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "r1", tags["rotor-run"])

	s := v.Signer(ctx, vc.Key)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	_, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	require.NoError(t, err, "the certificate's own key signs")

	_, err = v.CreateSelfSignedCertificate(ctx, "api-hsm", azure.CertificateRequest{Subject: "CN=api", ValidityMonths: 1, HSM: true})
	var ve *azure.VaultError
	require.ErrorAs(t, err, &ve)
	require.True(t, ve.Permanent(), "a standard vault holds no HSM key: %v", err)
	_, found, err = v.CertificateTags(ctx, "api-hsm")
	require.NoError(t, err)
	require.False(t, found)
}
