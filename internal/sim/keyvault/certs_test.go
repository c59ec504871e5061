package keyvault_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// objectsEnv is a simulator with Microsoft's keys, certificates and secrets
// clients for contoso's vault: admin clients holding every permission (as
// the rotation identity, granted in full here) and the consumer's, with
// the seeded rights.
type objectsEnv struct {
	*simtest.Env
	tn                         *simfile.Tenant
	vault                      string
	keys                       *azkeys.Client
	certs                      *azcertificates.Client
	consumerSecrets            *azsecrets.Client
	consumerKeys               *azkeys.Client
	rotationSecretsWithoutRead *azsecrets.Client
}

func objectsSetup(t *testing.T) *objectsEnv {
	t.Helper()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	kv := tn.KeyVaults[0]
	w := e.Server.World()
	// The seeded rotation identity's secret rights (list, set, recover)
	// stay: it must not read a certificate's private key.
	require.NoError(t, w.SetKeyPermissions(tn.ID, kv.Name, tn.Rotation.ObjectID, sim.AllKeyPermissions...))
	require.NoError(t, w.SetCertificatePermissions(tn.ID, kv.Name, tn.Rotation.ObjectID, sim.AllCertificatePermissions...))
	rot := e.RotationCredential(t, tn.ID)
	cons := e.ConsumerCredential(t, tn.ID)
	return &objectsEnv{
		Env: e, tn: tn, vault: kv.URL,
		keys:                       e.KeysClient(t, kv.URL, rot),
		certs:                      e.CertificatesClient(t, kv.URL, rot),
		consumerSecrets:            e.SecretsClient(t, kv.URL, cons),
		consumerKeys:               e.KeysClient(t, kv.URL, cons),
		rotationSecretsWithoutRead: e.SecretsClient(t, kv.URL, rot),
	}
}

func TestKeyVaultSeedsKeyAndCertificateGrants(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	kv := tn.KeyVaults[0]
	require.Equal(t, "standard", kv.SKU)
	require.ElementsMatch(t, []string{"get", "list", "create", "sign"}, kv.KeyPermissions[tn.Rotation.ObjectID])
	require.ElementsMatch(t, []string{"get", "list", "create", "import", "update", "recover"}, kv.CertificatePermissions[tn.Rotation.ObjectID])
	require.ElementsMatch(t, []string{"get", "list"}, kv.CertificatePermissions[tn.Consumer.PrincipalID])
	require.Empty(t, kv.KeyPermissions[tn.Consumer.PrincipalID])
}

func TestKeyVaultKeysThroughTheSDK(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()

	k1, err := e.keys.CreateKey(ctx, "signer", azkeys.CreateKeyParameters{
		Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](2048),
		Tags: map[string]*string{"managed-by": to.Ptr("rotor")},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, azkeys.KeyTypeRSA, *k1.Key.Kty)
	require.Equal(t, "signer", k1.Key.KID.Name())
	require.Len(t, k1.Key.KID.Version(), 32)
	require.Equal(t, "rotor", *k1.Tags["managed-by"])
	require.Nil(t, k1.Key.D, "a key's private half never leaves the vault")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k1.Key.N), E: int(new(big.Int).SetBytes(k1.Key.E).Int64())}
	require.Equal(t, 2048, pub.N.BitLen())

	k2, err := e.keys.CreateKey(ctx, "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](3072)}, nil)
	require.NoError(t, err)
	latest, err := e.keys.GetKey(ctx, "signer", "", nil)
	require.NoError(t, err)
	require.Equal(t, k2.Key.KID.Version(), latest.Key.KID.Version())
	var versions []string
	for p := e.keys.NewListKeyPropertiesVersionsPager("signer", nil); p.More(); {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, kp := range page.Value {
			versions = append(versions, kp.KID.Version())
		}
	}
	require.Equal(t, []string{k1.Key.KID.Version(), k2.Key.KID.Version()}, versions)

	// RS256 and PS256 over a digest, with a named version; verifiable with
	// the public key alone.
	digest := sha256.Sum256([]byte("header.payload"))
	rs, err := e.keys.Sign(ctx, "signer", k1.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], rs.Result))
	require.Equal(t, k1.Key.KID.Version(), rs.KID.Version())
	ps, err := e.keys.Sign(ctx, "signer", k1.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPSS(pub, crypto.SHA256, digest[:], ps.Result, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
	ver, err := e.keys.Verify(ctx, "signer", k1.Key.KID.Version(), azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Digest: digest[:], Signature: rs.Result}, nil)
	require.NoError(t, err)
	require.True(t, *ver.Value)
	// The latest version (empty version segment) signs too.
	_, err = e.keys.Sign(ctx, "signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
	require.NoError(t, err)

	// Wrong digest size, wrong family.
	_, err = e.keys.Sign(ctx, "signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:20]}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	_, err = e.keys.Sign(ctx, "signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")

	// EC P-256, ES256 in JWS r||s form.
	ec, err := e.keys.CreateKey(ctx, "ec-signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
	require.NoError(t, err)
	require.Equal(t, azkeys.CurveNameP256, *ec.Key.Crv)
	ecPub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(ec.Key.X), Y: new(big.Int).SetBytes(ec.Key.Y)}
	es, err := e.keys.Sign(ctx, "ec-signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	require.NoError(t, err)
	require.Len(t, es.Result, 64)
	require.True(t, ecdsa.Verify(ecPub, digest[:], new(big.Int).SetBytes(es.Result[:32]), new(big.Int).SetBytes(es.Result[32:])))

	// HSM keys need a premium vault.
	_, err = e.keys.CreateKey(ctx, "hsm", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	require.NoError(t, e.Server.World().SetVaultSKU(e.tn.ID, e.tn.KeyVaults[0].Name, "premium"))
	hsm, err := e.keys.CreateKey(ctx, "hsm", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP384)}, nil)
	require.NoError(t, err)
	require.Equal(t, azkeys.KeyTypeECHSM, *hsm.Key.Kty)

	// A disabled key does not sign; a missing one is KeyNotFound.
	_, err = e.keys.UpdateKey(ctx, "signer", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil)
	require.NoError(t, err)
	_, err = e.keys.Sign(ctx, "signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	_, err = e.keys.GetKey(ctx, "nope", "", nil)
	requireKVError(t, err, http.StatusNotFound, "KeyNotFound")

	// The consumer holds no key permission.
	_, err = e.consumerKeys.Sign(ctx, "ec-signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	require.Contains(t, err.Error(), "does not have keys sign permission")

	// Soft delete: the name is held until recovered.
	_, err = e.keys.DeleteKey(ctx, "ec-signer", nil)
	require.NoError(t, err)
	_, err = e.keys.GetKey(ctx, "ec-signer", "", nil)
	requireKVError(t, err, http.StatusNotFound, "KeyNotFound")
	_, err = e.keys.CreateKey(ctx, "ec-signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil)
	requireKVError(t, err, http.StatusConflict, "Conflict")
	_, err = e.keys.RecoverDeletedKey(ctx, "ec-signer", nil)
	require.NoError(t, err)
	_, err = e.keys.GetKey(ctx, "ec-signer", "", nil)
	require.NoError(t, err)

	var names []string
	for p := e.keys.NewListKeyPropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, kp := range page.Value {
			names = append(names, kp.KID.Name())
		}
	}
	require.Equal(t, []string{"ec-signer", "hsm", "signer"}, names)
}

// TestKeyVaultImportsKeys imports an RSA and an EC private key as JSON Web
// Keys through azkeys and signs with them; the public halves are the ones
// imported, so the signatures verify against the test's own keys.
func TestKeyVaultImportsKeys(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()
	digest := sha256.Sum256([]byte("imported"))

	rk := simtest.RSAKey(1)
	rsaJWK := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rk.N.Bytes(), E: big.NewInt(int64(rk.E)).Bytes(),
		D: rk.D.Bytes(), P: rk.Primes[0].Bytes(), Q: rk.Primes[1].Bytes()}
	imp, err := e.keys.ImportKey(ctx, "imported-rsa", azkeys.ImportKeyParameters{Key: rsaJWK, Tags: map[string]*string{"src": to.Ptr("test")}}, nil)
	require.NoError(t, err)
	require.Equal(t, rk.N.Bytes(), imp.Key.N)
	require.Nil(t, imp.Key.D)
	sig, err := e.keys.Sign(ctx, "imported-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPSS(&rk.PublicKey, crypto.SHA256, digest[:], sig.Result, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))

	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecJWK := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256),
		X: ek.X.FillBytes(make([]byte, 32)), Y: ek.Y.FillBytes(make([]byte, 32)), D: ek.D.FillBytes(make([]byte, 32))}
	_, err = e.keys.ImportKey(ctx, "imported-ec", azkeys.ImportKeyParameters{Key: ecJWK}, nil)
	require.NoError(t, err)
	es, err := e.keys.Sign(ctx, "imported-ec", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	require.NoError(t, err)
	require.True(t, ecdsa.Verify(&ek.PublicKey, digest[:], new(big.Int).SetBytes(es.Result[:32]), new(big.Int).SetBytes(es.Result[32:])))

	// No private part; HSM protection in a standard vault.
	_, err = e.keys.ImportKey(ctx, "public-only", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rk.N.Bytes(), E: rsaJWK.E}}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	_, err = e.keys.ImportKey(ctx, "hsm", azkeys.ImportKeyParameters{Key: rsaJWK, HSM: to.Ptr(true)}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	// The consumer holds no keys import.
	_, err = e.consumerKeys.ImportKey(ctx, "nope", azkeys.ImportKeyParameters{Key: rsaJWK}, nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
}

// selfSignedPolicy asks Key Vault to issue a certificate itself.
func selfSignedPolicy(contentType string) *azcertificates.CertificatePolicy {
	return &azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		KeyProperties:    &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSA), KeySize: to.Ptr[int32](2048), Exportable: to.Ptr(true)},
		SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr(contentType)},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{
			Subject: to.Ptr("CN=payroll.contoso.test, O=Contoso"), ValidityInMonths: to.Ptr[int32](6),
			SubjectAlternativeNames: &azcertificates.SubjectAlternativeNames{DNSNames: []*string{to.Ptr("payroll.contoso.test")}},
		},
	}
}

func x5t(c *x509.Certificate) []byte {
	s := sha1.Sum(c.Raw) //nolint:gosec // x5t is SHA-1
	return s[:]
}

// TestKeyVaultCreatesSelfSignedCertificates creates a certificate from a
// self-signed policy with azcertificates and follows it to its three
// objects: the pending operation completes, the certificate's public part
// matches its x5t, the managed key signs for it, and the managed secret
// (which only the consumer may read) is the PEM or PFX the policy named,
// readable with azidentity.ParseCertificates.
func TestKeyVaultCreatesSelfSignedCertificates(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()

	for _, ct := range []string{"application/x-pem-file", "application/x-pkcs12"} {
		name := "payroll-" + strings.TrimPrefix(ct, "application/x-")
		created, err := e.certs.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{
			CertificatePolicy: selfSignedPolicy(ct), Tags: map[string]*string{"managed-by": to.Ptr("rotor")},
		}, nil)
		require.NoError(t, err)
		require.Equal(t, "inProgress", *created.Status)
		op, err := e.certs.GetCertificateOperation(ctx, name, nil)
		require.NoError(t, err)
		require.Equal(t, "completed", *op.Status)

		got, err := e.certs.GetCertificate(ctx, name, "", nil)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(got.CER)
		require.NoError(t, err)
		require.Equal(t, "payroll.contoso.test", cert.Subject.CommonName)
		require.Equal(t, []string{"payroll.contoso.test"}, cert.DNSNames)
		require.Equal(t, x5t(cert), got.X509Thumbprint)
		require.Equal(t, ct, *got.Policy.SecretProperties.ContentType)
		require.Equal(t, "rotor", *got.Tags["managed-by"])
		require.Equal(t, cert.NotAfter.Unix(), got.Attributes.Expires.Unix())
		version := got.ID.Version()
		require.True(t, strings.HasSuffix(string(*got.KID), "/keys/"+name+"/"+version))
		require.True(t, strings.HasSuffix(string(*got.SID), "/secrets/"+name+"/"+version))

		// The backing secret: only the consumer may read it.
		_, err = e.rotationSecretsWithoutRead.GetSecret(ctx, name, "", nil)
		requireKVError(t, err, http.StatusForbidden, "Forbidden")
		sec, err := e.consumerSecrets.GetSecret(ctx, name, version, nil)
		require.NoError(t, err)
		require.True(t, *sec.Managed)
		require.Equal(t, ct, *sec.ContentType)
		require.Equal(t, string(*got.KID), string(*sec.KID))
		data := []byte(*sec.Value)
		if ct == "application/x-pkcs12" {
			data, err = base64.StdEncoding.DecodeString(*sec.Value)
			require.NoError(t, err)
		} else {
			require.True(t, strings.HasPrefix(*sec.Value, "-----BEGIN PRIVATE KEY-----"))
		}
		chain, key, err := azidentity.ParseCertificates(data, nil)
		require.NoError(t, err)
		require.Equal(t, cert.Raw, chain[0].Raw)
		require.True(t, key.(*rsa.PrivateKey).PublicKey.Equal(cert.PublicKey))

		// The backing key signs for the certificate.
		k, err := e.keys.GetKey(ctx, name, "", nil)
		require.NoError(t, err)
		require.True(t, *k.Managed)
		require.Equal(t, version, k.Key.KID.Version())
		digest := sha256.Sum256([]byte("proof"))
		sig, err := e.keys.Sign(ctx, name, version, azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
		require.NoError(t, err)
		require.NoError(t, rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig.Result))
	}

	// A new version under the stored policy; versions list both.
	_, err := e.certs.CreateCertificate(ctx, "payroll-pem-file", azcertificates.CreateCertificateParameters{}, nil)
	require.NoError(t, err)
	var n int
	for p := e.certs.NewListCertificatePropertiesVersionsPager("payroll-pem-file", nil); p.More(); {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		n += len(page.Value)
	}
	require.Equal(t, 2, n)

	// The managed secret is Key Vault's to write.
	_, err = e.rotationSecretsWithoutRead.SetSecret(ctx, "payroll-pem-file", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	// HSM keys need a premium vault for certificates too.
	pol := selfSignedPolicy("application/x-pem-file")
	pol.KeyProperties.KeyType = to.Ptr(azcertificates.KeyTypeRSAHSM)
	_, err = e.certs.CreateCertificate(ctx, "hsm-cert", azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
}

// testCert makes a self-signed RSA client certificate with crypto/x509.
// RSA, because azidentity.ParseCertificates cannot read an EC key out of a
// PKCS#12 (x/crypto/pkcs12 hands it over as a SEC 1 "PRIVATE KEY" block).
func testCert(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key := simtest.RSAKey(0)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// TestKeyVaultImportsCertificates imports a PKCS#12 (with a password, in
// the modern encoding) and a PEM through azcertificates, and checks the
// refusals: no private key, a plain secret holding the name, soft delete
// taking the key and secret along.
func TestKeyVaultImportsCertificates(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()

	cert, key := testCert(t, "imported")
	pfx, err := pkcs12.Modern.Encode(key, cert, nil, "pfx-password")
	require.NoError(t, err)
	imp, err := e.certs.ImportCertificate(ctx, "imported-pfx", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(base64.StdEncoding.EncodeToString(pfx)), Password: to.Ptr("pfx-password"),
		Tags: map[string]*string{"managed-by": to.Ptr("rotor"), "rotor-key-id": to.Ptr("k1")},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, cert.Raw, imp.CER)
	require.Equal(t, x5t(cert), imp.X509Thumbprint)
	require.Equal(t, "application/x-pkcs12", *imp.Policy.SecretProperties.ContentType)
	require.Equal(t, "Unknown", *imp.Policy.IssuerParameters.Name)
	require.Equal(t, azcertificates.KeyTypeRSA, *imp.Policy.KeyProperties.KeyType)
	require.EqualValues(t, 2048, *imp.Policy.KeyProperties.KeySize)
	// The backing PFX has no password and opens with azidentity.
	sec, err := e.consumerSecrets.GetSecret(ctx, "imported-pfx", "", nil)
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(*sec.Value)
	require.NoError(t, err)
	chain, _, err := azidentity.ParseCertificates(raw, nil)
	require.NoError(t, err)
	require.Equal(t, cert.Raw, chain[0].Raw)

	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	pemBundle := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	imp2, err := e.certs.ImportCertificate(ctx, "imported-pem", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(pemBundle),
		CertificatePolicy:        &azcertificates.CertificatePolicy{SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")}},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, "application/x-pem-file", *imp2.ContentType)
	sec, err = e.consumerSecrets.GetSecret(ctx, "imported-pem", "", nil)
	require.NoError(t, err)
	require.Contains(t, *sec.Value, "-----BEGIN PRIVATE KEY-----")

	// Listing shows both with their thumbprints.
	seen := map[string][]byte{}
	for p := e.certs.NewListCertificatePropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, c := range page.Value {
			seen[c.ID.Name()] = c.X509Thumbprint
			require.Empty(t, c.ID.Version())
		}
	}
	require.Equal(t, map[string][]byte{"imported-pfx": x5t(cert), "imported-pem": x5t(cert)}, seen)

	// Refusals.
	certOnly := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	_, err = e.certs.ImportCertificate(ctx, "no-key", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(certOnly)}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	require.NotContains(t, err.Error(), "BEGIN", "the refusal never echoes the value")
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	_, err = e.certs.ImportCertificate(ctx, "pkcs1", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(pkcs1)}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	require.Contains(t, err.Error(), "PKCS#8", "Key Vault takes a PEM key in PKCS#8 only")
	_, err = e.certs.ImportCertificate(ctx, "wrong-pwd", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(base64.StdEncoding.EncodeToString(pfx)), Password: to.Ptr("nope")}, nil)
	requireKVError(t, err, http.StatusBadRequest, "BadParameter")
	_, err = e.rotationSecretsWithoutRead.SetSecret(ctx, "plain", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
	require.NoError(t, err)
	_, err = e.certs.ImportCertificate(ctx, "plain", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(pemBundle)}, nil)
	requireKVError(t, err, http.StatusConflict, "Conflict")

	// Update tags; delete takes key and secret along; recover brings them back.
	upd, err := e.certs.UpdateCertificate(ctx, "imported-pfx", "", azcertificates.UpdateCertificateParameters{
		Tags: map[string]*string{"managed-by": to.Ptr("rotor"), "rotor-key-id": to.Ptr("k2")}}, nil)
	require.NoError(t, err)
	require.Equal(t, "k2", *upd.Tags["rotor-key-id"])
	_, err = e.certs.DeleteCertificate(ctx, "imported-pfx", nil)
	require.NoError(t, err)
	_, err = e.consumerSecrets.GetSecret(ctx, "imported-pfx", "", nil)
	requireKVError(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = e.keys.GetKey(ctx, "imported-pfx", "", nil)
	requireKVError(t, err, http.StatusNotFound, "KeyNotFound")
	_, err = e.certs.ImportCertificate(ctx, "imported-pfx", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(pemBundle)}, nil)
	requireKVError(t, err, http.StatusConflict, "Conflict")
	_, err = e.certs.RecoverDeletedCertificate(ctx, "imported-pfx", nil)
	require.NoError(t, err)
	_, err = e.consumerSecrets.GetSecret(ctx, "imported-pfx", "", nil)
	require.NoError(t, err)

	// The consumer may read certificates but not import them.
	consumerCerts := e.CertificatesClient(t, e.vault, e.ConsumerCredential(t, e.tn.ID))
	_, err = consumerCerts.GetCertificate(ctx, "imported-pem", "", nil)
	require.NoError(t, err)
	_, err = consumerCerts.ImportCertificate(ctx, "x", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(pemBundle)}, nil)
	requireKVError(t, err, http.StatusForbidden, "Forbidden")
	require.Contains(t, err.Error(), "does not have certificates import permission")
}

// vaultSigner is a crypto.Signer whose private key stays in the vault:
// every signature is Key Vault's sign operation (RS256), as rotor's
// Key-Vault-held certificates are made.
type vaultSigner struct {
	t      *testing.T
	client *azkeys.Client
	name   string
	pub    *rsa.PublicKey
}

func (s vaultSigner) Public() crypto.PublicKey { return s.pub }

func (s vaultSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	require.Equal(s.t, crypto.SHA256, opts.HashFunc())
	resp, err := s.client.Sign(s.t.Context(), s.name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest}, nil)
	if err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// TestKeyVaultKeySignsCertificateAndClientAssertion makes a certificate
// whose private key never leaves the vault: the vault creates the key,
// crypto/x509 self-signs the certificate through Key Vault's sign, the
// certificate is registered on an application, and a client assertion
// signed by Key Vault gets a token from the simulated Entra.
func TestKeyVaultKeySignsCertificateAndClientAssertion(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()
	k, err := e.keys.CreateKey(ctx, "app-signing", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr[int32](2048)}, nil)
	require.NoError(t, err)
	signer := vaultSigner{t: t, client: e.keys, name: "app-signing",
		pub: &rsa.PublicKey{N: new(big.Int).SetBytes(k.Key.N), E: int(new(big.Int).SetBytes(k.Key.E).Int64())}}

	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "api-orders"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, SignatureAlgorithm: x509.SHA256WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.pub, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.NoError(t, cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature), "Key Vault's signature verifies")

	fab := e.Tenant(t, "fabrikam")
	app := e.AppNamed(t, "fabrikam", "api-orders")
	e.Server.World().Update(func() {
		app.Keys = append(app.Keys, sim.NewKey(uuid.NewString(), "rotor:kv", cert, e.Now().Add(-time.Hour)))
	})

	assertion := func(ctx context.Context) (string, error) {
		b64 := base64.RawURLEncoding
		hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": b64.EncodeToString(x5t(cert))})
		claims, _ := json.Marshal(map[string]any{
			"aud": e.Info.AuthorityHost + fab.ID + "/oauth2/v2.0/token", "iss": app.AppID, "sub": app.AppID,
			"jti": uuid.NewString(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		})
		signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(claims)
		digest := sha256.Sum256([]byte(signing))
		sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			return "", err
		}
		return signing + "." + b64.EncodeToString(sig), nil
	}
	cred, err := azidentity.NewClientAssertionCredential(fab.ID, app.AppID, assertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.NoError(t, err)
	require.Equal(t, app.AppID, simtest.ClaimsOf(t, tok.Token)["appid"])
}

// TestKeyVaultNonExportableCertificateSecretHasNoKey: a certificate whose
// policy makes its key non-exportable keeps the private key out of its
// backing secret, PEM and PKCS#12 alike ("the private key isn't part of
// the value when it's retrieved as a secret"), while its key still signs.
func TestKeyVaultNonExportableCertificateSecretHasNoKey(t *testing.T) {
	t.Parallel()
	e := objectsSetup(t)
	ctx := t.Context()
	for _, ct := range []string{"application/x-pem-file", "application/x-pkcs12"} {
		name := "sealed-" + strings.TrimPrefix(ct, "application/x-")
		pol := selfSignedPolicy(ct)
		pol.KeyProperties.Exportable = to.Ptr(false)
		_, err := e.certs.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil)
		require.NoError(t, err)
		got, err := e.certs.GetCertificate(ctx, name, "", nil)
		require.NoError(t, err)
		sec, err := e.consumerSecrets.GetSecret(ctx, name, got.ID.Version(), nil)
		require.NoError(t, err)
		if ct == "application/x-pem-file" {
			require.NotContains(t, *sec.Value, "PRIVATE KEY")
			require.Contains(t, *sec.Value, "BEGIN CERTIFICATE")
		} else {
			der, err := base64.StdEncoding.DecodeString(*sec.Value)
			require.NoError(t, err)
			_, _, err = pkcs12.Decode(der, "")
			require.Error(t, err, "no key in the PFX")
			certs, err := pkcs12.DecodeTrustStore(der, "")
			require.NoError(t, err)
			require.Equal(t, got.CER, certs[0].Raw)
		}
		_, err = e.keys.Sign(ctx, name, got.ID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: make([]byte, 32)}, nil)
		require.NoError(t, err, "the key signs in the vault")
	}
}
