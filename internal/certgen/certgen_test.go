package certgen_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/require"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/rotor-dev/rotor/internal/certgen"
)

func TestGenerate(t *testing.T) {
	t.Parallel()
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	for _, tc := range []struct {
		kt   certgen.KeyType
		bits int
	}{{"", 2048}, {certgen.RSA3072, 3072}, {certgen.RSA4096, 4096}, {certgen.ECP256, 256}} {
		t.Run(string(tc.kt), func(t *testing.T) {
			t.Parallel()
			c, err := certgen.Generate(certgen.Request{KeyType: tc.kt, Subject: pkix.Name{CommonName: "payroll-api"}, DNSNames: []string{"payroll.example.com"}, NotBefore: nb, NotAfter: na})
			require.NoError(t, err)
			require.Len(t, c.Chain, 1)
			leaf := c.Chain[0]
			require.Equal(t, "CN=payroll-api", leaf.Subject.String())
			require.Equal(t, leaf.Subject.String(), leaf.Issuer.String(), "self-signed")
			require.NoError(t, leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature))
			require.Equal(t, []string{"payroll.example.com"}, leaf.DNSNames)
			require.True(t, leaf.NotBefore.Equal(nb))
			require.True(t, leaf.NotAfter.Equal(na))
			require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
			require.False(t, leaf.IsCA)
			switch pub := c.Key.Public().(type) {
			case *rsa.PublicKey:
				require.Equal(t, tc.bits, pub.N.BitLen())
				require.True(t, pub.Equal(leaf.PublicKey))
			case *ecdsa.PublicKey:
				require.Equal(t, tc.bits, pub.Curve.Params().BitSize)
				require.True(t, pub.Equal(leaf.PublicKey))
			default:
				t.Fatalf("unexpected key %T", pub)
			}
			// The PKCS#12 opens with the empty password and holds the same pair.
			key, cert, err := pkcs12.Decode([]byte(c.PKCS12.Reveal()), "")
			require.NoError(t, err)
			require.Equal(t, leaf.Raw, cert.Raw)
			require.NotNil(t, key)
		})
	}
}

func TestGenerateRefuses(t *testing.T) {
	t.Parallel()
	nb := time.Now()
	_, err := certgen.Generate(certgen.Request{Subject: pkix.Name{}, NotBefore: nb, NotAfter: nb.Add(time.Hour)})
	require.ErrorContains(t, err, "common name")
	_, err = certgen.Generate(certgen.Request{Subject: pkix.Name{CommonName: "x"}, NotBefore: nb, NotAfter: nb})
	require.ErrorContains(t, err, "empty")
	_, err = certgen.Generate(certgen.Request{KeyType: "dsa-1024", Subject: pkix.Name{CommonName: "x"}, NotBefore: nb, NotAfter: nb.Add(time.Hour)})
	require.ErrorContains(t, err, "not known")
}

func TestParseKeyType(t *testing.T) {
	t.Parallel()
	k, err := certgen.ParseKeyType("")
	require.NoError(t, err)
	require.Equal(t, certgen.RSA2048, k)
	k, err = certgen.ParseKeyType("RSA-4096")
	require.NoError(t, err)
	require.Equal(t, certgen.RSA4096, k)
	_, err = certgen.ParseKeyType("rsa-1024")
	require.ErrorContains(t, err, "rsa-2048, rsa-3072, rsa-4096, ec-p256")
}

// TestCertificateNeverPrints: the private key and PKCS#12 do not leak
// through fmt.
func TestCertificateNeverPrints(t *testing.T) {
	t.Parallel()
	c, err := certgen.Generate(certgen.Request{Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	s := fmtAll(c)
	require.NotContains(t, s, c.Key.Signer().(*rsa.PrivateKey).D.String())
	require.Contains(t, s, "REDACTED")
}

func fmtAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	n, err := certgen.ParseSubject("", "payroll")
	require.NoError(t, err)
	require.Equal(t, "CN=payroll", n.String())
	n, err = certgen.ParseSubject("CN=payroll-api, O=Contoso, OU=Platform, C=NO", "ignored")
	require.NoError(t, err)
	require.Equal(t, "payroll-api", n.CommonName)
	require.Equal(t, []string{"Contoso"}, n.Organization)
	require.Equal(t, []string{"NO"}, n.Country)
	for _, bad := range []string{"O=Contoso", "CN=a, CN=b", "CN=a, E=x@y", "CN", `CN=a\, b`, "CN=a+O=b"} {
		_, err := certgen.ParseSubject(bad, "x")
		require.Error(t, err, bad)
	}
	_, err = certgen.ParseSubject("", " ")
	require.Error(t, err)
}

// The PKCS#12 blob opens where consumers open it: azidentity's
// ParseCertificates (what a client building a ClientCertificateCredential
// from a vault's PFX calls), with an empty password.
func TestPKCS12OpensInAzidentity(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c, err := certgen.Generate(certgen.Request{Subject: pkix.Name{CommonName: "payroll-api"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
	require.NoError(t, err)
	certs, key, err := azidentity.ParseCertificates([]byte(c.PKCS12.Reveal()), nil)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	require.Equal(t, c.Chain[0].Raw, certs[0].Raw)
	require.NotNil(t, key)
}

// opaqueSigner hides an RSA key behind crypto.Signer, as a Key Vault
// signer does: certgen must never need the key itself.
type opaqueSigner struct{ k *rsa.PrivateKey }

func (s opaqueSigner) Public() crypto.PublicKey { return s.k.Public() }
func (s opaqueSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, d, o)
}

func TestSelfSignOverAKeyRotorDoesNotHold(t *testing.T) {
	t.Parallel()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := certgen.SelfSign(certgen.Request{Subject: pkix.Name{CommonName: "api"}, DNSNames: []string{"api.example.com"}, NotBefore: nb, NotAfter: nb.Add(time.Hour)}, opaqueSigner{k})
	require.NoError(t, err)
	require.NoError(t, c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature))
	require.True(t, k.PublicKey.Equal(c.PublicKey))
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage)
	require.Equal(t, []string{"api.example.com"}, c.DNSNames)

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, err = certgen.SelfSign(certgen.Request{Subject: pkix.Name{CommonName: "api"}, NotBefore: nb, NotAfter: nb.Add(time.Hour)}, ec)
	require.ErrorContains(t, err, "must be RSA")
}
