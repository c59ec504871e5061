package keyvault

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/certgen"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/sink"
)

// testCertificate is a self-signed RSA client certificate made with
// crypto/x509, as certificate material reaches a sink: with the PKCS#12
// blob internal/certgen makes.
func testCertificate(t *testing.T, key *rsa.PrivateKey, cn string, notBefore time.Time) *sink.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pfx, err := certgen.PKCS12(cert, key)
	require.NoError(t, err)
	return &sink.Certificate{Chain: []*x509.Certificate{cert}, Key: sink.NewPrivateKey(key), PKCS12: pfx}
}

func certDelivery(app domain.Application, keyID string, c *sink.Certificate) sink.Delivery {
	return sink.Delivery{
		Org: domain.DefaultOrg, RunID: "run-" + keyID, App: app, TenantID: app.TenantID, ClientID: app.AppID,
		KeyID: keyID, Kind: domain.KindCertificate, Material: sink.Material{Certificate: c},
		Start: c.Chain[0].NotBefore, End: c.Chain[0].NotAfter,
	}
}

// buildSpec builds a sink from settings on the simulator's vault.
func (b simBundle) buildSpec(t *testing.T, app domain.Application, settings map[string]any) *Sink {
	t.Helper()
	settings[KeyVaultURL] = b.vaultURL
	s, err := b.builder.Build(context.Background(), sink.BuildRequest{
		Spec: domain.SinkSpec{Type: Type, Settings: settings}, Connection: connSim, App: app})
	require.NoError(t, err)
	return s.(*Sink)
}

// certsAdmin is the test's own certificates client: the consumer
// identity, granted every certificate permission, plays the people
// importing certificates of their own.
func (b simBundle) certsAdmin(t *testing.T) *azcertificates.Client {
	t.Helper()
	tn := b.srv.World().Tenant(b.tenantID)
	var consumerOID string
	b.srv.World().Update(func() { consumerOID = tn.SPByAppID(tn.ConsumerClientID).ObjectID })
	require.NoError(t, b.srv.World().SetCertificatePermissions(b.tenantID, b.vaultName, consumerOID, sim.AllCertificatePermissions...))
	c, err := azcertificates.NewClient(b.vaultURL, b.consumerCred(t), &azcertificates.ClientOptions{ClientOptions: b.co, DisableChallengeResourceVerification: true})
	require.NoError(t, err)
	return c
}

func (b simBundle) consumerCred(t *testing.T) azcore.TokenCredential {
	t.Helper()
	cred, err := simtest.NewConsumerCredential(b.srv.Info(), b.tenantID)
	require.NoError(t, err)
	return cred
}

// TestDeliverCertificateAsSecretSim stores a certificate credential the way
// Key Vault stores its own certificates' secrets: PEM by default, PKCS#12
// on request, each with Key Vault's content type; a client reading only
// the secret opens it with azidentity.ParseCertificates.
func TestDeliverCertificateAsSecretSim(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	ctx := context.Background()
	c1 := testCertificate(t, simtest.RSAKey(0), "payroll-1", time.Now().Add(-time.Hour))

	for _, tc := range []struct {
		format, contentType string
		decode              func(string) []byte
	}{
		{"", ContentTypePEM, func(v string) []byte { return []byte(v) }},
		{FormatPKCS12, ContentTypePKCS12, func(v string) []byte {
			raw, err := base64.StdEncoding.DecodeString(v)
			require.NoError(t, err)
			return raw
		}},
	} {
		name := "payroll-cert-" + strings.ToLower(strings.TrimPrefix(tc.contentType, "application/x-"))
		app := b.app("app-" + name)
		settings := map[string]any{KeySecret: name}
		if tc.format != "" {
			settings[KeyCertificateFormat] = tc.format
		}
		s := b.buildSpec(t, app, settings)
		res, err := s.Deliver(ctx, certDelivery(app, "key-1", c1))
		require.NoError(t, err)
		require.True(t, res.Changed)

		got := b.read(t, name)
		require.Equal(t, tc.contentType, *got.ContentType)
		require.Equal(t, "key-1", tagsOf(got)[TagKeyID])
		chain, key, err := azidentity.ParseCertificates(tc.decode(*got.Value), nil)
		require.NoError(t, err)
		require.Equal(t, c1.Chain[0].Raw, chain[0].Raw)
		require.True(t, key.(*rsa.PrivateKey).Equal(c1.Key.Signer()))
		if tc.format == "" {
			require.True(t, strings.HasPrefix(*got.Value, "-----BEGIN PRIVATE KEY-----"), "PKCS#8 key first, as Key Vault writes it")
		}

		b.tick()
		res, err = s.Deliver(ctx, certDelivery(app, "key-1", c1))
		require.NoError(t, err)
		require.False(t, res.Changed, "the same credential again changes nothing")
		held, err := s.Holds(ctx, "key-1")
		require.NoError(t, err)
		require.True(t, held)
	}

	// An explicit content type wins.
	app := b.app("app-explicit")
	s := b.buildSpec(t, app, map[string]any{KeySecret: "explicit-ct", KeyContentType: "application/x-pem-file; charset=utf-8"})
	_, err := s.Deliver(ctx, certDelivery(app, "key-1", c1))
	require.NoError(t, err)
	require.Equal(t, "application/x-pem-file; charset=utf-8", *b.read(t, "explicit-ct").ContentType)

	// A key that is not the certificate's is refused before any write.
	bad := testCertificate(t, simtest.RSAKey(0), "mismatch", time.Now())
	bad.Key = sink.NewPrivateKey(simtest.RSAKey(1))
	_, err = s.Deliver(ctx, certDelivery(app, "key-2", bad))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err))
	require.NotContains(t, err.Error(), "PRIVATE KEY")
}

// TestDeliverCertificateAsKeyVaultCertificateSim imports certificate
// credentials as a Key Vault certificate: tagged as rotor's, idempotent by
// thumbprint, a new version per new certificate, never over a foreign one
// unless adopt, never a client secret.
func TestDeliverCertificateAsKeyVaultCertificateSim(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	ctx := context.Background()
	admin := b.certsAdmin(t)
	app := b.app("app-tls")
	s := b.buildSpec(t, app, map[string]any{KeyAs: AsCertificate, KeyCertificate: "{{ .App.DisplayName | slug }}-tls"})
	require.Equal(t, "app-app-tls-tls", s.SecretName())
	require.Contains(t, s.Target().String(), "/certificates/app-app-tls-tls")
	require.Equal(t, `Key Vault certificate "app-app-tls-tls" in `+b.vaultURL, s.Describe())
	require.Equal(t, sink.StatusReady, s.Validate(ctx).Status)

	c1 := testCertificate(t, simtest.RSAKey(0), "tls-1", time.Now().Add(-time.Hour))
	res, err := s.Deliver(ctx, certDelivery(app, "key-1", c1))
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Contains(t, res.Location, "/certificates/app-app-tls-tls/")

	got, err := admin.GetCertificate(ctx, "app-app-tls-tls", "", nil)
	require.NoError(t, err)
	require.Equal(t, c1.Chain[0].Raw, got.CER)
	require.Equal(t, ManagedByRotor, *got.Tags[TagManagedBy])
	require.Equal(t, "key-1", *got.Tags[TagKeyID])
	require.Equal(t, sink.Thumbprint(c1.Chain[0]), *got.Tags[TagThumbprint])
	require.Equal(t, ContentTypePEM, *got.Policy.SecretProperties.ContentType)
	require.Equal(t, res.Location, string(*got.ID))

	b.tick()
	again, err := s.Deliver(ctx, certDelivery(app, "key-1", c1))
	require.NoError(t, err)
	require.False(t, again.Changed, "same thumbprint: unchanged")
	require.Equal(t, res.Version, again.Version)
	ver, err := s.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, res.Version, ver)

	c2 := testCertificate(t, simtest.RSAKey(1), "tls-2", time.Now().Add(-time.Minute))
	res2, err := s.Deliver(ctx, certDelivery(app, "key-2", c2))
	require.NoError(t, err)
	require.True(t, res2.Changed)
	require.NotEqual(t, res.Version, res2.Version)
	for _, k := range []string{"key-1", "key-2"} {
		held, err := s.Holds(ctx, k)
		require.NoError(t, err)
		require.True(t, held, k)
	}
	held, err := s.Holds(ctx, "key-3")
	require.NoError(t, err)
	require.False(t, held)

	// A client secret cannot go to a certificate.
	_, err = s.Deliver(ctx, delivery(app, "key-4", "a-secret"))
	require.Error(t, err)
	require.True(t, sink.IsPermanent(err))

	// Another application's certificate and a foreign one are refused.
	other := b.app("app-other")
	so := b.buildSpec(t, other, map[string]any{KeyAs: AsCertificate, KeyCertificate: "app-app-tls-tls"})
	_, err = so.Deliver(ctx, certDelivery(other, "key-9", c1))
	var no *NotOwnedError
	require.True(t, errors.As(err, &no), "%v", err)
	require.Equal(t, app.AppID, no.OwnerAppID)

	foreign := testCertificate(t, simtest.RSAKey(1), "team-x", time.Now())
	pem, err := foreign.PEM()
	require.NoError(t, err)
	_, err = admin.ImportCertificate(ctx, "team-x-tls", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(pem.Reveal()), Tags: map[string]*string{"owner": to.Ptr("team-x")}}, nil)
	require.NoError(t, err)
	sf := b.buildSpec(t, app, map[string]any{KeyAs: AsCertificate, KeyCertificate: "team-x-tls"})
	require.Equal(t, sink.StatusFailed, sf.Validate(ctx).Status)
	_, err = sf.Deliver(ctx, certDelivery(app, "key-5", c2))
	require.True(t, errors.As(err, &no), "%v", err)
	require.Contains(t, err.Error(), "Key Vault certificate")
	sa := b.buildSpec(t, app, map[string]any{KeyAs: AsCertificate, KeyCertificate: "team-x-tls", KeyAdopt: true})
	res, err = sa.Deliver(ctx, certDelivery(app, "key-5", c2))
	require.NoError(t, err)
	require.True(t, res.Changed)
	got, err = admin.GetCertificate(ctx, "team-x-tls", "", nil)
	require.NoError(t, err)
	require.Equal(t, "team-x", *got.Tags["owner"], "someone else's tags are kept")
	require.Equal(t, ManagedByRotor, *got.Tags[TagManagedBy])

	// rotor's own soft-deleted certificate is recovered before the import.
	_, err = admin.DeleteCertificate(ctx, "app-app-tls-tls", nil)
	require.NoError(t, err)
	held, err = s.Holds(ctx, "key-2")
	require.NoError(t, err)
	require.True(t, held, "a soft-deleted certificate held its latest version's credential")
	c3 := testCertificate(t, simtest.RSAKey(0), "tls-3", time.Now())
	res3, err := s.Deliver(ctx, certDelivery(app, "key-3", c3))
	require.NoError(t, err)
	require.Contains(t, res3.Note, "recovered rotor's soft-deleted certificate")

	// A pin on a secret target does not build a certificate sink.
	pinned, err := TargetFor(b.vaultURL, "app-app-tls-tls")
	require.NoError(t, err)
	_, err = b.builder.Build(ctx, sink.BuildRequest{Spec: domain.SinkSpec{Type: Type, Settings: map[string]any{
		KeyVaultURL: b.vaultURL, KeyAs: AsCertificate, KeyCertificate: "x"}}, Connection: connSim, App: app, Pinned: pinned})
	require.ErrorContains(t, err, "pinned target")
}

// TestConsumerSignsInWithCertificateFromVault is the judge's view: an
// application whose keyCredentials hold a certificate, rotor delivering
// that certificate to the vault (as a PEM secret, a PKCS#12 secret and a
// Key Vault certificate), and a client elsewhere that reads only the
// vault's secret, parses it with azidentity.ParseCertificates and gets a
// token with azidentity's ClientCertificateCredential from the simulated
// Entra. A certificate the application does not hold gets none.
func TestConsumerSignsInWithCertificateFromVault(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	ctx := context.Background()

	// An application that can sign in, and a certificate registered on it.
	w := b.srv.World()
	tn := w.Tenant(b.tenantID)
	var target *sim.Application
	w.Update(func() {
		for _, a := range tn.Apps {
			if tn.SPByAppID(a.AppID) != nil && a.AppID != tn.RotationClientID && a.AppID != tn.ConsumerClientID && a.AppID != tn.ManagedIdentityClientID {
				target = a
				break
			}
		}
	})
	require.NotNil(t, target)
	cert := testCertificate(t, simtest.RSAKey(0), target.DisplayName, time.Now().Add(-time.Hour))
	keyID := uuid.NewString()
	w.Update(func() {
		target.Keys = append(target.Keys, sim.NewKey(keyID, "rotor:run-1", cert.Chain[0], b.clk.Now().Add(-time.Hour)))
	})
	app := domain.Application{TenantID: b.tenantID, ObjectID: target.ObjectID, AppID: target.AppID, DisplayName: target.DisplayName}

	reader, err := azsecrets.NewClient(b.vaultURL, b.consumerCred(t), &azsecrets.ClientOptions{ClientOptions: b.co, DisableChallengeResourceVerification: true})
	require.NoError(t, err)
	signIn := func(t *testing.T, secretName string, decode func(string) []byte) error {
		t.Helper()
		got, err := reader.GetSecret(ctx, secretName, "", nil)
		require.NoError(t, err)
		certs, key, err := azidentity.ParseCertificates(decode(*got.Value), nil)
		require.NoError(t, err)
		cred, err := azidentity.NewClientCertificateCredential(b.tenantID, app.AppID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: b.co, DisableInstanceDiscovery: true})
		require.NoError(t, err)
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		return err
	}
	asText := func(v string) []byte { return []byte(v) }
	fromBase64 := func(v string) []byte {
		raw, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err)
		return raw
	}

	for _, tc := range []struct {
		name     string
		settings map[string]any
		decode   func(string) []byte
	}{
		{"pem-secret", map[string]any{KeySecret: "signin-pem"}, asText},
		{"pkcs12-secret", map[string]any{KeySecret: "signin-pfx", KeyCertificateFormat: FormatPKCS12}, fromBase64},
		// A Key Vault certificate's backing secret has the certificate's name.
		{"kv-certificate", map[string]any{KeyAs: AsCertificate, KeyCertificate: "signin-cert"}, asText},
		{"kv-certificate-pkcs12", map[string]any{KeyAs: AsCertificate, KeyCertificate: "signin-cert-pfx", KeyCertificateFormat: FormatPKCS12}, fromBase64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.buildSpec(t, app, tc.settings)
			_, err := s.Deliver(ctx, certDelivery(app, keyID, cert))
			require.NoError(t, err)
			require.NoError(t, signIn(t, s.SecretName(), tc.decode))
		})
	}

	// A certificate the application does not hold is refused by Entra.
	stranger := testCertificate(t, simtest.RSAKey(1), "stranger", time.Now().Add(-time.Hour))
	s := b.buildSpec(t, app, map[string]any{KeySecret: "signin-stranger"})
	_, err = s.Deliver(ctx, certDelivery(app, "other-key", stranger))
	require.NoError(t, err)
	require.ErrorContains(t, signIn(t, "signin-stranger", asText), "AADSTS700027")
}
